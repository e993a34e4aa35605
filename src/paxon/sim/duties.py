"""Duties a core owes for liveness, stated as rules on each call into a replica.

Breaking one of these loses no acknowledged write and answers no stale read,
so the safety checks never see it: the cluster only serves worse, by an
election timeout, a retry, or for good. Each was a surviving mutant of the
s16 sample (``docs/mutation/sample-120-s16-judgements.md``) judged "liveness
only"; each rule here states the duty from ``docs/protocol.md`` from what the
checker sees arrive and leave, never by asking the core how it decided. A
runtime reports every call, as to ``TimerChecker``:

    on_call(node_id, replica, call, args, before, ready, time)

The rules, by name (``Violation.rule``):

- ``yields-to-higher``: a replica that leads, stands or probes and answers
  an ``Accept`` or ``Heartbeat`` from another node (sends it ``Accepted`` or
  ``HeartbeatReply``: it took the sender for its leader) is a follower after
  that call, when the message's ballot is above its own (or it was probing:
  a live leader, no need to stand). Two nodes that each think they lead keep
  the cluster from a leader that can serve; and a deposed leader that hears
  its successor's heartbeats but leads on holds its clients until a refusal
  reaches it (``docs/protocol.md``, "Leader election"; s16 row 32).
- ``learn-marks``: a ``Learn`` from a node the replica asked
  (``LearnRequest``) marks chosen what it carries: after the call, the
  replica's chosen prefix reaches at least the end of the run of
  consecutive slots the ``Learn`` carries from the prefix it had before,
  inside the window it accepts (``slots_ahead_max`` past that prefix). An
  entry it held with the same value counts like any other; forgetting to mark
  it stalls the prefix until the leader's runs do (s16 row 24).

- ``learn-continues``: and when that ``Learn`` advanced the prefix and came
  full (``learn_max_entries`` entries, or its commands' payloads over
  ``learn_max_bytes - batch_max_bytes``: the next slot would not have fit),
  the replica asks the same node for the rest in that call, without waiting
  ``learn_retry_s`` (``learn-paced`` states the converse: at once only then).
  A replica that guesses a cut ``Learn`` whole catches up one retry at a time
  (s16 row 25).

- ``compacted-learns``: a ``Promise`` makes the replica ask its sender for
  the log (a ``LearnRequest`` to it in that call) only when the promise's
  ``log_start`` is past both its ``slot_from`` and the replica's chosen
  prefix: the compacted-log rule, where the acceptor cannot report slots the
  candidate must learn first. Asked for any other promise, a candidate learns
  what it has and prepares again, a round for nothing (s16 rows 20, 21).

- ``learn-counted``: a ``Learn`` whose last entry lies inside the window the
  replica accepts (before ``slots_ahead_max`` past its chosen prefix) is not
  counted ``ignored_out_of_bounds``: that counter is how an operator sees a
  peer send what no honest node sends (the edge table of
  ``protocol/replica.py``), and an honest ``Learn`` asked from the prefix
  and cut at ``learn_max_entries`` always lies inside it. A counter that
  counts honest traffic hides the hostile (s30 row 17: every honest ``Learn``
  counted).

Cost: per call, a role or two compared; per ``Learn`` stepped, a walk of its
entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from paxon.protocol.messages import (
    Accept,
    Accepted,
    Heartbeat,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Promise,
)
from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import NodeId
from paxon.sim.checkers import Violation
from paxon.sim.timers import Before


class DutyChecker:
    """Checks the rules of the module docstring on each call it is told of."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        # Per node: the replica object, and the nodes it asked to learn from
        # since their last Learn reached it.
        self._asked: dict[NodeId, tuple[int, set[NodeId]]] = {}
        # Calls judged by each rule (for the tests: a rule that never judges proves nothing).
        self.judged = dict.fromkeys(
            (
                "yields-to-higher",
                "learn-marks",
                "learn-continues",
                "compacted-learns",
                "learn-counted",
            ),
            0,
        )

    def on_call(
        self,
        node_id: NodeId,
        replica: Replica,
        call: str,
        args: Sequence[Any],
        before: Before,
        ready: Ready,
        time: float,
    ) -> None:
        asked = self._asked_by(node_id, replica)
        if call == "step":
            message = args[0]
            if isinstance(message, Accept | Heartbeat):
                self._check_yield(node_id, replica, message, before, ready, time)
            elif isinstance(message, Promise):
                self._check_promise_learns(node_id, message, before, ready, time)
            elif isinstance(message, Learn):
                self._check_counted(node_id, replica, message, before, time)
                if message.src in asked:
                    asked.discard(message.src)
                    self._check_learn(node_id, replica, message, before, time)
                    self._check_continues(node_id, replica, message, before, ready, time)
        for sent in ready.messages:
            if isinstance(sent, LearnRequest):
                asked.add(sent.dst)

    def _asked_by(self, node_id: NodeId, replica: Replica) -> set[NodeId]:
        held = self._asked.get(node_id)
        if held is None or held[0] != id(replica):
            held = self._asked[node_id] = (id(replica), set())
        return held[1]

    def _check_yield(
        self,
        node_id: NodeId,
        replica: Replica,
        message: Accept | Heartbeat,
        before: Before,
        ready: Ready,
        time: float,
    ) -> None:
        if before.role is Role.FOLLOWER or message.src == node_id:
            return
        if before.role is not Role.PROBING and not message.ballot > before.ballot_own:
            return
        answer = Accepted if isinstance(message, Accept) else HeartbeatReply
        answered = any(
            isinstance(sent, answer) and sent.dst == message.src
            for sent in (*ready.messages, *ready.messages_after_persist)
        )
        self.judged["yields-to-higher"] += answered
        if answered and replica.role is not Role.FOLLOWER:
            self.violations.append(
                Violation(
                    time,
                    "yields-to-higher",
                    f"n{node_id} ({before.role.value} under {before.ballot_own}) answered "
                    f"n{message.src}'s {type(message).__name__} under {message.ballot} "
                    f"and is still {replica.role.value}",
                )
            )

    def _check_learn(
        self, node_id: NodeId, replica: Replica, message: Learn, before: Before, time: float
    ) -> None:
        window_end = before.slot_chosen + replica.config.slots_ahead_max
        reach = before.slot_chosen
        for entry in message.entries:
            if entry.slot < reach:
                continue
            if entry.slot != reach or entry.slot >= window_end:
                break
            reach += 1
        self.judged["learn-marks"] += reach > before.slot_chosen
        if replica.slot_chosen < reach:
            self.violations.append(
                Violation(
                    time,
                    "learn-marks",
                    f"n{node_id} learned slots {before.slot_chosen} to {reach - 1} from "
                    f"n{message.src} and its chosen prefix ends at {replica.slot_chosen}",
                )
            )

    def _check_counted(
        self, node_id: NodeId, replica: Replica, message: Learn, before: Before, time: float
    ) -> None:
        window_end = before.slot_chosen + replica.config.slots_ahead_max
        if not message.entries or message.entries[-1].slot >= window_end:
            return
        self.judged["learn-counted"] += 1
        counted = replica.counters.ignored_out_of_bounds - before.out_of_bounds
        if counted:
            self.violations.append(
                Violation(
                    time,
                    "learn-counted",
                    f"n{node_id} counted n{message.src}'s Learn of slots "
                    f"{message.entries[0].slot} to {message.entries[-1].slot} out of bounds, "
                    f"inside its window (chosen prefix {before.slot_chosen}, window ends at "
                    f"{window_end})",
                )
            )

    def _check_continues(
        self,
        node_id: NodeId,
        replica: Replica,
        message: Learn,
        before: Before,
        ready: Ready,
        time: float,
    ) -> None:
        config = replica.config
        size = sum(len(c.payload) for entry in message.entries for c in entry.value.commands)
        full = (
            len(message.entries) >= config.learn_max_entries
            or size > config.learn_max_bytes - config.batch_max_bytes
        )
        if replica.slot_chosen <= before.slot_chosen or not full:
            return
        self.judged["learn-continues"] += 1
        if not any(isinstance(m, LearnRequest) and m.dst == message.src for m in ready.messages):
            self.violations.append(
                Violation(
                    time,
                    "learn-continues",
                    f"n{node_id} learned {len(message.entries)} entries ({size} bytes) from "
                    f"n{message.src}, a full Learn that advanced its prefix to "
                    f"{replica.slot_chosen}, and did not ask for the rest",
                )
            )

    def _check_promise_learns(
        self, node_id: NodeId, message: Promise, before: Before, ready: Ready, time: float
    ) -> None:
        if not any(isinstance(m, LearnRequest) and m.dst == message.src for m in ready.messages):
            return
        self.judged["compacted-learns"] += 1
        if message.log_start > max(message.slot_from, before.slot_chosen):
            return
        self.violations.append(
            Violation(
                time,
                "compacted-learns",
                f"n{node_id} asked n{message.src} for the log on its Promise under "
                f"{message.ballot} (slot_from {message.slot_from}, log_start "
                f"{message.log_start}), its own chosen prefix at {before.slot_chosen}",
            )
        )
