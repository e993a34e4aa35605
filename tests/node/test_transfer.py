"""Snapshot transfer: putting chunks back together (a lost chunk drops the
transfer), which chunks a replica takes at all, and checking a whole snapshot
before it replaces anything, at receive time and at start-up."""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from paxon.kv.codec import encode_command
from paxon.kv.model import Put
from paxon.kv.store import KvStore
from paxon.net.peer_messages import SnapshotChunk
from paxon.node import Node, NodeConfig
from paxon.node.machine import InvalidSnapshot, ReplicatedMachine
from paxon.node.transfer import (
    ASKED_VALID_S,
    SnapshotAssembler,
    SnapshotIntake,
    SnapshotTooLarge,
)
from paxon.protocol.config import ReplicaConfig
from paxon.protocol.messages import ChosenPrefix, Heartbeat, LearnRequest
from paxon.protocol.types import Ballot
from paxon.storage import Storage, StorageError, UnrestorableSnapshot


def chunks(data: bytes, size: int, *, src: int = 2, slot: int = 40) -> list[SnapshotChunk]:
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    offsets = [i * size for i in range(len(pieces))]
    return [
        SnapshotChunk(src, 1, slot, offset, piece, n == len(pieces) - 1)
        for n, (offset, piece) in enumerate(zip(offsets, pieces, strict=True))
    ]


def test_consecutive_chunks_give_back_the_snapshot() -> None:
    assembler = SnapshotAssembler(max_bytes=1000)
    parts = chunks(bytes(range(250)), 64)
    assert [assembler.add(chunk) for chunk in parts[:-1]] == [None] * (len(parts) - 1)
    assert assembler.add(parts[-1]) == bytes(range(250))
    assert len(assembler) == 0


def test_an_empty_snapshot_is_one_last_chunk() -> None:
    assert SnapshotAssembler(max_bytes=10).add(chunks(b"", 4)[0]) == b""


def test_a_lost_chunk_drops_the_transfer_until_it_restarts() -> None:
    assembler = SnapshotAssembler(max_bytes=1000)
    parts = chunks(b"abcdefghij", 3)
    assembler.add(parts[0])
    assert assembler.add(parts[2]) is None  # parts[1] was lost
    assert assembler.add(parts[3]) is None
    assert len(assembler) == 0
    for part in parts[:-1]:
        assembler.add(part)
    assert assembler.add(parts[-1]) == b"abcdefghij"


def test_transfers_from_two_senders_do_not_mix() -> None:
    assembler = SnapshotAssembler(max_bytes=1000)
    a, b = chunks(b"aaaa", 2, src=2), chunks(b"bbbbbb", 2, src=3)
    assembler.add(a[0])
    assembler.add(b[0])
    assembler.add(b[1])
    assert assembler.add(a[1]) == b"aaaa"
    assert assembler.add(b[2]) == b"bbbbbb"


def test_a_transfer_over_the_limit_is_refused_and_forgotten() -> None:
    assembler = SnapshotAssembler(max_bytes=5)
    parts = chunks(b"0123456789", 4)
    assembler.add(parts[0])
    with pytest.raises(SnapshotTooLarge):
        assembler.add(parts[1])
    assert len(assembler) == 0


# ------------------------------------------------------------------ which chunks are taken


def intake_asked(peer: int = 2, now: float = 100.0) -> SnapshotIntake:
    intake = SnapshotIntake(max_bytes=1000)
    intake.asked(peer, now)
    return intake


def admit(intake: SnapshotIntake, chunk: SnapshotChunk, **overrides: object) -> str | None:
    state: dict[str, Any] = {"leader": 2, "slot_chosen": 10, "installing": False, "now": 101.0}
    state.update(overrides)
    return intake.admit(chunk, **state)


def test_a_chunk_from_the_leader_after_an_ask_is_admitted() -> None:
    intake = intake_asked()
    parts = chunks(b"abcdef", 4)
    assert admit(intake, parts[0]) is None
    assert intake.add(parts[0]) is None
    assert admit(intake, parts[1], now=101.0 + ASKED_VALID_S) is None  # mid-transfer: no ask
    assert intake.add(parts[1]) == b"abcdef"
    assert not intake.refused


