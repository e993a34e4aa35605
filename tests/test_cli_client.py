"""The client commands, ``serve`` and ``dev`` as a user runs them, without a cluster.

Bad usage and bad input exit 2 with one line on stderr, before anything
connects; an unreachable cluster exits 3 within about ``--timeout``.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paxon.cli import main
from paxon.server.dev import plan_nodes, ports_in_use

COMMANDS = (
    *("serve", "dev", "put", "get", "del", "cas", "txn", "compact", "status", "members", "bench"),
    "lease",
)


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["put", "k"], "paxon put: the following arguments are required: VALUE"),
        (["get"], "paxon get: the following arguments are required: KEY"),
        (["get", "k", "--revision", "-1"], "paxon get: argument --revision: must be >= 0"),
        (["put", "k", "v", "--timeout", "0"], "paxon put: argument --timeout: must be > 0"),
        (["cas", "k", "v"], "paxon cas: the following arguments are required: --expect-version"),
        (["cas", "k", "v", "--expect-version", "x"], "paxon cas: argument --expect-version"),
        (["del", "k", "--frob"], "paxon: unrecognized arguments: --frob"),
        (["get", "k", "--endpoints", "nonsense"], "paxon get: --endpoints: bad address"),
        (["put", "k", "\udcff"], "paxon put: VALUE is not valid UTF-8 text"),
        (["members"], "paxon members: choose list, add, promote, remove or transfer-leader"),
        (["members", "purge"], "paxon members: argument members_command: invalid choice"),
        (["bench", "--read-ratio", "1.5"], "paxon bench: argument --read-ratio: must be between"),
        (["bench", "--clients", "0"], "paxon bench: argument --clients: must be >= 1"),
        (["dev", "--nodes", "0"], "paxon dev: argument --nodes: must be >= 1"),
        (["compact"], "paxon compact: the following arguments are required: REVISION"),
        (["compact", "-3"], "paxon compact: argument REVISION: must be >= 0"),
        (["compact", "x"], "paxon compact: argument REVISION: not an integer"),
        (["lease"], "paxon lease: choose an action: grant, revoke, keep-alive, ttl or list"),
        (["lease", "grant"], "paxon lease grant: the following arguments are required: TTL"),
        (["lease", "grant", "0.5"], "paxon lease grant: ttl: a lease lasts from 1 to 2592000"),
        (["lease", "grant", "1e9"], "paxon lease grant: ttl: a lease lasts from 1 to 2592000"),
        (["lease", "grant", "nan"], "paxon lease grant: ttl: a lease lasts from 1"),
        (["lease", "grant", "ten"], "paxon lease grant: argument TTL_SECONDS: not a number"),
        (["lease", "revoke", "0"], "paxon lease revoke: argument ID: a lease id is an integer"),
        (["lease", "ttl", "-1"], "paxon lease ttl: argument ID: a lease id is an integer"),
        (["lease", "keep-alive", "x"], "paxon lease keep-alive: argument ID: a lease id"),
        (["lease", "list", "7"], "paxon: unrecognized arguments: 7"),
        (["lease", "purge"], "paxon lease: argument lease_command: invalid choice"),
        (["put", "k", "v", "--lease", "0"], "paxon put: argument --lease: a lease id is"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert _one_line_error(capsys).startswith(expected)


def test_bad_endpoints_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAXON_ENDPOINTS", "127.0.0.1:7001,oops")
    assert main(["get", "k"]) == 2
    assert _one_line_error(capsys).startswith("paxon get: $PAXON_ENDPOINTS: bad address 'oops'")


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        ("{bad", "paxon txn: stdin is not valid JSON: "),
        ("", "paxon txn: stdin is not valid JSON: "),
        ('{"compare": 5}', "paxon txn: compare: "),
        ('{"success": [{"put": {"key": "a"}}], "typo": []}', "paxon txn: "),
    ],
)
def test_txn_with_a_bad_request_exits_2_without_connecting(
    stdin: str,
    expected: str,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    started = time.monotonic()
    assert main(["txn", "--endpoints", f"127.0.0.1:{closed_port}"]) == 2
    assert time.monotonic() - started < 5
    assert _one_line_error(capsys).startswith(expected)


@pytest.mark.parametrize(
    "argv",
    [
        ["put", "k", "v"],
        ["get", "k"],
        ["get", "k", "--prefix", "--json"],
        ["del", "k"],
        ["cas", "k", "v", "--expect-version", "0"],
        ["status"],
        ["status", "--json"],
        ["members", "list"],
        ["compact", "5", "--json"],
        ["put", "k", "v", "--lease", "3"],
        ["lease", "grant", "10"],
        ["lease", "keep-alive", "3"],  # runs until interrupted, yet not when unreachable
        ["lease", "ttl", "3", "--keys"],
        ["bench", "--ops", "10"],
    ],
)
def test_an_unreachable_cluster_exits_3_quickly(
    argv: list[str], closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = f"127.0.0.1:{closed_port}"
    started = time.monotonic()
    assert main([*argv, "--endpoints", endpoints, "--timeout", "1"]) == 3
    assert time.monotonic() - started < 5
    assert _one_line_error(capsys).startswith(f"paxon {' '.join(argv[:1])}")


def test_txn_to_an_unreachable_cluster_exits_3(
    closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"success": [{"get": {"key": "a"}}]})))
    assert main(["txn", "--endpoints", f"127.0.0.1:{closed_port}", "--timeout", "1"]) == 3
    assert _one_line_error(capsys).startswith("paxon txn: ")


# -------------------------------------------------------------- serve and dev


def test_serve_refuses_bad_settings_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["serve", "--id", "4", "--data-dir", str(tmp_path), "--peers", "1=127.0.0.1:7001"]
    assert main(argv) == 2
    assert _one_line_error(capsys) == "paxon serve: id 4 is not among the peers (1)"


def test_serve_names_the_bad_config_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "node.toml"
    config.write_text('id = 1\ndata_dir = "d"\npeers = "1=127.0.0.1:7001"\nlisten_port = 7001\n')
    assert main(["serve", "--config", str(config)]) == 2
    line = _one_line_error(capsys)
    assert line == f"paxon serve: {config}: unknown key 'listen_port' (did you mean 'listen'?)"


def test_dev_refuses_a_busy_port(
    listening_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["dev", "--nodes", "1", "--base-port", str(listening_port)]
    assert main([*argv, "--data-dir", str(tmp_path / "data")]) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"paxon dev: port(s) already in use: 127.0.0.1:{listening_port}")
    assert not (tmp_path / "data").exists()


def test_dev_refuses_overlapping_port_ranges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["dev", "--base-port", "7001", "--http-base-port", "7002", "--data-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "overlap" in _one_line_error(capsys)


def test_dev_plan() -> None:
    nodes = plan_nodes(3, 7001, 8001, "data")
    assert [(node.node_id, node.listen, node.http) for node in nodes] == [
        (1, ("127.0.0.1", 7001), ("127.0.0.1", 8001)),
        (2, ("127.0.0.1", 7002), ("127.0.0.1", 8002)),
        (3, ("127.0.0.1", 7003), ("127.0.0.1", 8003)),
    ]
    assert nodes[1].data_dir == str(Path("data", "node2"))
    assert nodes[1].log_path == str(Path("data", "node2.log"))
    argv = nodes[1].argv("1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003")
    assert argv[1:4] == ["-m", "paxon", "serve"]
    assert argv[4:] == [
        "--id",
        "2",
        "--data-dir",
        str(Path("data", "node2")),
        "--listen",
        "127.0.0.1:7002",
        "--http",
        "127.0.0.1:8002",
        "--peers",
        "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003",
    ]


def test_ports_in_use(listening_port: int, closed_port: int) -> None:
    busy = [("127.0.0.1", listening_port)]
    assert ports_in_use([*busy, ("127.0.0.1", closed_port)]) == busy


# ------------------------------------------------------------------ the command


def test_help_lists_every_command_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    listing = capsys.readouterr().out.split("commands:")[1]
    for command in (*COMMANDS, "lock", "watch", "sim", "check", "certs"):
        assert f"\n    {command} " in listing


def test_python_dash_m_paxon_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "paxon", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.startswith("paxon ")


def test_dev_plan_is_secure_by_default(tmp_path: Path) -> None:
    from paxon.security.certs import identity_of_der
    from paxon.server.dev import with_certificates

    plan = plan_nodes(2, 7001, 8001, str(tmp_path), peer_base_port=7101)
    assert [node.peer for node in plan] == [("127.0.0.1", 7101), ("127.0.0.1", 7102)]
    nodes, ca_cert = with_certificates(plan, str(tmp_path), client_tls=False)
    argv = nodes[1].argv("1=127.0.0.1:7101,2=127.0.0.1:7102")
    assert argv[argv.index("--peer-listen") + 1] == "127.0.0.1:7102"
    cert = Path(argv[argv.index("--peer-cert") + 1])
    assert "--cert" not in argv  # client ports stay plain
    import ssl

    identity = identity_of_der(ssl.PEM_cert_to_DER_cert(cert.read_text()))
    assert identity is not None and (identity.cluster_id, identity.node_id) == ("paxon", 2)
    # A second start reuses the CA; a node added later gets its own certificate.
    before = Path(ca_cert).read_bytes()
    more = plan_nodes(3, 7001, 8001, str(tmp_path), peer_base_port=7101)
    nodes, _ = with_certificates(more, str(tmp_path), client_tls=True)
    assert Path(ca_cert).read_bytes() == before
    assert (tmp_path / "certs" / "node-3.pem").exists()
    assert "--cert" in nodes[2].argv("")


def test_dev_refuses_overlapping_peer_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["dev", "--peer-base-port", "7002", "--data-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "peer ports 7002..7004" in _one_line_error(capsys)
