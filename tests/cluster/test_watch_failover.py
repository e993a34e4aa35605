"""Watchers on three ``paxon serve`` processes see every event of a write load
exactly once, in order, while the leader is SIGKILLed (the issue's real-process
watch case). The default run uses 30 watchers and 1,000 writes (about 15 s
on a busy 2-core machine); ``-m soak`` runs the issue's 1,000 watchers and
10,000 writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster.harness import Cluster

import paxon

pytestmark = pytest.mark.cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "cluster", size=3)
    try:
        cluster.start()
        cluster.wait_for_leader()
        yield cluster
    finally:
        cluster.close()


def run_load(cluster: Cluster, watchers: int, writes: int) -> None:
    leader = cluster.wait_for_leader()
    endpoints = cluster.endpoints

    async def scenario() -> None:
        # One client per member, each asking that member first: a third of the
        # watchers read from the leader that is about to die.
        clients = [
            paxon.Client(endpoints[i:] + endpoints[:i], timeout=30.0) for i in range(len(endpoints))
        ]
        async with clients[0] as writer, clients[1], clients[2]:
            start = await writer.put("seed", b"0") + 1
            seen: list[list[int]] = [[] for _ in range(watchers)]

            async def watch(index: int) -> None:
                client = clients[index % len(clients)]
                async for event in client.watch("f/", prefix=True, from_revision=start, wait=2.0):
                    seen[index].append(event.revision)
                    if len(seen[index]) == writes:
                        return

            watching = [asyncio.ensure_future(watch(i)) for i in range(watchers)]
            written: list[int] = []
            killed = False
            for number in range(writes):
                written.append(await writer.put(f"f/{number % 50}", str(number)))
                if not killed and number == writes // 3:
                    cluster.node(leader).kill()  # mid-load: the leader and its watchers' member
                    killed = True
            deadline = time.monotonic() + 120
            done, pending = await asyncio.wait(watching, timeout=deadline - time.monotonic())
            assert not pending, f"{len(pending)} watchers did not see every write"
            for task in done:
                task.result()
            for index, revisions in enumerate(seen):
                assert revisions == written, f"watcher {index}: not every event once, in order"

    asyncio.run(scenario())


def test_watchers_see_every_write_once_in_order_across_a_leader_kill(cluster: Cluster) -> None:
    run_load(cluster, watchers=30, writes=1_000)


@pytest.mark.soak
def test_a_thousand_watchers_see_ten_thousand_writes_across_a_leader_kill(
    cluster: Cluster,
) -> None:
    run_load(cluster, watchers=1_000, writes=10_000)
