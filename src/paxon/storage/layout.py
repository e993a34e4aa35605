"""Names of the files in a data directory.

    IDENTITY                                     node id, cluster id, incarnation
    FIRST-CONFIG                                 the configuration of the first start
    LOCK                                         held (flock) by the running node
    DISK-PROBE.tmp                               readiness's probe write (node/readiness.py)
    wal-<first lsn, 20 digits>.seg               log segments, in lsn order
    snapshot-<lsn, 20 digits>-<slot, 20 digits>.snap
    *.tmp                                        a write that was never renamed

Zero-padded decimal numbers make name order equal numeric order. Any other
name is not paxon's and is left alone.
"""

from __future__ import annotations

import re

IDENTITY_NAME = "IDENTITY"
FIRST_CONFIG_NAME = "FIRST-CONFIG"
LOCK_NAME = "LOCK"
DISK_PROBE_NAME = "DISK-PROBE"
TMP_SUFFIX = ".tmp"

_SEGMENT = re.compile(r"wal-(\d{20})\.seg")
_SNAPSHOT = re.compile(r"snapshot-(\d{20})-(\d{20})\.snap")


def segment_name(first_lsn: int) -> str:
    return f"wal-{first_lsn:020d}.seg"


def parse_segment_name(name: str) -> int | None:
    """The first lsn a segment file holds, or None when ``name`` is not a segment."""
    match = _SEGMENT.fullmatch(name)
    return int(match.group(1)) if match else None


def snapshot_name(lsn: int, slot: int) -> str:
    return f"snapshot-{lsn:020d}-{slot:020d}.snap"


def parse_snapshot_name(name: str) -> tuple[int, int] | None:
    """``(lsn, slot)`` of a snapshot file, or None when ``name`` is not a snapshot."""
    match = _SNAPSHOT.fullmatch(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def is_paxon_tmp(name: str) -> bool:
    """A temporary file paxon writes before renaming it into place."""
    if not name.endswith(TMP_SUFFIX):
        return False
    final = name[: -len(TMP_SUFFIX)]
    return (
        final in (IDENTITY_NAME, FIRST_CONFIG_NAME, DISK_PROBE_NAME)
        or parse_snapshot_name(final) is not None
    )