@pytest.mark.parametrize(
    ("overrides", "asked_since", "reason"),
    [
        ({"leader": 3}, 3, "not leader"),  # another leader, and the core asked it since
        ({"leader": None}, 4, "not leader"),
        ({"slot_chosen": 40}, None, "stale"),
        ({"installing": True}, None, "installing"),
        ({"now": 100.0 + ASKED_VALID_S + 0.5}, None, "not asked"),
    ],
)
def test_a_chunk_is_ignored_for_each_row_of_the_table(
    overrides: dict[str, object], asked_since: int | None, reason: str
) -> None:
    intake = intake_asked()
    first, second = chunks(b"abcdef", 4)
    assert admit(intake, first) is None
    intake.add(first)
    if asked_since is not None:
        intake.asked(asked_since, 100.5)
    assert admit(intake, first, **overrides) == reason
    assert len(intake.assembler) == 0  # the transfer from that sender is dropped
    assert admit(intake, second) is None and intake.add(second) is None  # and stays dropped


def test_a_transfer_is_not_started_by_a_peer_never_asked() -> None:
    intake = intake_asked(peer=3)  # the core asked node 3, not the leader
    assert admit(intake, chunks(b"abc", 4)[0]) == "not asked"
    assert admit(SnapshotIntake(max_bytes=10), chunks(b"abc", 4)[0], now=0.0) == "not asked"


def test_a_chunk_from_the_peer_asked_last_is_admitted_without_a_leader() -> None:
    """A candidate stepped down by the compacted-log rule follows no leader and
    asked the acceptor whose log starts past its slot_from: that acceptor's
    snapshot must be taken (swarm seed 5057 stalled 6 s without it)."""
    intake = intake_asked(peer=5)
    parts = chunks(b"abcdef", 4, src=5)
    for leader in (None, 3):  # no leader, or a stale one the core did not ask last
        assert admit(intake, parts[0], leader=leader) is None
    assert intake.add(parts[0]) is None
    assert admit(intake, parts[1], leader=None) is None
    assert intake.add(parts[1]) == b"abcdef"
    assert not intake.refused


def test_a_peer_asked_earlier_than_another_is_not_admitted() -> None:
    intake = intake_asked(peer=5)
    intake.asked(6, 100.5)  # the core asked node 6 since: only 6 (or the leader) may send
    assert admit(intake, chunks(b"abc", 4, src=5)[0], leader=None) == "not leader"
    assert admit(intake, chunks(b"abc", 4, src=6)[0], leader=None) is None


def test_a_transfer_that_starts_drops_any_other_so_one_is_held() -> None:
    intake = intake_asked(peer=2)  # node 2 leads and was asked
    from_leader = chunks(b"aaaaaa", 4, src=2)
    assert admit(intake, from_leader[0]) is None
    intake.add(from_leader[0])
    intake.asked(5, 100.5)  # then the core asked node 5
    from_asked = chunks(b"bbbbbb", 4, src=5)
    assert admit(intake, from_asked[0]) is None
    intake.add(from_asked[0])
    assert len(intake.assembler) == 1  # the leader's partial transfer was dropped
    assert admit(intake, from_leader[1]) is None  # still the leader: admitted, but
    assert intake.add(from_leader[1]) is None  # its transfer must restart at 0
    assert intake.add(from_asked[1]) == b"bbbbbb"


def test_refusals_are_counted_and_logged_at_powers_of_two() -> None:
    intake = SnapshotIntake(max_bytes=10)
    logged = [intake.refuse("not leader") for _ in range(9)]
    assert logged == [True, True, False, True, False, False, False, True, False]
    assert intake.refused == {"not leader": 9}


# ------------------------------------------------------------------ checking a whole snapshot


