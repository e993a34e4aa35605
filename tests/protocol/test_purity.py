"""The protocol core stays sans-I/O: no module in it imports a clock, socket, file or thread."""

from __future__ import annotations

import ast
from pathlib import Path

import paxon.protocol

FORBIDDEN = {
    "asyncio",
    "os",
    "random",
    "selectors",
    "signal",
    "socket",
    "subprocess",
    "threading",
    "time",
    "datetime",
    "io",
    "pathlib",
    "multiprocessing",
    "concurrent",
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_protocol_imports_no_io() -> None:
    package = Path(paxon.protocol.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) >= 8
    offenders = {
        module.name: sorted(imported_roots(module) & FORBIDDEN)
        for module in modules
        if imported_roots(module) & FORBIDDEN
    }
    assert not offenders, f"the pure core imports I/O: {offenders}"


def test_the_check_itself_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom time import monotonic\nfrom . import sibling\n")
    assert imported_roots(sample) & FORBIDDEN == {"os", "time"}
