"""The output batch of one call into the core, and the rule for performing it.

Every public method of ``Replica`` (``step``, ``tick``, ``propose``,
``read_index``, ...) returns one ``Ready``. The runtime performs it like this,
and this is the only place the ordering rule is written down:

1. Append ``records`` to the log, in order, after the records of every earlier
   batch. Group commit may merge the fsyncs of many batches; it may not skip one.
2. ``messages`` may be sent at once, even before step 1 finishes.
3. ``messages_after_persist`` are sent only after ``records`` (and every record
   of earlier batches) are durable. Promises and accepted votes are here, and so
   is every message a replica sends to itself: its own vote must not count
   before it would survive a crash.
4. ``apply`` holds chosen entries, contiguous and in slot order, continuing from
   the last batch's; hand them to the state machine in that order.
5. ``reads`` resolve read-index requests; ``snapshot_requests`` ask the runtime
   to send a snapshot to a peer that needs slots this replica no longer holds.

If the process crashes before step 3, the messages are simply never sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paxon.protocol.messages import Message
from paxon.protocol.records import Record
from paxon.protocol.types import NodeId, Slot, Value


@dataclass(frozen=True, slots=True)
class ChosenEntry:
    """A chosen slot, handed to the state machine in slot order."""

    slot: Slot
    value: Value


@dataclass(frozen=True, slots=True)
class ReadIndex:
    """Answer to ``read_index(read_id)``.

    When ``slot`` is not None, a quorum confirmed this replica was still leader
    after the request arrived: a read served once the state machine has applied
    every slot below ``slot`` is linearizable. ``slot`` None means leadership was
    lost before the confirmation; the caller should retry elsewhere.
    """

    read_id: int
    slot: Slot | None


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """``peer`` needs slots from ``slot_from`` that were compacted away."""

    peer: NodeId
    slot_from: Slot


@dataclass(slots=True)
class Ready:
    records: list[Record] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    messages_after_persist: list[Message] = field(default_factory=list)
    apply: list[ChosenEntry] = field(default_factory=list)
    reads: list[ReadIndex] = field(default_factory=list)
    snapshot_requests: list[SnapshotRequest] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.records
            or self.messages
            or self.messages_after_persist
            or self.apply
            or self.reads
            or self.snapshot_requests
        )
