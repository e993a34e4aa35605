"""A node's data directory: open it (recovering), append, sync, snapshot.

``Storage`` ties the pieces together: the identity check, recovery
(``recovery.py``), the log (``wal.py``) and snapshots (``snapshot.py``).

Contract:
- ``Storage.open`` creates a fresh directory (identity first, then the first
  segment, each durable before the next step) or recovers an existing one.
  It refuses, with the typed error naming the file and offset, a directory of
  another node or cluster and any damage other than a torn tail; the only
  repairs it makes are those of ``Inspection`` (cut a torn tail, drop the
  empty segment of a cut-short roll-over, delete ``*.tmp``), each made durable
  before the log is used.
- Before anything is read, a directory another user could write (or that is
  owned by another user) is refused with ``DataDirInsecure`` (``private.py``);
  new directories are made 0700 and files 0600.
- ``append``, ``flush`` and ``sync`` are the log's (see ``wal.py``): one
  appending thread, syncs from any thread. ``append`` also folds each record into a mirror of
  the durable state (the rules of ``paxon.protocol.records.recover``), so a
  snapshot can carry the acceptor state its lsn stands for.
- A snapshot is taken in two steps: ``begin_snapshot(slot)`` on the appending
  thread fixes the lsn and the checkpoint; ``SnapshotWriter.write(data)`` may
  run on any thread: it waits until the log is durable through that lsn,
  writes the file durably, then keeps the newest ``snapshots_retained`` valid
  snapshots and deletes the sealed segments wholly below the oldest of them.
- The caller must save a snapshot before it appends the ``SnapshotRecord`` of
  an installed one (the core's ``install_snapshot``): recovery refuses a log
  that marks slots as snapshotted when no snapshot covers them.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from paxon.protocol.records import (
    AcceptRecord,
    ChosenRecord,
    DurableState,
    PromiseRecord,
    SnapshotRecord,
)
from paxon.protocol.types import Ballot, Entry
from paxon.storage.codec import ConfigRecord, StorageRecord
from paxon.storage.config import StorageConfig
from paxon.storage.errors import DataDirLocked, StorageError
from paxon.storage.fs import DirLock, FileSystem, OsFileSystem, join, parent
from paxon.storage.identity import Identity, write_identity
from paxon.storage.layout import LOCK_NAME
from paxon.storage.private import check_private
from paxon.storage.recovery import Inspection, TornTail, inspect_data_dir
from paxon.storage.snapshot import Checkpoint, SnapshotMeta, SnapshotReader, write_snapshot
from paxon.storage.wal import DurableListener, Wal


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a node starts from.

    ``state`` goes to ``Replica(durable=...)``; the state machine is restored
    from ``snapshot`` (``Storage.open_snapshot()``) when there is one, then
    the chosen entries after ``snapshot.slot`` are applied again.
    """

    state: DurableState
    config: ConfigRecord | None
    snapshot: SnapshotMeta | None
    lsn_last: int
    records_replayed: int
    torn: TornTail | None
    warnings: tuple[str, ...]
    fresh: bool


