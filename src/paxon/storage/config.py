"""Every limit of the storage layer, in one place ("a limit on everything").

Going over a limit is an error (``RecordTooLarge``), never a silent split or
truncation. The defaults suit a server; tests shrink them to exercise
roll-over and snapshot chunking with little data.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StorageConfig:
    # A segment rolls over once an append would take it past this size.
    segment_max_bytes: int = 64 * MIB
    # One encoded record (frame payload); also bounds what a reader accepts.
    record_max_bytes: int = 16 * MIB
    # Snapshot data is stored, and streamed back, in chunks of at most this size.
    snapshot_chunk_bytes: int = 1 * MIB
    # Valid snapshots kept; the log is kept from the oldest of them, so a
    # damaged newest snapshot can fall back to the one before it.
    snapshots_retained: int = 2

    def __post_init__(self) -> None:
        # Argument checks: every configuration the simulator builds is legal.
        if self.segment_max_bytes < 1024:
            raise ValueError(  # sim: unreachable: argument check
                "segment_max_bytes must be >= 1024"
            )
        if not 64 <= self.record_max_bytes <= self.segment_max_bytes // 2:
            raise ValueError(  # sim: unreachable: argument check
                "record_max_bytes must be in [64, segment_max_bytes / 2]"
            )
        if not 1 <= self.snapshot_chunk_bytes <= self.record_max_bytes:
            raise ValueError(  # sim: unreachable: argument check
                "snapshot_chunk_bytes must be in [1, record_max_bytes]"
            )
        if self.snapshots_retained < 1:
            raise ValueError("snapshots_retained must be >= 1")  # sim: unreachable: argument check
