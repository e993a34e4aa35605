"""The transport on loopback with real sockets: links, reconnects, refusals, bad input."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from tests.net.net_helpers import (
    CLUSTER,
    FAST,
    NOWHERE,
    WAIT_S,
    Inbox,
    Node,
    Raw,
    answer_ok,
    eventually,
)

from paxon.net import (
    ClientConnection,
    ClientLink,
    ClientRequest,
    Hello,
    NetConfig,
    Reply,
    StatusRequest,
    Submit,
    Transport,
    encode,
)
from paxon.net.client_messages import PROTOCOL_VERSION, Failure, PeerProof
from paxon.net.codec import decode_body, encode_body
from paxon.net.frames import frame_prefix
from paxon.protocol.messages import Accept, Accepted, ChosenPrefix, Message, Probe, ProbeReply
from paxon.protocol.types import Ballot, Command, Value

BALLOT = Ballot(1, 1)


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def wrapped() -> None:
        async with asyncio.timeout(3 * WAIT_S):
            await main()

    asyncio.run(wrapped())


async def linked_pair(config_a: NetConfig = FAST, config_b: NetConfig = FAST) -> tuple[Node, Node]:
    """Node 1 dials node 2; returns them once both see the link up."""
    b = await Node(2, {1: NOWHERE}, config=config_b).start()
    a = await Node(1, {2: b.address}, config=config_a).start()
    await eventually(lambda: a.transport.reachable(2) and b.transport.reachable(1))
    return a, b


def accept(src: int, dst: int, slot: int, payload_bytes: int) -> Accept:
    value = Value((Command(9, slot, b"p" * payload_bytes),))
    return Accept(src, dst, BALLOT, slot, value, ChosenPrefix(0))


# ------------------------------------------------------------------ links


def test_two_transports_exchange_messages_both_ways() -> None:
    async def main() -> None:
        a, b = await linked_pair()
        try:
            a.transport.send(Probe(1, 2, BALLOT))
            b.transport.send(ProbeReply(2, 1, BALLOT, True))
            assert await b.messages.wait_count(1) == [Probe(1, 2, BALLOT)]
            assert await a.messages.wait_count(1) == [ProbeReply(2, 1, BALLOT, True)]
            for slot in range(2000):
                a.transport.send(Accepted(1, 2, BALLOT, slot, 0))
            received = await b.messages.wait_count(2001)
            assert [message.slot for message in received[1:]] == list(range(2000))  # type: ignore[union-attr]
            big = accept(1, 2, 7, 1_000_000)
            a.transport.send(big)
            assert (await b.messages.wait_count(2002))[-1] == big
            stats = a.transport.stats()
            assert stats.frames_out >= 2002 and stats.frames_in >= 1
            assert stats.dropped_sends == 0 and stats.bad_frames == 0
            assert stats.peers == {2: "up"}
            assert b.transport.stats().peers == {1: "up"}
        finally:
            await a.close()
            await b.close()

    run(main)


def test_three_nodes_link_every_pair() -> None:
    async def main() -> None:
        n3 = await Node(3, {1: NOWHERE, 2: NOWHERE}).start()
        n2 = await Node(2, {1: NOWHERE, 3: n3.address}).start()
        n1 = await Node(1, {2: n2.address, 3: n3.address}).start()
        nodes = {1: n1, 2: n2, 3: n3}
        try:
            await eventually(
                lambda: all(
                    node.transport.reachable(peer)
                    for node_id, node in nodes.items()
                    for peer in nodes
                    if peer != node_id
                )
            )
            for src in nodes:
                for dst in nodes:
                    if src != dst:
                        nodes[src].transport.send(Probe(src, dst, BALLOT))
            for node_id, node in nodes.items():
                got = await node.messages.wait_count(2)
                assert sorted(message.src for message in got) == sorted(set(nodes) - {node_id})
        finally:
            for node in nodes.values():
                await node.close()

    run(main)


def test_a_message_to_itself_is_delivered_from_the_loop() -> None:
    async def main() -> None:
        a = await Node(1, {}).start()
        try:
            a.transport.send(Probe(1, 1, BALLOT))
            assert a.messages.items == []
            assert await a.messages.wait_count(1) == [Probe(1, 1, BALLOT)]
        finally:
            await a.close()

    run(main)


def test_sends_to_a_down_or_unknown_peer_are_dropped_and_counted() -> None:
    async def main() -> None:
        a = await Node(1, {2: NOWHERE}).start()
        try:
            a.transport.send(Probe(1, 2, BALLOT))
            a.transport.send(Probe(1, 9, BALLOT))
            stats = a.transport.stats()
            assert stats.dropped_sends == 2
            assert stats.peers[2] in ("connecting", "down")
            assert not a.transport.reachable(2)
        finally:
            await a.close()

    run(main)


def test_links_come_back_after_either_side_restarts() -> None:
    async def main() -> None:
        a, b = await linked_pair()
        port = b.address[1]
        await b.close()
        await eventually(lambda: not a.transport.reachable(2))
        a.transport.send(Probe(1, 2, BALLOT))
        assert a.transport.stats().dropped_sends == 1

        b = await Node(2, {1: NOWHERE}, port=port).start()
        await eventually(lambda: a.transport.reachable(2))
        a.transport.send(Probe(1, 2, Ballot(2, 1)))
        assert await b.messages.wait_count(1) == [Probe(1, 2, Ballot(2, 1))]

        await a.close()
        await eventually(lambda: not b.transport.reachable(1))
        a = await Node(1, {2: b.address}).start()
        await eventually(lambda: b.transport.reachable(1) and a.transport.reachable(2))
        b.transport.send(Probe(2, 1, Ballot(3, 2)))
        assert await a.messages.wait_count(1) == [Probe(2, 1, Ballot(3, 2))]
        await a.close()
        await b.close()

    run(main)


def test_a_peer_that_refuses_connections_is_redialed_within_the_short_ceiling(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens at the peer's port (its process is starting, or it was just
    added): redials stay within ``reconnect_refused_max_s`` however long that
    lasts, where other failures back off to ``reconnect_max_s``."""
    config = replace(FAST, reconnect_min_s=0.01, reconnect_max_s=60.0, reconnect_refused_max_s=0.02)

    async def main() -> None:
        b = await Node(2, {1: NOWHERE}).start()
        port = b.address[1]
        await b.close()  # nothing listens there now
        a = await Node(1, {2: ("127.0.0.1", port)}, config=config).start()
        try:
            await asyncio.sleep(1.0)
            # Doubling from 0.01 s toward 60 s dials about 8 times in a second.
            dials = [r for r in caplog.records if "cannot reach node 2" in r.getMessage()]
            assert len(dials) >= 15 and "nothing listens there" in dials[0].getMessage()
            b = await Node(2, {1: NOWHERE}, port=port).start()
            await eventually(lambda: a.transport.reachable(2))
        finally:
            await a.close()
            await b.close()

    with caplog.at_level(logging.DEBUG, logger="paxon"):
        run(main)


