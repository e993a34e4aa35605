"""An in-memory disk that forgets, on a crash, whatever was not yet fsynced.

Records are appended to a volatile tail; ``sync_through(lsn)`` makes the tail
up to ``lsn`` durable. ``crash()`` drops the volatile tail, as a power cut does.
The log sequence number (lsn) of a record is its 1-based position in the log.
"""

from __future__ import annotations

from collections.abc import Sequence

from paxon.protocol.records import Record


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

    def sync_through(self, lsn: int) -> None:
        count = lsn - len(self._durable)
        if count <= 0:
            return
        self._durable.extend(self._volatile[:count])
        del self._volatile[:count]
        self.syncs += 1

    def crash(self) -> None:
        self.records_lost += len(self._volatile)
        self._volatile.clear()

    def durable_records(self) -> list[Record]:
        return list(self._durable)