def kv_machine(slot: int, keys: int = 5) -> ReplicatedMachine:
    store = KvStore()
    for i in range(keys):
        store.apply(encode_command(Put(f"key{i}", b"v%d" % i, None)))
    return ReplicatedMachine(store, slot_applied=slot)


def test_check_snapshot_gives_the_slot_and_changes_nothing() -> None:
    data = kv_machine(40).snapshot()
    target = kv_machine(0, keys=1)
    before = target.snapshot()
    assert target.check_snapshot(data) == 40
    assert target.snapshot() == before
    target.restore(data)
    assert target.slot_applied == 40 and len(target.machine) == 5  # type: ignore[arg-type]


def test_prepare_restore_decodes_now_and_changes_nothing_until_installed() -> None:
    data = kv_machine(40).snapshot()
    target = kv_machine(0, keys=1)
    before = target.snapshot()
    slot, install = target.prepare_restore(data)
    assert slot == 40 and target.snapshot() == before
    install()
    restored = kv_machine(0, keys=1)
    restored.restore(data)
    assert target.slot_applied == 40 and target.snapshot() == restored.snapshot() == data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used in msgpack
        b"\x93\x01\x05",  # a head cut short
        msgpack.packb([2, 5, []]) + KvStore().snapshot(),  # unknown version
        msgpack.packb([1, -1, []]) + KvStore().snapshot(),
        msgpack.packb([1, 5, [[1, 1, 10**9]]]) + KvStore().snapshot(),  # bytes(10**9)
        msgpack.packb([1, 5, "sessions"]) + KvStore().snapshot(),
        msgpack.packb([1, 5, []]) + b"garbage",  # the store's part
        msgpack.packb([1, 5, []]),  # no store part at all
    ],
)
def test_check_and_restore_refuse_garbage_with_invalid_snapshot_only(data: bytes) -> None:
    target = kv_machine(3)
    before = target.snapshot()
    with pytest.raises(InvalidSnapshot):
        target.check_snapshot(data)
    with pytest.raises(InvalidSnapshot):
        target.restore(data)
    with pytest.raises(InvalidSnapshot):
        target.prepare_restore(data)
    assert target.snapshot() == before  # the KV store restores all or nothing


def test_random_and_mutated_snapshots_never_raise_anything_else() -> None:
    """Only ``InvalidSnapshot``, and what ``check_snapshot`` accepts ``restore`` takes."""
    rng = random.Random(8)
    good = kv_machine(40, keys=30).snapshot()
    target = kv_machine(0)
    refused = 0
    for _ in range(2000):
        if rng.random() < 0.3:
            data = rng.randbytes(rng.randrange(64))
        else:
            data = bytearray(good)
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.5:  # cut short, or only flipped
                data = data[: rng.randrange(len(data) + 1)]
            data = bytes(data)
        try:
            slot = target.check_snapshot(data)
        except InvalidSnapshot:
            refused += 1
            with pytest.raises(InvalidSnapshot):
                target.prepare_restore(data)
            continue
        scratch = ReplicatedMachine(KvStore())
        scratch.restore(data)
        assert scratch.slot_applied == slot
        prepared = ReplicatedMachine(KvStore())
        assert prepared.prepare_restore(data)[0] == slot
    assert 1000 < refused < 2000


# ------------------------------------------------------------------ a real node receiving


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def follow(node: Node, leader: int, chosen: int) -> None:
    """As if ``leader`` sent a heartbeat saying slots below ``chosen`` are chosen."""
    node._on_peer_message(Heartbeat(leader, 1, Ballot(1, 2), ChosenPrefix(chosen), 0))


def deliver(node: Node, src: int, slot: int, data: bytes, chunk_bytes: int = 1 << 16) -> None:
    for chunk in chunks(data, chunk_bytes, src=src, slot=slot):
        node._on_peer_message(chunk)


def snapshot_files(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith("snapshot-"))