def test_without_authentication_a_new_connection_from_a_peer_replaces_the_old_one() -> None:
    async def main() -> None:
        a, b = await linked_pair()
        try:
            impostor = await Raw.connect(b.address)
            impostor.send_message(Hello(CLUSTER, 1, PROTOCOL_VERSION))
            impostor.send_message(PeerProof(b"n" * 32, b"", ""))
            # Challenge, PeerWelcome: without TLS or a secret, the old link is replaced.
            await impostor.read_frames(2)
            b.transport.send(Probe(2, 1, BALLOT))
            assert len(await impostor.read_frames(1)) == 1
            # Node 1 lost its link and redials; its new connection replaces the impostor.
            await impostor.read_until_closed()
            await eventually(lambda: a.transport.reachable(2) and b.transport.reachable(1))
            b.transport.send(Probe(2, 1, Ballot(2, 2)))
            assert await a.messages.wait_count(1) == [Probe(2, 1, Ballot(2, 2))]
            await impostor.close()
        finally:
            await a.close()
            await b.close()

    run(main)


def test_port_in_use_is_an_os_error_and_port_zero_binds_a_real_port() -> None:
    async def main() -> None:
        a = await Node(1, {}).start()
        try:
            assert a.address[1] != 0
            with pytest.raises(OSError):
                await Node(2, {}, port=a.address[1]).start()
        finally:
            await a.close()

    run(main)


