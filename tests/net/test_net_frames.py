"""Framing: bodies come out whole however the stream is cut; bad lengths are refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paxon.errors import ProtocolError
from paxon.net import FrameDecoder, FrameTooLarge
from paxon.net.frames import FLUSH_EARLY_BYTES, FrameWriter, frame_prefix

BODIES = [b"a", b"hello", bytes(range(256)) * 3, b"z" * 17, b"\x00\x00\x00\x00"]
STREAM = b"".join(frame_prefix(len(body)) + body for body in BODIES)


def test_a_stream_split_at_every_position_yields_every_body() -> None:
    for cut in range(len(STREAM) + 1):
        decoder = FrameDecoder(4096)
        bodies = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:])
        assert bodies == BODIES, cut
        assert decoder.buffered_bytes == 0


def test_a_stream_split_at_every_pair_of_positions_yields_every_body() -> None:
    expected = FrameDecoder(4096).feed(STREAM)
    for first in range(len(STREAM) + 1):
        for second in range(first, len(STREAM) + 1, 7):
            decoder = FrameDecoder(4096)
            parts = [STREAM[:first], STREAM[first:second], STREAM[second:]]
            assert [body for part in parts for body in decoder.feed(part)] == expected


def test_one_byte_at_a_time() -> None:
    decoder = FrameDecoder(4096)
    bodies = [
        body for index in range(len(STREAM)) for body in decoder.feed(STREAM[index : index + 1])
    ]
    assert bodies == BODIES


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=20), st.data())
def test_random_bodies_random_chunks(bodies: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame_prefix(len(body)) + body for body in bodies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder(300)
    out: list[bytes] = []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out.extend(decoder.feed(stream[start:stop]))
    assert out == bodies
    assert decoder.buffered_bytes == 0


def test_many_small_frames_in_one_read() -> None:
    count = 50_000
    stream = (frame_prefix(3) + b"abc") * count + frame_prefix(10) + b"part"
    decoder = FrameDecoder(4096)
    bodies = decoder.feed(stream)
    assert len(bodies) == count and bodies[-1] == b"abc"
    assert decoder.buffered_bytes == 8
    assert decoder.feed(b"ial!!!") == [b"partial!!!"]


def test_a_frame_of_exactly_the_limit_passes() -> None:
    assert FrameDecoder(10).feed(frame_prefix(10) + b"x" * 10) == [b"x" * 10]


@pytest.mark.parametrize("length", [0, 11, 2**32 - 1])
def test_a_length_of_zero_or_over_the_limit_is_refused(length: int) -> None:
    decoder = FrameDecoder(10)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\x00" + frame_prefix(length)[1:2])  # incomplete prefix: no verdict yet
        decoder.feed(frame_prefix(length)[2:])
    assert issubclass(FrameTooLarge, ProtocolError)


def test_a_bad_length_after_good_frames_is_refused() -> None:
    decoder = FrameDecoder(10)
    with pytest.raises(FrameTooLarge, match="outside"):
        decoder.feed(frame_prefix(1) + b"a" + frame_prefix(0))


class _RecordingTransport(asyncio.WriteTransport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


def test_frames_written_in_one_iteration_go_out_in_one_write() -> None:
    async def main() -> None:
        transport = _RecordingTransport()
        writer = FrameWriter(transport, asyncio.get_running_loop())
        for body in BODIES:
            writer.write(body)
        assert writer.buffered_bytes == len(STREAM)
        assert transport.writes == []
        await asyncio.sleep(0)
        assert transport.writes == [STREAM]
        assert writer.buffered_bytes == 0
        writer.write(b"next")
        writer.flush()
        await asyncio.sleep(0)
        assert transport.writes == [STREAM, frame_prefix(4) + b"next"]

    asyncio.run(main())


def test_a_turn_that_queues_many_bytes_writes_them_as_they_pile_up() -> None:
    async def main() -> None:
        transport = _RecordingTransport()
        writer = FrameWriter(transport, asyncio.get_running_loop())
        body = b"x" * 1000
        count = 3 * FLUSH_EARLY_BYTES // len(body)
        for _ in range(count):
            writer.write(body)
        assert len(transport.writes) >= 2, "no early write during the turn"
        await asyncio.sleep(0)
        assert b"".join(transport.writes) == (frame_prefix(len(body)) + body) * count
        assert all(len(chunk) <= FLUSH_EARLY_BYTES + 4 + len(body) for chunk in transport.writes)

    asyncio.run(main())
