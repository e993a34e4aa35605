"""The leader's history retention (``paxon.node.history``): the policy alone, the
compaction entry as every replica applies it, and three real ``Node`` objects
on loopback whose leader compacts by revisions and by log time (a fake wall
clock the test moves)."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from pathlib import Path

import pytest
from tests.node.test_node import eventually, free_ports, run

from paxon.client import Client
from paxon.errors import RevisionCompacted
from paxon.kv.codec import encode_command
from paxon.kv.model import HISTORY_REVISIONS_MAX, Put
from paxon.kv.store import KvStore
from paxon.node import Node
from paxon.node.config import NodeConfig
from paxon.node.environment import REAL
from paxon.node.history import (
    SAMPLES_MAX,
    HistoryRetention,
    RetentionPolicy,
    compact_command,
    compaction_revision,
)
from paxon.node.logclock import CLOCK_CLIENT_ID
from paxon.node.machine import ReplicatedMachine
from paxon.protocol.ready import ChosenEntry
from paxon.protocol.types import Command, Value

START_S = 1_800_000_000.0
START_MS = int(START_S * 1000)

# ------------------------------------------------------------------ the policy


def test_revisions_compact_to_n_back_once_a_step_can_go() -> None:
    policy = RetentionPolicy(HistoryRetention(revisions=80))  # step 10
    assert policy.target(0, 89, 0) is None
    assert policy.target(0, 90, 0) == 10
    assert policy.target(0, 99, 10) is None
    assert policy.target(0, 100, 10) == 20


def test_seconds_compact_to_the_newest_sample_strictly_before_the_cutoff() -> None:
    policy = RetentionPolicy(HistoryRetention(revisions=1, seconds=10))
    policy.observe(START_MS, 5)
    policy.observe(START_MS + 5_000, 9)
    # Nothing older than 10 s yet: keep everything.
    assert policy.target(START_MS + 9_000, 12, 0) is None
    # At log time START_MS itself an older revision than 5 may have been current.
    assert policy.target(START_MS + 10_000, 12, 0) is None
    assert policy.target(START_MS + 10_001, 12, 0) == 5
    assert policy.target(START_MS + 15_001, 12, 5) == 9
    # The revisions guarantee holds too: the smaller target wins.
    both = RetentionPolicy(HistoryRetention(revisions=5, seconds=10))
    both.observe(START_MS, 10)
    assert both.target(START_MS + 20_000, 12, 0) == 7


def test_without_samples_a_new_leader_compacts_later_never_earlier() -> None:
    policy = RetentionPolicy(HistoryRetention(revisions=1, seconds=10))
    assert policy.target(START_MS + 3_600_000, 1_000, 0) is None
    policy.observe(START_MS + 3_600_000, 1_000)  # its first sample: now
    assert policy.target(START_MS + 3_600_000 + 9_999, 1_200, 0) is None


def test_samples_are_spaced_and_bounded() -> None:
    retention = HistoryRetention(revisions=1, seconds=60)
    policy = RetentionPolicy(retention)
    for number in range(10_000):
        policy.observe(START_MS + number * 10, number)
    assert len(policy.samples) <= SAMPLES_MAX
    times = [t for t, _ in policy.samples]
    assert all(b - a >= retention.sample_interval_ms for a, b in itertools.pairwise(times))


@pytest.mark.parametrize(
    "retention",
    [
        {"revisions": 0},
        {"revisions": HISTORY_REVISIONS_MAX + 1},
        {"seconds": 0},
        {"seconds": 400 * 24 * 3600},
    ],
)
def test_retention_out_of_bounds_is_refused(retention: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="history"):
        HistoryRetention(**retention)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the entry


def test_every_replica_applies_the_compaction_entry_without_a_token_or_session() -> None:
    assert compaction_revision(compact_command(7).payload) == 7
    assert compaction_revision(b"paxon-compact\x00xx") is None
    machine = ReplicatedMachine(KvStore())
    store = machine.machine
    assert isinstance(store, KvStore)
    puts = [Command(9, seq, encode_command(Put("a", str(seq).encode()))) for seq in range(1, 6)]
    list(machine.apply(ChosenEntry(0, Value(tuple(puts)))))
    assert store.revision == 5
    system = compact_command(3)
    assert system.client_id == CLOCK_CLIENT_ID
    assert list(machine.apply(ChosenEntry(1, Value((system,))))) == []
    assert store.revision_compacted == 3
    assert machine.clock.log_time_ms == 0, "a compaction entry is not a clock stamp"
    assert [client_id for client_id, *_ in machine.sessions.export()] == [9]


# ------------------------------------------------------------------ real nodes


class FakeWall:
    def __init__(self) -> None:
        self.now_s = START_S

    def __call__(self) -> float:
        return self.now_s


class Trio:
    """Three KvStore nodes on loopback, each with its own retention."""

    def __init__(self, root: Path, retentions: list[HistoryRetention]) -> None:
        self.wall = FakeWall()
        self.peers = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(free_ports(3))}
        self.nodes = {
            node_id: Node(
                node_id,
                self.peers,
                str(root / f"n{node_id}"),
                KvStore(),
                config=NodeConfig(history=retention),
                wall_time_s=self.wall,
                environment=replace(REAL, monotonic=self.wall),
            )
            for node_id, retention in zip(self.peers, retentions, strict=True)
        }

    async def __aenter__(self) -> Trio:
        for node in self.nodes.values():
            await node.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for node in self.nodes.values():
            await node.stop()

    def client(self) -> Client:
        return Client(list(self.peers.values()), timeout=10.0)

    def stores(self) -> list[KvStore]:
        found = []
        for node in self.nodes.values():
            assert isinstance(node.machine.machine, KvStore)
            found.append(node.machine.machine)
        return found

    def compacted(self) -> set[int]:
        return {store.revision_compacted for store in self.stores()}

    def leader(self) -> Node:
        return next(node for node in self.nodes.values() if node.is_leader)


def test_the_leader_compacts_by_its_revisions_and_every_replica_cuts_the_same(
    tmp_path: Path,
) -> None:
    """Each node has another --history-revisions; only the leader's counts."""
    kept = {1: 4, 2: 6, 3: 8}
    retentions = [HistoryRetention(revisions=kept[node_id]) for node_id in (1, 2, 3)]

    async def scenario() -> None:
        async with Trio(tmp_path, retentions) as trio, trio.client() as client:
            for number in range(1, 21):
                assert await client.put("a", str(number)) == number
            leader = trio.leader()
            expected = 20 - kept[leader.node_id]
            await eventually(lambda: trio.compacted() == {expected})
            await asyncio.sleep(0.3)  # a few more ticks: nothing more to compact
            assert trio.compacted() == {expected}
            # Operators see the cut: every node's gauges, set on its tick.
            for node in trio.nodes.values():
                text = node.metrics.render()[0].decode()
                assert f"paxon_kv_revision_compacted {float(expected)}" in text, node.node_id
                assert "paxon_kv_revision 20.0" in text
            assert {store.revision for store in trio.stores()} == {20}
            item = await client.get("a", revision=expected)
            assert item is not None and item.value == str(expected).encode()
            with pytest.raises(RevisionCompacted) as caught:
                await client.get("a", revision=expected - 1)
            assert caught.value.revision_compacted == expected

    run(scenario)


