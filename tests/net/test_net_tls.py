"""Peer mutual TLS and client TLS in the transport, with certificates from ``paxon certs``."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from tests.net.net_helpers import CLUSTER, NOWHERE, WAIT_S, Node, answer_ok, eventually

from paxon.net import ClientLink, StatusRequest, Transport
from paxon.net.client_messages import PROTOCOL_VERSION, Hello, PeerProof
from paxon.net.codec import decode_body, encode
from paxon.net.peer_auth import PeerSecurity
from paxon.protocol.messages import Probe
from paxon.protocol.types import Ballot
from paxon.security.certs import ClusterCertPaths, write_cluster_certs
from paxon.security.client_tls import ClientTls
from paxon.security.tls import client_port_context, peer_security


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def wrapped() -> None:
        async with asyncio.timeout(3 * WAIT_S):
            await main()

    asyncio.run(wrapped())


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> ClusterCertPaths:
    return write_cluster_certs(
        tmp_path_factory.mktemp("certs"), CLUSTER, [1, 2, 3], clients=["admin"]
    )


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> ClusterCertPaths:
    """Another CA that issues certificates naming the same cluster and ids."""
    return write_cluster_certs(tmp_path_factory.mktemp("foreign"), CLUSTER, [1, 2, 3])


def _security(certs: ClusterCertPaths, node_id: int, *, ca: Path | None = None) -> PeerSecurity:
    files = certs.nodes[node_id]
    return peer_security(str(files.cert), str(files.key), str(ca or certs.ca.cert))


def _dialing_context(certs: ClusterCertPaths, cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_cert_chain(cert, key)
    context.load_verify_locations(certs.ca.cert)
    return context


def test_members_with_certificates_link_up(certs: ClusterCertPaths) -> None:
    async def main() -> None:
        b = await Node(2, {1: NOWHERE}, security=_security(certs, 2), peer_port=0).start()
        a = await Node(1, {2: b.peer_address}, security=_security(certs, 1), peer_port=0).start()
        try:
            await eventually(lambda: a.transport.reachable(2) and b.transport.reachable(1))
            assert a.transport.client_address_of(2) == "client-of-2:1"
            a.transport.send(Probe(1, 2, Ballot(1, 1)))
            assert await b.messages.wait_count(1) == [Probe(1, 2, Ballot(1, 1))]
        finally:
            await a.close()
            await b.close()

    run(main)


def test_a_member_certificate_from_another_ca_never_links(
    certs: ClusterCertPaths, foreign: ClusterCertPaths
) -> None:
    async def main() -> None:
        b = await Node(2, {1: NOWHERE}, security=_security(certs, 2), peer_port=0).start()
        a = await Node(1, {2: b.peer_address}, security=_security(foreign, 1), peer_port=0).start()
        try:
            await asyncio.sleep(0.3)  # several dial attempts at FAST backoff
            assert not a.transport.reachable(2) and not b.transport.reachable(1)
        finally:
            await a.close()
            await b.close()

    run(main)


@pytest.mark.parametrize("who", ["node 3 claiming node 1", "a client certificate"])
def test_a_valid_certificate_cannot_speak_for_another_id(
    who: str, certs: ClusterCertPaths, caplog: pytest.LogCaptureFixture
) -> None:
    files = certs.nodes[3] if who.startswith("node") else certs.clients["admin"]

    async def main() -> None:
        b = Node(2, {1: NOWHERE, 3: NOWHERE}, security=_security(certs, 2), peer_port=0)
        await b.start()
        try:
            context = _dialing_context(certs, files.cert, files.key)
            reader, writer = await asyncio.open_connection(*b.peer_address, ssl=context)
            writer.write(encode(Hello(CLUSTER, 1, PROTOCOL_VERSION)))
            writer.write(encode(PeerProof(b"n" * 32, b"", "evil:1")))
            answer = await asyncio.wait_for(reader.read(), WAIT_S)
            writer.close()
            assert decode_body(answer[4:]).__class__.__name__ == "Refused"
            assert not b.transport.reachable(1)
            assert b.transport.stats().handshakes_refused == 1
        finally:
            await b.close()

    run(main)
    assert "not node 1" in caplog.text


def test_a_dialer_refuses_an_acceptor_whose_certificate_names_another_node(
    certs: ClusterCertPaths,
) -> None:
    async def main() -> None:
        # Node 3's certificate where node 1 expects node 2.
        b = await Node(2, {1: NOWHERE}, security=_security(certs, 3), peer_port=0).start()
        a = await Node(1, {2: b.peer_address}, security=_security(certs, 1), peer_port=0).start()
        try:
            await eventually(lambda: a.transport.stats().handshakes_refused >= 1)
            assert not a.transport.reachable(2)
        finally:
            await a.close()
            await b.close()

    run(main)


def test_tls_needs_a_peer_port_of_its_own(certs: ClusterCertPaths) -> None:
    with pytest.raises(ValueError, match="separate peer port"):
        Transport(
            node_id=1,
            cluster_id=CLUSTER,
            listen=("127.0.0.1", 0),
            peers={},
            on_peer_message=lambda m: None,
            on_client_request=lambda c, r: None,
            security=_security(certs, 1),
        )


def test_client_tls_on_the_client_port(certs: ClusterCertPaths) -> None:
    files = certs.nodes[1]

    async def main() -> None:
        node = Node(1, {}, peer_port=0, on_request=answer_ok)
        node.transport._client_tls = client_port_context(
            str(files.cert), str(files.key), str(certs.ca.cert)
        )
        await node.start()
        try:
            client = certs.clients["admin"]
            tls = ClientTls(certs.ca.cert, client.cert, client.key).context()
            link = await ClientLink.connect(*node.address, timeout=WAIT_S, ssl_context=tls)
            assert (await link.request(StatusRequest(1))).request_id == 1
            link.close()
            await link.wait_closed()
            # Without a client certificate the TLS handshake fails.
            bare = ClientTls(certs.ca.cert).context()
            with pytest.raises((ConnectionError, OSError)):
                link = await ClientLink.connect(*node.address, timeout=WAIT_S, ssl_context=bare)
                await link.request(StatusRequest(2))
            # Plain TCP gets nowhere either.
            with pytest.raises((ConnectionError, OSError, TimeoutError)):
                await ClientLink.connect(*node.address, timeout=1.0)
        finally:
            await node.close()

    run(main)


def test_bad_certificate_files_are_one_line_errors(tmp_path: Path, certs: ClusterCertPaths) -> None:
    with pytest.raises(ValueError, match="--peer-ca: no such file"):
        _security(certs, 1, ca=tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ValueError, match="--cert/--key: cannot load"):
        client_port_context(str(garbage), str(garbage))