def test_a_node_takes_a_snapshot_only_from_its_leader_when_asked_and_only_if_it_restores(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        peers = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(free_ports(3))}
        # Slow elections: node 1 stays a follower while the test plays its leader.
        slow = ReplicaConfig(election_timeout_min_s=30.0, election_timeout_max_s=60.0)
        node = Node(1, peers, str(tmp_path / "n1"), KvStore(), config=NodeConfig(replica=slow))
        await node.start()
        intake = node._transfers._intake
        try:
            good = kv_machine(50).snapshot()
            deliver(node, 2, 50, good)  # no leader yet
            assert intake.refused == {"not leader": 1}
            follow(node, 2, chosen=0)  # follows node 2, but is not behind: no ask
            deliver(node, 2, 50, good)
            assert intake.refused["not asked"] == 1
            follow(node, 2, chosen=100)  # behind: the core asks node 2 to catch it up
            deliver(node, 3, 50, good)  # a member that is not the leader
            assert intake.refused["not leader"] == 2
            deliver(node, 2, 50, b"\xc1 garbage " * 30)  # from the leader, but garbage
            await eventually(lambda: intake.refused["invalid"] == 1)
            deliver(node, 2, 50, kv_machine(60).snapshot())  # says slot 60, sent as 50
            await eventually(lambda: intake.refused["invalid"] == 2)
            assert not node._transfers.installing
            assert snapshot_files(tmp_path / "n1") == []  # nothing was written
            assert node.machine.slot_applied == 0 and len(node.machine.machine) == 0  # type: ignore[arg-type]
            assert not node._stopping and not node._failure.done()  # type: ignore[union-attr]
            deliver(node, 2, 50, good, chunk_bytes=64)  # the real thing is installed
            await eventually(lambda: node.machine.slot_applied == 50)
            assert len(node.machine.machine) == 5  # type: ignore[arg-type]
            assert len(snapshot_files(tmp_path / "n1")) == 1
            assert node._replica.status().log_start == 50
        finally:
            await node.stop()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_node_following_no_leader_installs_the_snapshot_of_the_peer_it_asked(
    tmp_path: Path,
) -> None:
    """The compacted-log rule's catch-up: a candidate that stepped down asks the
    acceptor ahead of it (a LearnRequest, here sent by hand) and follows no one."""

    async def scenario() -> None:
        peers = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(free_ports(3))}
        slow = ReplicaConfig(election_timeout_min_s=30.0, election_timeout_max_s=60.0)
        node = Node(1, peers, str(tmp_path / "n1"), KvStore(), config=NodeConfig(replica=slow))
        await node.start()
        try:
            node._send(LearnRequest(1, 3, 0))
            assert node.leader_id is None
            deliver(node, 2, 50, kv_machine(50).snapshot())  # not asked, not leader
            assert node._transfers._intake.refused == {"not leader": 1}
            deliver(node, 3, 50, kv_machine(50).snapshot(), chunk_bytes=64)
            await eventually(lambda: node.machine.slot_applied == 50)
            assert node._replica.status().log_start == 50
        finally:
            await node.stop()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def saved_snapshot(directory: Path, slot: int, data: bytes) -> str:
    with Storage.open(str(directory), node_id=1, cluster_id="paxon") as storage:
        return storage.save_snapshot(slot, data).name


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc1 garbage", "snapshot head does not decode"),
        (kv_machine(5).snapshot(), "it holds the state below slot 5, its header says slot 7"),
    ],
)
def test_a_snapshot_that_does_not_restore_stops_the_start_naming_the_file(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    name = saved_snapshot(tmp_path / "n1", 7, data)
    peers = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(free_ports(3))}

    async def scenario() -> None:
        node = Node(1, peers, str(tmp_path / "n1"), KvStore())
        with pytest.raises(UnrestorableSnapshot) as refused:
            await node.start()
        message = str(refused.value)
        assert message.startswith(f"{tmp_path / 'n1' / name}: the state machine cannot restore")
        assert reason in message and "\n" not in message
        assert isinstance(refused.value, StorageError)  # paxon serve: one line, exit 2
        # It stopped cleanly: the directory is free for the next try.
        Storage.open(str(tmp_path / "n1"), node_id=1, cluster_id="paxon").close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
