"""Phase 1's rules at the candidate: a reported slot gets the highest ballot's
value, and a majority of promises makes a leader.

``docs/protocol.md`` ("Phase 1") has a new leader re-propose, at each slot the
promises it counted reported, the value accepted under the highest ballot any
of them reported there. No property stated it (``docs/protocol.md`` said so:
"rules that need to know what a node *received* ... are not properties yet"),
and breaking it shows only when the lower-ballot value differs from a value
already chosen, a schedule the swarm seldom builds: a core that kept the
lowest-ballot report was caught by 1 of 300 default seeds (swarm seed 72;
session 16's sample, ``replica.py:911``), where this rule now names it
first. A runtime reports every call into a replica, as to
``FailFastChecker``:

    on_call(node_id, replica, call, args, ready, time)

The rule, by name (``Violation.rule``):

- ``reproposes-highest``: when a leader sends the first ``Accept`` of its
  reign for a slot that a ``Promise`` under its ballot, stepped before that
  call, reported, the value is the one of the highest-ballot entry reported
  there. Promises counted are those the core may count: from a node it sent a
  ``Prepare`` of that ballot, naming that ``Prepare``'s ``slot_from`` (its
  own, the ``slot_from`` of its Phase 1), and reporting no slot at or past
  ``slot_from + 2 * slots_ahead_max`` (``Replica._on_promise`` refuses those).
  Paxos makes any later report at a slot carry the value of an earlier highest
  one once it is chosen, so the rule holds whatever arrives after.

- ``promised-leads``: a candidate leads once the promises it may count make
  a majority: when a step of a ``Promise`` leaves it preparing, the promises
  counted (as above) from the voters of the configuration at its Phase 1's
  ``slot_from`` are fewer than a majority of them. Judged only where that is
  the one configuration from ``slot_from`` on and no counted promise has a
  ``log_start`` past its ``slot_from`` (the compacted-log rule has such a
  candidate learn first, then prepare again). A candidate that sits on a
  majority of promises waits out its timer and stands again: no safety rule
  sees it (s16 row 18, the fill window halved).

- ``caught-up-prepares``: a candidate that a counted promise sent to learn
  first (its ``log_start`` past both the promise's ``slot_from`` and the
  candidate's chosen prefix: the compacted-log rule) prepares again, or gives
  up standing, as soon as its chosen prefix reaches the highest such
  ``log_start``: no call may leave it preparing under that ballot once
  caught up. One that sits there waits out its timer for nothing (a
  candidate's prefix moves only by a ``Learn`` or a snapshot it installs;
  a leader's ``Accept`` or ``Heartbeat`` would have made it follow).

Cost: per stepped ``Promise``, a walk of its entries; per ``Accept`` sent, a
dict lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from paxon.protocol.messages import Accept, Prepare, Promise
from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import Ballot, Entry, NodeId, Slot
from paxon.sim.checkers import Violation


@dataclass(slots=True)
class _Candidacy:
    """One ballot of one replica object: its Phase 1 as the checker saw it."""

    replica_id: int
    ballot: Ballot
    # The slot_from of the Prepare it sent each node under this ballot.
    asked: dict[NodeId, Slot] = field(default_factory=dict)
    # The highest-ballot entry reported per slot by the promises it counts.
    reported: dict[Slot, Entry] = field(default_factory=dict)
    # Slots whose first Accept of the reign was judged.
    judged: set[Slot] = field(default_factory=set)
    # Slots where the counted promises reported two values or more.
    split: set[Slot] = field(default_factory=set)
    # The nodes whose promises it counts, and whether one of them had compacted
    # past its slot_from (the candidate must learn before it may lead).
    counted: set[NodeId] = field(default_factory=set)
    learn_first: bool = False
    # The highest log_start of a counted promise that sent it to learn first.
    catch_up_to: Slot = 0


class ReproposalChecker:
    """Checks the rules of the module docstring on each call it is told of."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        self._candidacies: dict[NodeId, _Candidacy] = {}
        # First Accepts judged at a slot reported with two values or more: the
        # moment the rule is about (counted for the tests, ``split_slot``).
        self.split_judged = 0
        # Promises counted that report a slot in the far half of the fill
        # window, W or more past the slot_from (``lagging_candidate``).
        self.far_fill_counted = 0

    def on_call(
        self,
        node_id: NodeId,
        replica: Replica,
        call: str,
        args: Sequence[Any],
        ready: Ready,
        time: float,
    ) -> None:
        if replica.role is Role.FOLLOWER:
            return
        ballot = replica.ballot_own
        candidacy = self._candidacies.get(node_id)
        if candidacy is None or (candidacy.replica_id, candidacy.ballot) != (id(replica), ballot):
            candidacy = _Candidacy(id(replica), ballot)
            self._candidacies[node_id] = candidacy
        if call == "step" and isinstance(args[0], Promise):
            self._count(replica, candidacy, args[0])
            if replica.role is Role.PREPARING:
                self._check_leads(node_id, replica, candidacy, time)
        if replica.role is Role.PREPARING and 0 < candidacy.catch_up_to <= replica.slot_chosen:
            self.violations.append(
                Violation(
                    time,
                    "caught-up-prepares",
                    f"n{node_id} is still preparing under {candidacy.ballot} after its "
                    f"{call}, its chosen prefix at {replica.slot_chosen}, past the log_start "
                    f"{candidacy.catch_up_to} it was sent to learn up to",
                )
            )
            candidacy.catch_up_to = 0  # named once
        for message in (*ready.messages, *ready.messages_after_persist):
            if isinstance(message, Prepare) and message.ballot == ballot:
                candidacy.asked[message.dst] = message.slot_from
            elif isinstance(message, Promise) and message.dst == node_id:
                # Its own promise: the slot_from of its Phase 1.
                candidacy.asked.setdefault(node_id, message.slot_from)
            elif isinstance(message, Accept) and message.ballot == ballot:
                self._judge(node_id, candidacy, message, time)

    def _count(self, replica: Replica, candidacy: _Candidacy, promise: Promise) -> None:
        if promise.ballot != candidacy.ballot:
            return
        asked = candidacy.asked.get(promise.src)
        if asked is None and promise.src == replica.node_id:
            asked = candidacy.asked[promise.src] = promise.slot_from
        fill_end = promise.slot_from + 2 * replica.config.slots_ahead_max
        if asked != promise.slot_from or (promise.entries and promise.entries[-1].slot >= fill_end):
            return  # one the core refuses (Replica._on_promise)
        candidacy.counted.add(promise.src)
        if (
            promise.entries
            and promise.entries[-1].slot >= fill_end - replica.config.slots_ahead_max
        ):
            self.far_fill_counted += 1
        candidacy.learn_first |= promise.log_start > promise.slot_from
        if replica.role is Role.PREPARING and promise.log_start > max(
            promise.slot_from, replica.slot_chosen
        ):
            candidacy.catch_up_to = max(candidacy.catch_up_to, promise.log_start)
        reported = candidacy.reported
        for entry in promise.entries:
            best = reported.get(entry.slot)
            if best is not None and best.value != entry.value:
                candidacy.split.add(entry.slot)
            if best is None or entry.ballot > best.ballot:
                reported[entry.slot] = entry

    def _check_leads(
        self, node_id: NodeId, replica: Replica, candidacy: _Candidacy, time: float
    ) -> None:
        slot_from = candidacy.asked.get(node_id)
        if slot_from is None or candidacy.learn_first:
            return
        configs = replica._history.from_slot(slot_from)
        if len(configs) != 1:
            return
        voters = configs[0].voters
        promised = sorted(candidacy.counted & voters)
        if len(promised) >= configs[0].quorum:
            self.violations.append(
                Violation(
                    time,
                    "promised-leads",
                    f"n{node_id} prepares under {candidacy.ballot} from slot {slot_from} with "
                    f"promises from {promised}, a majority of {sorted(voters)}, and does not lead",
                )
            )

    def _judge(self, node_id: NodeId, candidacy: _Candidacy, accept: Accept, time: float) -> None:
        slot = accept.slot
        if slot in candidacy.judged:
            return
        candidacy.judged.add(slot)
        self.split_judged += slot in candidacy.split
        best = candidacy.reported.get(slot)
        if best is not None and best.value != accept.value:
            self.violations.append(
                Violation(
                    time,
                    "reproposes-highest",
                    f"n{node_id} leads under {candidacy.ballot} and proposed {accept.value} at "
                    f"slot {slot}, where the highest ballot reported, {best.ballot}, had "
                    f"accepted {best.value}",
                )
            )
