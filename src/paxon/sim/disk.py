"""Simulated disks that forget, on a crash, whatever was not yet fsynced.

``MemoryDisk`` keeps records as objects (fast); ``WalDisk`` runs the real
write-ahead log over ``MemFileSystem`` (slower, and it tests storage too).

Records are appended to a volatile tail; ``sync_through(lsn)`` makes the tail
up to ``lsn`` durable (``WalDisk``: everything appended, as one fsync of the
real log does) and returns the records that just became durable, in log order,
for the property checker. ``crash()`` drops the volatile tail, as a power cut does.
The log sequence number (lsn) of a record is its 1-based position in the log.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from paxon.protocol.records import DurableState, Record, recover
from paxon.storage.config import StorageConfig
from paxon.storage.memfs import MemFileSystem
from paxon.storage.storage import Storage


class MemoryDisk:
    def __init__(self) -> None:
        self._durable: list[Record] = []
        self._volatile: list[Record] = []
        self.syncs = 0
        self.records_lost = 0

    @property
    def lsn_appended(self) -> int:
        return len(self._durable) + len(self._volatile)

    @property
    def lsn_durable(self) -> int:
        return len(self._durable)

    def append(self, records: Sequence[Record]) -> int:
        """Append at the volatile tail; returns the lsn of the last record."""
        self._volatile.extend(records)
        return self.lsn_appended

    def sync_through(self, lsn: int) -> list[Record]:
        count = lsn - len(self._durable)
        if count <= 0:
            return []
        synced = self._volatile[:count]
        self._durable.extend(synced)
        del self._volatile[:count]
        self.syncs += 1
        return synced

    def crash(self) -> None:
        self.records_lost += len(self._volatile)
        self._volatile.clear()

    def recover(self) -> DurableState:
        return recover(self._durable)


class WalDisk:
    """The real write-ahead log (``paxon.storage``) over an in-memory, faulty file system.

    Same interface as ``MemoryDisk``, so the simulator explores protocol and
    storage faults together: records go through the real codec, segments and
    checksums; a crash loses what was not fsynced and tears the last unsynced
    write at a random byte; a restart runs the real recovery.
    """

    def __init__(self, node_id: int, rng: random.Random, segment_max_bytes: int = 64 * 1024):
        self._fs = MemFileSystem()
        self._node_id = node_id
        self._rng = rng
        self._config = StorageConfig(
            segment_max_bytes=segment_max_bytes,
            record_max_bytes=segment_max_bytes // 2,
            snapshot_chunk_bytes=segment_max_bytes // 4,
        )
        self._storage: Storage | None = None
        self._storage = self._open()
        # The records appended but not yet durable, to report them once they are.
        self._volatile: list[Record] = []
        self.syncs = 0
        self.records_lost = 0

    @property
    def lsn_appended(self) -> int:
        return self._live().lsn_appended

    @property
    def lsn_durable(self) -> int:
        return self._live().lsn_durable

    def append(self, records: Sequence[Record]) -> int:
        lsn = self._live().append(records)
        self._volatile.extend(records)
        return lsn

    def sync_through(self, lsn: int) -> list[Record]:
        storage = self._live()
        durable_before = storage.lsn_durable
        if lsn <= durable_before:
            return []
        assert len(self._volatile) == storage.lsn_appended - durable_before
        storage.sync_through(lsn)
        self.syncs += 1
        count = storage.lsn_durable - durable_before
        synced = self._volatile[:count]
        del self._volatile[:count]
        return synced

    def crash(self) -> None:
        storage = self._live()
        self.records_lost += storage.lsn_appended - storage.lsn_durable
        self._volatile.clear()
        self._storage = None
        self._fs.crash(tear=lambda _path, unsynced: self._rng.randint(0, unsynced))

    def recover(self) -> DurableState:
        if self._storage is None:
            self._storage = self._open()
        return self._storage.recovered.state

    def _open(self) -> Storage:
        return Storage.open(
            f"/node{self._node_id}",
            node_id=self._node_id,
            cluster_id="sim",
            fs=self._fs,
            config=self._config,
            incarnation=1,
        )

    def _live(self) -> Storage:
        if self._storage is None:
            raise RuntimeError(f"node {self._node_id}'s disk is down (crashed, not recovered)")
        return self._storage
