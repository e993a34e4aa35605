"""Moving a snapshot to a peer that is behind the compacted log.

Sending: ``send_snapshot`` cuts the snapshot into consecutive
``SnapshotChunk``s, paced to the link (it waits while the peer's send queue
holds more than a few chunks, and gives up when the link goes down), so no
chunk is dropped for a full queue.

Receiving: ``SnapshotAssembler`` puts the chunks of each sender back together.
A transfer restarts at offset 0; a chunk at any other offset than the next
expected one means a chunk was lost, and that transfer is dropped (the sender
tries again when the peer asks again). Nothing is installed here: the node
decides what to do with a whole snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from paxon.net.peer_messages import SnapshotChunk
from paxon.net.transport import Transport
from paxon.protocol.types import NodeId, Slot

# The sender waits while more than this many chunks are queued for the peer.
_CHUNKS_QUEUED_MAX = 4
_PACING_S = 0.005


class SnapshotTooLarge(ValueError):
    """A transfer grew past the receiver's limit; it was dropped."""


class SnapshotAssembler:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._incoming: dict[NodeId, tuple[Slot, bytearray]] = {}

    def add(self, chunk: SnapshotChunk) -> bytes | None:
        """The whole snapshot when ``chunk`` completes it, else None."""
        if chunk.offset == 0:
            incoming = self._incoming[chunk.src] = (chunk.slot, bytearray())
        else:
            found = self._incoming.get(chunk.src)
            if found is None or found[0] != chunk.slot or len(found[1]) != chunk.offset:
                self._incoming.pop(chunk.src, None)  # a chunk was lost
                return None
            incoming = found
        data = incoming[1]
        data += chunk.data
        if len(data) > self.max_bytes:
            del self._incoming[chunk.src]
            raise SnapshotTooLarge(f"snapshot from node {chunk.src} is over {self.max_bytes} bytes")
        if not chunk.last:
            return None
        del self._incoming[chunk.src]
        return bytes(data)

    def drop(self, src: NodeId | None = None) -> None:
        """Forget the transfer from ``src`` (every transfer when None)."""
        if src is None:
            self._incoming.clear()
        else:
            self._incoming.pop(src, None)

    def __len__(self) -> int:
        return len(self._incoming)


async def send_snapshot(
    transport: Transport,
    src: NodeId,
    peer: NodeId,
    slot: Slot,
    data: bytes,
    *,
    chunk_bytes: int,
    stopping: Callable[[], bool],
) -> bool:
    """Send ``data`` (the snapshot below ``slot``) to ``peer``; whether all of it was queued."""
    offset = 0
    while True:
        piece = data[offset : offset + chunk_bytes]
        last = offset + len(piece) >= len(data)
        while transport.backlog_bytes(peer) > _CHUNKS_QUEUED_MAX * chunk_bytes:
            if stopping() or not transport.reachable(peer):
                return False
            await asyncio.sleep(_PACING_S)
        if stopping():
            return False
        transport.send(SnapshotChunk(src, peer, slot, offset, piece, last))
        if last:
            return True
        offset += len(piece)
        await asyncio.sleep(0)  # let the node work between chunks
