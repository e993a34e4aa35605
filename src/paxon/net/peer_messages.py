"""Messages between nodes that are the runtime's, not the protocol core's.

``SnapshotChunk`` carries a state-machine snapshot to a peer that needs slots
the sender has compacted away (the core asks for it with a
``SnapshotRequest``). A snapshot goes as consecutive chunks from offset 0; the
receiver drops a transfer that skips an offset (a chunk was lost) and the
sender starts again at the next request.
"""

from __future__ import annotations

from dataclasses import dataclass

from paxon.protocol.messages import Message
from paxon.protocol.types import NodeId, Slot


@dataclass(frozen=True, slots=True)
class SnapshotChunk:
    src: NodeId
    dst: NodeId
    slot: Slot  # the snapshot covers every slot below this one
    offset: int  # of ``data`` in the whole snapshot
    data: bytes
    last: bool

    def __post_init__(self) -> None:
        if self.slot < 0 or self.offset < 0:
            raise ValueError("slot and offset must be >= 0")


PeerMessage = Message | SnapshotChunk
"""Everything one node sends another on a peer link."""
