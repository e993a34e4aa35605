"""Every Python block of README.md and docs/api.md runs, as written, as a script.

Each ```python block is written to a file and run with ``python FILE`` against
a real 3-node cluster; the only change made to it is the address: the
``paxon dev`` ports ``127.0.0.1:7001..7003`` become the test cluster's native
ports (``PAXON_ENDPOINTS`` is set too, for blocks that use the default).
A block that only works pasted into an async REPL (a top-level ``await``), or
that imports a name ``paxon`` does not export, fails here. Costs about 10 s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster.harness import Cluster, running_cluster

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "docs/api.md")
DEV_ENDPOINTS = ("127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003")
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[tuple[str, str]]:
    blocks = []
    for document in DOCUMENTS:
        text = (ROOT / document).read_text()
        for number, match in enumerate(_BLOCK.finditer(text), start=1):
            blocks.append((f"{document}#{number}", match.group(1)))
    return blocks


BLOCKS = python_blocks()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("snippets") / "cluster") as cluster:
        yield cluster


def test_the_documents_have_python_blocks() -> None:
    assert {name.split("#")[0] for name, _ in BLOCKS} == set(DOCUMENTS)


@pytest.mark.parametrize(("name", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_python_block_runs_as_a_script(
    name: str, code: str, cluster: Cluster, tmp_path: Path
) -> None:
    for dev, endpoint in zip(DEV_ENDPOINTS, cluster.endpoints, strict=True):
        code = code.replace(dev, endpoint)
    script = tmp_path / "snippet.py"
    script.write_text(code)
    environment = dict(os.environ, PAXON_ENDPOINTS=",".join(cluster.endpoints))
    result = subprocess.run(
        [sys.executable, str(script)],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, f"{name} failed:\n{code}\n--- stderr:\n{result.stderr}"
