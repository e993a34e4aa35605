"""The client side of TLS: ``ClientTls``, ``Client``/``SyncClient`` and ``ClientLink`` over TLS.

The node's own TLS belongs to the transport; here the client talks to a small
TLS server speaking the native handshake (``tls_server.TlsNode``), and to a
real plain-TCP node to show what a TLS client says to a port without TLS.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from tests.net.net_helpers import CLUSTER, WAIT_S
from tests.net.net_helpers import Node as PlainNode
from tests.security.tls_server import REVISION, TlsNode, server_context, tls_node_in_thread

import paxon
from paxon.errors import BadRequest, Unavailable
from paxon.net.client_link import ClientLink, TlsHandshakeFailed
from paxon.security.certs import (
    CertIdentity,
    ClusterCertPaths,
    issue_client_cert,
    write_cluster_certs,
)
from paxon.security.client_tls import ClientTls


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def wrapped() -> None:
        async with asyncio.timeout(3 * WAIT_S):
            await main()

    asyncio.run(wrapped())


@pytest.fixture
def cluster(tmp_path: Path) -> ClusterCertPaths:
    return write_cluster_certs(tmp_path / "certs", CLUSTER, [1, 2], clients=["admin"])


@pytest.fixture
def stranger(tmp_path: Path) -> ClusterCertPaths:
    """Another CA for the same cluster id and node ids: trusted by nobody here."""
    return write_cluster_certs(tmp_path / "stranger", CLUSTER, [1], clients=["admin"])


def admin_tls(cluster: ClusterCertPaths) -> ClientTls:
    admin = cluster.clients["admin"]
    return ClientTls(cacert=cluster.ca.cert, cert=admin.cert, key=admin.key)


def mutual_node(cluster: ClusterCertPaths) -> TlsNode:
    context = server_context(cluster.directory, client_ca=cluster.ca.cert)
    return TlsNode(context, CLUSTER)


# ------------------------------------------------------------------ success


def test_client_speaks_mutual_tls_and_the_node_sees_its_identity(
    cluster: ClusterCertPaths,
) -> None:
    async def main() -> None:
        node = mutual_node(cluster)
        host, port = await node.start()
        try:
            async with paxon.Client(f"{host}:{port}", tls=admin_tls(cluster), timeout=WAIT_S) as kv:
                assert await kv.put("k", b"v") == REVISION
        finally:
            await node.close()
        assert node.identities == [CertIdentity(CLUSTER, "client", "admin")]
        assert [hello.cluster_id for hello in node.hellos] == [""]

    run(main)


def test_server_only_tls_needs_just_the_ca(cluster: ClusterCertPaths) -> None:
    async def main() -> None:
        node = TlsNode(server_context(cluster.directory, client_ca=None), CLUSTER)
        host, port = await node.start()
        try:
            tls = ClientTls(cacert=str(cluster.ca.cert))
            async with paxon.Client([f"{host}:{port}"], tls=tls, timeout=WAIT_S) as kv:
                assert await kv.put("k", "v") == REVISION
        finally:
            await node.close()
        assert node.identities == [None]

    run(main)


def test_localhost_is_a_name_the_node_certificate_carries(cluster: ClusterCertPaths) -> None:
    async def main() -> None:
        node = mutual_node(cluster)
        _, port = await node.start()
        try:
            async with paxon.Client(f"localhost:{port}", tls=admin_tls(cluster)) as kv:
                assert await kv.put("k", b"v") == REVISION
        finally:
            await node.close()

    run(main)


def test_sync_client_takes_the_same_tls(cluster: ClusterCertPaths) -> None:
    node = mutual_node(cluster)
    with tls_node_in_thread(node) as (host, port):
        kv = paxon.SyncClient(f"{host}:{port}", tls=admin_tls(cluster), timeout=WAIT_S)
        with kv:
            assert kv.put("k", b"v") == REVISION
    assert node.identities == [CertIdentity(CLUSTER, "client", "admin")]


# ------------------------------------------------------------------ failures


def test_a_node_signed_by_another_ca_is_not_trusted(
    cluster: ClusterCertPaths, stranger: ClusterCertPaths
) -> None:
    async def main() -> None:
        node = TlsNode(server_context(stranger.directory, client_ca=None), CLUSTER)
        host, port = await node.start()
        try:
            async with paxon.Client(f"{host}:{port}", tls=admin_tls(cluster), timeout=0.5) as kv:
                with pytest.raises(Unavailable, match="certificate is not trusted") as caught:
                    await kv.put("k", b"v")
        finally:
            await node.close()
        assert "could not reach" in str(caught.value) and caught.value.exit_code == 3
        assert node.hellos == []

    run(main)


def test_untrusted_everywhere_gives_up_at_once_and_one_trusted_node_is_enough(
    cluster: ClusterCertPaths, stranger: ClusterCertPaths
) -> None:
    async def main() -> None:
        impostor = TlsNode(server_context(stranger.directory, client_ca=None), CLUSTER)
        member = mutual_node(cluster)
        impostor_host, impostor_port = await impostor.start()
        member_host, member_port = await member.start()
        impostor_address = f"{impostor_host}:{impostor_port}"
        loop = asyncio.get_running_loop()
        try:
            async with paxon.Client(impostor_address, tls=admin_tls(cluster), timeout=WAIT_S) as kv:
                started = loop.time()
                with pytest.raises(Unavailable, match="not trusted"):
                    await kv.put("k", b"v")
                assert loop.time() - started < WAIT_S / 2  # not retried until the deadline
            endpoints = [impostor_address, f"{member_host}:{member_port}"]
            async with paxon.Client(endpoints, tls=admin_tls(cluster), timeout=WAIT_S) as kv:
                assert await kv.put("k", b"v") == REVISION
        finally:
            await impostor.close()
            await member.close()
        assert member.identities == [CertIdentity(CLUSTER, "client", "admin")]

    run(main)


def test_a_client_certificate_from_another_ca_is_refused_by_the_node(
    cluster: ClusterCertPaths, stranger: ClusterCertPaths
) -> None:
    async def main() -> None:
        node = mutual_node(cluster)
        host, port = await node.start()
        admin = stranger.clients["admin"]
        tls = ClientTls(cacert=cluster.ca.cert, cert=admin.cert, key=admin.key)
        try:
            async with paxon.Client(f"{host}:{port}", tls=tls, timeout=0.5) as kv:
                with pytest.raises(Unavailable, match="TLS") as caught:
                    await kv.put("k", b"v")
        finally:
            await node.close()
        assert caught.value.exit_code == 3
        assert node.hellos == []

    run(main)


def test_no_client_certificate_where_the_node_requires_one(cluster: ClusterCertPaths) -> None:
    async def main() -> None:
        node = mutual_node(cluster)
        host, port = await node.start()
        try:
            tls = ClientTls(cacert=cluster.ca.cert)
            async with paxon.Client(f"{host}:{port}", tls=tls, timeout=0.5) as kv:
                with pytest.raises(Unavailable, match="TLS"):
                    await kv.put("k", b"v")
        finally:
            await node.close()
        assert node.hellos == []

    run(main)


def test_a_host_the_certificate_does_not_name_is_refused(cluster: ClusterCertPaths) -> None:
    async def main() -> None:
        node = mutual_node(cluster)
        host, port = await node.start()
        context = admin_tls(cluster).context()
        try:
            with pytest.raises(TlsHandshakeFailed, match=r"not trusted.*[Hh]ostname mismatch"):
                await ClientLink.connect(
                    host,
                    port,
                    timeout=WAIT_S,
                    ssl_context=context,
                    server_hostname="elsewhere.example",
                )
        finally:
            await node.close()
        assert node.hellos == []

    run(main)


def test_tls_to_a_plain_node_says_the_port_is_not_tls(cluster: ClusterCertPaths) -> None:
    async def main() -> None:
        plain = await PlainNode(1, {}).start()
        host, port = plain.address
        try:
            with pytest.raises(TlsHandshakeFailed, match="is the port serving TLS") as caught:
                await ClientLink.connect(
                    host, port, timeout=WAIT_S, ssl_context=admin_tls(cluster).context()
                )
            assert str(caught.value).startswith(f"{host}:{port}: TLS:")
        finally:
            await plain.close()

    run(main)


def test_tls_to_a_silent_port_times_out_as_a_tls_failure(cluster: ClusterCertPaths) -> None:
    async def main() -> None:
        accepted: list[asyncio.StreamWriter] = []

        async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)  # reads nothing, answers nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        host, port = server.sockets[0].getsockname()[:2]
        try:
            with pytest.raises(TlsHandshakeFailed, match="no handshake in time"):
                await ClientLink.connect(
                    host, port, timeout=0.2, ssl_context=admin_tls(cluster).context()
                )
        finally:
            for writer in accepted:
                writer.close()
            server.close()
            await server.wait_closed()
        assert len(accepted) == 1

    run(main)


def test_an_unreachable_port_is_not_blamed_on_tls(cluster: ClusterCertPaths) -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        host, port = server.sockets[0].getsockname()[:2]
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            await ClientLink.connect(
                host, port, timeout=WAIT_S, ssl_context=admin_tls(cluster).context()
            )

    run(main)


# ------------------------------------------------------------------ settings


def test_missing_or_bad_files_are_bad_requests_naming_them(
    cluster: ClusterCertPaths, tmp_path: Path
) -> None:
    with pytest.raises(BadRequest, match=r"cannot load CA file .*nope\.pem"):
        ClientTls(cacert=tmp_path / "nope.pem").context()
    with pytest.raises(BadRequest, match="cannot load CA file"):
        ClientTls(cacert=cluster.ca.key).context()
    admin = cluster.clients["admin"]
    with pytest.raises(BadRequest, match="cannot load client certificate"):
        ClientTls(cacert=cluster.ca.cert, cert=admin.cert, key=cluster.nodes[1].key).context()
    with pytest.raises(BadRequest, match="needs its certificate"):
        ClientTls(cacert=cluster.ca.cert, key=admin.key)
    with pytest.raises(BadRequest, match="cannot load CA file"):
        paxon.Client("127.0.0.1:1", tls=ClientTls(cacert=tmp_path / "nope.pem"))


def test_cert_with_the_key_in_the_same_file(cluster: ClusterCertPaths, tmp_path: Path) -> None:
    admin = cluster.clients["admin"]
    both = tmp_path / "both.pem"
    both.write_bytes(admin.cert.read_bytes() + admin.key.read_bytes())
    ClientTls(cacert=cluster.ca.cert, cert=both).context()


def test_options_fall_back_to_the_environment_and_flags_win() -> None:
    env = {"PAXON_CACERT": "env-ca.pem", "PAXON_CERT": "env.pem", "PAXON_KEY": "env-key.pem"}
    assert ClientTls.from_options(environ={}) is None
    assert ClientTls.from_options(environ={"PAXON_CACERT": ""}) is None
    assert ClientTls.from_options(environ=env) == ClientTls("env-ca.pem", "env.pem", "env-key.pem")
    assert ClientTls.from_options("ca.pem", None, "k.pem", environ=env) == ClientTls(
        "ca.pem", "env.pem", "k.pem"
    )
    assert ClientTls.from_options(None, "c.pem", environ={}) == ClientTls(None, "c.pem", None)


def test_a_client_certificate_added_later_works(cluster: ClusterCertPaths) -> None:
    later = issue_client_cert(cluster.directory, "later")
    shutil.copy(cluster.ca.cert, later.cert.parent / "trust.pem")

    async def main() -> None:
        node = mutual_node(cluster)
        host, port = await node.start()
        tls = ClientTls(cacert=later.cert.parent / "trust.pem", cert=later.cert, key=later.key)
        try:
            async with paxon.Client(f"{host}:{port}", tls=tls, timeout=WAIT_S) as kv:
                assert await kv.put("k", b"v") == REVISION
        finally:
            await node.close()
        assert node.identities == [CertIdentity(CLUSTER, "client", "later")]

    run(main)
