"""Messages between replicas: one frozen, slotted dataclass per kind.

Every message names its sender ``src`` and addressee ``dst``. Messages a node
sends to itself (its own promise, its own accepted vote) travel the same way as
any other, so the runtime's ordering rule covers them too: a self-addressed
reply is delivered only after the records it stands for are durable.

| message         | from -> to           | means                                              |
|-----------------|----------------------|----------------------------------------------------|
| Probe           | candidate -> all     | would you promise ``ballot``? (nothing persisted)   |
| ProbeReply      | acceptor -> cand.    | yes/no; no while a live leader (a voter) is heard    |
| Prepare         | candidate -> all     | phase 1a for every slot >= ``slot_from``             |
|                 |                      | (``handover_from``: the leader that handed over)     |
| Promise         | acceptor -> cand.    | phase 1b with every accepted entry >= ``slot_from``  |
|                 |                      | (and ``log_start``: slots below it were compacted)   |
| Nack            | acceptor -> proposer | refused: I promised ``ballot_promised``              |
| Accept          | leader -> all        | phase 2a for one slot, with the chosen prefix        |
| Accepted        | acceptor -> leader   | phase 2b                                             |
| Heartbeat       | leader -> followers  | I lead; the chosen prefix; a read-index round       |
| HeartbeatReply  | follower -> leader   | you still lead for me; my chosen index              |
| LearnRequest    | learner -> leader    | send me chosen values from ``slot_from``            |
| Learn           | leader -> learner    | chosen entries                                      |
| TimeoutNow      | leader -> a voter    | stand now: I hand leadership to you (``ballot``: mine) |
| RemovedNotice   | member -> removed    | you are in no configuration from ``epoch`` on         |
"""

from __future__ import annotations

from dataclasses import dataclass

from paxon.protocol.types import Ballot, BallotRun, Entry, NodeId, Slot, Value

# The constructors' raises guard the wire decoder against a peer's bad frame
# (tests/net/test_net_codec.py): the simulator hands messages over as objects,
# and a replica (or the "buggy" fault, which must construct them) builds only
# valid ones, so none of them can fire under simulation.


def _check_slot(slot: Slot, name: str) -> None:
    if slot < 0:
        raise ValueError(f"{name} must be >= 0, got {slot}")  # sim: unreachable: wire guard


@dataclass(frozen=True, slots=True)
class ChosenPrefix:
    """Every slot below ``slot_chosen`` is chosen; ``runs`` name the ballots.

    ``runs`` cover a contiguous stretch ending at ``slot_chosen`` (possibly
    empty when the sender believes the receiver already knows them). A receiver
    whose accepted ballot for a slot equals the run's ballot holds the chosen
    value, because a ballot proposes one value per slot.
    """

    slot_chosen: Slot
    runs: tuple[BallotRun, ...] = ()

    def __post_init__(self) -> None:
        _check_slot(self.slot_chosen, "slot_chosen")
        for before, after in zip(self.runs, self.runs[1:], strict=False):
            if before.slot_end != after.slot_start:
                raise ValueError("chosen runs must be contiguous")  # sim: unreachable: wire guard
        if self.runs and self.runs[-1].slot_end != self.slot_chosen:
            raise ValueError(  # sim: unreachable: wire guard
                "chosen runs must end at slot_chosen"
            )


@dataclass(frozen=True, slots=True)
class Probe:
    src: NodeId
    dst: NodeId
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class ProbeReply:
    src: NodeId
    dst: NodeId
    ballot: Ballot
    granted: bool


@dataclass(frozen=True, slots=True)
class Prepare:
    src: NodeId
    dst: NodeId
    ballot: Ballot
    slot_from: Slot
    # The ballot of the leader whose TimeoutNow this candidate obeys (a
    # transfer), or None. Lease reads: an acceptor that keeps a live leader's
    # lease promises such a candidate only if that leader consented.
    handover_from: Ballot | None = None

    def __post_init__(self) -> None:
        _check_slot(self.slot_from, "slot_from")


@dataclass(frozen=True, slots=True)
class Promise:
    src: NodeId
    dst: NodeId
    ballot: Ballot
    slot_from: Slot
    entries: tuple[Entry, ...]
    slot_chosen: Slot
    log_start: Slot

    def __post_init__(self) -> None:
        _check_slot(self.slot_from, "slot_from")
        _check_slot(self.slot_chosen, "slot_chosen")
        if self.log_start > self.slot_chosen:
            raise ValueError("log_start cannot pass slot_chosen")  # sim: unreachable: wire guard
        if any(entry.slot < self.slot_from for entry in self.entries):
            raise ValueError(  # sim: unreachable: wire guard
                "a promise reports only entries at or after slot_from"
            )


@dataclass(frozen=True, slots=True)
class Nack:
    src: NodeId
    dst: NodeId
    ballot: Ballot
    ballot_promised: Ballot

    def __post_init__(self) -> None:
        if self.ballot_promised < self.ballot:
            raise ValueError(  # sim: unreachable: wire guard
                "a nack names a promise at least as high as the refused ballot"
            )


@dataclass(frozen=True, slots=True)
class Accept:
    src: NodeId
    dst: NodeId
    ballot: Ballot
    slot: Slot
    value: Value
    chosen: ChosenPrefix

    def __post_init__(self) -> None:
        _check_slot(self.slot, "slot")


@dataclass(frozen=True, slots=True)
class Accepted:
    src: NodeId
    dst: NodeId
    ballot: Ballot
    slot: Slot
    slot_chosen: Slot

    def __post_init__(self) -> None:
        _check_slot(self.slot, "slot")
        _check_slot(self.slot_chosen, "slot_chosen")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    src: NodeId
    dst: NodeId
    ballot: Ballot
    chosen: ChosenPrefix
    read_round: int


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    src: NodeId
    dst: NodeId
    ballot: Ballot
    slot_chosen: Slot
    read_round: int

    def __post_init__(self) -> None:
        _check_slot(self.slot_chosen, "slot_chosen")


@dataclass(frozen=True, slots=True)
class LearnRequest:
    src: NodeId
    dst: NodeId
    slot_from: Slot

    def __post_init__(self) -> None:
        _check_slot(self.slot_from, "slot_from")


@dataclass(frozen=True, slots=True)
class Learn:
    src: NodeId
    dst: NodeId
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        slots = [entry.slot for entry in self.entries]
        if slots != sorted(set(slots)):
            raise ValueError(  # sim: unreachable: wire guard
                "learned entries must be in increasing slot order"
            )


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """The leader under ``ballot`` asks ``dst`` to stand at once (a transfer)."""

    src: NodeId
    dst: NodeId
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class RemovedNotice:
    """``src`` saw ``dst`` removed: ``dst`` is a member of no configuration from
    ``epoch`` on. Told with the refusal of a removed node's Probe; the node
    believes it only from a majority of the voters it knows (``Replica``)."""

    src: NodeId
    dst: NodeId
    epoch: int  # any: one not above the epochs ``dst`` holds counts for nothing


Message = (
    Probe
    | ProbeReply
    | Prepare
    | Promise
    | Nack
    | Accept
    | Accepted
    | Heartbeat
    | HeartbeatReply
    | LearnRequest
    | Learn
    | TimeoutNow
    | RemovedNotice
)

MESSAGE_TYPES: tuple[type[Message], ...] = (
    Probe,
    ProbeReply,
    Prepare,
    Promise,
    Nack,
    Accept,
    Accepted,
    Heartbeat,
    HeartbeatReply,
    LearnRequest,
    Learn,
    TimeoutNow,
    RemovedNotice,
)
