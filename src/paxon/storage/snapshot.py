"""Snapshot files: a state machine image at a slot, plus the acceptor state at an lsn.

A snapshot covers every slot below ``slot`` (the state machine ``data``) and
every log record up to ``lsn``: it carries the acceptor state those records
folded into (``checkpoint``: promised ballot, chosen prefix, accepted entries
at ``slot`` or above, configuration). Recovery starts from the checkpoint and
replays the log after ``lsn``, so segments holding only records up to ``lsn``
are no longer needed.

Rules:
- Written by the atomic-file recipe: ``<name>.tmp``, fsync, rename, fsync the
  directory. A snapshot that exists under its final name is complete; any
  defect in it is damage, never a torn tail.
- The log is durable through ``lsn`` before the snapshot is written, so the
  log is never behind a snapshot.
- The data is stored and streamed back in chunks, each a checksummed frame;
  reading never holds more than one chunk in memory.

Layout: a 32-byte header ``b"PAXONSNP" | version u16 | 0 u16 | lsn u64 |
incarnation u64 | CRC32C u32``, then frames (``codec.py``):
META (slot, promised round, promised node, slot_chosen, entry count u64 each;
has-config u8), CONFIG if any, one ACCEPT per checkpoint entry, DATA chunks,
END (data bytes u64, chunk count u64), and nothing after END.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType

from crc32c import crc32c

from paxon.protocol.records import AcceptRecord, ChosenRecord, PromiseRecord, Record, SnapshotRecord
from paxon.protocol.types import Ballot, Entry
from paxon.storage.codec import (
    FRAME_OVERHEAD,
    HEADER_BYTES,
    TYPE_ACCEPT,
    TYPE_CONFIG,
    TYPE_SNAPSHOT_DATA,
    TYPE_SNAPSHOT_END,
    TYPE_SNAPSHOT_META,
    ConfigRecord,
    Frame,
    FrameStop,
    MalformedPayload,
    decode_entry_payload,
    decode_record,
    encode_entry_payload,
    encode_frame,
    encode_record,
    scan_frame,
)
from paxon.storage.errors import CorruptSnapshot, IdentityMismatch
from paxon.storage.fs import AppendFile, FileSystem, ReadFile, join, write_durably
from paxon.storage.layout import snapshot_name

SNAPSHOT_MAGIC = b"PAXONSNP"
SNAPSHOT_VERSION = 1
_HEADER = struct.Struct("<8sHHQQ")
_CRC = struct.Struct("<I")
_HEADER_BYTES = _HEADER.size + _CRC.size
_META = struct.Struct("<QQQQQB")
_END = struct.Struct("<QQ")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The acceptor state folded from every log record up to a snapshot's lsn."""

    ballot_promised: Ballot
    slot_chosen: int
    entries: tuple[Entry, ...]
    config: ConfigRecord | None


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """What a snapshot file says about itself (``data_bytes`` once fully read)."""

    name: str
    lsn: int
    slot: int
    checkpoint: Checkpoint
    data_bytes: int

    @property
    def config(self) -> ConfigRecord | None:
        return self.checkpoint.config

    def checkpoint_records(self) -> list[Record]:
        """Records that ``paxon.protocol.records.recover`` folds into the checkpoint state."""
        records: list[Record] = [
            SnapshotRecord(self.slot),
            PromiseRecord(self.checkpoint.ballot_promised),
            ChosenRecord(self.checkpoint.slot_chosen),
        ]
        records.extend(AcceptRecord(entry) for entry in self.checkpoint.entries)
        return records


# ------------------------------------------------------------------ writing


def write_snapshot(
    fs: FileSystem,
    directory: str,
    *,
    lsn: int,
    slot: int,
    checkpoint: Checkpoint,
    data: bytes | Iterable[bytes],
    incarnation: int,
    chunk_bytes: int,
    record_max: int,
) -> SnapshotMeta:
    """Write a snapshot durably; returns its metadata once the rename is durable."""
    name = snapshot_name(lsn, slot)

    def fill(file: AppendFile) -> int:
        file.write(_encode_head(lsn, slot, checkpoint, incarnation, record_max))
        data_bytes = chunks = 0
        for piece in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
            view = memoryview(piece)
            for start in range(0, len(view), chunk_bytes):
                chunk = bytes(view[start : start + chunk_bytes])
                file.write(encode_frame(TYPE_SNAPSHOT_DATA, chunk, record_max))
                data_bytes += len(chunk)
                chunks += 1
        file.write(encode_frame(TYPE_SNAPSHOT_END, _END.pack(data_bytes, chunks)))
        return data_bytes

    data_bytes = write_durably(fs, directory, name, fill)
    return SnapshotMeta(name, lsn, slot, checkpoint, data_bytes)


