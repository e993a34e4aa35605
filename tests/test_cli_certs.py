"""``paxon certs`` and the client commands' TLS flags, as a user runs them.

The TLS node here is ``tests.security.tls_server.TlsNode`` on its own thread:
the real node's TLS belongs to the transport.
"""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.security.tls_server import REVISION, TlsNode, server_context, tls_node_in_thread

from paxon.cli import main
from paxon.security.certs import CertIdentity, identity_of_der, is_issued_by

CLUSTER = "demo"


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.fixture
def certs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "certs"
    argv = ["certs", "init", "--cluster-id", CLUSTER, "--nodes", "1,2,3", "--clients", "admin"]
    assert main([*argv, "--hosts", "db1.example,10.0.0.5", "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def der_identity(path: Path) -> CertIdentity | None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    return identity_of_der(certificate.public_bytes(Encoding.DER))


# ------------------------------------------------------------------ certs


def test_init_writes_a_ca_and_every_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    assert main(["certs", "init", "--nodes", "1,2", "--clients", "admin", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"CA for cluster 'paxon'\t{out / 'ca.pem'}\t{out / 'ca-key.pem'}")
    assert lines[1:] == [
        f"node 1\t{out / 'node-1.pem'}\t{out / 'node-1-key.pem'}",
        f"node 2\t{out / 'node-2.pem'}\t{out / 'node-2-key.pem'}",
        f"client admin\t{out / 'client-admin.pem'}\t{out / 'client-admin-key.pem'}",
    ]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "node-2-key.pem").stat().st_mode) == 0o600
    assert der_identity(out / "node-2.pem") == CertIdentity("paxon", "node", "2")
    assert der_identity(out / "client-admin.pem") == CertIdentity("paxon", "client", "admin")


def test_add_node_and_add_client_sign_with_the_existing_ca(
    certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "add-node", "4", "--dir", str(certs), "--hosts", "db4.example"]) == 0
    assert (
        capsys.readouterr().out == f"node 4\t{certs / 'node-4.pem'}\t{certs / 'node-4-key.pem'}\n"
    )
    assert main(["certs", "add-client", "ops", "--dir", str(certs), "--days", "7"]) == 0
    assert capsys.readouterr().out.startswith("client ops\t")
    assert der_identity(certs / "node-4.pem") == CertIdentity(CLUSTER, "node", "4")
    assert der_identity(certs / "client-ops.pem") == CertIdentity(CLUSTER, "client", "ops")
    assert is_issued_by(certs / "node-4.pem", certs / "ca.pem")
    assert is_issued_by(certs / "client-ops.pem", certs / "ca.pem")


def test_show_prints_identity_names_and_expiry(
    certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "show", str(certs / "node-1.pem"), "--ca", str(certs / "ca.pem")]) == 0
    text = dict((line[:11].strip(), line[11:]) for line in capsys.readouterr().out.splitlines())
    assert text["identity"] == f"paxon://{CLUSTER}/node/1"
    assert (
        text["names"]
        == f"localhost, db1.example, 127.0.0.1, ::1, 10.0.0.5, paxon://{CLUSTER}/node/1"
    )
    assert text["usages"] == "serverAuth, clientAuth"
    assert text["ca"] == "no"
    assert text["not after"].endswith("days left)")
    assert text["signed by"] == f"{certs / 'ca.pem'}: yes"


