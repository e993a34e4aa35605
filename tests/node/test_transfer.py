"""Putting snapshot chunks back together; a lost chunk drops the transfer."""

from __future__ import annotations

import pytest

from paxon.net.peer_messages import SnapshotChunk
from paxon.node.transfer import SnapshotAssembler, SnapshotTooLarge


def chunks(data: bytes, size: int, *, src: int = 2, slot: int = 40) -> list[SnapshotChunk]:
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    offsets = [i * size for i in range(len(pieces))]
    return [
        SnapshotChunk(src, 1, slot, offset, piece, n == len(pieces) - 1)
        for n, (offset, piece) in enumerate(zip(offsets, pieces, strict=True))
    ]


def test_consecutive_chunks_give_back_the_snapshot() -> None:
    assembler = SnapshotAssembler(max_bytes=1000)
    parts = chunks(bytes(range(250)), 64)
    assert [assembler.add(chunk) for chunk in parts[:-1]] == [None] * (len(parts) - 1)
    assert assembler.add(parts[-1]) == bytes(range(250))
    assert len(assembler) == 0


def test_an_empty_snapshot_is_one_last_chunk() -> None:
    assert SnapshotAssembler(max_bytes=10).add(chunks(b"", 4)[0]) == b""


def test_a_lost_chunk_drops_the_transfer_until_it_restarts() -> None:
    assembler = SnapshotAssembler(max_bytes=1000)
    parts = chunks(b"abcdefghij", 3)
    assembler.add(parts[0])
    assert assembler.add(parts[2]) is None  # parts[1] was lost
    assert assembler.add(parts[3]) is None
    assert len(assembler) == 0
    for part in parts[:-1]:
        assembler.add(part)
    assert assembler.add(parts[-1]) == b"abcdefghij"


def test_transfers_from_two_senders_do_not_mix() -> None:
    assembler = SnapshotAssembler(max_bytes=1000)
    a, b = chunks(b"aaaa", 2, src=2), chunks(b"bbbbbb", 2, src=3)
    assembler.add(a[0])
    assembler.add(b[0])
    assembler.add(b[1])
    assert assembler.add(a[1]) == b"aaaa"
    assert assembler.add(b[2]) == b"bbbbbb"


def test_a_transfer_over_the_limit_is_refused_and_forgotten() -> None:
    assembler = SnapshotAssembler(max_bytes=5)
    parts = chunks(b"0123456789", 4)
    assembler.add(parts[0])
    with pytest.raises(SnapshotTooLarge):
        assembler.add(parts[1])
    assert len(assembler) == 0
