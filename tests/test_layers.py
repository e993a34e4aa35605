"""The layers import downwards only: the runtime and everything under it
(``node``, ``protocol``, ``storage``, ``net``, ``kv``) never import the HTTP
server or the command line, so a library ``Node`` carries neither and a change
up there cannot reach the core (docs/architecture.md, "Packages")."""

from __future__ import annotations

import ast
from pathlib import Path

import paxon

LOWER = ("node", "protocol", "storage", "net", "kv")
UPPER = ("paxon.server", "paxon.cli")


def imported_modules(path: Path) -> set[str]:
    """Every absolute module ``path`` imports, at its top or inside a function."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def upward(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == u or m.startswith(u + ".") for u in UPPER))


def test_lower_layers_import_nothing_from_the_server_or_the_command_line() -> None:
    root = Path(paxon.__file__).parent
    checked = [path for layer in LOWER for path in sorted((root / layer).glob("*.py"))]
    assert len(checked) >= 40
    offenders = {
        str(path.relative_to(root)): found
        for path in checked
        if (found := upward(imported_modules(path)))
    }
    assert not offenders, f"lower layers import upwards: {offenders}"


def test_the_check_sees_imports_at_the_top_and_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from paxon.server.metrics import NodeMetrics\n"
        "def later():\n    import paxon.cli\n"
        "from paxon import server\n"
        "from paxon.serverless import x\n"
    )
    assert upward(imported_modules(sample)) == [
        "paxon.cli",
        "paxon.server",
        "paxon.server.metrics",
        "paxon.server.metrics.NodeMetrics",
    ]
