"""The vocabulary of the protocol: ballots, slots, commands, values, entries.

Every type here is a frozen, slotted dataclass that validates on construction,
so a value that exists is a value that is well formed. Nothing here knows about
bytes on a wire or on disk; codecs live at the edge (``paxon.net``,
``paxon.storage``) and build these types, which then check themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from paxon.frozen import fast_init

NodeId = int
"""A replica's identity: a positive integer, unique in the cluster."""

Slot = int
"""A position in the replicated log, from 0."""


@dataclass(frozen=True, slots=True, order=True)
class Ballot:
    """A proposal number ``(round, node_id)``, compared as a tuple.

    Because the node id is part of the ballot, two proposers never share one,
    and a proposer never proposes two values for one slot under one ballot.
    ``Ballot(0, 0)`` is below every ballot a node can use.
    """

    round: int
    node_id: NodeId

    def __post_init__(self) -> None:
        if self.round < 0 or self.node_id < 0:
            # Guards the wire decoder and the API, as messages.py's raises do.
            raise ValueError(  # sim: unreachable: wire guard
                f"ballot parts must be >= 0, got {self.round}.{self.node_id}"
            )
        if self.round == 0 and self.node_id != 0:
            raise ValueError(  # sim: unreachable: wire guard
                "round 0 is reserved for the zero ballot"
            )

    def __str__(self) -> str:
        return f"{self.round}.{self.node_id}"


BALLOT_ZERO = Ballot(0, 0)


@fast_init
@dataclass(frozen=True, slots=True)
class Command:
    """One client command: opaque bytes tagged with the client's session.

    ``(client_id, seq)`` lets the state machine apply a retried command once and
    answer the retry with the first result (see ``paxon.kv.sessions``).
    """

    client_id: int
    seq: int
    payload: bytes

    def __post_init__(self) -> None:
        if self.client_id < 0 or self.seq < 0:
            raise ValueError("client_id and seq must be >= 0")  # sim: unreachable: wire guard


@dataclass(frozen=True, slots=True)
class Value:
    """What one slot decides: a batch of commands, or a no-op when empty."""

    commands: tuple[Command, ...] = ()

    @property
    def is_noop(self) -> bool:
        return not self.commands

    def __str__(self) -> str:
        if self.is_noop:  # sim: one-way: only a trace prints a no-op; measured seeds run untraced
            return "noop"
        return "[" + " ".join(f"c{c.client_id}#{c.seq}" for c in self.commands) + "]"


NOOP = Value()


@dataclass(frozen=True, slots=True)
class Entry:
    """A value an acceptor accepted (or learned chosen) at ``slot`` under ``ballot``."""

    slot: Slot
    ballot: Ballot
    value: Value

    def __post_init__(self) -> None:
        if self.slot < 0:
            raise ValueError(f"slot must be >= 0, got {self.slot}")  # sim: unreachable: wire guard


@dataclass(frozen=True, slots=True)
class BallotRun:
    """Slots ``[slot_start, slot_end)`` were all chosen under ``ballot``.

    Runs describe a chosen prefix compactly: one leader's reign chooses a long
    stretch of slots under one ballot, so a handful of runs cover the log.
    """

    slot_start: Slot
    slot_end: Slot
    ballot: Ballot

    def __post_init__(self) -> None:
        if not 0 <= self.slot_start < self.slot_end:
            raise ValueError(  # sim: unreachable: wire guard
                f"empty or negative run [{self.slot_start}, {self.slot_end})"
            )
