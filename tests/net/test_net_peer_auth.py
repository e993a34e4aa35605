"""Who may join the peer links, and the bounds on every port (no TLS here; see
tests/security for certificates)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from tests.net.net_helpers import (
    CLUSTER,
    FAST,
    NOWHERE,
    WAIT_S,
    Node,
    Raw,
    answer_ok,
    eventually,
)

from paxon.net import ClientLink, Hello, StatusRequest, decode_body, encode
from paxon.net.client_messages import (
    PROTOCOL_VERSION,
    Challenge,
    Failure,
    PeerProof,
    PeerWelcome,
    Refused,
    Welcome,
)
from paxon.net.peer_auth import HandshakeTranscript, PeerSecurity, read_secret_file
from paxon.protocol.messages import Probe
from paxon.protocol.types import Ballot

SECRET = PeerSecurity(secret=b"s" * 32)
OTHER_SECRET = PeerSecurity(secret=b"t" * 32)


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def wrapped() -> None:
        async with asyncio.timeout(3 * WAIT_S):
            await main()

    asyncio.run(wrapped())


async def _secret_pair(
    security_1: PeerSecurity = SECRET, security_2: PeerSecurity = SECRET
) -> tuple[Node, Node]:
    b = await Node(2, {1: NOWHERE}, security=security_2, peer_port=0).start()
    a = await Node(1, {2: b.peer_address}, security=security_1, peer_port=0).start()
    return a, b


def test_peers_holding_the_secret_link_up_and_learn_each_others_client_address() -> None:
    async def main() -> None:
        a, b = await _secret_pair()
        try:
            await eventually(lambda: a.transport.reachable(2) and b.transport.reachable(1))
            assert a.transport.client_address_of(2) == "client-of-2:1"
            assert b.transport.client_address_of(1) == "client-of-1:1"
            a.transport.send(Probe(1, 2, Ballot(1, 1)))
            assert await b.messages.wait_count(1) == [Probe(1, 2, Ballot(1, 1))]
        finally:
            await a.close()
            await b.close()

    run(main)


def test_a_peer_with_another_secret_never_links(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        a, b = await _secret_pair(OTHER_SECRET, SECRET)
        try:
            await eventually(lambda: b.transport.stats().handshakes_refused >= 2)
            assert not a.transport.reachable(2) and not b.transport.reachable(1)
        finally:
            await a.close()
            await b.close()

    run(main)
    assert "did not prove it holds the cluster secret" in caplog.text


def test_a_stranger_without_the_secret_cannot_replace_a_link_or_learn_the_cluster() -> None:
    async def main() -> None:
        a, b = await _secret_pair()
        try:
            await eventually(lambda: a.transport.reachable(2) and b.transport.reachable(1))
            for _ in range(5):  # hijacking in a loop
                impostor = await Raw.connect(b.peer_address)
                impostor.send_message(Hello(CLUSTER, 1, PROTOCOL_VERSION))
                (challenge,) = await impostor.read_frames(1)
                assert type(decode_body(challenge)) is Challenge
                impostor.send_message(PeerProof(b"n" * 32, b"x" * 32, "evil:1"))
                answer = await impostor.read_until_closed()
                assert b"cluster secret" in answer and CLUSTER.encode() not in answer
                await impostor.close()
            assert b.transport.stats().handshakes_refused == 5
            # The real link was never replaced.
            assert a.transport.reachable(2) and b.transport.reachable(1)
            assert b.transport.client_address_of(1) == "client-of-1:1"
            a.transport.send(Probe(1, 2, Ballot(1, 1)))
            assert await b.messages.wait_count(1) == [Probe(1, 2, Ballot(1, 1))]
        finally:
            await a.close()
            await b.close()

    run(main)


def test_a_proof_cannot_be_replayed_on_another_connection() -> None:
    async def main() -> None:
        b = await Node(2, {1: NOWHERE}, security=SECRET, peer_port=0).start()
        try:
            # A first connection with a valid proof for its own challenge...
            first = await Raw.connect(b.peer_address)
            first.send_message(Hello(CLUSTER, 1, PROTOCOL_VERSION))
            nonce_a = decode_body((await first.read_frames(1))[0])
            assert type(nonce_a) is Challenge
            transcript = HandshakeTranscript(CLUSTER, 1, 2, nonce_a.nonce, b"d" * 32, "x:1")
            proof = transcript.dialer_proof(b"s" * 32)
            first.send_message(PeerProof(b"d" * 32, proof, "x:1"))
            welcome = decode_body((await first.read_frames(1))[0])
            assert type(welcome) is PeerWelcome
            assert welcome.proof == transcript.acceptor_proof(b"s" * 32, welcome.client_address)
            await first.close()
            # ...is worthless on a second one: the challenge is new.
            second = await Raw.connect(b.peer_address)
            second.send_message(Hello(CLUSTER, 1, PROTOCOL_VERSION))
            await second.read_frames(1)
            second.send_message(PeerProof(b"d" * 32, proof, "x:1"))
            assert type(decode_body((await second.read_frames(1))[0])) is Refused
            await second.close()
        finally:
            await b.close()

    run(main)


def test_a_dialer_refuses_an_acceptor_that_cannot_prove_the_secret() -> None:
    """An impostor listening where a peer should be gets no link (the proof goes both ways)."""

    async def main() -> None:
        accepted: asyncio.Queue[bytes] = asyncio.Queue()

        async def read_frame(reader: asyncio.StreamReader) -> bytes:
            size = int.from_bytes(await reader.readexactly(4), "big")
            return await reader.readexactly(size)

        async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await read_frame(reader)  # Hello
                writer.write(encode(Challenge(b"c" * 32)))
                await accepted.put(await read_frame(reader))  # PeerProof
                writer.write(encode(PeerWelcome(2, b"forged", "evil:1")))
                await writer.drain()
                await reader.read()
            except ConnectionError:
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(impostor, "127.0.0.1", 0)
        address = server.sockets[0].getsockname()[:2]
        a = await Node(1, {2: address}, security=SECRET, peer_port=0).start()
        try:
            await asyncio.wait_for(accepted.get(), WAIT_S)
            await eventually(lambda: a.transport.stats().handshakes_refused >= 1)
            assert not a.transport.reachable(2)
        finally:
            await a.close()
            server.close()

    run(main)


def test_the_peer_port_refuses_clients_and_the_client_port_refuses_peers() -> None:
    async def main() -> None:
        b = await Node(2, {1: NOWHERE}, peer_port=0, on_request=answer_ok).start()
        try:
            raw = await Raw.connect(b.peer_address)
            raw.send_message(Hello("", 0, PROTOCOL_VERSION))
            assert b"this port is for peers" in await raw.read_until_closed()
            await raw.close()
            raw = await Raw.connect(b.address)
            raw.send_message(Hello(CLUSTER, 1, PROTOCOL_VERSION))
            assert b"this port is for clients" in await raw.read_until_closed()
            await raw.close()
            link = await ClientLink.connect(*b.address, timeout=WAIT_S)
            assert (await link.request(StatusRequest(1))).request_id == 1
            link.close()
            await link.wait_closed()
        finally:
            await b.close()

    run(main)


def test_frames_before_the_handshake_are_small() -> None:
    async def main() -> None:
        b = await Node(2, {1: NOWHERE}).start()
        try:
            raw = await Raw.connect(b.address)
            raw.send((5000).to_bytes(4, "big") + b"x" * 100)
            await raw.read_until_closed()
            await raw.close()
            assert b.transport.stats().bad_frames == 1
        finally:
            await b.close()

    run(main)


def test_connection_bounds() -> None:
    config = replace(FAST, handshaking_max=3, clients_max=4, clients_per_address_max=2)

    async def main() -> None:
        b = await Node(2, {1: NOWHERE}, config=config, on_request=answer_ok).start()
        try:
            silent = [await Raw.connect(b.address) for _ in range(3)]
            await eventually(lambda: len(b.transport._connections) == 3)
            fourth = await Raw.connect(b.address)
            assert await fourth.read_until_closed() == b""
            await fourth.close()
            assert b.transport.stats().connections_refused == 1
            for raw in silent:
                await raw.close()
            await eventually(lambda: len(b.transport._connections) == 0)
            links = [await ClientLink.connect(*b.address, timeout=WAIT_S) for _ in range(2)]
            raw = await Raw.connect(b.address)
            raw.send_message(Hello("", 0, PROTOCOL_VERSION))
            assert b"too many clients from 127.0.0.1" in await raw.read_until_closed()
            await raw.close()
            for link in links:
                link.close()
                await link.wait_closed()
        finally:
            await b.close()

    run(main)


def test_requests_in_flight_are_bounded_per_connection() -> None:
    config = replace(FAST, client_requests_in_flight_max=2)

    async def main() -> None:
        never_answer = Node(2, {1: NOWHERE}, config=config)
        b = await never_answer.start()
        try:
            raw = await Raw.connect(b.address)
            raw.send_message(Hello("", 0, PROTOCOL_VERSION))
            assert type(decode_body((await raw.read_frames(1))[0])) is Welcome
            for request_id in (1, 2, 3):
                raw.send_message(StatusRequest(request_id))
            answer = decode_body((await raw.read_frames(1))[0])
            assert type(answer) is Failure and (answer.request_id, answer.code) == (3, "busy")
            assert b.transport.stats().requests_refused == 1
            (connection, _), _ = await b.requests.wait_count(2)
            connection.send(Failure(1, "unavailable", "x"))
            raw.send_message(StatusRequest(4))  # room again
            await b.requests.wait_count(3)
            await raw.close()
        finally:
            await b.close()

    run(main)


def test_idle_clients_are_closed() -> None:
    config = replace(FAST, client_idle_timeout_s=0.05)

    async def main() -> None:
        b = await Node(2, {1: NOWHERE}, config=config).start()
        try:
            link = await ClientLink.connect(*b.address, timeout=WAIT_S)
            await asyncio.wait_for(link.wait_closed(), WAIT_S)
            assert b.transport.stats().clients_connected == 0
        finally:
            await b.close()

    run(main)


def test_secret_files_must_be_private_and_long_enough(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "secret"
    path.write_bytes(b"x" * 32 + b"\n")
    path.chmod(0o644)
    with pytest.raises(ValueError, match="readable by other users"):
        read_secret_file(str(path))
    path.chmod(0o600)
    assert read_secret_file(str(path)) == b"x" * 32
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match="16 to 4096 bytes"):
        read_secret_file(str(path))
    with pytest.raises(ValueError, match="cannot read"):
        read_secret_file(str(path) + ".missing")
