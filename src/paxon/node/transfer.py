"""Moving a snapshot to a peer that is behind the compacted log.

Sending: ``send_snapshot`` cuts the snapshot into consecutive
``SnapshotChunk``s, paced to the link (it waits while the peer's send queue
holds more than a few chunks, and gives up when the link goes down), so no
chunk is dropped for a full queue.

Receiving: ``SnapshotIntake`` decides which chunks are taken at all, and its
``SnapshotAssembler`` puts the chunks of each sender back together. A
transfer restarts at offset 0; a chunk at any other offset than the next
expected one means a chunk was lost, and that transfer is dropped (the sender
tries again when the peer asks again). Nothing is installed here: the node
checks a whole snapshot (``ReplicatedMachine.prepare_restore``, on a worker
thread) before its file is written or anything restored.

A snapshot replaces the whole state, so a chunk is untrusted input. Decision
table (first matching row wins; every refusal is counted in
``SnapshotIntake.refused`` by reason, logged at most at powers of two, and is
never fatal):

| the chunk                                              | decision               |
|--------------------------------------------------------|------------------------|
| arrives while a snapshot is being installed            | ignore ("installing")  |
| covers no slot beyond ``slot_chosen``                  | ignore, drop ("stale") |
| its sender is neither the leader this replica follows  | ignore ("not leader")  |
| nor the peer the core asked last to catch it up        |                        |
| starts a transfer (offset 0), but the core has not     | ignore ("not asked")   |
| asked its sender to catch us up in ``ASKED_VALID_S``   |                        |
| takes the transfer over ``snapshot_max_bytes``         | drop ("too large")     |
| completes a snapshot that does not decode, or whose    | drop ("invalid")       |
| body names another slot than the chunks did            |                        |
| otherwise                                              | add; install when whole|

Why the peer asked last, not only the leader: a candidate that meets an
acceptor whose log starts past its ``slot_from`` asks that acceptor to catch
it up (the compacted-log rule, ``docs/protocol.md``); it follows no leader
then, and the acceptor answers with a snapshot. Taking only
the leader's would leave it behind until the acceptor itself stood (swarm
seed 5057: six elections lost that way, 6 s without a leader).

Limits: one transfer per sender, and a transfer that starts drops any other
sender's, so at most one snapshot (``NodeConfig.snapshot_max_bytes``, 4 GiB
by default) is held;
an ask is good for ``ASKED_VALID_S`` = 60 s (the core asks again every
``learn_retry_s`` while it is behind, so a live transfer keeps its ask fresh).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from paxon.net.peer_messages import SnapshotChunk
from paxon.protocol.types import NodeId, Slot

if TYPE_CHECKING:
    from paxon.node.environment import NodeTransport

# The sender waits while more than this many chunks are queued for the peer.
_CHUNKS_QUEUED_MAX = 4
_PACING_S = 0.005
# A transfer may start this long after the core last asked its sender to catch us up.
ASKED_VALID_S = 60.0


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

    def drop_others(self, src: NodeId) -> None:
        """Forget every transfer but the one from ``src``."""
        for other in [other for other in self._incoming if other != src]:
            del self._incoming[other]

    def __len__(self) -> int:
        return len(self._incoming)


class SnapshotIntake:
    """Which snapshot chunks this replica takes (the table above), and their assembly."""

    def __init__(self, max_bytes: int) -> None:
        self.assembler = SnapshotAssembler(max_bytes)
        self.refused: Counter[str] = Counter()
        self._asked: dict[NodeId, float] = {}  # peer -> when the core last asked it
        self._asked_last: NodeId | None = None  # the peer the core asked most recently

    def asked(self, peer: NodeId, now: float) -> None:
        """The core asked ``peer`` to catch us up (a ``LearnRequest`` left for it)."""
        self._asked[peer] = now
        self._asked_last = peer

    def admit(
        self,
        chunk: SnapshotChunk,
        *,
        leader: NodeId | None,
        slot_chosen: Slot,
        installing: bool,
        now: float,
    ) -> str | None:
        """None when ``chunk`` may be added; else why it is ignored (its transfer is dropped)."""
        if installing:
            reason = "installing"
        elif chunk.slot <= slot_chosen:
            reason = "stale"
        elif chunk.src not in (leader, self._asked_last):
            reason = "not leader"
        elif chunk.offset == 0 and not self._asked_recently(chunk.src, now):
            reason = "not asked"
        else:
            if chunk.offset == 0:
                self.assembler.drop_others(chunk.src)  # one transfer held at a time
            return None
        self.assembler.drop(chunk.src)
        return reason

    def add(self, chunk: SnapshotChunk) -> bytes | None:
        """``SnapshotAssembler.add`` of an admitted chunk."""
        return self.assembler.add(chunk)

    def refuse(self, reason: str) -> bool:
        """Count a refusal; whether to log it (the 1st, 2nd, 4th, 8th, ... of its reason)."""
        self.refused[reason] += 1
        count = self.refused[reason]
        return count & (count - 1) == 0

    def drop(self) -> None:
        """Forget every transfer (the leader changed)."""
        self.assembler.drop()

    def _asked_recently(self, peer: NodeId, now: float) -> bool:
        asked_at = self._asked.get(peer)
        return asked_at is not None and now - asked_at <= ASKED_VALID_S


async def send_snapshot(
    transport: NodeTransport,
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
