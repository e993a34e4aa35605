"""Locks end to end on three real ``Node`` objects on loopback: waiters in
order with growing fences, a stale holder refused by its fence, lock-delay after
a holder's lease expires, a timeout that leaves the queue, and ``SyncClient``.

Time is the ``FakeWall`` of ``test_history`` (wall and monotonic clock of the
nodes), so TTLs and delays pass without sleeping them. The client's own
keep-alives run on real time: a lease whose TTL should run out in fake time is
one whose holder stopped keeping it alive (a ``Lock`` entered by hand, its
lease task cancelled)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.node.test_history import START_S, Trio
from tests.node.test_node import eventually, run

from paxon.client import SyncClient
from paxon.errors import LockNotAcquired
from paxon.kv.model import LockState, LockStateResult, PutOp, Txn
from paxon.node.history import HistoryRetention

DEFAULT_RETENTION = [HistoryRetention()] * 3


def test_waiters_are_served_in_order_with_growing_fences(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            order: list[tuple[str, int]] = []
            first = client.lock("jobs", ttl=30)
            fence_a = await first.acquire()
            waiting = [asyncio.ensure_future(_take(client, "jobs", name, order)) for name in "bcd"]
            await asyncio.sleep(0.3)
            assert order == [], "nobody else holds it while a holds it"
            await first.release()
            await asyncio.wait_for(asyncio.gather(*waiting), 20)
            names = [name for name, _ in order]
            fences = [fence for _, fence in order]
            assert sorted(names) == ["b", "c", "d"]
            assert fences == sorted(fences) and fences[0] > fence_a
            del trio

    run(scenario)


async def _take(client: object, name: str, who: str, order: list[tuple[str, int]]) -> None:
    await asyncio.sleep({"b": 0.0, "c": 0.05, "d": 0.1}[who])  # join in this order
    async with client.lock(name, ttl=30) as fence:  # type: ignore[attr-defined]
        order.append((who, int(fence)))
        await asyncio.sleep(0.05)


def test_an_expired_holder_is_refused_by_fence_and_its_lock_delay_holds_the_lock(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            stale = client.lock("db", ttl=2, delay=5)
            fence_a = await stale.acquire()
            # The holder stops keeping its lease alive (as if paused): cancel its task.
            assert stale._lease is not None and stale._lease._task is not None
            stale._lease._task.cancel()
            successor = asyncio.ensure_future(client.lock("db", ttl=60).acquire())
            await asyncio.sleep(0.2)
            assert not successor.done()
            trio.wall.now_s = START_S + 3  # past the holder's TTL: its lease expires
            await eventually(lambda: _state(trio).fence == 0 and _state(trio).waiters == 1)
            assert _state(trio).delay_remaining_ms > 0, "the lock-delay runs"
            await asyncio.sleep(0.3)
            assert not successor.done(), "nobody holds the lock during its lock-delay"
            trio.wall.now_s = START_S + 9  # past the delay
            fence_b = await asyncio.wait_for(successor, 10)
            assert fence_b > fence_a
            # The stale holder's guarded write is refused; the new holder's goes in.
            stale_write = await client.txn(Txn((fence_a.guard(),), (PutOp("db/row", b"a"),), ()))
            fresh_write = await client.txn(Txn((fence_b.guard(),), (PutOp("db/row", b"b"),), ()))
            assert not stale_write.succeeded and fresh_write.succeeded

    run(scenario)


def _state(trio: Trio) -> LockStateResult:
    result = trio.stores()[0].read(LockState("db"))
    assert isinstance(result, LockStateResult)
    return result


def test_a_waiter_that_times_out_leaves_the_queue(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            async with client.lock("jobs", ttl=30):
                with pytest.raises(LockNotAcquired):
                    async with client.lock("jobs", ttl=30, timeout=0.3):
                        raise AssertionError("acquired a held lock")
                await eventually(lambda: len(_leases(trio)) == 1)
            await eventually(lambda: len(_leases(trio)) == 0)

    run(scenario)


def _leases(trio: Trio) -> list[int]:
    return sorted(trio.stores()[0].leases.leases)


def test_the_sync_client_locks_too(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio:

            def blocking() -> tuple[int, int]:
                with SyncClient(list(trio.peers.values()), timeout=10.0) as kv:
                    with kv.lock("sync", ttl=10) as first:
                        pass
                    with kv.lock("sync", ttl=10) as second:
                        return int(first), int(second)

            first, second = await asyncio.to_thread(blocking)
            assert second > first

    run(scenario)


def test_paxon_lock_runs_the_command_with_its_fence_and_exits_with_its_status(
    tmp_path: Path,
) -> None:
    from paxon.cli import main

    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            endpoints = ",".join(trio.peers.values())
            out = tmp_path / "fence"
            script = f'echo "$PAXON_FENCE $PAXON_LOCK_KEY" > {out}; exit 7'
            argv = ["lock", "jobs", "--endpoints", endpoints, "--", "sh", "-c", script]
            assert await asyncio.to_thread(main, argv) == 7
            fence, key = out.read_text().split()
            assert int(fence) > 0 and key.startswith("_paxon/lock/jobs/")
            await eventually(lambda: _leases(trio) == [])  # released: its lease revoked
            # Held by another: not acquired within --timeout, exit 1, nothing run.
            async with client.lock("jobs", ttl=30):
                argv = ["lock", "jobs", "--timeout", "0.5", "--endpoints", endpoints, "--"]
                code = await asyncio.to_thread(main, [*argv, "sh", "-c", f"touch {out}.ran"])
                assert code == 1 and not (tmp_path / "fence.ran").exists()
            second = tmp_path / "second"
            argv = ["lock", "jobs", "--endpoints", endpoints, "--", "sh", "-c"]
            script = f'echo "$PAXON_FENCE" > {second}'
            assert await asyncio.to_thread(main, [*argv, script]) == 0
            assert int(second.read_text()) > int(fence), "fences only grow"

    run(scenario)
