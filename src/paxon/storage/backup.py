"""Backup files (``paxon snapshot save``): a key-value store's whole state at one
revision, checksummed, written atomically.

Layout::

    b"PAXONBAK" | version u16 | 0 u16 | meta length u32      16 bytes
    meta: UTF-8 JSON object (BackupMeta), at most META_MAX_BYTES
    data: meta["data_bytes"] bytes, the store's snapshot (``KvStore.snapshot``:
          keys, values, versions, MVCC history, leases, locks, users and roles)
    CRC32C u32 of every byte before it | b"PAXONEND"                12 bytes

Rules:
- The sender streams it (``encode_chunks``); the receiver writes ``FILE.tmp``,
  fsyncs it, checks the whole file (``read_backup``), then renames it to
  ``FILE`` and fsyncs the directory (``save_atomically``). A ``FILE`` that
  exists is complete; a transfer cut short leaves no ``FILE`` (and removes
  its ``.tmp``).
- Reading checks everything before returning anything: magic, version, meta
  length and fields, data length against the file's length, the trailer and
  the checksum. Any defect is ``CorruptBackup`` naming the file and why. A file
  above ``BACKUP_MAX_BYTES`` is refused before it is read.
- Whether the data decodes as a store is the restorer's check
  (``paxon.node.restore``), which ``paxon snapshot status`` runs too.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Final

from crc32c import crc32c

from paxon.errors import BadRequest
from paxon.storage.errors import StorageError

BACKUP_MAGIC: Final = b"PAXONBAK"
BACKUP_END: Final = b"PAXONEND"
BACKUP_VERSION: Final = 1
META_MAX_BYTES: Final = 65_536
BACKUP_MAX_BYTES: Final = 8 * 1024**3
"""8 GiB: far above what one node holds in memory (the whole state is)."""
CHUNK_BYTES: Final = 1_048_576
_HEAD = struct.Struct("<8sHHI")
_TRAILER = struct.Struct("<I8s")


class CorruptBackup(StorageError):  # sim: unreachable: backups (HTTP, CLI)
    """A backup file failed its checks."""

    exit_code = 2

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: not a usable paxon backup: {reason}")
        self.file = file
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BackupMeta:  # sim: unreachable: backups (HTTP, CLI)
    """What a backup says about itself."""

    revision: int  # the store's revision: the backup holds every change up to it
    keys: int  # live keys at that revision
    slot: int  # the log slot the state covers (every slot below it is applied)
    log_time_ms: int  # the cluster's log time then (lease expiries are in it)
    node_id: int  # the member that took it
    cluster_id: str
    taken_at: str  # the member's wall clock, ISO 8601 UTC (for people only)
    data_bytes: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: object, file: str) -> BackupMeta:
        fields = cls.__dataclass_fields__
        if not isinstance(value, dict) or set(value) != set(fields):
            raise CorruptBackup(file, f"meta must have exactly the fields {sorted(fields)}")
        for name in ("revision", "keys", "slot", "log_time_ms", "node_id", "data_bytes"):
            if type(value[name]) is not int or not 0 <= value[name] < 2**63:
                raise CorruptBackup(file, f"meta field {name!r} is not an integer >= 0")
        for name in ("cluster_id", "taken_at"):
            if type(value[name]) is not str:
                raise CorruptBackup(file, f"meta field {name!r} is not text")
        return cls(**value)


@dataclass(frozen=True, slots=True)
class Backup:  # sim: unreachable: backups (HTTP, CLI)
    meta: BackupMeta
    data: bytes
    checksum: int  # the CRC32C in the trailer (checked)
    file_bytes: int


def encoded_size(meta: BackupMeta) -> int:  # sim: unreachable: backups (HTTP, CLI)
    """The size of the backup file ``encode_chunks(meta, ...)`` makes."""
    meta_bytes = len(json.dumps(meta.to_json(), sort_keys=True).encode())
    return _HEAD.size + meta_bytes + meta.data_bytes + _TRAILER.size


def encode_chunks(  # sim: unreachable: backups (HTTP, CLI)
    meta: BackupMeta, data: bytes, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """The backup file's bytes in pieces of at most about ``chunk_bytes``."""
    assert meta.data_bytes == len(data), "meta.data_bytes must be the data's length"
    meta_bytes = json.dumps(meta.to_json(), sort_keys=True).encode()
    assert len(meta_bytes) <= META_MAX_BYTES
    head = _HEAD.pack(BACKUP_MAGIC, BACKUP_VERSION, 0, len(meta_bytes)) + meta_bytes
    checksum = crc32c(head)
    yield head
    view = memoryview(data)
    for start in range(0, len(data), chunk_bytes):
        chunk = bytes(view[start : start + chunk_bytes])
        checksum = crc32c(chunk, checksum)
        yield chunk
    yield _TRAILER.pack(checksum, BACKUP_END)


