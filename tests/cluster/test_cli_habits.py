"""The CLI as a person uses it, on three ``paxon serve`` processes.

``put KEY -`` and ``--from-file`` store bytes that ``get`` gives back as they
are; ``get --prefix`` prints escaped text (``--limit``, ``--keys-only``,
``--count-only``); endpoints work in their ``http://`` form; an HTTP port
given as an endpoint is named as such, with the node's native port, at once.
Costs about 10 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster.harness import Cluster, running_cluster

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("habits") / "cluster") as cluster:
        yield cluster


def paxon(
    cluster: Cluster, *args: str, stdin: bytes = b"", endpoints: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    environment = dict(os.environ, PAXON_ENDPOINTS=endpoints or ",".join(cluster.endpoints))
    return subprocess.run(
        [sys.executable, "-m", "paxon", *args],
        env=environment,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[bytes]) -> bytes:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


BINARY = b"\x00\xff\x1b[31m\tline\nnext"


def test_put_from_stdin_and_file_then_get_prefix_prints_escaped_text(
    cluster: Cluster, tmp_path: Path
) -> None:
    ok(paxon(cluster, "put", "habits/bin", "-", stdin=BINARY))
    path = tmp_path / "value.txt"
    path.write_bytes("caf\u00e9\n".encode())
    ok(paxon(cluster, "put", "habits/file", "--from-file", str(path)))
    ok(paxon(cluster, "put", "habits/text", "plain"))

    assert ok(paxon(cluster, "get", "habits/bin")) == BINARY + b"\n"  # one key: its bytes
    listing = ok(paxon(cluster, "get", "habits/", "--prefix")).decode()
    assert listing.splitlines() == [
        "habits/bin\t\\x00\\xff\\x1b[31m\\tline\\nnext",
        "habits/file\tcaf\u00e9\\n",
        "habits/text\tplain",
    ]
    assert (
        ok(paxon(cluster, "get", "habits/", "--prefix", "--limit", "2")).decode().count("\n") == 2
    )
    keys = ok(paxon(cluster, "get", "habits/", "--prefix", "--keys-only")).decode()
    assert keys.splitlines() == ["habits/bin", "habits/file", "habits/text"]
    assert ok(paxon(cluster, "get", "habits/", "--prefix", "--count-only")) == b"3\n"
    assert ok(paxon(cluster, "get", "nothing/", "--prefix", "--count-only", "--json")) == (
        b'{"count": 0}\n'
    )
    lines = ok(paxon(cluster, "get", "habits/", "--prefix", "--json")).splitlines()
    assert json.loads(lines[0])["value_b64"]  # not UTF-8: lossless as base64


def test_http_url_endpoints_work_and_an_http_port_is_named_with_the_native_port(
    cluster: Cluster,
) -> None:
    urls = ",".join(f"http://{endpoint}/" for endpoint in cluster.endpoints)
    assert ok(paxon(cluster, "put", "habits/url", "v", endpoints=urls)).strip().isdigit()

    node = cluster.node(1)
    http_port = f"http://{node.http[0]}:{node.http[1]}/"
    result = paxon(cluster, "get", "habits/url", "--timeout", "30", endpoints=http_port)
    assert result.returncode == 3
    message = result.stderr.decode().strip()
    assert len(message.splitlines()) == 1, message  # one line, no frame errors
    assert message.endswith(
        f"{node.http[0]}:{node.http[1]} is an HTTP port; the native port is {node.endpoint})"
    ), message
