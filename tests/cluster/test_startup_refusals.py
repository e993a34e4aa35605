"""``paxon serve`` refuses to start, with exit 2 and one clear line on stderr, when it must.

The cases of docs/api.md: a TOML key it does not know, a data dir of another
node or cluster (used in place, or copied), a port in use, a log record
damaged in the middle of a segment. No traceback, ever; the line names what
is wrong (the key, the owner, the address, the file and offset). A refused
start must leave the data dir as it was: its owner starts from it afterwards.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from tests.cluster.harness import HOST, Cluster, free_ports, run_serve

pytestmark = pytest.mark.cluster

_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+ ")


def _refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The refusal line; fails unless exit 2, no traceback, and no other line but log records."""
    where = f"exit {result.returncode}, stderr:\n{result.stderr}"
    assert result.returncode == 2, where
    assert "Traceback" not in result.stderr, where
    lines = result.stderr.splitlines()
    others = [line for line in lines if not _LOG_RECORD.match(line)]
    assert len(others) == 1 and lines[-1] == others[0], where
    assert others[0].startswith("paxon serve: "), where
    return others[0]


def _refused_for(tmp_path: Path, node_id: int, data_dir: Path, *extra: str) -> str:
    """Start a node on ``data_dir`` that must be refused for that data dir.

    Its ports are picked free, but another test may take one before the node
    binds it (the node checks ports first); then it runs again on fresh ports.
    """
    for _ in range(5):
        args = _fresh_args(tmp_path, node_id=node_id)
        args[args.index("--data-dir") + 1] = str(data_dir)
        line = _only_line(run_serve(*args, *extra))
        if "the address is in use" not in line:
            return line
    raise AssertionError(f"no free ports in 5 tries: {line}")


def _only_line(result: subprocess.CompletedProcess[str]) -> str:
    """The refusal line, which must be the whole of stderr."""
    line = _refusal(result)
    assert result.stderr.strip() == line, f"more than one line on stderr:\n{result.stderr}"
    return line


def _fresh_args(tmp_path: Path, node_id: int = 1) -> list[str]:
    """Flags of a node that shares nothing with anything running (free ports, new dir)."""
    native_1, native_2, native_3, http = free_ports(4)
    peers = f"1={HOST}:{native_1},2={HOST}:{native_2},3={HOST}:{native_3}"
    listen = (native_1, native_2, native_3)[node_id - 1]
    return [
        *("--id", str(node_id), "--data-dir", str(tmp_path / f"fresh-{node_id}")),
        *("--listen", f"{HOST}:{listen}", "--http", f"{HOST}:{http}", "--peers", peers),
    ]


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('log_level = "info"\nelection_timeout_min = 0.3\n')
    line = _only_line(run_serve(*_fresh_args(tmp_path), "--config", str(config)))
    assert "'election_timeout_min'" in line and str(config) in line
    assert not (tmp_path / "fresh-1").exists(), "a refused start touched the data dir"


def test_data_dir_of_another_node_or_cluster_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    with cluster.client() as kv:
        kv.put("owner", "node 1 keeps this")
    owner = cluster.node(1)
    owner.stop()
    copy = tmp_path / "copy-of-node1"
    shutil.copytree(owner.data_dir, copy)
    for data_dir in (owner.data_dir, copy):
        line = _refused_for(tmp_path, 2, data_dir)
        assert str(data_dir) in line and "node 1" in line and "node 2" in line, line
    line = _refused_for(tmp_path, 1, owner.data_dir, "--cluster-id", "another-cluster")
    assert "another-cluster" in line and "'paxon'" in line, line

    owner.restart()
    cluster.wait_caught_up(1)
    with owner.client() as kv:
        item = kv.get("owner", serializable=True)
        assert item is not None and item.value == b"node 1 keeps this"


@pytest.mark.parametrize("port", ["--listen", "--http"])
def test_port_in_use_is_refused(tmp_path: Path, port: str) -> None:
    args = _fresh_args(tmp_path)
    address = args[args.index(port) + 1]
    host, _, number = address.rpartition(":")
    with socket.socket() as holder:
        holder.bind((host, int(number)))
        holder.listen()
        line = _refusal(run_serve(*args))
    assert address in line and "cannot listen" in line, line


@pytest.mark.parametrize("port", ["--listen", "--http"])
def test_port_in_use_refusal_is_the_only_line(tmp_path: Path, port: str) -> None:
    args = _fresh_args(tmp_path)
    address = args[args.index(port) + 1]
    host, _, number = address.rpartition(":")
    with socket.socket() as holder:
        holder.bind((host, int(number)))
        holder.listen()
        _only_line(run_serve(*args))


def test_damaged_record_in_the_middle_of_the_log_is_refused(cluster: Cluster) -> None:
    with cluster.client() as kv:
        for i in range(300):
            kv.put(f"key-{i:03d}", f"value-{i}")
    damaged = cluster.node(3)
    damaged.stop()
    segment = max(damaged.data_dir.glob("wal-*.seg"), key=lambda path: path.stat().st_size)
    data = bytearray(segment.read_bytes())
    assert len(data) > 10_000, f"{segment} holds too few records to damage one in the middle"
    data[len(data) // 2] ^= 0x40
    segment.write_bytes(bytes(data))

    result = subprocess.run(damaged.argv(), capture_output=True, text=True, timeout=60, check=False)
    line = _only_line(result)
    assert str(segment) in line and "offset" in line, line
    with cluster.client(1, 2) as kv:
        assert kv.get("key-299") is not None, "the other two nodes stopped serving"