class Storage:
    """One node's data directory, open for writing. See the module contract."""

    def __init__(
        self,
        fs: FileSystem,
        directory: str,
        *,
        config: StorageConfig,
        identity: Identity,
        recovered: Recovered,
        wal: Wal,
        snapshots: list[SnapshotMeta],
        lock: DirLock,
    ) -> None:
        """Use ``Storage.open``."""
        self.fs = fs
        self.directory = directory
        self.config = config
        self.identity = identity
        self.recovered = recovered
        self._wal = wal
        self._lock = lock
        self._snapshot_lock = threading.Lock()  # guards _snapshots
        self._snapshot_write_lock = threading.Lock()  # one snapshot file written at a time
        self._snapshots = snapshots
        self._mirror = _Mirror(recovered.state, recovered.config)

    @classmethod
    def open(
        cls,
        directory: str,
        *,
        node_id: int,
        cluster_id: str,
        fs: FileSystem | None = None,
        config: StorageConfig | None = None,
        incarnation: int | None = None,
    ) -> Storage:
        """Open (creating or recovering) the data directory of ``node_id`` in ``cluster_id``.

        ``incarnation`` is used only when the directory is new (default: random).
        """
        fs = fs or OsFileSystem()
        config = config or StorageConfig()
        try:
            return _open(fs, directory, node_id, cluster_id, config, incarnation)
        except OSError as exc:
            raise StorageError(f"{directory}: cannot open the data directory: {exc}") from exc

    # ------------------------------------------------------------------ the log

    @property
    def lsn_appended(self) -> int:
        return self._wal.lsn_appended

    @property
    def lsn_durable(self) -> int:
        return self._wal.lsn_durable

    def append(self, records: Sequence[StorageRecord]) -> int:
        """Queue ``records`` after all earlier ones; the lsn of the last (see ``Wal.append``)."""
        lsn = self._wal.append(records)
        self._mirror.fold(records)
        return lsn

    @property
    def lsn_written(self) -> int:
        return self._wal.lsn_written

    def flush(self) -> int:
        """Write every appended record to the segment files, no fdatasync; the last lsn written.

        A crash before the next ``sync``/``sync_through`` may tear those bytes
        (see ``Wal.flush``): this is the "write" event of a simulated group commit.
        """
        return self._wal.flush()

    def sync(self) -> int:
        return self._wal.sync()

    def sync_through(self, lsn: int) -> int:
        return self._wal.sync_through(lsn)

    def add_durable_listener(self, listener: DurableListener) -> None:
        self._wal.add_durable_listener(listener)

    def segments(self) -> list[tuple[str, int]]:
        return self._wal.segments()

    # ------------------------------------------------------------------ snapshots

    def begin_snapshot(self, slot: int, *, config: ConfigRecord | None = None) -> SnapshotWriter:
        """Fix a snapshot covering slots below ``slot`` at the current lsn (appending thread).

        ``config`` is the configuration in effect at ``slot``; by default the
        last ``ConfigRecord`` appended. A writer may be dropped unwritten.
        """
        with self._snapshot_lock:
            newest = self._snapshots[-1].slot if self._snapshots else 0
        # The runtime snapshots at its applied slot, which never falls below
        # its last snapshot nor its log start (test_storage_snapshot.py tries).
        if slot < max(newest, self._mirror.log_start):  # sim: one-way: argument check
            raise ValueError(f"snapshot slot {slot} is below an earlier snapshot's")
        checkpoint = self._mirror.checkpoint(slot, config)
        return SnapshotWriter(self, self._wal.lsn_appended, slot, checkpoint)

    def save_snapshot(
        self, slot: int, data: bytes | Iterable[bytes], *, config: ConfigRecord | None = None
    ) -> SnapshotMeta:
        """``begin_snapshot(slot).write(data)`` in one blocking call."""
        return self.begin_snapshot(slot, config=config).write(data)

    def snapshots(self) -> list[SnapshotMeta]:
        """The valid snapshots kept, oldest first."""
        with self._snapshot_lock:
            return list(self._snapshots)

    def open_snapshot(self, meta: SnapshotMeta | None = None) -> SnapshotReader:
        """A reader of ``meta`` (default: the newest snapshot) that streams its data."""
        if meta is None:  # sim: unreachable: the runtime always names the snapshot it opens
            with self._snapshot_lock:
                if not self._snapshots:
                    raise StorageError(f"{self.directory}: there is no snapshot")
                meta = self._snapshots[-1]
        return SnapshotReader(
            self.fs,
            self.directory,
            meta.name,
            self.identity.incarnation,
            self.config.record_max_bytes,
        )

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Sync what is queued, close the log and release the directory."""
        try:
            self._wal.close()
        finally:
            self._lock.release()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def _write_snapshot(
        self, writer: SnapshotWriter, data: bytes | Iterable[bytes]
    ) -> SnapshotMeta:
        try:
            with self._snapshot_write_lock:
                self._wal.sync_through(writer.lsn)
                meta = write_snapshot(
                    self.fs,
                    self.directory,
                    lsn=writer.lsn,
                    slot=writer.slot,
                    checkpoint=writer.checkpoint,
                    data=data,
                    incarnation=self.identity.incarnation,
                    chunk_bytes=self.config.snapshot_chunk_bytes,
                    record_max=self.config.record_max_bytes,
                )
                self._retire_old(meta)
                return meta
        except OSError as exc:
            raise StorageError(f"{self.directory}: cannot write a snapshot: {exc}") from exc

    def _retire_old(self, meta: SnapshotMeta) -> None:
        """Keep the newest snapshots; drop older ones, then segments below the oldest kept."""
        with self._snapshot_lock:
            kept = [old for old in self._snapshots if old.name != meta.name] + [meta]
            kept.sort(key=lambda snapshot: (snapshot.lsn, snapshot.slot))
            doomed = kept[: -self.config.snapshots_retained]
            self._snapshots = kept[-self.config.snapshots_retained :]
            lsn_oldest = self._snapshots[0].lsn
        for old in doomed:
            self.fs.unlink(join(self.directory, old.name))
        if doomed:
            self.fs.fsync_dir(self.directory)
        self._wal.delete_segments_below(lsn_oldest)


class SnapshotWriter:
    """A snapshot fixed at ``lsn`` and ``slot``; ``write`` stores it (any thread)."""

    def __init__(self, storage: Storage, lsn: int, slot: int, checkpoint: Checkpoint) -> None:
        self._storage = storage
        self.lsn = lsn
        self.slot = slot
        self.checkpoint = checkpoint
        self._written = False

    def write(self, data: bytes | Iterable[bytes]) -> SnapshotMeta:
        """Store the state machine image ``data`` (bytes, or chunks of it) durably."""
        if self._written:  # sim: one-way: API guard; the runtime writes each writer once
            raise ValueError("this snapshot was already written")
        self._written = True
        return self._storage._write_snapshot(self, data)


class _Mirror:
    """The durable state the appended records fold into, by the rules of ``recover``."""

    def __init__(self, state: DurableState, config: ConfigRecord | None) -> None:
        self.promised = (state.ballot_promised.round, state.ballot_promised.node_id)
        self.entries: dict[int, Entry] = dict(state.entries)
        self.slot_chosen = state.slot_chosen
        self.log_start = state.log_start
        self.config = config

    def fold(self, records: Sequence[StorageRecord]) -> None:
        entries = self.entries
        log_start = self.log_start
        promised = self.promised
        for record in records:
            kind = record.__class__
            if kind is AcceptRecord:
                entry = record.entry  # type: ignore[union-attr]
                # Slots below log_start (a snapshot's slot) are applied, hence known
                # chosen, and the replica writes no AcceptRecord for a slot it knows
                # chosen, so none is appended below it.
                if entry.slot >= log_start:  # sim: one-way: no accept below log_start
                    entries[entry.slot] = entry
                ballot = entry.ballot
                key = (ballot.round, ballot.node_id)
                if key > promised:
                    promised = key
            elif kind is ChosenRecord:
                self.slot_chosen = max(self.slot_chosen, record.slot_chosen)  # type: ignore[union-attr]
            elif kind is PromiseRecord:
                ballot = record.ballot  # type: ignore[union-attr]
                promised = max(promised, (ballot.round, ballot.node_id))
            elif kind is SnapshotRecord:
                self._cut(record.slot)  # type: ignore[union-attr]
                log_start = self.log_start
            elif kind is ConfigRecord:  # sim: unreachable: the runtime writes no ConfigRecord
                self.config = record  # type: ignore[assignment]
        self.promised = promised

    def checkpoint(self, slot: int, config: ConfigRecord | None) -> Checkpoint:
        """The state as if a ``SnapshotRecord(slot)`` were folded in now."""
        self._cut(slot)
        entries = tuple(self.entries[key] for key in sorted(self.entries))
        return Checkpoint(Ballot(*self.promised), self.slot_chosen, entries, config or self.config)

    def state(self) -> DurableState:
        return DurableState(
            Ballot(*self.promised), dict(self.entries), self.slot_chosen, self.log_start
        )

    def _cut(self, slot: int) -> None:
        self.log_start = max(self.log_start, slot)
        self.slot_chosen = max(self.slot_chosen, slot)
        for stale in [key for key in self.entries if key < slot]:
            del self.entries[stale]


# ------------------------------------------------------------------ opening


def _open(
    fs: FileSystem,
    directory: str,
    node_id: int,
    cluster_id: str,
    config: StorageConfig,
    incarnation: int | None,
) -> Storage:
    _make_dirs(fs, directory)
    exposed = check_private(fs, directory)
    lock = fs.lock(join(directory, LOCK_NAME))
    # One process per simulated disk; a crash or a stop releases the lock.
    if lock is None:  # sim: one-way: tests/storage/test_storage_wal.py opens one twice
        raise DataDirLocked(directory)
    try:
        found = inspect_data_dir(
            fs, directory, record_max=config.record_max_bytes, expected=(node_id, cluster_id)
        )
        if found.damage is not None:
            raise found.damage
        found.warnings[:0] = exposed
        _repair(fs, found)
        identity = found.identity
        if identity is None:
            identity = Identity(node_id, cluster_id, _new_incarnation(incarnation))
            write_identity(fs, directory, identity)
        return _start(fs, directory, config, identity, found, lock)
    except BaseException:
        lock.release()
        raise


def _make_dirs(fs: FileSystem, directory: str) -> None:
    """``mkdir -p``, each new directory made durable in its parent."""
    if fs.is_dir(directory):
        return
    above = parent(directory)
    if above != directory:  # sim: one-way: only "/" is its own parent, and it always exists
        _make_dirs(fs, above)
    fs.mkdir(directory)
    fs.fsync_dir(above)


def _new_incarnation(incarnation: int | None) -> int:
    return incarnation if incarnation is not None else secrets.randbits(64)


def _repair(fs: FileSystem, found: Inspection) -> None:
    """Make the repairs the inspection lists, each durable before the log is used."""
    directory = found.directory
    names_changed = bool(found.tmp_files or found.drop_segment)
    for name in found.tmp_files:
        fs.unlink(join(directory, name))
    if found.drop_segment is not None:
        fs.unlink(found.drop_segment)
    if names_changed:
        fs.fsync_dir(directory)
    if found.torn is not None:
        file = fs.open_append(found.torn.path)
        try:
            file.truncate(found.torn.offset)
            file.fsync()
        finally:
            file.close()


def _start(
    fs: FileSystem,
    directory: str,
    config: StorageConfig,
    identity: Identity,
    found: Inspection,
    lock: DirLock,
) -> Storage:
    live = [scan for scan in found.segments if scan.path != found.drop_segment]
    segments = [
        (os.path.basename(scan.path), scan.first_lsn, scan.end == "sealed") for scan in live
    ]
    wal = Wal(
        fs,
        directory,
        config=config,
        incarnation=identity.incarnation,
        segments=segments,
        lsn_last=found.lsn_last,
        active_records=live[-1].records if live else 0,
    )
    recovered = Recovered(
        state=found.state or DurableState(),
        config=found.config,
        snapshot=found.snapshot_used,
        lsn_last=found.lsn_last,
        records_replayed=found.records_replayed,
        torn=found.torn,
        warnings=tuple(found.warnings),
        fresh=found.identity is None,
    )
    snapshots = [entry.meta for entry in found.snapshots if entry.meta is not None]
    return Storage(
        fs,
        directory,
        config=config,
        identity=identity,
        recovered=recovered,
        wal=wal,
        snapshots=snapshots,
        lock=lock,
    )
