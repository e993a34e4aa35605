"""Rows of recovery's decision table that no single fault of the simulator produces.

``paxon.sim.storage_faults`` strikes one fault per crash on a healthy disk;
these directories need more (an operator's ``rm``, a second fault, a writer
bug), so the simulator never reaches them and their ``sim: unreachable`` /
``sim: one-way`` markers in ``recovery.py`` name this file. Each test makes
the directory by hand and checks the refusal names the right file.
"""

from __future__ import annotations

import os

import pytest
from storage_helpers import DATA, fresh_fs, numbered, open_storage

from paxon.storage import CorruptRecord, CorruptSnapshot, MemFileSystem, MissingSegment
from paxon.storage.codec import encode_seal
from paxon.storage.layout import segment_name
from paxon.storage.segments import SEGMENT_HEADER_BYTES


def log_with_segments(fs: MemFileSystem, count: int, *, snapshot_at: int | None = None) -> None:
    """``count`` records in batches of 10, synced; a snapshot after ``snapshot_at`` of them."""
    storage = open_storage(fs)
    for start in range(1, count + 1, 10):
        storage.append([numbered(lsn) for lsn in range(start, min(start + 10, count + 1))])
        storage.sync()
        if snapshot_at is not None and storage.lsn_appended >= snapshot_at:
            storage.save_snapshot(snapshot_at // 2, b"state")
            snapshot_at = None
    storage.close()


def segments(fs: MemFileSystem) -> list[str]:
    return sorted(os.path.join(DATA, n) for n in fs.listdir(DATA) if n.startswith("wal-"))


def test_snapshots_and_no_segment_at_all_are_refused() -> None:
    fs = fresh_fs()
    log_with_segments(fs, 30, snapshot_at=20)
    for path in segments(fs):
        fs.unlink(path)
    with pytest.raises(MissingSegment, match="no log segment"):
        open_storage(fs)


def test_a_log_that_starts_after_the_snapshot_is_refused() -> None:
    fs = fresh_fs()
    log_with_segments(fs, 300, snapshot_at=10)  # at lsn 10, in the first segment
    first = segments(fs)[0]
    fs.unlink(first)
    with pytest.raises(MissingSegment, match="must reach back to lsn 11") as raised:
        open_storage(fs)
    assert raised.value.file == segments(fs)[0]


def test_a_lone_segment_with_a_short_header_beside_a_snapshot_is_refused() -> None:
    """Only the creation of a fresh log (lsn 1, no snapshot) may be cut short."""
    fs = fresh_fs()
    log_with_segments(fs, 30, snapshot_at=20)
    for path in segments(fs):
        fs.unlink(path)
    lone = os.path.join(DATA, segment_name(21))
    file = fs.open_append(lone, create=True)
    file.write(b"PAXONWAL")  # a header cut after its magic
    file.fsync()
    file.close()
    with pytest.raises(CorruptRecord, match="shorter than a segment header") as raised:
        open_storage(fs)
    assert raised.value.file == lone


@pytest.mark.parametrize("end", ["open", "header_torn"])
def test_an_inner_segment_without_its_seal_is_refused(end: str) -> None:
    """A clean end without a seal, or a short header, with a later segment after it."""
    fs = fresh_fs()
    log_with_segments(fs, 300)
    paths = segments(fs)
    assert len(paths) >= 3
    inner = paths[1]
    data = fs.read(inner)
    if end == "open":
        successor = int(os.path.basename(paths[2])[4:-4])
        seal = encode_seal(successor)
        assert data.endswith(seal)
        fs.write_raw(inner, data[: -len(seal)])
        match = "without a seal"
    else:
        fs.write_raw(inner, data[:10])
        match = "shorter than a segment header"
    with pytest.raises(CorruptRecord, match=match) as raised:
        open_storage(fs)
    assert raised.value.file == inner


def test_the_only_snapshot_damaged_after_the_log_was_compacted_is_refused() -> None:
    """No snapshot left to start from, and the log no longer starts at lsn 1:
    the snapshot's own damage stops the start (``_choose_snapshot``)."""
    fs = fresh_fs()
    log_with_segments(fs, 300, snapshot_at=250)  # the segments below it are deleted
    assert not segments(fs)[0].endswith(segment_name(1))
    (snapshot,) = [n for n in fs.listdir(DATA) if n.startswith("snapshot-")]
    fs.flip_bit(os.path.join(DATA, snapshot), 8 * 40)
    with pytest.raises(CorruptSnapshot) as raised:
        open_storage(fs)
    assert raised.value.file == os.path.join(DATA, snapshot)


def test_a_seal_where_a_record_belongs_is_refused() -> None:
    """A seal frame that passes its checksum at a frame boundary (a misdirected
    seal): naming another lsn than the one due there, it is damage."""
    fs = fresh_fs()
    log_with_segments(fs, 300)
    inner = segments(fs)[1]
    data = fs.read(inner)
    fs.write_raw(inner, data[:SEGMENT_HEADER_BYTES] + encode_seal(7) + data[SEGMENT_HEADER_BYTES:])
    with pytest.raises(CorruptRecord, match="seal names lsn 7") as raised:
        open_storage(fs)
    assert raised.value.file == inner


def test_a_record_after_a_seal_is_refused() -> None:
    """A seal naming the lsn due there (a segment's seal landed on its
    successor's first frame), then more frames: nothing may follow a seal."""
    fs = fresh_fs()
    log_with_segments(fs, 300)
    inner = segments(fs)[1]
    first_lsn = int(os.path.basename(inner)[4:-4])
    data = fs.read(inner)
    seal = encode_seal(first_lsn)
    fs.write_raw(inner, data[:SEGMENT_HEADER_BYTES] + seal + data[SEGMENT_HEADER_BYTES:])
    with pytest.raises(CorruptRecord, match="a record follows the seal") as raised:
        open_storage(fs)
    assert (raised.value.file, raised.value.offset) == (inner, SEGMENT_HEADER_BYTES + len(seal))
