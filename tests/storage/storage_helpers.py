"""Shared helpers of the storage tests: record strategies, a model, log readers."""

from __future__ import annotations

import os

from hypothesis import strategies as st

from paxon.protocol.records import (
    AcceptRecord,
    ChosenRecord,
    DurableState,
    PromiseRecord,
    Record,
    SnapshotRecord,
    recover,
)
from paxon.protocol.types import Ballot, Command, Entry, Value
from paxon.storage import ConfigRecord, FileSystem, MemFileSystem, Storage, StorageConfig
from paxon.storage.codec import StorageRecord
from paxon.storage.identity import decode_identity
from paxon.storage.layout import IDENTITY_NAME, parse_segment_name
from paxon.storage.memfs import Tear
from paxon.storage.segments import scan_segment

DATA = "/data/node1"
SMALL = StorageConfig(segment_max_bytes=4096, record_max_bytes=1024, snapshot_chunk_bytes=64)
TINY = StorageConfig(segment_max_bytes=1024, record_max_bytes=512, snapshot_chunk_bytes=64)


def open_storage(
    fs: FileSystem,
    config: StorageConfig = SMALL,
    directory: str = DATA,
    node_id: int = 1,
) -> Storage:
    return Storage.open(
        directory, node_id=node_id, cluster_id="test", fs=fs, config=config, incarnation=42
    )


def accept(slot: int, round_: int = 1, node: int = 1, payload: bytes = b"v") -> AcceptRecord:
    return AcceptRecord(Entry(slot, Ballot(round_, node), Value((Command(7, slot, payload),))))


def numbered(lsn: int) -> StorageRecord:
    """A record that depends only on its lsn (so a reader can tell which one it is)."""
    if lsn % 11 == 0:
        return PromiseRecord(Ballot(1 + lsn // 50, 1 + lsn % 3))
    if lsn % 13 == 0:
        return ChosenRecord(lsn // 2)
    if lsn % 97 == 0:
        return ConfigRecord((1, 2, 3 + lsn % 5))
    size = (lsn * 37) % 150
    return accept(lsn, 1 + lsn // 50, 1 + lsn % 3, bytes([lsn % 251]) * size)


def log_records(fs: FileSystem, directory: str = DATA) -> dict[int, StorageRecord]:
    """Every record still in the log, by lsn (segments read as they are)."""
    identity = decode_identity(fs.read(os.path.join(directory, IDENTITY_NAME)), "IDENTITY")
    found: dict[int, StorageRecord] = {}
    for name in fs.listdir(directory):
        first = parse_segment_name(name)
        if first is None:
            continue
        path = os.path.join(directory, name)
        scan_segment(fs.read(path), path, first, identity.incarnation, 1 << 24, found.__setitem__)
    return found


def expected_state(
    records: list[StorageRecord], lsn_last: int, snapshot: tuple[int, int] | None
) -> DurableState:
    """What recovery must rebuild: ``records[:lsn_last]`` with a snapshot cut at ``(lsn, slot)``."""
    core: list[Record] = []
    for lsn, record in enumerate(records[:lsn_last], start=1):
        if not isinstance(record, ConfigRecord):
            core.append(record)
        if snapshot is not None and lsn == snapshot[0]:
            core.append(SnapshotRecord(snapshot[1]))
    if snapshot is not None and snapshot[0] == 0:
        core.insert(0, SnapshotRecord(snapshot[1]))
    return recover(core)


def last_config(records: list[StorageRecord], lsn_last: int) -> ConfigRecord | None:
    found = [r for r in records[:lsn_last] if isinstance(r, ConfigRecord)]
    return found[-1] if found else None


ballots = st.builds(Ballot, st.integers(1, 5), st.integers(1, 3))
commands = st.builds(
    Command, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.binary(max_size=40)
)
values = st.builds(Value, st.lists(commands, max_size=3).map(tuple))
entries = st.builds(Entry, st.integers(0, 40), ballots, values)
storage_records: st.SearchStrategy[StorageRecord] = st.one_of(
    st.builds(AcceptRecord, entries),
    st.builds(PromiseRecord, ballots),
    st.builds(ChosenRecord, st.integers(0, 40)),
    st.builds(
        ConfigRecord,
        st.lists(st.integers(1, 9), min_size=1, max_size=5, unique=True).map(tuple),
    ),
)
log_batches = st.lists(storage_records, max_size=6)


def fresh_fs() -> MemFileSystem:
    fs = MemFileSystem()
    fs.mkdir("/data")
    return fs


def keep_bytes(count: int) -> Tear:
    """A tear that keeps ``count`` unsynced bytes of every file (fewer if there are fewer)."""
    return lambda path, unsynced: count
