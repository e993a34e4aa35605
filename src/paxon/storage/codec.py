"""Records to bytes and back: one checksummed frame per record.

Frame layout (little-endian)::

    offset  size  field
    0       4     L, the payload length
    4       4     L ^ 0xFFFFFFFF: a damaged length is caught here, a torn one is short
    8       1     type
    9       L     payload
    9 + L   4     CRC32C of bytes [0, 9 + L)

Payloads (u64 unless noted)::

    PROMISE   1  round, node
    ACCEPT    2  slot, round, node, n:u32, n x (client_id, seq, size:u32, size bytes)
    CHOSEN    3  slot_chosen
    SNAPSHOT  4  slot
    CONFIG    5  n:u32, n x member
    SEAL     16  next lsn: the segment is complete; the next one starts there
    32..34       snapshot files only (see ``snapshot.py``)

Rules:
- Encoding checks every limit before it returns a byte: a record over
  ``record_max_bytes`` or a field over 64 bits raises, and nothing is written.
- Decoding trusts nothing. ``scan_frame`` sorts what it finds at an offset into
  a whole frame, a clean end, a *torn* frame or a *bad* one (anything else).
  Torn is what a crash leaves of a write: the bytes run out inside a frame
  whose header is sound; or only zero bytes remain; or the frame was cut and
  the file system zero-filled the rest (every byte from a point inside the
  frame to the end of the buffer is zero, and the bytes before that point
  are the right ones: the file's size reached the media, some of its data
  did not). Whether torn
  is acceptable is the caller's decision (only at the end of the last
  segment); the codec only classifies.
- A whole frame that fails its CRC is bad, even at the very end, unless that
  zero-filled cut explains it: everything from a point at or before its CRC
  field is zero, or from inside the CRC field after bytes that match the
  right CRC. A synced frame with a flipped bit passes for that only with odds
  of about 2**-32, those of a CRC collision.
- A single flipped bit anywhere in a frame is always caught: in the length by
  the check word, everywhere else by the CRC, which covers header and payload.
- The CRC is CRC32C from the ``crc32c`` package (hardware accelerated), never a
  Python loop. ``encode_records`` is the hot path: one ``struct`` call and one
  CRC per single-command accept.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from crc32c import crc32c

from paxon.protocol.records import (
    AcceptRecord,
    ChosenRecord,
    PromiseRecord,
    Record,
    SnapshotRecord,
)
from paxon.protocol.types import Ballot, Command, Entry, Value
from paxon.storage.errors import RecordEncodingError, RecordTooLarge


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    """The cluster's voting members from this point of the log on."""

    members: tuple[int, ...]

    # Nothing in the runtime writes a ConfigRecord yet (membership changes are
    # not built): tests/storage/test_storage_codec.py and the snapshot tests
    # cover its encoding, decoding and recovery.
    def __post_init__(self) -> None:  # sim: unreachable: the runtime writes no ConfigRecord
        if not self.members:
            raise ValueError("a configuration needs at least one member")
        if any(member <= 0 for member in self.members):
            raise ValueError(f"member ids must be > 0, got {self.members}")
        if len(set(self.members)) != len(self.members):
            raise ValueError(f"duplicate member ids in {self.members}")


StorageRecord = Record | ConfigRecord
"""Everything the log holds: the core's records and configuration changes."""

TYPE_PROMISE: Final = 1
TYPE_ACCEPT: Final = 2
TYPE_CHOSEN: Final = 3
TYPE_SNAPSHOT: Final = 4
TYPE_CONFIG: Final = 5
TYPE_SEAL: Final = 16
TYPE_SNAPSHOT_META: Final = 32
TYPE_SNAPSHOT_DATA: Final = 33
TYPE_SNAPSHOT_END: Final = 34

HEADER_BYTES: Final = 9
CRC_BYTES: Final = 4
FRAME_OVERHEAD: Final = HEADER_BYTES + CRC_BYTES
_MASK: Final = 0xFFFFFFFF