def _encode_head(
    lsn: int, slot: int, checkpoint: Checkpoint, incarnation: int, record_max: int
) -> bytes:
    header = _HEADER.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, 0, lsn, incarnation)
    promised = checkpoint.ballot_promised
    meta = _META.pack(
        slot,
        promised.round,
        promised.node_id,
        checkpoint.slot_chosen,
        len(checkpoint.entries),
        checkpoint.config is not None,
    )
    parts = [header, _CRC.pack(crc32c(header)), encode_frame(TYPE_SNAPSHOT_META, meta)]
    if checkpoint.config is not None:  # sim: one-way: the runtime writes no ConfigRecord
        parts.append(encode_record(checkpoint.config, record_max))
    for entry in checkpoint.entries:
        parts.append(encode_frame(TYPE_ACCEPT, encode_entry_payload(entry), record_max))
    return b"".join(parts)


# ------------------------------------------------------------------ reading


class SnapshotReader:
    """Streams one snapshot: ``meta`` at once, the data chunk by chunk.

    ``chunks()`` checks every chunk as it goes and the END frame at the end; a
    defect raises ``CorruptSnapshot`` naming the file and offset.
    """

    def __init__(
        self, fs: FileSystem, directory: str, name: str, incarnation: int, record_max: int
    ):
        self.path = join(directory, name)
        self._frames = _FrameReader(fs.open_read(self.path), self.path, record_max)
        try:
            self._head = _read_head(self._frames, name, incarnation)
        except BaseException:
            self._frames.close()
            raise
        self._pending: Frame | None = self._frames.next()
        self._consumed = False

    @property
    def lsn(self) -> int:
        return self._head.lsn

    @property
    def slot(self) -> int:
        return self._head.slot

    @property
    def checkpoint(self) -> Checkpoint:
        return self._head.checkpoint

    def chunks(self) -> Iterator[bytes]:
        if self._consumed:  # sim: one-way: API guard; the runtime reads each reader once
            raise ValueError(f"{self.path}: the data was already read")
        self._consumed = True
        data_bytes = chunks = 0
        frame = self._pending
        while frame is not None and frame.frame_type == TYPE_SNAPSHOT_DATA:
            data_bytes += len(frame.payload)
            chunks += 1
            yield frame.payload.tobytes()
            frame = self._frames.next()
        self._finish(frame, data_bytes, chunks)

    def read_all(self) -> bytes:
        return b"".join(self.chunks())

    def verify(self) -> SnapshotMeta:
        """Read the whole file, checking every byte; the metadata with ``data_bytes``."""
        return self._meta(sum(len(chunk) for chunk in self.chunks()))

    def read_verified(self) -> tuple[SnapshotMeta, bytes]:
        """``verify``, keeping the data: the metadata and the whole state machine image."""
        data = self.read_all()
        return self._meta(len(data)), data

    def close(self) -> None:
        self._frames.close()

    def __enter__(self) -> SnapshotReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _meta(self, data_bytes: int) -> SnapshotMeta:
        head = self._head
        return SnapshotMeta(head.name, head.lsn, head.slot, head.checkpoint, data_bytes)

    def _finish(self, frame: Frame | None, data_bytes: int, chunks: int) -> None:
        offset = self._frames.offset
        # Every frame read so far passed its CRC: a damaged or lost write stopped
        # _FrameReader.next already. A wrong END is a writer bug, or a file cut
        # at a frame boundary, which no fault makes (snapshots are fsynced before
        # their rename); test_storage_snapshot.py covers these.
        if frame is None:  # sim: one-way: no fault cuts a snapshot short
            raise CorruptSnapshot(self.path, offset, "ends without an END frame")
        if frame.frame_type != TYPE_SNAPSHOT_END:  # sim: one-way: needs a writer bug
            raise CorruptSnapshot(self.path, frame.offset, f"unexpected frame {frame.frame_type}")
        if len(frame.payload) != _END.size:  # sim: one-way: needs a writer bug
            raise CorruptSnapshot(self.path, frame.offset, "malformed END frame")
        if _END.unpack_from(frame.payload) != (data_bytes, chunks):  # sim: one-way: writer bug
            raise CorruptSnapshot(self.path, frame.offset, "END does not match the data read")
        if self._frames.next() is not None:  # sim: one-way: no fault appends to a file
            raise CorruptSnapshot(self.path, frame.end, "bytes after the END frame")


@dataclass(frozen=True, slots=True)
class _Head:
    name: str
    lsn: int
    slot: int
    checkpoint: Checkpoint