def test_with_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        a, b = await linked_pair()
        try:
            a.transport.send(Probe(1, 2, BALLOT))
            assert await b.messages.wait_count(1) == [Probe(1, 2, BALLOT)]
            link = await ClientLink.connect(*a.address, timeout=WAIT_S)
            request = a.requests.wait_count(1)
            response = link.request(StatusRequest(5))
            connection, _ = (await request)[0]
            connection.send(Reply(5, b"uv"))
            assert await response == Reply(5, b"uv")
            link.close()
            await link.wait_closed()
        finally:
            await a.close()
            await b.close()

    uvloop.run(main())


# ------------------------------------------------------------------ limits


def test_a_message_over_the_frame_limit_is_dropped_not_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        a, b = await linked_pair(config_a=replace(FAST, frame_max_bytes=1024))
        try:
            a.transport.send(accept(1, 2, 1, 2000))
            a.transport.send(Probe(1, 2, BALLOT))
            assert await b.messages.wait_count(1) == [Probe(1, 2, BALLOT)]
            assert a.transport.stats().dropped_sends == 1
            assert a.transport.reachable(2)
        finally:
            await a.close()
            await b.close()

    run(main)
    assert "encodes to" in caplog.text


def test_a_full_peer_queue_drops_new_messages() -> None:
    async def main() -> None:
        a, b = await linked_pair(config_a=replace(FAST, peer_queue_max_bytes=1000))
        try:
            for slot in range(10):
                a.transport.send(accept(1, 2, slot, 300))
            # Each frame is about 330 bytes: four fit under 1000 in one iteration.
            assert a.transport.stats().dropped_sends == 6
            await b.messages.wait_count(4)
            a.transport.send(Probe(1, 2, BALLOT))
            received = await b.messages.wait_count(5)
            assert [type(m).__name__ for m in received] == ["Accept"] * 4 + ["Probe"]
        finally:
            await a.close()
            await b.close()

    run(main)


def test_a_client_that_does_not_read_is_disconnected(caplog: pytest.LogCaptureFixture) -> None:
    connections: Inbox[ClientConnection] = Inbox()

    def answer_big(connection: ClientConnection, request: ClientRequest) -> None:
        connection.send(Reply(request.request_id, b"x" * 10_000))
        connections.put(connection)

    async def main() -> None:
        config = replace(FAST, client_queue_max_bytes=4096)
        server = await Node(1, {}, config=config, on_request=answer_big).start()
        try:
            raw = await Raw.connect(server.address)
            raw.send_message(Hello("", 0, PROTOCOL_VERSION))
            for request_id in range(3):
                raw.send_message(StatusRequest(request_id))
            await raw.read_until_closed()
            (connection, *_) = await connections.wait_count(2)
            assert connection.closed
            connection.send(Reply(99, b"late"))  # dropped quietly
            await raw.close()
        finally:
            await server.close()

    run(main)
    assert "not reading" in caplog.text


# ------------------------------------------------------------------ refusals


def test_a_peer_of_another_cluster_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        b = await Node(2, {1: NOWHERE}).start()
        a = await Node(1, {2: b.address}, cluster_id="other").start()
        try:
            await eventually(lambda: b.transport.stats().handshakes_refused >= 2)
            assert not a.transport.reachable(2) and not b.transport.reachable(1)
            assert a.transport.stats().peers[2] != "up"
        finally:
            await a.close()
            await b.close()

    run(main)
    assert "wrong cluster 'other'" in caplog.text
    assert "refused by the peer" in caplog.text


@pytest.mark.parametrize(
    ("hello", "reason"),
    [
        (Hello("other", 0, PROTOCOL_VERSION), "wrong cluster"),
        (Hello(CLUSTER, 1, 99), "unsupported protocol version"),
        (Hello(CLUSTER, 7, PROTOCOL_VERSION), "node 7 is not a peer"),
        (Hello(CLUSTER, 3, PROTOCOL_VERSION), "node 3 must wait for node 2 to dial it"),
    ],
)
def test_bad_hellos_are_refused_with_a_reason(hello: Hello, reason: str) -> None:
    async def main() -> None:
        b = await Node(2, {1: NOWHERE, 3: NOWHERE}).start()
        try:
            raw = await Raw.connect(b.address)
            raw.send_message(hello)
            answer = await raw.read_until_closed()
            assert reason.encode() in answer
            assert b.transport.stats().handshakes_refused == 1
            await raw.close()
        finally:
            await b.close()

    run(main)


