"""The errors storage raises on purpose, one typed hierarchy under ``PaxonError``.

Rules:
- Every error about a file names the file, and where it makes sense the byte
  offset, so ``str(error)`` is the one line an operator needs.
- Damage found at start-up (``DataDirDamaged`` and its subclasses) stops the
  node; nothing in paxon catches it to carry on.
- ``StorageFailed`` means an I/O call failed while writing (a failed fsync
  above all): the log cannot tell what reached the disk, so it refuses every
  later append and sync until the process restarts and recovers.
"""

from __future__ import annotations

from paxon.errors import PaxonError


class StorageError(PaxonError):
    """Base of every storage error."""


class DataDirDamaged(StorageError):
    """The data directory cannot be trusted; the node must not start from it."""

    def __init__(self, file: str, reason: str, offset: int | None = None) -> None:
        self.file = file
        self.offset = offset
        self.reason = reason
        where = file if offset is None else f"{file}: offset {offset}"
        super().__init__(f"{where}: {reason}")


class CorruptRecord(DataDirDamaged):
    """A log record (or segment header) failed its checks and is not the torn tail."""

    def __init__(self, file: str, offset: int, reason: str) -> None:
        super().__init__(file, reason, offset)


class CorruptSnapshot(DataDirDamaged):
    """A snapshot file failed its checks."""

    def __init__(self, file: str, offset: int, reason: str) -> None:
        super().__init__(file, reason, offset)


class UnrestorableSnapshot(DataDirDamaged):
    """A snapshot whose checksums hold but whose contents the state machine refuses.

    The bytes are what a node wrote or accepted, so this is a format or
    software mismatch (or a bug), not a damaged disk: start-up stops on it
    rather than fall back (see ``docs/storage.md``).
    """

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(file, f"the state machine cannot restore this snapshot: {reason}")


class CorruptIdentity(DataDirDamaged):
    """The identity file is unreadable, or missing beside existing log files."""


class MissingSegment(DataDirDamaged):
    """A log segment that must exist (by the seals and snapshots) is gone."""


class MissingSnapshot(DataDirDamaged):
    """The log says slots were compacted into a snapshot, but no valid snapshot covers them."""


class IdentityMismatch(DataDirDamaged):
    """The data directory, or a file in it, belongs to another node or cluster."""


class DataDirLocked(StorageError):
    """Another process holds the data directory."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"{path}: data directory is in use by another process")


class DataDirInsecure(StorageError):
    """Another user could change the data directory: refused before anything is read."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class RecordEncodingError(StorageError):
    """A record cannot be written: a field is out of range."""


class RecordTooLarge(RecordEncodingError):
    """An encoded record is over ``StorageConfig.record_max_bytes``."""


class StorageFailed(StorageError):
    """A write or sync failed; the log refuses further work until restarted."""


class StorageClosed(StorageError):
    """The log or committer was closed."""
