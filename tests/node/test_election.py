"""Leader election among clients (``paxon.election``) on a real 3-node cluster:
candidates lead in the order they campaigned, proclaim is guarded, observers
see each change, a resignation hands over at once; and ``paxon elect``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.node.test_history import Trio
from tests.node.test_node import run

from paxon.election import Leadership
from paxon.errors import NotElected
from paxon.node.history import HistoryRetention

DEFAULT_RETENTION = [HistoryRetention()] * 3


def test_candidates_lead_in_order_and_observers_see_each_change(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            first = client.election("db", ttl=30)
            second = client.election("db", ttl=30)
            seen: list[Leadership | None] = []
            started = asyncio.Event()

            async def observe() -> None:
                async for leader in client.election("db").observe():
                    seen.append(leader)
                    started.set()
                    if len(seen) == 4:
                        return

            observing = asyncio.ensure_future(observe())
            await asyncio.wait_for(started.wait(), 10)
            led = await first.campaign("host-a")
            assert led.value == b"host-a"
            waiting = asyncio.ensure_future(second.campaign("host-b"))
            await asyncio.sleep(0.3)
            assert not waiting.done(), "the second waits while the first leads"
            with pytest.raises(NotElected):
                await second.proclaim("usurper")
            await first.proclaim("host-a2")
            assert (await first.leader()) == Leadership(led.key, b"host-a2", led.revision)
            await first.resign()
            now = await asyncio.wait_for(waiting, 10)
            assert now.value == b"host-b" and now.revision > led.revision
            await asyncio.wait_for(observing, 10)
            values = [None if each is None else each.value for each in seen]
            assert values == [None, b"host-a", b"host-a2", b"host-b"]
            await second.resign()
            assert await second.leader() is None
            del trio

    run(scenario)


def test_paxon_elect_campaigns_and_observes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            endpoints = ",".join(trio.peers.values())
            base = [sys.executable, "-m", "paxon", "elect", "jobs"]
            flags = ["--endpoints", endpoints]
            observer = await asyncio.create_subprocess_exec(
                *base, *flags, "--json", stdout=subprocess.PIPE
            )
            candidate = await asyncio.create_subprocess_exec(
                *base, "node-7", *flags, stdout=subprocess.PIPE
            )
            assert observer.stdout is not None and candidate.stdout is not None
            said = await asyncio.wait_for(candidate.stdout.readline(), 20)
            assert said.decode().startswith("elected jobs node-7 (revision ")
            lines = []
            while not lines or lines[-1].get("value") != "node-7":
                lines.append(json.loads(await asyncio.wait_for(observer.stdout.readline(), 20)))
            assert (await client.election("jobs").leader()) is not None
            candidate.terminate()  # resigns on the way out
            assert await asyncio.wait_for(candidate.wait(), 20) in (0, -15)
            gone = json.loads(await asyncio.wait_for(observer.stdout.readline(), 20))
            assert gone == {"name": "jobs", "leader": None}
            observer.terminate()
            await observer.wait()

    run(scenario)
