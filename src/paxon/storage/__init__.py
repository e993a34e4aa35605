"""Disk: the write-ahead log, group commit, snapshots and recovery of a node.

Start with ``Storage.open``; put a ``GroupCommitter`` over it in the runtime.
Everything reaches the disk through a ``FileSystem``: ``OsFileSystem`` for
real, ``MemFileSystem`` in tests and the simulator. The on-disk format and
the recovery rules are in ``docs/storage.md``.
"""

from paxon.storage.check import CheckReport, check_data_dir
from paxon.storage.codec import ConfigRecord, StorageRecord
from paxon.storage.commit import CommitHandle, GroupCommitter
from paxon.storage.config import StorageConfig
from paxon.storage.errors import (
    CorruptIdentity,
    CorruptRecord,
    CorruptSnapshot,
    DataDirDamaged,
    DataDirInsecure,
    DataDirLocked,
    IdentityMismatch,
    MissingSegment,
    MissingSnapshot,
    RecordEncodingError,
    RecordTooLarge,
    StorageClosed,
    StorageError,
    StorageFailed,
    UnrestorableSnapshot,
)
from paxon.storage.fs import AppendFile, FileAccess, FileSystem, OsFileSystem, ReadFile
from paxon.storage.identity import Identity
from paxon.storage.memfs import MemFileSystem, PowerCut
from paxon.storage.recovery import Inspection, TornTail, inspect_data_dir
from paxon.storage.snapshot import Checkpoint, SnapshotMeta, SnapshotReader
from paxon.storage.storage import Recovered, SnapshotWriter, Storage
from paxon.storage.wal import Wal

__all__ = [
    "AppendFile",
    "CheckReport",
    "Checkpoint",
    "CommitHandle",
    "ConfigRecord",
    "CorruptIdentity",
    "CorruptRecord",
    "CorruptSnapshot",
    "DataDirDamaged",
    "DataDirInsecure",
    "DataDirLocked",
    "FileAccess",
    "FileSystem",
    "GroupCommitter",
    "Identity",
    "IdentityMismatch",
    "Inspection",
    "MemFileSystem",
    "MissingSegment",
    "MissingSnapshot",
    "OsFileSystem",
    "PowerCut",
    "ReadFile",
    "RecordEncodingError",
    "RecordTooLarge",
    "Recovered",
    "SnapshotMeta",
    "SnapshotReader",
    "SnapshotWriter",
    "Storage",
    "StorageClosed",
    "StorageConfig",
    "StorageError",
    "StorageFailed",
    "StorageRecord",
    "TornTail",
    "UnrestorableSnapshot",
    "Wal",
    "check_data_dir",
    "inspect_data_dir",
]
