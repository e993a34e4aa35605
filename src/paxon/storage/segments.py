"""Log segment files: the header, and a read-only scan of one segment.

A segment is a 32-byte header followed by record frames (``codec.py``)::

    b"PAXONWAL" | version u16 | 0 u16 | first lsn u64 | incarnation u64 | CRC32C u32

Record number ``first lsn + i`` is the i-th record frame of the segment. A
segment that is complete ends with a SEAL frame naming the first lsn of the
next segment; nothing may follow a seal.

``scan_segment`` reads one segment and says what it found, without judging
whether a torn end is acceptable: only the last segment may end torn, and
only recovery knows which segment is last (see the table in ``recovery.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from crc32c import crc32c

from paxon.storage.codec import (
    TYPE_SEAL,
    Frame,
    FrameStop,
    MalformedPayload,
    StorageRecord,
    decode_record,
    decode_seal,
    scan_frame,
)
from paxon.storage.errors import CorruptRecord, DataDirDamaged, IdentityMismatch

SEGMENT_MAGIC = b"PAXONWAL"
SEGMENT_VERSION = 1
_HEADER = struct.Struct("<8sHHQQ")
_CRC = struct.Struct("<I")
SEGMENT_HEADER_BYTES = _HEADER.size + _CRC.size

Visit = Callable[[int, StorageRecord], None]
"""Called with ``(lsn, record)`` for every record of a scan, in order."""


def encode_segment_header(first_lsn: int, incarnation: int) -> bytes:
    body = _HEADER.pack(SEGMENT_MAGIC, SEGMENT_VERSION, 0, first_lsn, incarnation)
    return body + _CRC.pack(crc32c(body))


@dataclass(slots=True)
class SegmentScan:
    """What one segment holds.

    ``end`` is one of: ``sealed`` (complete, ``seal_next`` set), ``open``
    (frames end cleanly at the end of the file), ``torn`` (the file ends inside
    a frame, or in zeros, at ``valid_bytes``), ``header_torn`` (the file holds
    the first bytes of the header its name and incarnation call for, then
    zeros, if any, to its end: a header cut short) or ``damaged`` (see
    ``damage``; a short file with any other byte is damaged).
    """

    path: str
    first_lsn: int
    size: int
    records: int = 0
    valid_bytes: int = 0
    end: str = "open"
    seal_next: int | None = None
    torn_reason: str = ""
    damage: DataDirDamaged | None = None

    @property
    def lsn_last(self) -> int:
        """The lsn of the segment's last record (``first_lsn - 1`` when it holds none)."""
        return self.first_lsn + self.records - 1


def scan_segment(
    data: bytes,
    path: str,
    first_lsn: int,
    incarnation: int,
    record_max: int,
    visit: Visit | None = None,
) -> SegmentScan:
    """Check every byte of one segment's ``data``; hand each record to ``visit``."""
    scan = SegmentScan(path, first_lsn, len(data))
    if len(data) < SEGMENT_HEADER_BYTES:
        # A file shorter than its header: a creation cut short keeps a prefix
        # of the header (then zeros, maybe); any other byte is damage (swarm
        # seed 2000016: a flipped bit in a 22-byte header was taken as torn).
        changed = _header_changed_at(data, first_lsn, incarnation)
        # Bit rot in a header a crash cut short: no seed of 0-299 has both.
        if changed is None:  # sim: one-way: swarm seeds 2000016 and 2001382 take it
            scan.end = "header_torn"
        else:
            reason = f"segment header cut short, its byte {changed} not the header's"
            scan.end, scan.damage = "damaged", CorruptRecord(path, changed, reason)
        return scan
    damage = _check_header(data, path, first_lsn, incarnation)
    if damage is not None:
        if _header_changed_at(data, first_lsn, incarnation) is None:
            scan.end = "header_torn"
        else:
            scan.end, scan.damage = "damaged", damage
        return scan
    view = memoryview(data)
    offset = scan.valid_bytes = SEGMENT_HEADER_BYTES
    lsn = first_lsn
    while True:
        found = scan_frame(view, offset, record_max)
        if isinstance(found, FrameStop):
            _stop(scan, found, path)
            return scan
        if scan.seal_next is not None:
            scan.end = "damaged"
            scan.damage = CorruptRecord(path, found.offset, "a record follows the seal")
            return scan
        if not _take(scan, found, lsn, path, visit):
            return scan
        if found.frame_type != TYPE_SEAL:
            lsn += 1
        offset = scan.valid_bytes = found.end


def _take(scan: SegmentScan, frame: Frame, lsn: int, path: str, visit: Visit | None) -> bool:
    try:
        if frame.frame_type == TYPE_SEAL:
            scan.seal_next = decode_seal(frame.payload)
            if scan.seal_next != lsn:
                raise MalformedPayload(f"seal names lsn {scan.seal_next}, expected {lsn}")
            return True
        record = decode_record(frame.frame_type, frame.payload)
    except MalformedPayload as exc:
        scan.end = "damaged"
        scan.damage = CorruptRecord(path, frame.offset, str(exc))
        return False
    scan.records += 1
    if visit is not None:
        visit(lsn, record)
    return True


def _stop(scan: SegmentScan, stop: FrameStop, path: str) -> None:
    if stop.kind == "end":
        scan.end = "sealed" if scan.seal_next is not None else "open"
    elif stop.kind == "torn":
        scan.end, scan.torn_reason = "torn", stop.reason
    else:
        scan.end = "damaged"
        scan.damage = CorruptRecord(path, stop.offset, stop.reason)


def _header_changed_at(data: bytes, first_lsn: int, incarnation: int) -> int | None:
    """None if ``data`` is this segment's header cut short, then zeros to the
    end; else the first byte that is not.

    A crash before the header's fsync may leave the file short, or at its new
    size with zeros where the bytes did not land (as a torn frame,
    ``codec.py``). The header's bytes are known, so the kept part must be
    exactly their prefix; a flipped bit is not (unless it zeroes the last
    non-zero byte kept, or sets a zero byte after it to the header's byte
    there: then the bytes are a cut header's, and nothing is lost by taking
    them as one). The last resort of the search is never taken: a file
    whose bytes all match the header is either a cut one or whole.
    """
    kept = len(data.rstrip(b"\x00"))
    header = encode_segment_header(first_lsn, incarnation)
    if kept < SEGMENT_HEADER_BYTES and data[:kept] == header[:kept]:
        return None
    return next(
        (at for at, (got, due) in enumerate(zip(data, header, strict=False)) if got != due),
        min(len(data), SEGMENT_HEADER_BYTES),
    )


def _check_header(
    data: bytes, path: str, first_lsn: int, incarnation: int
) -> DataDirDamaged | None:
    magic, version, _, header_lsn, header_incarnation = _HEADER.unpack_from(data)
    if crc32c(data[: _HEADER.size]) != _CRC.unpack_from(data, _HEADER.size)[0]:
        return CorruptRecord(path, 0, "segment header checksum mismatch")
    # A header that passes its CRC is a segment header of this directory: a
    # misdirected write that lands on it is another segment's header (or fails
    # the CRC), so only the lsn can differ.
    if magic != SEGMENT_MAGIC or version != SEGMENT_VERSION:  # sim: one-way: see above
        return CorruptRecord(path, 0, f"not a paxon segment (magic {magic!r}, version {version})")
    if header_lsn != first_lsn:
        return CorruptRecord(path, 0, f"header says first lsn {header_lsn}, the name {first_lsn}")
    if header_incarnation != incarnation:  # sim: one-way: see above
        return IdentityMismatch(path, "segment belongs to another data directory (incarnation)")
    return None