def test_show_json(certs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "show", "--json", str(certs / "client-admin.pem")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["identity"] == {"cluster_id": CLUSTER, "kind": "client", "name": "admin"}
    assert shown["uri"] == [f"paxon://{CLUSTER}/client/admin"]
    assert shown["usages"] == ["clientAuth"]
    assert (shown["ca"], shown["expired"], shown["dns"], shown["ip"]) == (False, False, [], [])
    assert shown["file"] == str(certs / "client-admin.pem")
    assert main(["certs", "show", "--json", str(certs / "ca.pem")]) == 0
    ca = json.loads(capsys.readouterr().out)
    assert (ca["identity"], ca["ca"]) == (None, True)


def test_show_with_another_ca_exits_1(
    certs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    assert main(["certs", "init", "--nodes", "1", "--out", str(other)]) == 0
    capsys.readouterr()
    assert main(["certs", "show", str(certs / "node-1.pem"), "--ca", str(other / "ca.pem")]) == 1
    assert f"signed by  {other / 'ca.pem'}: NO" in capsys.readouterr().out
    assert (
        main(["certs", "show", "--json", str(certs / "node-1.pem"), "--ca", str(other / "ca.pem")])
        == 1
    )
    assert json.loads(capsys.readouterr().out)["signed_by_ca"] is False


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["certs"], "paxon certs: choose init, add-node, add-client or show"),
        (["certs", "init"], "paxon certs init: the following arguments are required: --nodes"),
        (["certs", "init", "--nodes", "1,x"], "paxon certs init: argument --nodes: not an integer"),
        (["certs", "init", "--nodes", ","], "paxon certs init: argument --nodes: expected a"),
        (["certs", "init", "--nodes", "1", "--days", "0"], "paxon certs init: argument --days"),
        (["certs", "init", "--nodes", "1,1"], "paxon certs init: duplicate node id"),
        (
            ["certs", "init", "--nodes", "1", "--cluster-id", "a/b"],
            "paxon certs init: bad cluster id",
        ),
        (["certs", "init", "--nodes", "1", "--hosts", "a b"], "paxon certs init: bad host 'a b'"),
        (["certs", "init", "--nodes", "1", "--days", "4000"], "paxon certs init: bad validity"),
        (["certs", "add-node"], "paxon certs add-node: the following arguments are required: ID"),
        (["certs", "add-client", "a b"], "paxon certs add-client: bad client name 'a b'"),
        (["certs", "show"], "paxon certs show: the following arguments are required: FILE"),
        (["certs", "rotate"], "paxon certs: argument ACTION: invalid choice"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--out", str(tmp_path / "c")] if argv[:2] == ["certs", "init"] else []
    assert main([*argv, *out]) == 2
    assert one_line_error(capsys).startswith(expected)
    assert not (tmp_path / "c").exists()


def test_files_that_exist_or_do_not_exit_2(
    certs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (certs / "ca.pem").read_bytes()
    assert main(["certs", "init", "--nodes", "1", "--out", str(certs)]) == 2
    assert (
        one_line_error(capsys)
        == f"paxon certs init: {certs / 'ca.pem'} already exists (--force replaces it)"
    )
    assert main(["certs", "add-node", "2", "--dir", str(certs)]) == 2
    assert "node-2.pem already exists" in one_line_error(capsys)
    assert (certs / "ca.pem").read_bytes() == before
    assert main(["certs", "add-node", "2", "--dir", str(certs), "--force"]) == 0
    capsys.readouterr()
    assert main(["certs", "add-client", "x", "--dir", str(tmp_path / "none")]) == 2
    assert (
        one_line_error(capsys)
        == f"paxon certs add-client: {tmp_path / 'none' / 'ca.pem'}: no such certificate file"
    )
    assert main(["certs", "show", str(certs / "ca-key.pem")]) == 2
    assert one_line_error(capsys).endswith("not a PEM or DER certificate")


# ------------------------------------------------------------------ client TLS flags


@pytest.fixture
def tls_node(certs: Path) -> Iterator[str]:
    node = TlsNode(server_context(certs, client_ca=certs / "ca.pem"), CLUSTER)
    with tls_node_in_thread(node) as (host, port):
        yield f"{host}:{port}"


def tls_flags(certs: Path) -> list[str]:
    return [
        "--cacert",
        str(certs / "ca.pem"),
        "--cert",
        str(certs / "client-admin.pem"),
        "--key",
        str(certs / "client-admin-key.pem"),
    ]


def test_put_over_mutual_tls(
    certs: Path, tls_node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["put", "k", "v", "--endpoints", tls_node, *tls_flags(certs)]) == 0
    assert capsys.readouterr().out == f"{REVISION}\n"


def test_tls_settings_from_the_environment(
    certs: Path, tls_node: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PAXON_CACERT", str(certs / "ca.pem"))
    monkeypatch.setenv("PAXON_CERT", str(certs / "client-admin.pem"))
    monkeypatch.setenv("PAXON_KEY", str(certs / "client-admin-key.pem"))
    assert main(["put", "k", "v", "--endpoints", tls_node]) == 0
    assert capsys.readouterr().out == f"{REVISION}\n"
    # A flag wins over its variable: this CA file does not exist.
    assert main(["put", "k", "v", "--endpoints", tls_node, "--cacert", "missing.pem"]) == 2
    assert one_line_error(capsys).startswith("paxon put: TLS: cannot load CA file missing.pem")


def test_a_node_from_another_ca_exits_3_with_the_reason(
    certs: Path, tls_node: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    assert (
        main(["certs", "init", "--cluster-id", CLUSTER, "--nodes", "1", "--out", str(other)]) == 0
    )
    capsys.readouterr()
    argv = ["--endpoints", tls_node, "--timeout", "0.5", "--cacert", str(other / "ca.pem")]
    assert main(["get", "k", *argv]) == 3
    assert "TLS: the node's certificate is not trusted" in one_line_error(capsys)
    assert main(["status", *argv]) == 3
    assert "TLS: the node's certificate is not trusted" in one_line_error(capsys)


def test_tls_to_a_plain_port_exits_3_with_the_reason(
    certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        endpoint = f"127.0.0.1:{server.getsockname()[1]}"
        argv = ["put", "k", "v", "--endpoints", endpoint, "--timeout", "0.5", *tls_flags(certs)]
        assert main(argv) == 3
    line = one_line_error(capsys)
    assert line.startswith("paxon put: could not reach any of") and "TLS" in line


@pytest.mark.parametrize("command", [["put", "k", "v"], ["status"], ["bench", "--ops", "1"]])
def test_bad_tls_files_exit_2_before_connecting(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.pem"
    assert main([*command, "--endpoints", "127.0.0.1:1", "--cacert", str(missing)]) == 2
    line = one_line_error(capsys)
    assert (
        line == f"paxon {command[0]}: TLS: cannot load CA file {missing}: No such file or directory"
    )


def test_a_key_without_its_certificate_exits_2(
    certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["get", "k", "--endpoints", "127.0.0.1:1", "--key", str(certs / "ca-key.pem")]) == 2
    assert one_line_error(capsys) == "paxon get: TLS: a client key needs its certificate (cert) too"
