"""What a replica persists, and how its durable state is rebuilt from it.

The core never writes a file. It emits records in an output batch; the runtime
appends them to its write-ahead log and fsyncs before sending the messages that
wait on them (see ``paxon.protocol.ready``). On restart the runtime reads the
records back, in the order they were written, and ``recover`` folds them into
the state a new ``Replica`` starts from.

Rules the records keep, and recovery relies on:
- The promised ballot is the highest ballot in any ``PromiseRecord`` *or*
  ``AcceptRecord``: accepting under ``b`` is also a promise of ``b``.
- An ``AcceptRecord`` for a slot replaces the one before it.
- ``ChosenRecord(slot_chosen)`` says the entries held for every slot below
  ``slot_chosen`` *at that point of the log* are the chosen values. The core
  never writes an ``AcceptRecord`` for a slot it already knows chosen, so a
  later record cannot overwrite a chosen entry.
- ``SnapshotRecord(slot)`` says a snapshot of the state machine covers every
  slot below ``slot``; entries below it may be gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from paxon.protocol.membership import ConfigState, RemovedState
from paxon.protocol.types import BALLOT_ZERO, Ballot, Entry, Slot


@dataclass(frozen=True, slots=True)
class PromiseRecord:
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class AcceptRecord:
    entry: Entry


@dataclass(frozen=True, slots=True)
class ChosenRecord:
    slot_chosen: Slot


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    slot: Slot


Record = PromiseRecord | AcceptRecord | ChosenRecord | SnapshotRecord


@dataclass(slots=True)
class DurableState:
    """The acceptor and learner state that survives a crash."""

    ballot_promised: Ballot = BALLOT_ZERO
    entries: dict[Slot, Entry] = field(default_factory=dict)
    slot_chosen: Slot = 0
    log_start: Slot = 0
    # The configurations from log_start on (``membership.ConfigState``), as the
    # snapshot at log_start carries them; empty: the replica's first one.
    configs: ConfigState = ()
    # The nodes removed before log_start that the snapshot there remembers.
    removed: RemovedState = ()


def recover(records: Iterable[Record]) -> DurableState:
    """Fold records, oldest first, into the state a restarted replica begins with."""
    state = DurableState()
    for record in records:
        match record:
            case PromiseRecord(ballot):
                state.ballot_promised = max(state.ballot_promised, ballot)
            case AcceptRecord(entry):
                # Slots below a SnapshotRecord are applied, hence known chosen,
                # and a replica writes no AcceptRecord for a slot it knows chosen.
                if entry.slot >= state.log_start:  # sim: one-way: no accept below log_start
                    state.entries[entry.slot] = entry
                state.ballot_promised = max(state.ballot_promised, entry.ballot)
            case ChosenRecord(slot_chosen):
                state.slot_chosen = max(state.slot_chosen, slot_chosen)
            case SnapshotRecord(slot):  # sim: one-way: the cases cover every Record (mypy)
                state.log_start = max(state.log_start, slot)
                state.slot_chosen = max(state.slot_chosen, slot)
                # The runtime replays its log from the newest snapshot's
                # records on, where no entry lies below a mark; a replica that
                # installed a snapshot past its entries writes the mark after
                # them (test_recover_drops_the_entries_a_later_snapshot_mark_covers).
                for stale in [s for s in state.entries if s < slot]:  # sim: one-way: see above
                    del state.entries[stale]
    return state