_HEADER = struct.Struct("<IIB")
_CRC = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_U64X2 = struct.Struct("<QQ")
_U32 = struct.Struct("<I")
_U32X2 = struct.Struct("<II")
_ACCEPT = struct.Struct("<QQQI")
_COMMAND = struct.Struct("<QQI")
# Header, accept fields and one command header in a single pack (the hot path).
_ACCEPT_ONE = struct.Struct("<IIBQQQIQQI")
_ACCEPT_ONE_FIXED: Final = _ACCEPT_ONE.size - HEADER_BYTES
_ACCEPT_NOOP = struct.Struct("<IIBQQQI")
_ACCEPT_NOOP_FIXED: Final = _ACCEPT_NOOP.size - HEADER_BYTES


# ------------------------------------------------------------------ encoding


def encode_records(records: Sequence[StorageRecord], record_max: int) -> tuple[list[bytes], int]:
    """Frames for ``records`` in order, as pieces to join, and their total size."""
    pieces: list[bytes] = []
    put = pieces.append
    total = 0
    pack_one = _ACCEPT_ONE.pack
    pack_crc = _CRC.pack
    try:
        for record in records:
            if record.__class__ is AcceptRecord:
                entry = record.entry
                commands = entry.value.commands
                if len(commands) == 1:
                    ballot = entry.ballot
                    command = commands[0]
                    payload = command.payload
                    size = _ACCEPT_ONE_FIXED + len(payload)
                    # NodeConfig makes every command fit a record (node/config.py);
                    # the simulator's commands are tens of bytes.
                    if size > record_max:  # sim: one-way: a command always fits a record
                        raise RecordTooLarge(f"accept for slot {entry.slot}: {size} bytes")
                    body = (
                        pack_one(
                            size,
                            size ^ _MASK,
                            TYPE_ACCEPT,
                            entry.slot,
                            ballot.round,
                            ballot.node_id,
                            1,
                            command.client_id,
                            command.seq,
                            len(payload),
                        )
                        + payload
                    )
                    put(body)
                    put(pack_crc(crc32c(body)))
                    total += size + FRAME_OVERHEAD
                    continue
            frame = encode_record(record, record_max)
            put(frame)
            total += len(frame)
    except struct.error as exc:
        raise RecordEncodingError(f"a record field does not fit its encoding: {exc}") from None
    return pieces, total


def accept_record_bytes(commands: int, payload_bytes: int) -> int:
    """The size an accept record of ``commands`` commands holding ``payload_bytes``
    of payload in all is checked by against ``record_max`` (its frame adds
    ``FRAME_OVERHEAD``): the slot, ballot and count, then each command's
    client, sequence and length before its payload."""
    return _ACCEPT.size + commands * _COMMAND.size + payload_bytes


def encode_record(record: StorageRecord, record_max: int) -> bytes:
    """One record's frame (the general path; ``encode_records`` is the fast one)."""
    try:
        match record:
            case AcceptRecord(entry):
                return encode_frame(TYPE_ACCEPT, _accept_payload(entry), record_max)
            case PromiseRecord(ballot):
                return encode_frame(TYPE_PROMISE, _U64X2.pack(ballot.round, ballot.node_id))
            case ChosenRecord(slot_chosen):
                return encode_frame(TYPE_CHOSEN, _U64.pack(slot_chosen))
            case SnapshotRecord(slot):
                return encode_frame(TYPE_SNAPSHOT, _U64.pack(slot))
            case ConfigRecord(members):  # sim: unreachable: the runtime writes no ConfigRecord
                payload = _U32.pack(len(members)) + b"".join(_U64.pack(m) for m in members)
                return encode_frame(TYPE_CONFIG, payload, record_max)
            case _:  # sim: unreachable: every record is one of the cases (mypy)
                raise RecordEncodingError(f"not a storage record: {record!r}")
    except struct.error as exc:
        raise RecordEncodingError(f"a field of {record!r} does not fit: {exc}") from None


def encode_frame(frame_type: int, payload: bytes, record_max: int = _MASK) -> bytes:
    size = len(payload)
    if size > record_max:  # sim: one-way: records fit (NodeConfig); test_storage_codec.py
        raise RecordTooLarge(f"record of type {frame_type}: {size} bytes > {record_max}")
    body = _HEADER.pack(size, size ^ _MASK, frame_type) + payload
    return body + _CRC.pack(crc32c(body))


