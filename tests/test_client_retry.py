"""``paxon.Client``'s pause between failed attempts (``retry_pause_s``): half
the time the call has waited, so a short outage (a leader change) costs little
more than itself."""

from __future__ import annotations

import asyncio
import sys

import pytest
from tests.net.net_helpers import WAIT_S, Node

import paxon.client
from paxon.client import Client, ClientOptions, retry_pause_s
from paxon.net import ClientConnection, ClientRequest, Reply
from paxon.net.client_messages import Failure


def test_the_pause_is_half_the_wait_so_far_between_the_bounds() -> None:
    options = ClientOptions()
    assert retry_pause_s(options, 0.0) == options.backoff_min_s == 0.02
    assert retry_pause_s(options, 0.03) == 0.02
    assert retry_pause_s(options, 0.1) == pytest.approx(0.05)
    assert retry_pause_s(options, 0.6) == pytest.approx(0.3)
    assert retry_pause_s(options, 30.0) == options.backoff_max_s == 0.5


def test_quick_refusals_do_not_stretch_the_pause_past_half_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every node refuses at once while leadership moves (as a removed or
    transferring leader and a candidate do), eight times; each pause the call
    takes is at most half of what it waited before it (or the minimum).
    Doubling per refusal slept 0.04, 0.08, ... 2.56 s here (the last 5 capped
    at 0.5 s)."""
    pauses: list[tuple[float, float]] = []  # (pause, waited before it)
    real_sleep = asyncio.sleep
    began: list[float] = []

    async def recording_sleep(delay: float) -> None:
        if sys._getframe(1).f_code is Client._call.__code__:  # only the call's pauses
            pauses.append((delay, asyncio.get_running_loop().time() - began[0]))
        await real_sleep(delay)

    refusals = {"left": 8}

    def moving(connection: ClientConnection, request: ClientRequest) -> None:
        if refusals["left"] > 0:
            refusals["left"] -= 1
            message = "leadership is moving to node 2; retry shortly"
            connection.send(Failure(request.request_id, "busy", message))
        else:
            connection.send(Reply(request.request_id, b"ok"))

    async def main() -> None:
        nodes = [await Node(i, {}, on_request=moving).start() for i in (1, 2, 3)]
        endpoints = [f"{host}:{port}" for host, port in (node.address for node in nodes)]
        client = Client(endpoints, timeout=30.0)
        client.options = ClientOptions(timeout_s=30.0)
        monkeypatch.setattr(paxon.client.asyncio, "sleep", recording_sleep)
        try:
            began.append(asyncio.get_running_loop().time())
            assert await client.query(b"q") == b"ok"
        finally:
            monkeypatch.undo()
            await client.close()
            for node in nodes:
                await node.close()

    asyncio.run(asyncio.wait_for(main(), 3 * WAIT_S))
    assert len(pauses) == 8
    for pause, waited in pauses:
        assert pause <= max(0.02, 0.5 * waited) + 1e-9, pauses
