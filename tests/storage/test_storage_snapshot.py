"""Snapshots: format, streaming, retention, log truncation, fallback, crashes."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import (
    DATA,
    SMALL,
    expected_state,
    fresh_fs,
    log_records,
    numbered,
    open_storage,
    storage_records,
)

from paxon.protocol.records import SnapshotRecord, recover
from paxon.storage import (
    ConfigRecord,
    CorruptSnapshot,
    DataDirDamaged,
    MemFileSystem,
    MissingSnapshot,
    PowerCut,
    Storage,
    StorageConfig,
    UnrestorableSnapshot,
)
from paxon.storage.codec import StorageRecord
from paxon.storage.recovery import inspect_data_dir


def fill(storage: Storage, first: int, last: int) -> list[StorageRecord]:
    records = [numbered(lsn) for lsn in range(first, last + 1)]
    for start in range(0, len(records), 10):
        storage.append(records[start : start + 10])
    storage.sync()
    return records


def names(fs: MemFileSystem, prefix: str) -> list[str]:
    return [name for name in fs.listdir(DATA) if name.startswith(prefix)]


def test_a_snapshot_streams_back_in_chunks() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    fill(storage, 1, 50)
    storage.append([ConfigRecord((1, 2, 3))])
    data = bytes(range(256)) * 3
    meta = storage.save_snapshot(20, [data[:100], data[100:]])
    assert (meta.lsn, meta.slot, meta.data_bytes) == (51, 20, len(data))
    assert meta.config == ConfigRecord((1, 2, 3))
    with storage.open_snapshot() as reader:
        chunks = list(reader.chunks())
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= SMALL.snapshot_chunk_bytes
    assert len(chunks) > 5
    storage.close()


def test_recovery_starts_from_the_snapshot_and_replays_the_rest() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    records = fill(storage, 1, 80)
    storage.save_snapshot(30, b"state at 30")
    records += fill(storage, 81, 120)
    storage.close()
    storage = open_storage(fs)
    recovered = storage.recovered
    assert recovered.snapshot is not None and recovered.snapshot.slot == 30
    assert recovered.records_replayed == 40
    assert recovered.state == expected_state(records, 120, (80, 30))
    assert recovered.state.log_start == 30
    with storage.open_snapshot(recovered.snapshot) as reader:
        assert reader.read_all() == b"state at 30"


def test_newest_two_are_kept_and_segments_below_the_older_deleted() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    fill(storage, 1, 100)
    first = storage.save_snapshot(10, b"one")
    fill(storage, 101, 200)
    second = storage.save_snapshot(20, b"two")
    segments_now = storage.segments()
    assert segments_now[0][1] <= first.lsn + 1  # the log still reaches the older snapshot
    assert segments_now[0][1] > 1  # ... and nothing much older
    fill(storage, 201, 300)
    third = storage.save_snapshot(30, b"three")
    assert names(fs, "snapshot-") == [second.name, third.name]
    first_lsn = storage.segments()[0][1]
    assert first_lsn <= second.lsn + 1
    for name in names(fs, "wal-"):
        assert int(name[4:24]) >= first_lsn
    storage.close()
    assert open_storage(fs).recovered.snapshot == third


def test_with_one_snapshot_retained_the_log_is_cut_below_it() -> None:
    config = StorageConfig(
        segment_max_bytes=4096, record_max_bytes=1024, snapshot_chunk_bytes=64, snapshots_retained=1
    )
    fs = fresh_fs()
    storage = open_storage(fs, config)
    fill(storage, 1, 200)
    meta = storage.save_snapshot(50, b"x")
    assert names(fs, "snapshot-") == [meta.name]
    segments = storage.segments()
    assert segments[0][1] <= meta.lsn + 1
    assert len(segments) == 1 or segments[1][1] > meta.lsn + 1


def test_the_active_segment_is_never_deleted() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    fill(storage, 1, 5)
    storage.save_snapshot(1, b"a")
    storage.save_snapshot(2, b"b")
    storage.save_snapshot(3, b"c")
    assert len(storage.segments()) == 1
    storage.close()
    assert open_storage(fs).recovered.lsn_last == 5


def test_a_damaged_newest_snapshot_falls_back_to_the_older_one() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    records = fill(storage, 1, 100)
    older = storage.save_snapshot(10, b"older")
    records += fill(storage, 101, 150)
    newest = storage.save_snapshot(40, b"newest")
    storage.close()
    path = os.path.join(DATA, newest.name)
    fs.flip_bit(path, fs.size(path) * 8 - 20)
    storage = open_storage(fs)
    recovered = storage.recovered
    assert recovered.snapshot == older
    assert any(newest.name in warning for warning in recovered.warnings)
    assert recovered.state == expected_state(records, 150, (100, 10))


def refuse_bad(data: bytes) -> int | None:
    """A content check: ``b"bad..."`` does not restore, anything else does."""
    if data.startswith(b"bad"):
        raise ValueError("not a state machine image")
    return None


def test_an_unrestorable_newest_snapshot_stops_the_start_with_no_fall_back() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    fill(storage, 1, 100)
    older = storage.save_snapshot(10, b"older")
    fill(storage, 101, 150)
    newest = storage.save_snapshot(40, b"bad newest")
    storage.close()
    found = inspect_data_dir(fs, DATA, record_max=SMALL.record_max_bytes, check_snapshot=refuse_bad)
    assert isinstance(found.damage, UnrestorableSnapshot) and found.state is None
    assert found.damage.file == os.path.join(DATA, newest.name)
    assert str(found.damage) == (
        f"{DATA}/{newest.name}: the state machine cannot restore this snapshot: "
        "not a state machine image"
    )
    assert found.snapshot_used is None  # never taken as the newest valid one
    # Only the contents are wrong: without a content check it is the newest valid.
    plain = inspect_data_dir(fs, DATA, record_max=SMALL.record_max_bytes)
    assert plain.damage is None and plain.snapshot_used == newest != older


def test_an_unrestorable_older_snapshot_is_reported_but_not_used() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    fill(storage, 1, 100)
    storage.save_snapshot(10, b"bad older")
    fill(storage, 101, 150)
    newest = storage.save_snapshot(40, b"newest")
    storage.close()
    found = inspect_data_dir(fs, DATA, record_max=SMALL.record_max_bytes, check_snapshot=refuse_bad)
    assert found.damage is None and found.snapshot_used == newest
    assert isinstance(found.snapshots[0].damage, UnrestorableSnapshot)


def test_a_content_check_naming_another_slot_is_unrestorable() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    fill(storage, 1, 100)
    storage.save_snapshot(10, b"state")
    storage.close()
    found = inspect_data_dir(
        fs, DATA, record_max=SMALL.record_max_bytes, check_snapshot=lambda data: 11
    )
    assert isinstance(found.damage, UnrestorableSnapshot)
    assert "below slot 11, its header says slot 10" in str(found.damage)


def test_every_flipped_bit_of_a_snapshot_is_detected() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    fill(storage, 1, 20)
    meta = storage.save_snapshot(5, b"snapshot data")
    storage.close()
    path = os.path.join(DATA, meta.name)
    original = fs.read(path)
    for byte in range(len(original)):
        fs.flip_bit(path, byte * 8 + byte % 8)
        storage = open_storage(fs)  # the log starts at lsn 1: recovery goes without it
        assert storage.recovered.snapshot is None
        assert any(meta.name in warning for warning in storage.recovered.warnings)
        storage.close()
        fs.write_raw(path, original)


def test_a_damaged_snapshot_without_the_log_behind_it_stops_the_start() -> None:
    config = StorageConfig(
        segment_max_bytes=4096, record_max_bytes=1024, snapshot_chunk_bytes=64, snapshots_retained=1
    )
    fs = fresh_fs()
    storage = open_storage(fs, config)
    fill(storage, 1, 200)
    meta = storage.save_snapshot(50, b"x" * 500)
    storage.close()
    fs.flip_bit(os.path.join(DATA, meta.name), 400)
    with pytest.raises(CorruptSnapshot) as raised:
        open_storage(fs, config)
    assert raised.value.file == os.path.join(DATA, meta.name)


def test_an_installed_snapshot_mark_needs_its_snapshot() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    fill(storage, 1, 10)
    storage.save_snapshot(500, b"from the leader")
    storage.append([SnapshotRecord(500)])
    storage.close()
    recovered = open_storage(fs).recovered
    assert recovered.state.log_start == 500 and recovered.state.slot_chosen == 500
    fs2 = fresh_fs()
    storage = open_storage(fs2)
    storage.append([SnapshotRecord(500)])  # the runtime forgot to save the snapshot first
    storage.close()
    with pytest.raises(MissingSnapshot):
        open_storage(fs2)


def test_leftover_temporary_files_are_removed() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    fill(storage, 1, 10)
    storage.close()
    tmp = os.path.join(DATA, "snapshot-00000000000000000010-00000000000000000003.snap.tmp")
    file = fs.open_append(tmp, create=True)
    file.write(b"half a snapshot")
    file.close()
    fs.fsync_dir(DATA)
    storage = open_storage(fs)
    assert not fs.exists(tmp)
    assert storage.recovered.snapshot is None


def test_power_cut_at_every_step_of_a_snapshot() -> None:
    steps = 0
    records = [numbered(lsn) for lsn in range(1, 151)]
    while True:
        fs = fresh_fs()
        storage = open_storage(fs)
        for start in (0, 50):
            storage.append(records[start : start + 50])
        storage.save_snapshot(10, b"first")
        storage.append(records[100:])
        fs.cut_power_after(steps)
        try:
            storage.save_snapshot(60, b"second")
            finished = True
        except PowerCut:
            finished = False
        fs.crash()
        storage = open_storage(fs)
        recovered = storage.recovered
        assert recovered.snapshot is not None
        cut = (recovered.snapshot.lsn, recovered.snapshot.slot)
        assert cut in {(100, 10), (150, 60)}
        assert recovered.lsn_last >= cut[0]
        expected = expected_state(records, recovered.lsn_last, cut)
        assert recovered.state == expected
        assert list(log_records(fs)) == sorted(log_records(fs))
        storage.close()
        if finished:
            break
        steps += 1
    assert steps >= 8


@settings(derandomize=True, max_examples=150)
@given(st.lists(st.lists(storage_records, max_size=5), max_size=12), st.integers(0, 45))
def test_the_snapshot_checkpoint_is_what_recover_folds(
    batches: list[list[StorageRecord]], slot: int
) -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    flat: list[StorageRecord] = []
    for batch in batches:
        storage.append(batch)
        flat.extend(batch)
    meta = storage.save_snapshot(slot, b"")
    storage.close()
    core = [record for record in flat if not isinstance(record, ConfigRecord)]
    expected = recover([*core, SnapshotRecord(slot)])
    rebuilt = recover(meta.checkpoint_records())
    assert rebuilt == expected
    configs = [record for record in flat if isinstance(record, ConfigRecord)]
    assert meta.config == (configs[-1] if configs else None)
    recovered = open_storage(fs).recovered
    assert recovered.state == expected


def test_damage_stops_the_start_rather_than_any_repair() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    fill(storage, 1, 100)
    storage.close()
    before = {name: fs.read(os.path.join(DATA, name)) for name in fs.listdir(DATA)}
    first = os.path.join(DATA, names(fs, "wal-")[0])
    fs.flip_bit(first, 1000)
    damaged = fs.read(first)
    with pytest.raises(DataDirDamaged):
        open_storage(fs)
    after = {name: fs.read(os.path.join(DATA, name)) for name in fs.listdir(DATA)}
    assert after == {**before, os.path.basename(first): damaged}
