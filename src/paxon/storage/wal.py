"""The write-ahead log: append records, make them durable, roll segments over.

Contract:
- ``append(records)`` gives each record the next lsn (1, 2, 3, ... over the
  life of the data directory) and returns the last one. It only encodes and
  queues; nothing touches the disk. A batch that cannot be encoded (a record
  over the limit) raises before any of it is queued.
- ``sync()`` writes everything queued, in lsn order, then fdatasyncs, and
  only then moves ``lsn_durable`` and tells the listeners. Records appended
  while a sync runs wait for the next one. Durability is a prefix: when lsn
  ``n`` is durable, so is every lsn below it.
- ``flush()`` is the first half of a sync alone: it writes everything queued
  and moves ``lsn_written``, with no fdatasync (a roll-over inside it still
  syncs the old segment, as its steps below require). The written bytes sit
  in the page cache: a power cut may keep any prefix of them, so a crash
  between ``flush`` and the next sync leaves a torn tail. ``sync_through(n)``
  with ``n`` already written only fdatasyncs (what was queued after the flush
  stays queued). The simulator calls the two halves as separate events.
- One thread appends at a time (the owner); any thread may call ``sync``;
  syncs are serialized. This is what lets a group-commit thread sync while
  the event loop appends.
- A failed write or sync (``OSError``) poisons the log: the bytes on disk are
  unknown (after a failed fsync the kernel may have dropped them), so every
  later ``append``/``sync`` raises ``StorageFailed``. Restart and recover.

Roll-over, when an append would take a segment past ``segment_max_bytes``
(one record never spans two segments):

1. write and fdatasync the rest of the old segment;
2. create the new segment (header), fsync it, fsync the directory;
3. append a SEAL frame to the old segment naming the new one's first lsn,
   fdatasync it, close it.

So a sealed segment always has a durable successor, and an unsealed segment
followed by an empty one is a roll-over cut short (``recovery.py`` undoes it).
Only sealed segments are ever deleted, and never the active one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from paxon.storage.codec import StorageRecord, encode_record, encode_records, encode_seal
from paxon.storage.config import StorageConfig
from paxon.storage.errors import StorageClosed, StorageError, StorageFailed
from paxon.storage.fs import AppendFile, FileSystem, join
from paxon.storage.layout import segment_name
from paxon.storage.segments import SEGMENT_HEADER_BYTES, encode_segment_header

DurableListener = Callable[[int], None]


@dataclass(slots=True)
class _Segment:
    name: str
    first_lsn: int
    sealed: bool


class Wal:
    """A segmented, checksummed, group-synced log. See the module contract."""

    def __init__(
        self,
        fs: FileSystem,
        directory: str,
        *,
        config: StorageConfig,
        incarnation: int,
        segments: Sequence[tuple[str, int, bool]],
        lsn_last: int,
        active_records: int,
    ) -> None:
        """Open the log for appending. Use ``Storage.open``, which recovers first.

        ``segments`` are ``(name, first_lsn, sealed)`` in lsn order, already
        checked and repaired; the last is the active one, holding
        ``active_records`` records and ending at ``lsn_last``. With no
        segments, a first one is created to start at ``lsn_last + 1``.
        """
        self._fs = fs
        self._dir = directory
        self._config = config
        self._incarnation = incarnation
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._listeners: list[DurableListener] = []
        self._failed: StorageError | None = None
        self._segments = [_Segment(name, first, sealed) for name, first, sealed in segments]
        if not self._segments:
            self._active = self._create_segment(lsn_last + 1)
            self._segments.append(_Segment(segment_name(lsn_last + 1), lsn_last + 1, False))
            active_records = 0
        else:
            self._active = fs.open_append(join(directory, self._segments[-1].name))
        # Frames queued for the next sync, and where in them new segments begin:
        # ``(index into _pending, first lsn of the new segment)``.
        self._pending: list[bytes] = []
        self._rolls: list[tuple[int, int]] = []
        self._segment_bytes = self._active.size()
        self._segment_records = active_records
        self._lsn_appended = lsn_last
        self._lsn_written = lsn_last
        self._lsn_durable = lsn_last

    # ------------------------------------------------------------------ public

    @property
    def lsn_appended(self) -> int:
        return self._lsn_appended

    @property
    def lsn_written(self) -> int:
        """The last lsn handed to the file system (durable or not)."""
        return self._lsn_written

    @property
    def lsn_durable(self) -> int:
        return self._lsn_durable

    def add_durable_listener(self, listener: DurableListener) -> None:
        """``listener(lsn)`` runs on the syncing thread after a sync made ``lsn`` durable."""
        self._listeners.append(listener)

    def append(self, records: Sequence[StorageRecord]) -> int:
        """Queue ``records``; the lsn of the last one (the current lsn when empty)."""
        # After a failed write or sync the committer (GroupCommitter, and the
        # simulator's alike) raises its own failure and never calls the log
        # again; these guards are for other callers (test_storage_wal.py).
        if self._failed is not None:  # sim: one-way: the committer stops at a failure
            raise self._failed
        pieces, total = encode_records(records, self._config.record_max_bytes)
        with self._lock:
            if self._failed is not None:  # sim: one-way: the committer stops at a failure
                raise self._failed
            if (
                self._segment_records
                and self._segment_bytes + total > self._config.segment_max_bytes
            ):
                self._queue_rolling(records)
            else:
                self._pending.extend(pieces)
                self._segment_bytes += total
                self._segment_records += len(records)
            self._lsn_appended += len(records)
            return self._lsn_appended

    def flush(self) -> int:
        """Write every record appended so far, without fdatasync; returns ``lsn_written``."""
        with self._sync_lock:
            self._write_queued()
            return self._lsn_written

    def sync(self) -> int:
        """Make every record appended so far durable; returns ``lsn_durable``."""
        with self._sync_lock:
            self._write_queued()
            return self._sync_written()

    def sync_through(self, lsn: int) -> int:
        """Return once every record up to ``lsn`` is durable (syncing if needed).

        When ``lsn`` was already written (``flush``), this only fdatasyncs.
        """
        if lsn > self._lsn_appended:  # sim: one-way: API guard; the runtime syncs what it wrote
            raise ValueError(f"lsn {lsn} was never appended (last is {self._lsn_appended})")
        if self._lsn_durable >= lsn:
            return self._lsn_durable
        if self._lsn_written >= lsn:
            with self._sync_lock:
                return self._sync_written()
        return self.sync()

    def segments(self) -> list[tuple[str, int]]:
        """``(name, first_lsn)`` of every live segment, oldest first."""
        with self._lock:
            return [(segment.name, segment.first_lsn) for segment in self._segments]

    def delete_segments_below(self, lsn: int) -> list[str]:
        """Delete sealed segments whose every record is at or below ``lsn``; their names."""
        with self._lock:
            doomed: list[_Segment] = []
            for segment, successor in zip(self._segments, self._segments[1:], strict=False):
                if not segment.sealed or successor.first_lsn - 1 > lsn:
                    break
                doomed.append(segment)
            del self._segments[: len(doomed)]
        try:
            for segment in doomed:
                self._fs.unlink(join(self._dir, segment.name))
            if doomed:
                self._fs.fsync_dir(self._dir)
        except OSError as exc:
            raise StorageError(f"{self._dir}: cannot delete old segments: {exc}") from exc
        return [segment.name for segment in doomed]

    def close(self) -> None:
        """Sync what is queued (unless the log failed) and close the active segment."""
        try:
            if self._failed is None:
                self.sync()
        finally:
            with self._lock:
                if self._failed is None:
                    self._failed = StorageClosed(f"{self._dir}: the log is closed")
            self._active.close()

    # ------------------------------------------------------------------ helpers

    def _queue_rolling(self, records: Sequence[StorageRecord]) -> None:
        """Queue ``records`` one by one, with a roll-over marker where one is due."""
        lsn = self._lsn_appended
        for record in records:
            lsn += 1
            frame = encode_record(record, self._config.record_max_bytes)
            if self._segment_records and (
                self._segment_bytes + len(frame) > self._config.segment_max_bytes
            ):
                self._rolls.append((len(self._pending), lsn))
                self._segment_bytes = SEGMENT_HEADER_BYTES
                self._segment_records = 0
            self._pending.append(frame)
            self._segment_bytes += len(frame)
            self._segment_records += 1

    def _write_queued(self) -> None:
        """Write what is queued and move ``lsn_written`` (hold ``_sync_lock``)."""
        with self._lock:
            if self._failed is not None:  # sim: one-way: the committer stops at a failure
                raise self._failed
            items, self._pending = self._pending, []
            rolls, self._rolls = self._rolls, []
            target = self._lsn_appended
        if target == self._lsn_written:
            return
        try:
            self._write(items, rolls)
        except OSError as exc:
            raise self._fail(exc) from exc
        self._lsn_written = target

    def _sync_written(self) -> int:
        """fdatasync what was written; move ``lsn_durable``; tell listeners (hold the sync lock)."""
        if self._failed is not None:  # sim: one-way: the committer stops at a failure
            raise self._failed
        target = self._lsn_written
        if target == self._lsn_durable:
            return target
        try:
            self._active.fdatasync()
        except OSError as exc:
            raise self._fail(exc) from exc
        with self._lock:
            self._lsn_durable = target
        # Listeners are GroupCommitter's (commit.py); the simulator's committer has none.
        for listener in self._listeners:  # sim: one-way: the simulator adds no listener
            listener(target)
        return target

    def _fail(self, exc: OSError) -> StorageFailed:
        failure = StorageFailed(f"{self._dir}: log write or sync failed: {exc}")
        self._failed = failure
        return failure

    def _write(self, items: list[bytes], rolls: list[tuple[int, int]]) -> None:
        start = 0
        for index, first_lsn in rolls:
            self._roll_over(b"".join(items[start:index]), first_lsn)
            start = index
        # _queue_rolling puts each roll-over marker before the frame that asked
        # for it, so frames always follow the last roll-over.
        if start < len(items):  # sim: one-way: frames always follow the last roll-over
            self._active.write(b"".join(items[start:] if start else items))

    def _roll_over(self, tail: bytes, first_lsn: int) -> None:
        old, old_segment = self._active, self._segments[-1]
        if tail:
            old.write(tail)
        old.fdatasync()
        new = self._create_segment(first_lsn)
        with self._lock:
            self._segments.append(_Segment(segment_name(first_lsn), first_lsn, False))
            self._active = new
        old.write(encode_seal(first_lsn))
        old.fdatasync()
        old.close()
        with self._lock:
            old_segment.sealed = True

    def _create_segment(self, first_lsn: int) -> AppendFile:
        file = self._fs.open_append(join(self._dir, segment_name(first_lsn)), create=True)
        file.write(encode_segment_header(first_lsn, self._incarnation))
        file.fsync()
        self._fs.fsync_dir(self._dir)
        return file