def test_clients_may_name_any_cluster_or_the_exact_one() -> None:
    async def main() -> None:
        server = await Node(1, {}, on_request=answer_ok).start()
        try:
            for cluster_id in ("", CLUSTER):
                link = await ClientLink.connect(*server.address, cluster_id=cluster_id, timeout=5)
                # The Welcome echoes the client's cluster id: a stranger never learns it.
                assert (link.node_id, link.cluster_id) == (1, cluster_id)
                assert await link.request(StatusRequest(1)) == Reply(1, b"ok")
                assert server.transport.stats().clients_connected == 1
                link.close()
                await link.wait_closed()
                await eventually(lambda: server.transport.stats().clients_connected == 0)
        finally:
            await server.close()

    run(main)


# ------------------------------------------------------------------ bad input

_CLIENT_HELLO = encode(Hello("", 0, PROTOCOL_VERSION))
# An unauthenticated peer handshake (the transports in these tests use no TLS or secret).
_PEER_HELLO = encode(Hello(CLUSTER, 1, PROTOCOL_VERSION)) + encode(PeerProof(b"n" * 32, b"", ""))

BAD_INPUT: dict[str, tuple[bytes, str]] = {
    "http request": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "outside [1,"),
    "oversize length prefix": (b"\xff\xff\xff\xff", "outside [1,"),
    "zero length prefix": (b"\x00\x00\x00\x00", "frame length 0"),
    "undecodable body": (frame_prefix(3) + b"\xc1\xc1\xc1", "undecodable frame: not msgpack"),
    "request before hello": (encode(StatusRequest(1)), "StatusRequest before Hello"),
    "unknown type code": (
        _CLIENT_HELLO + frame_prefix(2) + msgpack.packb([99]),
        "unknown type code 99",
    ),
    "truncated frame": (_CLIENT_HELLO + frame_prefix(100) + b"abc", "closed inside a frame"),
    "client request on a peer connection": (
        _PEER_HELLO + encode(Submit(1, 2, 3, b"x")),
        "Submit is not expected here",
    ),
    "peer message on a client connection": (
        _CLIENT_HELLO + encode(Probe(1, 3, BALLOT)),
        "Probe is not expected here",
    ),
    "second hello": (_CLIENT_HELLO + _CLIENT_HELLO, "Hello is not expected here"),
    "peer message from another src": (
        _PEER_HELLO + encode(Probe(2, 3, BALLOT)),
        "Probe from 2 to 3 on the link to node 1",
    ),
    "peer message to another dst": (
        _PEER_HELLO + encode(Probe(1, 2, BALLOT)),
        "Probe from 1 to 2 on the link to node 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_drops_that_connection_and_the_node_keeps_serving(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    data, reason = BAD_INPUT[case]

    async def main() -> None:
        # Node 3 is under test; node 2 is its real peer; the raw socket plays node 1 or a client.
        n3 = await Node(3, {1: NOWHERE, 2: NOWHERE}, on_request=answer_ok).start()
        n2 = await Node(2, {1: NOWHERE, 3: n3.address}).start()
        try:
            await eventually(lambda: n3.transport.reachable(2) and n2.transport.reachable(3))
            raw = await Raw.connect(n3.address)
            raw.send(data)
            if case == "truncated frame":
                raw.writer.write_eof()
            await raw.read_until_closed()
            await eventually(lambda: reason in caplog.text)
            await raw.close()
            assert n3.transport.stats().bad_frames == 1
            # The node keeps serving: a good client and the real peer still work.
            link = await ClientLink.connect(*n3.address, timeout=WAIT_S)
            assert await link.request(StatusRequest(4)) == Reply(4, b"ok")
            link.close()
            await link.wait_closed()
            n2.transport.send(Probe(2, 3, BALLOT))
            assert await n3.messages.wait_count(1) == [Probe(2, 3, BALLOT)]
            assert n3.transport.reachable(2)
        finally:
            await n2.close()
            await n3.close()

    with caplog.at_level(logging.WARNING, logger="paxon.net"):
        run(main)
    lines = [record.getMessage() for record in caplog.records if reason in record.getMessage()]
    assert len(lines) == 1
    assert "127.0.0.1:" in lines[0]


def test_a_connection_without_hello_is_dropped_after_the_handshake_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        config = replace(FAST, handshake_timeout_s=0.05)
        server = await Node(1, {}, config=config).start()
        try:
            raw = await Raw.connect(server.address)
            assert await raw.read_until_closed() == b""
            await raw.close()
        finally:
            await server.close()

    run(main)
    assert "no handshake within 0.05 s" in caplog.text


# ------------------------------------------------------------------ node bugs


def test_an_exception_in_on_peer_message_reaches_the_loop_exception_handler() -> None:
    failures: Inbox[dict[str, Any]] = Inbox()

    def broken(message: Message) -> None:
        raise RuntimeError(f"node bug on {type(message).__name__}")

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: failures.put(context)
        )
        b = await Node(2, {1: NOWHERE}, on_message=broken).start()
        a = await Node(1, {2: b.address}).start()
        try:
            await eventually(lambda: a.transport.reachable(2))
            a.transport.send(Probe(1, 2, BALLOT))
            (context,) = await failures.wait_count(1)
            assert isinstance(context["exception"], RuntimeError)
            assert str(context["exception"]) == "node bug on Probe"
        finally:
            await a.close()
            await b.close()

    run(main)


