"""ClientLink against a real Transport and against scripted raw servers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from tests.net.net_helpers import CLUSTER, FAST, WAIT_S, Node

from paxon.errors import Busy, ProtocolError, ValueTooLarge
from paxon.net import (
    ClientLink,
    Failure,
    Query,
    Redirect,
    Reply,
    StatusReply,
    StatusRequest,
    Submit,
    Welcome,
    encode,
)
from paxon.net.frames import frame_prefix

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def wrapped() -> None:
        async with asyncio.timeout(3 * WAIT_S):
            await main()

    asyncio.run(wrapped())


async def scripted_server(handler: Handler) -> tuple[asyncio.Server, tuple[str, int]]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    return server, (host, port)


async def stop(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


def test_responses_out_of_order_complete_the_right_futures() -> None:
    async def main() -> None:
        server = await Node(1, {}).start()
        try:
            link = await ClientLink.connect(*server.address, cluster_id=CLUSTER, timeout=WAIT_S)
            futures = [
                link.request(Submit(10, 7, 1, b"put")),
                link.request(Query(11, b"get", True)),
                link.request(StatusRequest(12)),
                link.request(Submit(13, 7, 2, b"put")),
            ]
            received = await server.requests.wait_count(4)
            assert [request.request_id for _, request in received] == [10, 11, 12, 13]
            connection = received[0][0]
            connection.send(Failure(13, "busy", "try later"))
            connection.send(StatusReply(12, {"leader": 1, "members": [1, 2, 3]}))
            connection.send(Redirect(11, 2, "127.0.0.1:7002"))
            connection.send(Reply(10, b"rev 5"))
            assert await asyncio.gather(*futures) == [
                Reply(10, b"rev 5"),
                Redirect(11, 2, "127.0.0.1:7002"),
                StatusReply(12, {"leader": 1, "members": [1, 2, 3]}),
                Failure(13, "busy", "try later"),
            ]
            link.close()
            await link.wait_closed()
        finally:
            await server.close()

    run(main)


def test_pending_futures_fail_when_the_node_goes_away() -> None:
    async def main() -> None:
        server = await Node(1, {}).start()
        link = await ClientLink.connect(*server.address, timeout=WAIT_S)
        futures = [link.request(StatusRequest(1)), link.request(StatusRequest(2))]
        await server.requests.wait_count(2)
        await server.close()
        for future in futures:
            with pytest.raises(ConnectionError):
                await future
        assert link.closed
        with pytest.raises(ConnectionError):
            await link.request(StatusRequest(3))
        await link.wait_closed()

    run(main)


def test_closing_the_link_fails_pending_futures() -> None:
    async def main() -> None:
        server = await Node(1, {}).start()
        try:
            link = await ClientLink.connect(*server.address, timeout=WAIT_S)
            future = link.request(StatusRequest(1))
            await server.requests.wait_count(1)
            link.close()
            with pytest.raises(ConnectionError, match="closed"):
                await future
            await link.wait_closed()
        finally:
            await server.close()

    run(main)


def test_a_cancelled_request_is_forgotten_and_its_late_reply_ignored() -> None:
    async def main() -> None:
        server = await Node(1, {}).start()
        try:
            link = await ClientLink.connect(*server.address, timeout=WAIT_S)
            first = link.request(StatusRequest(1))
            first.cancel()
            second = link.request(StatusRequest(1))  # the id is free again
            (connection, _), _ = await server.requests.wait_count(2)
            connection.send(Reply(1, b"for the second"))
            connection.send(Reply(1, b"late duplicate"))
            assert await second == Reply(1, b"for the second")
            third = link.request(StatusRequest(2))
            await server.requests.wait_count(3)
            connection.send(Reply(2, b"third"))
            assert await third == Reply(2, b"third")
            link.close()
            await link.wait_closed()
        finally:
            await server.close()

    run(main)


def test_request_limits() -> None:
    async def main() -> None:
        server = await Node(1, {}).start()
        try:
            config = replace(FAST, frame_max_bytes=1024, client_queue_max_bytes=2048)
            link = await ClientLink.connect(*server.address, timeout=WAIT_S, config=config)
            with pytest.raises(ValueTooLarge):
                await link.request(Submit(1, 1, 1, b"x" * 2000))
            pending = link.request(StatusRequest(2))
            with pytest.raises(ValueError, match="already in flight"):
                link.request(StatusRequest(2))
            # Queued while under 2048 bytes: three frames of about 1019 bytes, not a fourth.
            queued = [link.request(Submit(3 + i, 1, i, b"y" * 1000)) for i in range(4)]
            with pytest.raises(Busy):
                await queued[3]
            link.close()
            for future in [pending, *queued[:3]]:
                with pytest.raises(ConnectionError):
                    await future
            await link.wait_closed()
        finally:
            await server.close()

    run(main)


def test_connect_to_the_wrong_cluster_is_refused() -> None:
    async def main() -> None:
        server = await Node(1, {}).start()
        try:
            with pytest.raises(ProtocolError, match="refused: wrong cluster 'nope'"):
                await ClientLink.connect(*server.address, cluster_id="nope", timeout=WAIT_S)
        finally:
            await server.close()

    run(main)


def test_connect_to_a_closed_port_is_an_os_error() -> None:
    async def main() -> None:
        server = await Node(1, {}).start()
        address = server.address
        await server.close()
        with pytest.raises(OSError):
            await ClientLink.connect(*address, timeout=WAIT_S)

    run(main)


def test_connect_times_out_when_the_node_never_answers() -> None:
    async def main() -> None:
        hold = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await hold.wait()
            writer.close()

        server, address = await scripted_server(silent)
        try:
            with pytest.raises(TimeoutError):
                await ClientLink.connect(*address, timeout=0.05)
        finally:
            hold.set()
            await stop(server)

    run(main)


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (b"\xff\xff\xff\xff", ProtocolError, "outside"),
        (frame_prefix(1) + b"\xc1", ProtocolError, "not msgpack"),
        (encode(Reply(1, b"x")), ProtocolError, "Reply before Welcome"),
        (b"", ConnectionError, "lost"),
    ],
    ids=["oversize length", "garbage body", "reply before welcome", "hang up"],
)
def test_connect_fails_on_a_bad_answer(answer: bytes, error: type[Exception], match: str) -> None:
    async def main() -> None:
        async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readexactly(4)
            writer.write(answer)
            writer.close()

        server, address = await scripted_server(bad)
        try:
            with pytest.raises(error, match=match):
                await ClientLink.connect(*address, timeout=WAIT_S)
        finally:
            await stop(server)

    run(main)


def test_garbage_after_welcome_fails_pending_requests() -> None:
    async def main() -> None:
        done = asyncio.Event()

        async def welcome_then_garbage(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            size = int.from_bytes(await reader.readexactly(4), "big")
            await reader.readexactly(size)
            writer.write(encode(Welcome("c", 4)))
            await reader.readexactly(4)  # the first request has arrived
            writer.write(encode(Submit(1, 1, 1, b"not a response")))
            await done.wait()
            writer.close()

        server, address = await scripted_server(welcome_then_garbage)
        try:
            link = await ClientLink.connect(*address, timeout=WAIT_S)
            assert (link.node_id, link.cluster_id) == (4, "c")
            with pytest.raises(ConnectionError, match="Submit is not expected here"):
                await link.request(StatusRequest(1))
            await link.wait_closed()
        finally:
            done.set()
            await stop(server)

    run(main)
