"""Coordination speed (issue 11, "Speed"): locks, watches, leases.

Each run starts a fresh 3-node cluster of real ``paxon serve`` processes on
127.0.0.1 (the cluster tests' harness; fsync on, no TLS, default timings) and
drives it from this process with ``paxon.Client``:

- ``lock-idle``: ``--rounds`` (200) sequential ``async with kv.lock("idle")``
  blocks with nothing inside: acquire plus release (a lease grant, the
  waiter's put, the lease's revoke). Median and p99 ms.
- ``lock-contended``: ``--contenders`` (100) clients, each taking lock
  "hot" ``--takes`` (5) times in a loop (holding it 1 ms). Total takes/s, and
  the median and p99 of the time from asking to holding.
- ``watch-latency``: one watcher of a prefix on a follower, a writer putting
  under it at ``--rate`` (1,000) writes/s for ``--seconds`` (5) s; latency is
  from the write's acknowledgment to the event reaching the watcher (both on
  this process's monotonic clock). p50 and p99 ms, and whether every event
  came once, in order.
- ``watch-memory``: ``--watchers`` (10,000) idle watches held by one node;
  the node's resident memory (``VmRSS``) before and after, per watcher.
- ``keepalive-cost``: ``--leases`` (10,000) leases of 30 s kept alive every
  10 s (1,000 keep-alives/s) for ``--seconds`` s; the servers' CPU seconds
  (utime + stime from /proc) per 1,000 keep-alives, and per second.

Run: ``.venv/bin/python benchmarks/coordination_bench.py all --runs 3``; it
prints one line per run and a JSON line of medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.cluster.harness

from tests.cluster.harness import Cluster

_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def pids(cluster: Cluster) -> list[int]:
    return [node.process.pid for node in cluster.nodes if node.process is not None]


async def lock_idle(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    async with cluster.async_client() as kv:
        async with kv.lock("idle", ttl=10):
            pass  # warm: connections, sessions
        took = []
        for _ in range(args.rounds):
            started = time.monotonic()
            async with kv.lock("idle", ttl=10):
                pass
            took.append((time.monotonic() - started) * 1000)
    return {"median_ms": statistics.median(took), "p99_ms": percentile(took, 0.99)}


async def lock_contended(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    waits: list[float] = []
    fences: list[int] = []
    async with cluster.async_client() as kv:

        async def contender() -> None:
            for _ in range(args.takes):
                asked = time.monotonic()
                async with kv.lock("hot", ttl=30) as fence:
                    waits.append((time.monotonic() - asked) * 1000)
                    fences.append(int(fence))
                    await asyncio.sleep(0.001)

        started = time.monotonic()
        await asyncio.gather(*(contender() for _ in range(args.contenders)))
        elapsed = time.monotonic() - started
    assert len(set(fences)) == len(fences), "two holders with one fence"
    return {
        "takes_per_s": len(waits) / elapsed,
        "wait_median_ms": statistics.median(waits),
        "wait_p99_ms": percentile(waits, 0.99),
    }


async def watch_latency(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    leader = cluster.wait_for_leader()
    follower = next(node.node_id for node in cluster.nodes if node.node_id != leader)
    acked: dict[int, float] = {}
    latencies: list[float] = []
    revisions: list[int] = []
    async with cluster.async_client() as writer, cluster.async_client(follower) as watcher:
        start = await writer.put("warm", b"0") + 1
        total = int(args.rate * args.seconds)

        async def watch() -> None:
            async for event in watcher.watch("w/", prefix=True, from_revision=start):
                arrived = time.monotonic()
                revisions.append(event.revision)
                while event.revision not in acked:  # the ack may come after the event
                    await asyncio.sleep(0.0005)
                latencies.append((arrived - acked[event.revision]) * 1000)
                if len(revisions) == total:
                    return

        watching = asyncio.ensure_future(watch())
        started = time.monotonic()
        in_flight: set[asyncio.Task[None]] = set()

        async def put(number: int) -> None:
            revision = await writer.put(f"w/{number % 100}", b"x" * 64)
            acked[revision] = time.monotonic()

        for number in range(total):
            due = started + number / args.rate
            pause = due - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            task = asyncio.ensure_future(put(number))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
        await asyncio.wait_for(watching, 30)
    in_order = revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    return {
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "events": len(revisions),
        "exactly_once_in_order": in_order and len(revisions) == total,
    }


async def watch_memory(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    node = cluster.nodes[0]
    assert node.process is not None
    async with cluster.async_client(node.node_id) as kv:
        start = await kv.put("m/seed", b"0") + 1
        await asyncio.sleep(1.0)
        before = rss_bytes(node.process.pid)
        watches = [kv.watch(f"m/{i}", from_revision=start, wait=30.0) for i in range(args.watchers)]
        pending = [asyncio.ensure_future(watch.__anext__()) for watch in watches]
        await asyncio.sleep(5.0)  # every query held by the node
        after = rss_bytes(node.process.pid)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return {
        "watchers": args.watchers,
        "rss_before_mib": before / 2**20,
        "rss_after_mib": after / 2**20,
        "bytes_per_watcher": (after - before) / args.watchers,
    }


async def keepalive_cost(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    interval_s = 10.0
    async with cluster.async_client() as kv:
        granted = await asyncio.gather(*(kv.grant_lease(30) for _ in range(args.leases)))
        ids = [grant.lease for grant in granted]
        sent = 0

        async def keep(lease_id: int, offset: float) -> None:
            nonlocal sent
            await asyncio.sleep(offset)
            while True:
                await kv.keep_alive(lease_id)
                sent += 1
                await asyncio.sleep(interval_s)

        before = sum(cpu_seconds(pid) for pid in pids(cluster))
        started = time.monotonic()
        keepers = [
            asyncio.ensure_future(keep(lease, interval_s * n / len(ids)))
            for n, lease in enumerate(ids)
        ]
        await asyncio.sleep(args.seconds)
        elapsed = time.monotonic() - started
        after = sum(cpu_seconds(pid) for pid in pids(cluster))
        for keeper in keepers:
            keeper.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
    spent = after - before
    return {
        "keep_alives_per_s": sent / elapsed,
        "server_cpu_s_per_1000": spent / max(1, sent) * 1000,
        "server_cpu_share_of_a_core": spent / elapsed,
    }


BENCHES: dict[str, Callable[[Cluster, argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "lock-idle": lock_idle,
    "lock-contended": lock_contended,
    "watch-latency": watch_latency,
    "watch-memory": watch_memory,
    "keepalive-cost": keepalive_cost,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench", choices=[*BENCHES, "all"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--contenders", type=int, default=100)
    parser.add_argument("--takes", type=int, default=5)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--watchers", type=int, default=10_000)
    parser.add_argument("--leases", type=int, default=10_000)
    args = parser.parse_args()
    chosen = list(BENCHES) if args.bench == "all" else [args.bench]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    for run in range(args.runs):
        for name in chosen:  # interleaved: A B C A B C ...
            with tempfile.TemporaryDirectory(prefix="paxon-coord-") as root:
                cluster = Cluster(Path(root) / "cluster", size=3)
                try:
                    cluster.start()
                    cluster.wait_for_leader()
                    result = asyncio.run(BENCHES[name](cluster, args))
                finally:
                    cluster.close()
            results[name].append(result)
            print(f"run {run + 1} {name}: {json.dumps(result)}", flush=True)
    medians = {
        name: {
            key: statistics.median(run[key] for run in runs)
            for key in runs[0]
            if isinstance(runs[0][key], int | float) and not isinstance(runs[0][key], bool)
        }
        for name, runs in results.items()
    }
    print(json.dumps({"medians": medians, "runs": args.runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
