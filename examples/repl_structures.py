"""The library's replicated structures, each on its own 3-node cluster in one script.

    python examples/repl_structures.py [dict|counter|locks|all] [DATA_DIR] [BASE_PORT]

``paxon.repl`` gives PySyncObj-style batteries on paxon's terms: a
``ReplDict``, a ``ReplCounter`` and a ``ReplLockManager`` are state machines;
run one on every ``paxon.Node`` and talk to it through a handle over any
node (or over a ``paxon.Client`` connected to a ``paxon serve`` cluster of
them). Writes go through the log; reads are linearizable.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import paxon
from paxon.repl import (
    CounterHandle,
    DictHandle,
    LockManagerHandle,
    ReplCounter,
    ReplDict,
    ReplLockManager,
)


async def cluster(
    data_root: Path, base_port: int, make: Callable[[], paxon.StateMachine]
) -> list[paxon.Node]:
    peers = {i: f"127.0.0.1:{base_port + i}" for i in (1, 2, 3)}
    nodes = [paxon.Node(i, peers, str(data_root / f"node{i}"), make()) for i in peers]
    for node in nodes:
        await node.start()
    return nodes


async def stop(nodes: list[paxon.Node]) -> None:
    for node in nodes:
        await node.stop()


async def dict_demo(root: Path, port: int) -> None:
    nodes = await cluster(root / "dict", port, ReplDict)
    try:
        config = DictHandle(nodes[0])  # through node 1
        await config.set("db", {"host": "10.0.0.5", "port": 5432})
        await config.set("mode", "primary")
        swapped = await config.cas("mode", "primary", "replica")
        print("dict: cas primary->replica:", swapped)
        print("dict: items seen from node 3:", await DictHandle(nodes[2]).items())
    finally:
        await stop(nodes)


async def counter_demo(root: Path, port: int) -> None:
    nodes = await cluster(root / "counter", port, ReplCounter)
    try:
        handles = [CounterHandle(node) for node in nodes]
        await asyncio.gather(*(handles[i % 3].add("visits") for i in range(30)))
        print("counter: visits =", await handles[1].get("visits"))
    finally:
        await stop(nodes)


async def locks_demo(root: Path, port: int) -> None:
    nodes = await cluster(root / "locks", port, ReplLockManager)
    try:
        alice = LockManagerHandle(nodes[0], "alice", ttl=2.0)
        bob = LockManagerHandle(nodes[1], "bob", ttl=2.0)
        async with alice.lock("report") as held:
            print("locks: alice holds report, fence", held.fence)
            print("locks: bob tries:", await bob.try_acquire("report"))
        bob_held = await bob.try_acquire("report")
        assert bob_held is not None
        print("locks: after alice released, bob holds it, fence", bob_held.fence)
    finally:
        await stop(nodes)


DEMOS = {"dict": dict_demo, "counter": counter_demo, "locks": locks_demo}


async def main(which: str, root: Path, base_port: int) -> None:
    chosen = list(DEMOS) if which == "all" else [which]
    for index, name in enumerate(chosen):
        await DEMOS[name](root, base_port + 10 * index)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    root = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="paxon-repl-"))
    base_port = int(sys.argv[3]) if len(sys.argv) > 3 else 7200
    asyncio.run(main(which, root, base_port))