def encode_seal(lsn_next: int) -> bytes:
    return encode_frame(TYPE_SEAL, _U64.pack(lsn_next))


def _accept_payload(entry: Entry) -> bytes:
    commands = entry.value.commands
    parts = [_ACCEPT.pack(entry.slot, entry.ballot.round, entry.ballot.node_id, len(commands))]
    for command in commands:
        parts.append(_COMMAND.pack(command.client_id, command.seq, len(command.payload)))
        parts.append(command.payload)
    return b"".join(parts)


def encode_entry_payload(entry: Entry) -> bytes:
    """An accept payload alone (snapshot checkpoints reuse the log's encoding)."""
    try:
        return _accept_payload(entry)
    except struct.error as exc:
        raise RecordEncodingError(f"a field of {entry!r} does not fit: {exc}") from None


# ------------------------------------------------------------------ scanning


@dataclass(frozen=True, slots=True)
class Frame:
    """A whole frame whose checks passed, at ``offset``; the next one starts at ``end``."""

    offset: int
    frame_type: int
    payload: memoryview
    end: int


@dataclass(frozen=True, slots=True)
class FrameStop:
    """Why scanning stopped at ``offset``: ``end``, ``torn`` or ``bad`` (with a reason)."""

    offset: int
    kind: str
    reason: str = ""


def scan_frame(buf: memoryview, offset: int, record_max: int) -> Frame | FrameStop:
    """Classify the bytes of ``buf`` at ``offset`` (see the module rules)."""
    size_buf = len(buf)
    left = size_buf - offset
    if left == 0:
        return FrameStop(offset, "end")
    if left < 8:
        return FrameStop(offset, "torn", f"{left} bytes left, less than a frame header")
    size, check = _U32X2.unpack_from(buf, offset)
    if size ^ _MASK != check or size > record_max:
        zeros_from = _zeros_from(buf, offset)
        if zeros_from == offset:
            return FrameStop(offset, "torn", f"zero-filled tail of {left} bytes")
        if zeros_from < offset + 8:
            reason = f"frame header zero from its byte {zeros_from - offset} to the end"
            return FrameStop(offset, "torn", reason)
        # A length over the limit with a good check word was written under a
        # larger record_max; the simulator keeps one per seed.
        if size ^ _MASK != check:  # sim: one-way: record_max never shrinks within a seed
            return FrameStop(offset, "bad", "damaged frame length (check word mismatch)")
        return FrameStop(offset, "bad", f"frame length {size} over the limit {record_max}")
    end = offset + HEADER_BYTES + size + CRC_BYTES
    if end > size_buf:
        return FrameStop(offset, "torn", f"frame of {end - offset} bytes cut after {left}")
    (crc_stored,) = _CRC.unpack_from(buf, end - CRC_BYTES)
    crc = crc32c(buf[offset : end - CRC_BYTES])
    if crc != crc_stored:
        if _cut_then_zeros(buf, offset, end, crc):
            cut = _zeros_from(buf, offset) - offset
            reason = f"frame of {end - offset} bytes zero from its byte {cut} to the end"
            return FrameStop(offset, "torn", reason)
        return FrameStop(offset, "bad", "checksum mismatch")
    frame_type = buf[offset + 8]
    return Frame(offset, frame_type, buf[offset + HEADER_BYTES : end - CRC_BYTES], end)


def _cut_then_zeros(buf: memoryview, offset: int, end: int, crc: int) -> bool:
    """Whether a whole frame failing its CRC is a cut write zero-filled to the end.

    Every byte from some point to the end of ``buf`` is zero, and that point
    is at or before the CRC field, or inside it where the bytes before it are
    those of the right CRC (the body is whole, the CRC was cut). A synced frame
    with a flipped bit passes this only with odds of about 2**-32.
    """
    zeros_from = _zeros_from(buf, offset)
    crc_at = end - CRC_BYTES
    if zeros_from <= crc_at:
        return True
    kept = zeros_from - crc_at
    return zeros_from < end and buf[crc_at:zeros_from] == _CRC.pack(crc)[:kept]