def test_an_exception_in_on_client_request_reaches_the_loop_exception_handler() -> None:
    failures: Inbox[dict[str, Any]] = Inbox()

    def broken(connection: ClientConnection, request: ClientRequest) -> None:
        raise RuntimeError("node bug")

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: failures.put(context)
        )
        server = await Node(1, {}, on_request=broken).start()
        try:
            link = await ClientLink.connect(*server.address, timeout=WAIT_S)
            with pytest.raises(ConnectionError):
                await link.request(StatusRequest(1))
            (context,) = await failures.wait_count(1)
            assert str(context["exception"]) == "node bug"
            await link.wait_closed()
        finally:
            await server.close()

    run(main)


# ------------------------------------------------------------------ the reply fast path


def test_reply_sends_what_send_of_a_reply_sends_and_reports_the_answer() -> None:
    """``ClientConnection.reply`` builds no Reply: its frames and its metrics call must
    be those of ``send(Reply(...))``, and an oversize one fails as ``send``'s does."""
    answered: list[tuple[str, ClientRequest, object]] = []
    big = b"x" * 2000

    def on_request(connection: ClientConnection, request: ClientRequest) -> None:
        assert isinstance(request, Submit)
        payload = big if request.seq == 3 else request.payload
        if request.seq == 1:
            connection.send(Reply(request.request_id, payload))
        else:
            connection.reply(request.request_id, payload)

    async def main() -> None:
        transport = Transport(
            node_id=1,
            cluster_id=CLUSTER,
            listen=("127.0.0.1", 0),
            peers={},
            on_peer_message=lambda message: None,
            on_client_request=on_request,
            config=replace(FAST, frame_max_bytes=1024),
            on_client_answer=lambda request, response, s: answered.append(
                ("answer", request, response)
            ),
            on_client_reply=lambda request, payload, s: answered.append(
                ("reply", request, payload)
            ),
        )
        await transport.start()
        try:
            raw = await Raw.connect(transport.address)
            raw.send_message(Hello("", 0, PROTOCOL_VERSION))
            await raw.read_frames(1)  # the Welcome
            for seq in (1, 2, 3):
                raw.send_message(Submit(10 + seq, 7, seq, b"same answer"))
            bodies = await raw.read_frames(3)
            assert bodies[0] == encode_body(Reply(11, b"same answer"))
            assert bodies[1] == encode_body(Reply(12, b"same answer"))
            assert decode_body(bodies[2]) == Failure(
                13, "too_large", "the response is over the frame limit"
            )
            await raw.close()
        finally:
            await transport.close()

    run(main)
    assert [(kind, request.request_id, what) for kind, request, what in answered] == [
        ("answer", 11, Reply(11, b"same answer")),
        ("reply", 12, b"same answer"),
        ("answer", 13, Reply(13, big)),
    ]
