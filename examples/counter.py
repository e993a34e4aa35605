"""Replicate your own state machine: a counter on 3 nodes, in one script.

    python examples/counter.py [DATA_DIR] [BASE_PORT]

Each ``paxon.Node`` is a full replica with its own data directory and port;
here all three live in one process for the demo, but they talk over TCP just
as separate machines would. Commands sent to any node are forwarded to the
leader, chosen by Multi-Paxos, and applied on every node in the same order.
Run it twice: the counter continues where it stopped, recovered from disk.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

import paxon


class Counter(paxon.StateMachine):
    """The state: named counters. Commands are JSON ``{"add": name, "by": n}``."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def apply(self, command: bytes) -> bytes:
        try:
            request = json.loads(command)
            name, by = str(request["add"]), int(request["by"])
        except (ValueError, KeyError, TypeError):
            return b'{"error": "bad command"}'  # never raise: every replica sees it
        self.counts[name] = self.counts.get(name, 0) + by
        return json.dumps({name: self.counts[name]}).encode()

    def query(self, query: bytes) -> bytes:
        return json.dumps({query.decode(): self.counts.get(query.decode(), 0)}).encode()

    def snapshot(self) -> bytes:
        return json.dumps(self.counts, sort_keys=True).encode()

    def restore(self, data: bytes) -> None:
        self.counts = json.loads(data)


async def main(data_root: Path, base_port: int) -> None:
    peers = {i: f"127.0.0.1:{base_port + i}" for i in (1, 2, 3)}
    nodes = [
        paxon.Node(node_id, peers, str(data_root / f"node{node_id}"), Counter())
        for node_id in peers
    ]
    for node in nodes:
        await node.start()
    try:
        # Writes through every node; followers forward them to the leader.
        for i in range(30):
            await nodes[i % 3].submit(json.dumps({"add": "hits", "by": 1}).encode())
        answer = await nodes[2].query(b"hits")  # linearizable: sees all 30 writes
        print("hits:", json.loads(answer)["hits"])
        leader = next(node.node_id for node in nodes if node.is_leader)
        print("leader: node", leader)
        await asyncio.sleep(0.2)  # let the followers apply the last slots
        for node in nodes:
            counter = node.machine.machine
            assert isinstance(counter, Counter)
            print(f"node {node.node_id} applied: {counter.counts}")
    finally:
        for node in nodes:
            await node.stop()


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.gettempdir()) / "paxon-counter"
    base_port = int(sys.argv[2]) if len(sys.argv) > 2 else 7100
    print("data in", root)
    asyncio.run(main(root, base_port))
