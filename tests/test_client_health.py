"""``paxon.Client`` routes around a node that does not answer (``paxon.client_health``).

The skip clock is a fake one that moves only when a test moves it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from tests.net.net_helpers import WAIT_S, Node

from paxon.client import Client, ClientOptions
from paxon.client_health import SKIP_MAX_S, SKIP_MIN_S, EndpointHealth
from paxon.net import ClientConnection, ClientRequest, Reply
from paxon.net.client_messages import Failure


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(main(), 3 * WAIT_S)

    asyncio.run(bounded())


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failed_node_is_skipped_for_a_while_doubling_and_an_answer_clears_it() -> None:
    clock = FakeClock()
    health = EndpointHealth(["a", "b", "c"], clock=clock)
    assert [health.pick(turn) for turn in range(3)] == ["a", "b", "c"]
    health.failed("a")
    assert health.skipped("a") and health.pick(0) == "b" and health.pick(2) == "c"
    clock.now += SKIP_MIN_S
    assert not health.skipped("a") and health.pick(0) == "a"
    health.answered("a")
    skips = []
    for _ in range(6):  # failures in a row: 1, 2, 4, 8, 8, 8 s
        health.failed("a")
        start = clock.now
        while health.skipped("a"):
            clock.now += 0.5
        skips.append(clock.now - start)
    assert skips == [SKIP_MIN_S, 2.0, 4.0, SKIP_MAX_S, SKIP_MAX_S, SKIP_MAX_S]
    health.failed("a")
    health.answered("a")
    assert not health.skipped("a")
    health.failed("a")  # back to the first skip after an answer
    clock.now += SKIP_MIN_S - 0.5
    assert health.skipped("a")
    clock.now += 0.5
    assert not health.skipped("a")


def test_a_node_failing_for_ever_stays_at_the_longest_skip() -> None:
    clock = FakeClock()
    health = EndpointHealth(["a"], clock=clock)
    for _ in range(5_000):  # a dead node, asked by a long-running client
        health.failed("a")
    clock.now += SKIP_MAX_S - 0.5
    assert health.skipped("a")
    clock.now += 0.5
    assert not health.skipped("a")


def test_when_every_node_is_skipped_the_one_whose_skip_ends_first_is_tried() -> None:
    clock = FakeClock()
    health = EndpointHealth(["a", "b"], clock=clock)
    health.failed("b")
    health.failed("b")  # skipped 2 s
    health.failed("a")  # skipped 1 s
    assert health.pick(1) == "a"


def test_the_client_does_not_go_back_to_a_node_that_hung_while_it_is_skipped() -> None:
    async def main() -> None:
        asked: Counter[str] = Counter()

        def hangs(connection: ClientConnection, request: ClientRequest) -> None:
            asked["hangs"] += 1  # as a stopped process: taken, never answered

        def cannot_serve(connection: ClientConnection, request: ClientRequest) -> None:
            asked["cannot_serve"] += 1
            connection.send(Failure(request.request_id, "leader_unreachable", "cut off"))

        def busy_once(connection: ClientConnection, request: ClientRequest) -> None:
            asked["busy_once"] += 1
            if asked["busy_once"] == 1:
                connection.send(Failure(request.request_id, "busy", "queue full"))
            else:
                connection.send(Reply(request.request_id, b"ok"))

        nodes = [
            await Node(i, {}, on_request=handler).start()
            for i, handler in enumerate((hangs, cannot_serve, busy_once), start=1)
        ]
        endpoints = [f"{host}:{port}" for host, port in (node.address for node in nodes)]
        client = Client(endpoints, timeout=30.0)
        client.options = ClientOptions(timeout_s=30.0, attempt_timeout_s=0.2)
        client._health = EndpointHealth(endpoints, clock=FakeClock())  # skips never end
        try:
            # hangs (attempt timeout), cannot_serve, busy_once (busy), then
            # busy_once again: the two that could not serve are skipped.
            assert await client.query(b"q") == b"ok"
            assert asked == Counter(hangs=1, cannot_serve=1, busy_once=2)
            for _ in range(5):
                assert await client.query(b"q") == b"ok"
            assert asked["hangs"] == 1 and asked["cannot_serve"] == 1
        finally:
            await client.close()
            for node in nodes:
                await node.close()

    run(main)