def _read_head(frames: _FrameReader, name: str, incarnation: int) -> _Head:
    path = frames.path
    raw = frames.read_raw(_HEADER_BYTES)
    # Snapshots are fsynced before their rename and no fault shortens a file;
    # a header that passes its CRC was written by this paxon for this disk
    # (a misdirected snapshot write lands only in its own file).
    if len(raw) < _HEADER_BYTES:  # sim: one-way: no fault shortens a snapshot
        raise CorruptSnapshot(path, 0, "file shorter than a snapshot header")
    magic, version, _, lsn, file_incarnation = _HEADER.unpack_from(raw)
    if crc32c(raw[: _HEADER.size]) != _CRC.unpack_from(raw, _HEADER.size)[0]:
        raise CorruptSnapshot(path, 0, "snapshot header checksum mismatch")
    if magic != SNAPSHOT_MAGIC or version != SNAPSHOT_VERSION:  # sim: one-way: a CRC-good header
        raise CorruptSnapshot(path, 0, f"not a paxon snapshot (magic {magic!r})")
    if file_incarnation != incarnation:  # sim: one-way: a CRC-good header of this disk
        raise IdentityMismatch(path, "snapshot belongs to another data directory (incarnation)")
    meta = frames.next()
    # The header, META and checkpoint are one write: damage to it fails a CRC first.
    if (  # sim: one-way: needs a writer bug
        meta is None or meta.frame_type != TYPE_SNAPSHOT_META or len(meta.payload) != _META.size
    ):
        raise CorruptSnapshot(path, _HEADER_BYTES, "missing or malformed META frame")
    slot, ballot_round, ballot_node, slot_chosen, count, has_config = _META.unpack_from(
        meta.payload
    )
    try:
        config = _read_config(frames) if has_config else None
        entries = tuple(_read_entry(frames) for _ in range(count))
        checkpoint = Checkpoint(Ballot(ballot_round, ballot_node), slot_chosen, entries, config)
    except (MalformedPayload, ValueError) as exc:
        raise CorruptSnapshot(path, frames.offset, f"malformed checkpoint: {exc}") from None
    if any(entry.slot < slot for entry in entries):  # sim: one-way: needs a writer bug
        raise CorruptSnapshot(path, meta.offset, "checkpoint holds an entry below the slot")
    return _Head(name, lsn, slot, checkpoint)


def _read_config(frames: _FrameReader) -> ConfigRecord:  # sim: unreachable: no ConfigRecord
    frame = frames.next()
    if frame is None or frame.frame_type != TYPE_CONFIG:
        raise MalformedPayload("expected a CONFIG frame")
    record = decode_record(frame.frame_type, frame.payload)
    assert isinstance(record, ConfigRecord)
    return record


def _read_entry(frames: _FrameReader) -> Entry:
    frame = frames.next()
    if frame is None or frame.frame_type != TYPE_ACCEPT:  # sim: one-way: needs a writer bug
        raise MalformedPayload("expected an ACCEPT frame")
    return decode_entry_payload(frame.payload)


class _FrameReader:
    """Whole, checked frames from a file read sequentially (in blocks)."""

    _BLOCK_BYTES = 64 * 1024

    def __init__(self, file: ReadFile, path: str, record_max: int) -> None:
        self._file = file
        self.path = path
        self._record_max = record_max
        self._buffer = b""
        self._position = 0
        self.offset = 0

    def read_raw(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the file)."""
        available = len(self._buffer) - self._position
        if available < size:
            more = self._file.read(max(size - available, self._BLOCK_BYTES))
            self._buffer = self._buffer[self._position :] + more
            self._position = 0
        data = self._buffer[self._position : self._position + size]
        self._position += len(data)
        self.offset += len(data)
        return data

    def next(self) -> Frame | None:
        """The next frame, or None at a clean end of file."""
        start = self.offset
        head = self.read_raw(8)
        if not head:
            return None
        size = struct.unpack_from("<I", head)[0] if len(head) == 8 else 0
        rest = self.read_raw(min(size, self._record_max) + HEADER_BYTES - 8 + 4)
        found = scan_frame(memoryview(head + rest), 0, self._record_max)
        if isinstance(found, FrameStop):
            reason = "file ends inside a frame" if found.kind == "torn" else found.reason
            raise CorruptSnapshot(self.path, start, reason)
        # Reads ask for the frame's exact size, so a whole frame ends right there.
        if found.end != len(head) + len(rest):  # sim: one-way: cannot differ, see above
            raise CorruptSnapshot(self.path, start, "frame length mismatch")
        assert found.end - FRAME_OVERHEAD == len(found.payload)
        return Frame(start, found.frame_type, found.payload, start + found.end)

    def close(self) -> None:
        self._file.close()