def read_backup(path: str) -> Backup:  # sim: unreachable: backups (HTTP, CLI)
    """Read and check the whole backup at ``path``; ``CorruptBackup`` if it is not one,
    ``BadRequest`` if it cannot be read (both exit 2)."""
    try:
        size = os.path.getsize(path)
        if size > BACKUP_MAX_BYTES:
            raise CorruptBackup(
                path, f"{size} bytes, more than the {BACKUP_MAX_BYTES} a backup has"
            )
        with open(path, "rb") as file:
            content = file.read()
    except OSError as error:
        raise BadRequest(f"{path}: cannot read it: {error.strerror or error}") from None
    return decode_backup(content, path)


def decode_backup(content: bytes, file: str) -> Backup:  # sim: unreachable: backups (HTTP, CLI)
    if len(content) < _HEAD.size + _TRAILER.size:
        raise CorruptBackup(file, f"only {len(content)} bytes: too short for a backup")
    magic, version, reserved, meta_length = _HEAD.unpack_from(content)
    if magic != BACKUP_MAGIC:
        raise CorruptBackup(file, "it does not start with PAXONBAK")
    if version != BACKUP_VERSION or reserved != 0:
        raise CorruptBackup(file, f"format version {version}; this paxon reads {BACKUP_VERSION}")
    if meta_length > META_MAX_BYTES or _HEAD.size + meta_length + _TRAILER.size > len(content):
        raise CorruptBackup(file, f"meta length {meta_length} does not fit")
    checksum, end = _TRAILER.unpack_from(content, len(content) - _TRAILER.size)
    if end != BACKUP_END:
        raise CorruptBackup(file, "it does not end with PAXONEND: cut short?")
    actual = crc32c(content[: len(content) - _TRAILER.size])
    if actual != checksum:
        raise CorruptBackup(file, f"checksum mismatch (file says {checksum:08x}, is {actual:08x})")
    meta_end = _HEAD.size + meta_length
    try:
        meta_json = json.loads(content[_HEAD.size : meta_end].decode())
    except (UnicodeDecodeError, ValueError):
        raise CorruptBackup(file, "its meta is not JSON") from None
    meta = BackupMeta.from_json(meta_json, file)
    data = content[meta_end : len(content) - _TRAILER.size]
    if len(data) != meta.data_bytes:
        raise CorruptBackup(file, f"{len(data)} data bytes, meta says {meta.data_bytes}")
    return Backup(meta, data, checksum, len(content))


async def save_atomically(  # sim: unreachable: backups (HTTP, CLI)
    path: str, chunks: AsyncIterator[bytes]
) -> Backup:
    """Write ``chunks`` to ``path`` as the rules say; the backup, checked. Nothing is
    left at ``path`` (nor its ``.tmp``) unless all of it arrived and checks."""
    tmp = path + ".tmp"
    directory = os.path.dirname(os.path.abspath(path))
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    renamed = False
    try:
        with open(descriptor, "wb") as file:
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > BACKUP_MAX_BYTES:
                    raise CorruptBackup(path, f"more than {BACKUP_MAX_BYTES} bytes sent")
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        backup = read_backup(tmp)
        os.rename(tmp, path)
        renamed = True
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return backup
    finally:
        if not renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