def test_the_leader_compacts_by_log_time_not_by_its_own_clock(tmp_path: Path) -> None:
    retention = HistoryRetention(revisions=1, seconds=10)

    async def scenario() -> None:
        async with Trio(tmp_path, [retention] * 3) as trio, trio.client() as client:
            await client.put("a", "1")  # revision 1 at log time T
            await asyncio.sleep(0.3)  # ticks sample (T, 1)
            trio.wall.now_s = START_S + 5
            await client.put("a", "2")  # revision 2 at T+5
            await asyncio.sleep(0.3)  # ticks sample (T+5, 2)
            await client.put("a", "3")  # revision 3, still T+5 (no new stamp)
            # The wall clock runs on, but log time moves only with a write.
            trio.wall.now_s = START_S + 30
            await asyncio.sleep(0.3)
            assert trio.compacted() == {0}
            trio.wall.now_s = START_S + 12
            await client.put("a", "4")  # log time T+12: keep what was current after T+2
            await eventually(lambda: trio.compacted() == {1})
            trio.wall.now_s = START_S + 16
            await client.put("a", "5")  # T+16: revision 3 was current after T+6, so keep it
            await eventually(lambda: trio.compacted() == {2})
            await asyncio.sleep(0.3)
            assert trio.compacted() == {2}
            item = await client.get("a", revision=2)
            assert item is not None and item.value == b"2"

    run(scenario)
