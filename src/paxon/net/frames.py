"""Length-prefixed frames on a byte stream, in and out.

A frame is a u32 big-endian length ``N`` followed by ``N`` bytes of body, with
``1 <= N <= frame_max_bytes``. Framing knows nothing of what a body means
(``codec.py`` does).

- ``FrameDecoder`` turns arbitrary chunks of a stream into whole bodies. It
  keeps one ``bytearray`` for a partial frame and walks it with an offset, so a
  read holding thousands of small frames costs one pass and one compaction,
  never a copy per frame. A length of zero or over the limit raises
  ``FrameTooLarge``: the stream cannot be resynchronised, the caller drops it.
- ``FrameWriter`` coalesces the frames written to one connection during one
  event-loop iteration into a single ``transport.write``: Accept and Accepted
  traffic is many small frames, and one system call per frame would dominate.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Final

from paxon.errors import ProtocolError

LENGTH_BYTES: Final = 4
_LENGTH = struct.Struct(">I")


class FrameTooLarge(ProtocolError):
    """A frame length outside ``[1, frame_max_bytes]``, read or about to be written."""


class FrameDecoder:
    """Splits a byte stream into frame bodies; ``feed`` returns the complete ones."""

    __slots__ = ("_buffer", "_frame_max")

    def __init__(self, frame_max_bytes: int) -> None:
        if frame_max_bytes < 1:
            raise ValueError("frame_max_bytes must be >= 1")
        self._frame_max = frame_max_bytes
        self._buffer = bytearray()

    @property
    def frame_max_bytes(self) -> int:
        return self._frame_max

    @frame_max_bytes.setter
    def frame_max_bytes(self, frame_max_bytes: int) -> None:
        """A connection starts with a small limit and raises it after its handshake."""
        if frame_max_bytes < 1:
            raise ValueError("frame_max_bytes must be >= 1")
        self._frame_max = frame_max_bytes

    @property
    def buffered_bytes(self) -> int:
        """Bytes of an incomplete frame held back (non-zero at EOF means truncation)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Bodies of the frames ``data`` completes, in order; the rest is kept."""
        buffer = self._buffer
        source: bytes | bytearray
        if buffer:
            buffer += data
            source = buffer
        else:
            source = data
        end = len(source)
        if end < LENGTH_BYTES:
            if source is data:
                buffer += data
            return []
        bodies: list[bytes] = []
        offset = 0
        frame_max = self._frame_max
        unpack_length = _LENGTH.unpack_from
        with memoryview(source) as view:
            while end - offset >= LENGTH_BYTES:
                (size,) = unpack_length(source, offset)
                if not 1 <= size <= frame_max:
                    raise FrameTooLarge(f"frame length {size} outside [1, {frame_max}]")
                stop = offset + LENGTH_BYTES + size
                if stop > end:
                    break
                bodies.append(bytes(view[offset + LENGTH_BYTES : stop]))
                offset = stop
            if source is data and offset < end:
                buffer += view[offset:]
        if source is buffer and offset:
            del buffer[:offset]
        return bodies


def frame_prefix(size: int) -> bytes:
    """The length prefix of a body of ``size`` bytes."""
    return _LENGTH.pack(size)


FLUSH_EARLY_BYTES: Final = 16 * 1024
"""Queued bytes that are written at once rather than at the end of the loop turn.

Coalescing a whole turn into one write saves syscalls, but under load it also
makes the processes of a cluster work in lock-step: a client turns 200 replies
into 200 requests before the leader sees the first. Writing every 16 KiB lets
the next process start while this one still works (measured: ~25% more writes/s
with `paxon bench --clients 256` on 2 cores; see docs/benchmarks.md).
"""


class FrameWriter:
    """Frames for one transport, flushed once per event-loop iteration (or sooner,
    every ``FLUSH_EARLY_BYTES``).

    ``buffered_bytes`` counts what is queued here and in the transport's own
    buffer: the owner compares it with its queue limit before writing.
    """

    __slots__ = ("_loop", "_pieces", "_queued_bytes", "_transport")

    def __init__(self, transport: asyncio.WriteTransport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pieces: list[bytes] = []
        self._queued_bytes = 0

    @property
    def buffered_bytes(self) -> int:
        return self._queued_bytes + self._transport.get_write_buffer_size()

    def write(self, body: bytes) -> int:
        """Queues one frame; returns its size on the wire."""
        pieces = self._pieces
        if not pieces:
            self._loop.call_soon(self.flush)
        pieces.append(_LENGTH.pack(len(body)))
        pieces.append(body)
        size = LENGTH_BYTES + len(body)
        self._queued_bytes += size
        if self._queued_bytes >= FLUSH_EARLY_BYTES:
            self.flush()
        return size

    def flush(self) -> None:
        """Writes every queued frame at once (also called just before closing)."""
        pieces = self._pieces
        if not pieces:
            return
        self._pieces = []
        self._queued_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(b"".join(pieces))