def _zeros_from(buf: memoryview, offset: int) -> int:
    """Where the run of zero bytes that ends ``buf`` starts (at ``offset`` or later)."""
    return offset + len(buf[offset:].tobytes().rstrip(b"\x00"))


# ------------------------------------------------------------------ decoding


class MalformedPayload(ValueError):
    """A frame passed its checksum but its payload is not a valid record."""


def decode_record(frame_type: int, payload: memoryview) -> StorageRecord:
    """The record a log frame holds; raises ``MalformedPayload`` with a reason."""
    try:
        if frame_type == TYPE_ACCEPT:
            return AcceptRecord(decode_entry_payload(payload))
        if frame_type == TYPE_PROMISE:
            _expect_size(payload, 16)
            return PromiseRecord(Ballot(*_U64X2.unpack_from(payload)))
        if frame_type == TYPE_CHOSEN:
            _expect_size(payload, 8)
            return ChosenRecord(_U64.unpack_from(payload)[0])
        if frame_type == TYPE_SNAPSHOT:
            _expect_size(payload, 8)
            return SnapshotRecord(_U64.unpack_from(payload)[0])
        # A frame that passes its CRC holds what paxon wrote (a flipped bit or a
        # misdirected write fails the CRC or stops the scan first): what follows
        # catches a writer bug, another version's record, or a CRC collision
        # (2**-32), none of which a seed makes. test_storage_codec.py covers it.
        if frame_type == TYPE_CONFIG:  # sim: unreachable: the runtime writes no ConfigRecord
            return _decode_config(payload)
    except (ValueError, struct.error) as exc:  # sim: unreachable: needs a writer bug
        if isinstance(exc, MalformedPayload):
            raise
        raise MalformedPayload(f"invalid record of type {frame_type}: {exc}") from None
    raise MalformedPayload(f"unknown record type {frame_type}")  # sim: unreachable: writer bug


def decode_seal(payload: memoryview) -> int:
    _expect_size(payload, 8)
    lsn_next: int = _U64.unpack_from(payload)[0]
    return lsn_next


def decode_entry_payload(payload: memoryview) -> Entry:
    # The raises below need a frame that passes its CRC with a payload paxon
    # never writes (see decode_record); test_storage_codec.py covers them.
    if len(payload) < _ACCEPT.size:  # sim: one-way: needs a writer bug
        raise MalformedPayload(f"accept payload of {len(payload)} bytes is too short")
    slot, ballot_round, ballot_node, count = _ACCEPT.unpack_from(payload)
    offset = _ACCEPT.size
    commands: list[Command] = []
    for _ in range(count):
        if offset + _COMMAND.size > len(payload):  # sim: one-way: needs a writer bug
            raise MalformedPayload(f"accept names {count} commands but ends after {len(commands)}")
        client_id, seq, size = _COMMAND.unpack_from(payload, offset)
        offset += _COMMAND.size
        if offset + size > len(payload):  # sim: one-way: needs a writer bug
            raise MalformedPayload("a command runs past the end of its record")
        commands.append(Command(client_id, seq, payload[offset : offset + size].tobytes()))
        offset += size
    if offset != len(payload):  # sim: one-way: needs a writer bug
        raise MalformedPayload(f"{len(payload) - offset} stray bytes after the commands")
    return Entry(slot, Ballot(ballot_round, ballot_node), Value(tuple(commands)))


def _decode_config(payload: memoryview) -> ConfigRecord:  # sim: unreachable: no ConfigRecord
    if len(payload) < 4:
        raise MalformedPayload("config payload too short")
    (count,) = _U32.unpack_from(payload)
    _expect_size(payload, 4 + 8 * count)
    members = struct.unpack_from(f"<{count}Q", payload, 4)
    return ConfigRecord(tuple(members))


def _expect_size(payload: memoryview, size: int) -> None:
    if len(payload) != size:  # sim: one-way: needs a writer bug (see decode_record)
        raise MalformedPayload(f"payload of {len(payload)} bytes, expected {size}")
