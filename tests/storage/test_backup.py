"""Backup files (``paxon.storage.backup``): what is written reads back; every
defect is refused with its reason; a transfer cut short leaves no file."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from crc32c import crc32c

from paxon.storage.backup import (
    BackupMeta,
    CorruptBackup,
    decode_backup,
    encode_chunks,
    encoded_size,
    read_backup,
    save_atomically,
)

DATA = bytes(range(256)) * 40


def meta(data: bytes = DATA) -> BackupMeta:
    return BackupMeta(
        revision=7,
        keys=3,
        slot=12,
        log_time_ms=1_000,
        node_id=2,
        cluster_id="paxon",
        taken_at="2026-01-01T00:00:00Z",
        data_bytes=len(data),
    )


def encoded(data: bytes = DATA) -> bytes:
    return b"".join(encode_chunks(meta(data), data, chunk_bytes=1000))


async def stream(pieces: Iterable[bytes], fail_after: int | None = None) -> AsyncIterator[bytes]:
    for index, piece in enumerate(pieces):
        if fail_after is not None and index == fail_after:
            raise ConnectionResetError("the sender went away")
        yield piece


def test_a_backup_reads_back_whole() -> None:
    content = encoded()
    assert len(content) == encoded_size(meta())
    backup = decode_backup(content, "f")
    assert backup.meta == meta() and backup.data == DATA and backup.file_bytes == len(content)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda c: c[:10], "too short"),
        (lambda c: b"X" + c[1:], "does not start with PAXONBAK"),
        (lambda c: c[:-3], "does not end with PAXONEND"),
        (lambda c: c[:100] + bytes([c[100] ^ 1]) + c[101:], "checksum mismatch"),
        (lambda c: c[:-12] + c[-12:-8][::-1] + c[-8:], "checksum mismatch"),
    ],
)
def test_a_damaged_backup_is_refused_with_its_reason(damage: object, reason: str) -> None:
    with pytest.raises(CorruptBackup, match=reason):
        decode_backup(damage(encoded()), "f")  # type: ignore[operator]


def test_meta_that_lies_about_the_data_is_refused() -> None:
    lying = BackupMeta(**(meta().to_json() | {"data_bytes": len(DATA) - 1}))
    head = next(encode_chunks(lying, DATA[:-1]))
    body = head + DATA  # one byte more than the meta says, checksummed as it is
    content = body + struct.pack("<I8s", crc32c(body), b"PAXONEND")
    with pytest.raises(CorruptBackup, match="data bytes, meta says"):
        decode_backup(content, "f")


def test_save_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "b.paxon"
    backup = asyncio.run(save_atomically(str(path), stream(encode_chunks(meta(), DATA, 1000))))
    assert backup.data == DATA and read_backup(str(path)).meta == meta()
    cut = tmp_path / "cut.paxon"
    with pytest.raises(ConnectionResetError):
        asyncio.run(save_atomically(str(cut), stream(encode_chunks(meta(), DATA, 1000), 3)))
    damaged = tmp_path / "damaged.paxon"
    pieces = list(encode_chunks(meta(), DATA, 1000))
    pieces[2] = bytes(len(pieces[2]))
    with pytest.raises(CorruptBackup, match="checksum mismatch"):
        asyncio.run(save_atomically(str(damaged), stream(pieces)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.paxon"]
