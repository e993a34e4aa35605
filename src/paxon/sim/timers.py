"""Timing and limit rules of the core, judged at every call a runtime makes into it.

``PropertyChecker`` (``properties.py``) judges what a node says and writes;
this module judges *when* it acts and *how much* it holds: the rules that
keep a cluster live and bounded, which no safety check sees broken. A runtime
reports every call into a replica, with the replica itself (its public face
is read: ``role``, ``ballot_own``, ``ballot_promised``, ``leader_id``, ``now``,
``slot_next``, ``config``, ``quorum``, ``members``, ``counters``; and, shared
with the code judged, ``_may_stand()`` and the configurations it holds):

    on_start(node_id, replica, time)             a replica was built (start or restart)
    on_call(node_id, replica, call, args, before, ready, time)
                                                 a call returned ``ready``; ``before`` is
                                                 ``snapshot(replica)`` taken just before it
    on_busy(node_id, replica, commands, time)    ``propose_many(commands)`` raised ``Busy``

A message a buggy member forged is reported like any other: the replica
refuses it at its edge, and a refused message changes no timer (a refused
``Prepare``, ``Accept`` or ``Heartbeat`` gets no answer; a ``HeartbeatReply``
naming a read round never asked is refused).

The rules, by name (``Violation.rule``), each from ``docs/protocol.md`` or
``protocol/config.py``. Times are the replica's own clock (``now``, what it
was last ticked with), so each rule is exact at the tick that must act:

- ``leader-lease``: a leader that has heard from no majority of the voters
  (itself included; a learner does not count) for ``election_timeout_max_s``
  steps down at its next tick, and one that has heard from a majority within
  it does not. A peer is heard when an ``Accepted`` or ``HeartbeatReply``
  under the leader's ballot reaches it; every peer counts as heard at the
  moment it became leader. ("LEADER --no word from a majority for
  election_timeout_max_s--> FOLLOWER".)
- ``election-timer``: a replica stands (follower to probing), or gives up
  probing or preparing, only once ``election_timeout_min_s`` has passed since
  its election timer last restarted, and it does by ``election_timeout_max_s
  * backoff_max_factor``. The timer restarts when the replica enters a role
  other than leader, when a candidate starts Phase 1 again under a new ballot
  (it caught up past an acceptor's log_start), and when a ``Prepare``,
  ``Accept`` or ``Heartbeat`` from another node, under a ballot at least its
  promise, gets past its edge.
- ``election-backoff``: the same bounds stretched by the back-off ``b`` its
  timeout is drawn with: between ``election_timeout_min_s * b`` and
  ``election_timeout_max_s * b``. ``b`` is 1 at the start, on leading and on
  following a leader (an ``Accept`` or ``Heartbeat`` past the edge), and is
  multiplied by ``backoff_factor`` (at most ``backoff_max_factor``) at each
  preempted step-down: a candidate whose timer ran out, or one that heard a
  higher ballot (a ``Nack`` naming one, a promise raised above its own). A
  leader that lost its majority or handed over, and a replica that installed
  a snapshot, keep theirs. ("A candidate or leader preempted by a higher
  ballot ... multiplies its next election timeout by backoff_factor": a
  candidate that does not back off duels on; one that backs off unbeaten
  waits for nothing.) A follower that may not stand restarts its timer
  unseen at each ask; until a restart the checker sees, only
  ``election-timer``'s bound judges how long it waits (membership-changes
  seed 12: a learner made a voter), counted from the last tick that saw it
  unable to stand (swarm seed 2000272: a learner promoted while cut off for
  0.9 s), and one with no round left to stand in
  restarts it unseen too (a core trusting any round: ``TrustsAnyRound``).
- ``queue-bound``: a leader's proposal queue (commands it took with
  ``propose_many`` and has not yet put in a new slot) never holds more than
  ``queue_max_commands``, and ``Busy`` is raised only when the commands would
  not fit, or while leadership is being handed over (a transfer, or a removed
  leader waiting to hand over). ("a limit on everything".)
- ``batch-bound``: a new slot carries at most ``batch_max_commands`` commands,
  and past its first command at most ``batch_max_bytes`` of payload.
- ``nack-steps-down``: a candidate or leader that steps a ``Nack`` answering
  its own ballot and naming a higher promise (one its edge does not refuse)
  is a follower when the step returns. ("An acceptor ... the higher ballot it
  promised"; "a candidate or leader preempted by a higher ballot" backs off:
  the ballot it held can no longer win.)
- ``install-steps-down``: a leader or a prober that installs a snapshot is a
  follower when the call returns. ("A replica this far behind should not
  lead": a candidate catching up may go on preparing, so it is not judged.)
- ``timeout-now-stands``: a follower that steps a ``TimeoutNow`` from the
  leader it follows, under the ballot of that reign (of the last ``Accept``
  or ``Heartbeat`` it took from it, at or above its promise: a voter that
  missed the leader's ``Prepare`` follows above its promise until a write),
  and may stand, is preparing under a new ballot when the step returns.
  ("Our leader hands leadership to us: stand at once, skipping the probe":
  ignored, the transfer waits out an election timeout and a graceful stop
  or a removal of the leader pauses writes that long; session 33 found a
  transfer refused for good, the target's promise below the reign.)
- ``nonvoter-asks``: a follower that may not stand (a learner, a removed
  voter, a node behind the configurations that add it), having heard no
  leader for ``election_timeout_max_s * backoff_max_factor +
  learn_retry_s``, has asked a member it knows for the log within that time.
  ("No leader for a whole timeout, and we may not stand: ask a member we
  know to catch us up, once a timeout": it may be behind only because whoever
  knows the slots that make it a voter follows no one.)
- ``probe-prepares``: a prober whose grants (``ProbeReply`` granted under its
  ballot, itself counted) make a majority of every configuration it holds
  from its chosen prefix on is preparing, or leading, when that step returns,
  under its probed ballot while that stands (above its promise, no higher
  round seen since), under a fresh one only if it went stale meanwhile.
  ("PROBING --a majority granted--> PREPARING": a prober that drops its
  granted probe waits out another timeout, backed off.)
- ``learn-bound``: a ``Learn`` carries at most ``learn_max_entries`` entries,
  and past its first entry at most ``learn_max_bytes`` of payload.
- ``learn-full``: and a ``Learn`` answering a ``LearnRequest`` is as full as
  those limits let it be: the consecutive slots from the request's
  ``slot_from``, up to the sender's chosen prefix or ``learn_max_entries`` of
  them, cut short only where the next slot would take the payload past
  ``learn_max_bytes``. A page cut sooner makes the asker come back once a
  slot (s21 sample row 18: pages of one entry). To a node the sender
  remembers removed, the page ends at its removal's effect slot
  (``Replica.removal_effect``).

While the members change (``docs/protocol.md``, "Membership") the two timer
rules judge only what they can judge exactly: ``leader-lease`` only a reign
whose configurations ahead (from ``slot_chosen`` on) still have the voters it
began under, one set with the leader in it (a pending change asks a
majority of each configuration; a removed leader leads on until it hands
over); ``election-timer``'s "stands by" only a replica that may stand, a voter
in effect at its ``slot_chosen`` and in its newest configuration (a learner,
a node whose removal is chosen, a spare never added never stand).

Cost: a few attribute reads per call, one walk of the messages of a call
that proposes new slots or sends a Learn, and two reads of the refusal
counters around each ``Nack`` stepped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from paxon.protocol.config import ROUND_END
from paxon.protocol.messages import (
    Accept,
    Accepted,
    Heartbeat,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Message,
    Nack,
    Prepare,
    ProbeReply,
    TimeoutNow,
)
from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import Ballot, NodeId, Slot, Value
from paxon.sim.checkers import Violation

# Float slack for comparing two sums of the same clock readings.
_EPSILON_S = 1e-9


class Before(NamedTuple):
    """What a replica showed just before a call (``snapshot``)."""

    role: Role
    ballot_promised: Ballot
    slot_next: Slot
    ballot_own: Ballot
    # Messages it had refused, counted only before a Nack (every refusal), a
    # TimeoutNow or a ProbeReply (at the edge alone) is stepped.
    refused: int
    leader_id: NodeId | None
    slot_chosen: Slot
    # The highest round it had seen, read only before a ProbeReply is stepped
    # (whether its probed ballot still stands when it prepares).
    round_seen: int = 0
    # Messages it had refused as out of bounds, read only before a Learn is
    # stepped (``learn-counted``).
    out_of_bounds: int = 0


def own_votes(replica: Replica, slot_from: Slot) -> dict[Slot, Value]:
    """The values a leader holds under its own ballot in the slots from
    ``slot_from`` to ``slot_next``: what it proposed there, ``Accept`` sent or
    not (a leader alone in its configuration sends none)."""
    votes: dict[Slot, Value] = {}
    for slot in range(slot_from, replica.slot_next):
        held = replica._log.get(slot)
        if held is not None and held.ballot == replica.ballot_own:
            votes[slot] = held.value
    return votes


def snapshot(replica: Replica, call: str = "", args: Sequence[Any] = ()) -> Before:
    """The public state the call ``call(*args)`` is judged against."""
    refused = 0
    round_seen = 0
    out_of_bounds = 0
    if call == "step" and isinstance(args[0], Learn):
        out_of_bounds = replica.counters.ignored_out_of_bounds
    elif call == "step" and isinstance(args[0], Nack):
        refused = _refused(replica)
    elif call == "step" and isinstance(args[0], TimeoutNow | ProbeReply):
        refused = _refused_at_edge(replica)
        round_seen = replica._round_seen
    return Before(
        replica.role,
        replica.ballot_promised,
        replica.slot_next,
        replica.ballot_own,
        refused,
        replica.leader_id,
        replica.slot_chosen,
        round_seen,
        out_of_bounds,
    )


def _refused(replica: Replica) -> int:
    return sum(dataclasses.astuple(replica.counters))


def _refused_at_edge(replica: Replica) -> int:
    """Messages refused at the edge: not an election the rounds ran out for."""
    return _refused(replica) - replica.counters.elections_blocked_round_end


@dataclass(slots=True)
class _Reign:
    ballot: Ballot
    since: float
    seen: dict[NodeId, float]
    # The configurations ahead when the reign began (``_configs_ahead``).
    configs: tuple[frozenset[NodeId], ...] = ()
    queued: int = 0


@dataclass(slots=True)
class _Timer:
    reset_at: float
    reign: _Reign | None = None
    # Read rounds asked so far (each ``read_index`` call is one; never reset).
    read_rounds: int = 0
    # The replica object these notes are about (a restart builds a new one).
    replica_id: int = 0
    # When it last sent a LearnRequest (its clock).
    asked_at: float = float("-inf")
    # The back-off its election timeout is drawn with, as the rule states it:
    # 1 at the start, on leading and on following a leader; times
    # backoff_factor (at most backoff_max_factor) at each preempted step-down.
    backoff: float = 1.0
    # Whether it may have restarted its timer unseen since reset_at: a
    # follower that may not stand restarts it at each ask (``nonvoter-asks``),
    # sent or skipped. Until the next restart seen, only ``election-timer``'s
    # looser bound judges how long it waits, counted from the last tick that
    # saw it unable to stand (``blind_at``): its deadline then was at most a
    # timeout away, whenever it last restarted.
    blind: bool = False
    blind_at: float = float("-inf")
    # The reign it follows: (leader, ballot) of the last Accept or Heartbeat it
    # took from the leader it names, at or above its promise (a Heartbeat
    # does not raise the promise: ``timeout-now-stands``).
    followed: tuple[NodeId, Ballot] | None = None


class TimerChecker:
    """Checks every rule in the module docstring on each call it is told of."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        self._timers: dict[NodeId, _Timer] = {}
        # Per node: its replica object, the ballot it probes under, who granted it.
        self._grants: dict[NodeId, tuple[int, Ballot, set[NodeId]]] = {}

    def on_start(self, node_id: NodeId, replica: Replica, time: float) -> None:
        self._timers[node_id] = _Timer(reset_at=replica.now, replica_id=id(replica))

    def on_busy(
        self, node_id: NodeId, replica: Replica, commands: Sequence[object], time: float
    ) -> None:
        timer = self._timer(node_id, replica)
        reign = timer.reign
        limit = replica.config.queue_max_commands
        # Busy while leadership moves, or from a removed leader waiting to hand over.
        removed = replica.node_id not in replica.configuration.voters
        moving = replica.transferring_to is not None or removed
        if reign is not None and reign.queued + len(commands) <= limit and not moving:
            self._fail(
                time,
                "queue-bound",
                f"n{node_id} refused {len(commands)} commands as Busy with "
                f"{reign.queued} of {limit} queued",
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
        timer = self._timer(node_id, replica)
        now = replica.now
        role = replica.role
        if any(isinstance(message, LearnRequest) for message in ready.messages):
            timer.asked_at = now
        if call == "tick":
            self._check_tick(node_id, replica, timer, before, time)
        elif call == "install_snapshot":
            self._check_install(node_id, replica, args[0], before, time)
        if role is not before.role:
            if role is Role.LEADER:
                peers = {member: now for member in replica.members if member != node_id}
                timer.reign = _Reign(replica.ballot_own, now, peers, _configs_ahead(replica))
            else:
                timer.reign = None
                timer.reset_at, timer.blind = now, False
        elif role is Role.PREPARING and replica.ballot_own != before.ballot_own:
            # A candidate that caught up past an acceptor's log_start prepares
            # again at once under a new ballot: a new Phase 1, a new timer
            # (swarm seed 238: after installing a snapshot).
            timer.reset_at, timer.blind = now, False
        elif call == "step":
            self._on_step(node_id, timer, args[0], before, ready, now)
        elif call == "read_index":
            timer.read_rounds += 1
        if call == "step" and isinstance(args[0], Accept | Heartbeat):
            followed = args[0]
            if replica.leader_id == followed.src and followed.ballot >= before.ballot_promised:
                timer.followed = (followed.src, followed.ballot)
        for message in ready.messages:
            if isinstance(message, Heartbeat) and message.read_round > timer.read_rounds:
                # Lease reads: every round of heartbeats is a read round too.
                timer.read_rounds = message.read_round
        self._back_off(timer, replica, call, args, before, ready)
        if call == "step" and isinstance(args[0], Nack):
            self._check_nack(node_id, replica, args[0], before, time)
        elif call == "step" and isinstance(args[0], TimeoutNow):
            self._check_timeout_now(node_id, replica, args[0], before, time)
        elif call == "step" and isinstance(args[0], ProbeReply):
            self._check_probe(node_id, replica, args[0], before, time)
        if ready.messages:
            self._check_learns(node_id, replica, ready.messages, time)
            if call == "step" and isinstance(args[0], LearnRequest):
                self._check_learn_full(node_id, replica, args[0], ready.messages, time)
        reign = timer.reign
        if reign is None:
            return
        if call == "propose_many" and role is Role.LEADER:
            reign.queued += len(args[0])
        self._check_new_slots(node_id, replica, reign, before, ready, time)
        limit = replica.config.queue_max_commands
        if reign.queued > limit:
            self._fail(
                time,
                "queue-bound",
                f"n{node_id} holds {reign.queued} commands in its queue (at most {limit})",
            )
            reign.queued = 0

    # ------------------------------------------------------------- rules

    def _on_step(
        self,
        node_id: NodeId,
        timer: _Timer,
        message: Message,
        before: Before,
        ready: Ready,
        now: float,
    ) -> None:
        reign = timer.reign
        if isinstance(message, Accepted | HeartbeatReply):
            if reign is not None and message.ballot == reign.ballot and message.src in reign.seen:
                if isinstance(message, HeartbeatReply) and message.read_round > timer.read_rounds:
                    return  # a read round never asked: refused, not heard
                reign.seen[message.src] = now
            return
        # Past the edge, each of these gets an answer (a vote, a promise, a
        # reply or a Nack); a refused one gets none.
        if (
            isinstance(message, Prepare | Accept | Heartbeat)
            and message.src != node_id
            and message.ballot >= before.ballot_promised
            and (ready.messages or ready.messages_after_persist)
        ):
            timer.reset_at, timer.blind = now, False

    @staticmethod
    def _back_off(
        timer: _Timer,
        replica: Replica,
        call: str,
        args: Sequence[Any],
        before: Before,
        ready: Ready,
    ) -> None:
        """The back-off after this call (``election-backoff``)."""
        role = replica.role
        message = args[0] if call == "step" else None
        followed = (
            isinstance(message, Accept | Heartbeat)
            and message.src != replica.node_id
            and message.ballot >= before.ballot_promised
            and bool(ready.messages or ready.messages_after_persist)
        )
        if role is Role.LEADER or followed:
            timer.backoff = 1.0
            return
        if before.role is Role.FOLLOWER or role is not Role.FOLLOWER:
            return
        # A candidate or leader became a follower. Preempted: a candidate whose
        # timer ran out, or one that heard a higher ballot (a Nack naming one,
        # or a promise raised above its own). Not: a leader that lost its
        # majority or handed over (a tick), or one that installed a snapshot.
        preempted = (call == "tick" and before.role is not Role.LEADER) or (
            call == "step"
            and (isinstance(message, Nack) or replica.ballot_promised > before.ballot_own)
        )
        if preempted:
            config = replica.config
            timer.backoff = min(timer.backoff * config.backoff_factor, config.backoff_max_factor)

    def _check_install(
        self, node_id: NodeId, replica: Replica, slot: Slot, before: Before, time: float
    ) -> None:
        """``install-steps-down``: a leader or prober that installed is a follower."""
        if before.role in (Role.LEADER, Role.PROBING) and replica.role is not Role.FOLLOWER:
            self._fail(
                time,
                "install-steps-down",
                f"n{node_id} installed a snapshot at s{slot} as {before.role.value} "
                f"and is still {replica.role.value}",
            )

    def _check_nack(
        self, node_id: NodeId, replica: Replica, nack: Nack, before: Before, time: float
    ) -> None:
        """``nack-steps-down``: a Nack past the edge that answers the candidate's or
        leader's own ballot, naming a higher promise, makes it a follower at once."""
        if (
            before.role is Role.FOLLOWER
            or nack.ballot != before.ballot_own
            or nack.ballot_promised <= before.ballot_own
            or replica.role is Role.FOLLOWER
            or _refused(replica) > before.refused
        ):
            return
        self._fail(
            time,
            "nack-steps-down",
            f"n{node_id} is still {replica.role.value} under {before.ballot_own} after a Nack "
            f"from n{nack.src} naming the promise {nack.ballot_promised}",
        )

    def _check_timeout_now(
        self, node_id: NodeId, replica: Replica, message: TimeoutNow, before: Before, time: float
    ) -> None:
        """``timeout-now-stands``: the leader's hand-over makes its follower a
        candidate at once, when that follower may stand."""
        followed = self._timer(node_id, replica).followed
        if (
            before.role is not Role.FOLLOWER
            or message.src == node_id
            or message.src != before.leader_id
            or followed != (message.src, message.ballot)
            or message.ballot < before.ballot_promised
            or _refused_at_edge(replica) > before.refused
            or not replica._may_stand()
            or before.ballot_promised.round >= ROUND_END - 1  # no round left to stand in
        ):
            return
        if replica.role is not Role.FOLLOWER and replica.ballot_own > message.ballot:
            return
        self._fail(
            time,
            "timeout-now-stands",
            f"n{node_id} is {replica.role.value} under {replica.ballot_own} after its leader "
            f"n{message.src} handed it leadership (TimeoutNow under {message.ballot})",
        )

    def _check_probe(
        self, node_id: NodeId, replica: Replica, reply: ProbeReply, before: Before, time: float
    ) -> None:
        """``probe-prepares``: a prober whose grants make a majority of every
        configuration ahead starts Phase 1 in the same step."""
        if before.role is not Role.PROBING or reply.ballot != before.ballot_own:
            return
        held = self._grants.get(node_id)
        if held is None or held[0] != id(replica) or held[1] != before.ballot_own:
            held = self._grants[node_id] = (id(replica), before.ballot_own, {node_id})
        if not reply.granted or _refused_at_edge(replica) > before.refused:
            return
        grants = held[2]
        grants.add(reply.src)
        quorum = all(len(voters & grants) > len(voters) // 2 for voters in _configs_ahead(replica))
        if not quorum:
            return
        if replica.role in (Role.PREPARING, Role.LEADER):
            self._check_prepared_ballot(node_id, replica, before, time)
            return
        if before.ballot_promised.round >= ROUND_END - 1:
            return  # no round left to prepare in
        self._fail(
            time,
            "probe-prepares",
            f"n{node_id} is {replica.role.value} after n{reply.src} granted its probe "
            f"{before.ballot_own}, its grants {sorted(grants)} a majority of every "
            "configuration ahead",
        )

    def _check_prepared_ballot(
        self, node_id: NodeId, replica: Replica, before: Before, time: float
    ) -> None:
        """``probe-prepares``, the ballot: the probed one while it still stands
        (above the promise, and no higher round seen since), a fresh one only
        when it went stale ("Prepare then keeps the ballot the majority
        granted"; s21 sample row 19: a fresh ballot every time)."""
        probed = before.ballot_own
        stands = probed > before.ballot_promised and probed.round >= before.round_seen
        if stands and replica.ballot_own != probed:
            verdict = f"prepared under {replica.ballot_own}, not its probed {probed} that stood"
        elif not stands and replica.ballot_own <= probed:
            verdict = f"prepared under {replica.ballot_own}, its probed {probed} gone stale"
        else:
            return
        self._fail(time, "probe-prepares", f"n{node_id} {verdict}")

    def _check_tick(
        self, node_id: NodeId, replica: Replica, timer: _Timer, before: Before, time: float
    ) -> None:
        config = replica.config
        now = replica.now
        role = replica.role
        if before.role is Role.LEADER:
            reign = timer.reign
            if reign is None or not _lease_judged(node_id, replica, reign):
                return
            horizon = now - config.election_timeout_max_s
            # Only voters make the majority: a learner's replies keep no lease.
            voters = reign.configs[0]
            heard = 1 + sum(
                1 for peer, seen in reign.seen.items() if seen >= horizon and peer in voters
            )
            due = heard < replica.quorum and reign.since <= horizon
            if due and role is Role.LEADER:
                self._fail(
                    time,
                    "leader-lease",
                    f"n{node_id} still leads under {reign.ballot} at {now:.6f} having heard "
                    f"from {heard} of {replica.quorum} in {config.election_timeout_max_s:.3f} s",
                )
            elif not due and role is not Role.LEADER:
                self._fail(
                    time,
                    "leader-lease",
                    f"n{node_id} stopped leading {reign.ballot} on a tick at {now:.6f} having "
                    f"heard from {heard} of {replica.quorum} within "
                    f"{config.election_timeout_max_s:.3f} s",
                )
            return
        quiet = now - timer.reset_at
        timeout_max = config.election_timeout_max_s * config.backoff_max_factor
        # election-backoff: within the bounds the back-off stretches them to.
        backoff = timer.backoff
        timeout_max_now = config.election_timeout_max_s * backoff
        # How long it has waited to stand, and the longest it may (see _Timer.blind).
        waited = now - max(timer.reset_at, timer.blind_at) if timer.blind else quiet
        wait_max = timeout_max if timer.blind else timeout_max_now
        if role is not before.role and quiet < config.election_timeout_min_s * backoff - _EPSILON_S:
            self._fail(
                time,
                "election-timer" if backoff == 1.0 else "election-backoff",
                f"n{node_id} went from {before.role.value} to {role.value} "
                f"{quiet:.6f} s after its timer restarted (at least "
                f"{config.election_timeout_min_s * backoff:.6f} s, backed off {backoff:g}x)",
            )
        elif (
            role is before.role
            and waited > wait_max + _EPSILON_S
            and replica._may_stand()
            and replica._next_ballot() is not None  # no round left: it restarts, unseen
        ):
            self._fail(
                time,
                "election-timer" if waited > timeout_max + _EPSILON_S else "election-backoff",
                f"n{node_id} is still {role.value} {waited:.6f} s after its timer "
                f"{'may have ' if timer.blind else ''}restarted (at most {wait_max:.6f} s, "
                f"backed off {config.backoff_max_factor if timer.blind else backoff:g}x)",
            )
            timer.reset_at, timer.blind = now, False  # once per wait is enough
        elif role is Role.FOLLOWER and before.role is Role.FOLLOWER and not replica._may_stand():
            # It may restart its timer here, unseen (``nonvoter-asks``): a learner
            # made a voter while cut off stands a timeout after it hears so, not
            # after the last restart seen (swarm seed 2000272: cut off 0.9 s).
            timer.blind, timer.blind_at = True, now
            self._check_asks(node_id, replica, timer, quiet, timeout_max, time)

    def _check_asks(
        self,
        node_id: NodeId,
        replica: Replica,
        timer: _Timer,
        quiet: float,
        timeout_max: float,
        time: float,
    ) -> None:
        """``nonvoter-asks``: a follower that may not stand, and hears no leader,
        asks a member for the log once per election timeout."""
        # Its own timer restarts unseen here, at each such ask; an ask inside
        # learn_retry_s of the last is skipped, so the next waits a timeout more.
        bound = timeout_max + replica.config.learn_retry_s
        asked = replica.now - timer.asked_at
        if quiet <= bound + _EPSILON_S or asked <= bound + _EPSILON_S:
            return
        if not set(replica.members) - {node_id}:
            return  # nobody to ask
        self._fail(
            time,
            "nonvoter-asks",
            f"n{node_id} may not stand, has heard no leader for {quiet:.6f} s and asked no "
            f"member for the log for {asked:.6f} s (at most {bound:.6f} s)",
        )
        timer.asked_at = replica.now  # once per wait is enough

    def _check_new_slots(
        self,
        node_id: NodeId,
        replica: Replica,
        reign: _Reign,
        before: Before,
        ready: Ready,
        time: float,
    ) -> None:
        """Slots this call opened take commands from the queue: count them out."""
        if replica.slot_next <= before.slot_next or before.role is not Role.LEADER:
            return
        config = replica.config
        slots: dict[Slot, Value] = {}
        for message in ready.messages:
            if isinstance(message, Accept) and message.slot >= before.slot_next:
                slots.setdefault(message.slot, message.value)
        if not slots:
            # A leader alone in its configuration sends no Accept: its own
            # votes hold the slots it opened (swarm seed 3000798).
            slots = own_votes(replica, before.slot_next)
        for slot, value in slots.items():
            commands = value.commands
            if slot >= replica.slot_fill_end:  # below it: re-proposals, not the queue
                reign.queued -= len(commands)
            size = sum(len(command.payload) for command in commands)
            if len(commands) > config.batch_max_commands or (
                len(commands) > 1 and size > config.batch_max_bytes
            ):
                self._fail(
                    time,
                    "batch-bound",
                    f"n{node_id} proposed {len(commands)} commands of {size} bytes at "
                    f"s{slot} (at most {config.batch_max_commands} commands, "
                    f"{config.batch_max_bytes} bytes past the first)",
                )

    def _check_learns(
        self, node_id: NodeId, replica: Replica, messages: Sequence[Message], time: float
    ) -> None:
        config = replica.config
        for message in messages:
            if not isinstance(message, Learn) or len(message.entries) <= 1:
                continue
            size = sum(len(c.payload) for entry in message.entries for c in entry.value.commands)
            if len(message.entries) > config.learn_max_entries or size > config.learn_max_bytes:
                self._fail(
                    time,
                    "learn-bound",
                    f"n{node_id} sent a Learn of {len(message.entries)} entries, {size} bytes "
                    f"(at most {config.learn_max_entries}, {config.learn_max_bytes} bytes)",
                )

    def _check_learn_full(
        self,
        node_id: NodeId,
        replica: Replica,
        request: LearnRequest,
        messages: Sequence[Message],
        time: float,
    ) -> None:
        config = replica.config
        for message in messages:
            if not isinstance(message, Learn) or message.dst != request.src:
                continue
            slots = [entry.slot for entry in message.entries]
            due_end = min(replica.slot_chosen, request.slot_from + config.learn_max_entries)
            removal = replica.removal_effect(request.src)
            if removal is not None:  # a removed node learns nothing from its removal on
                due_end = min(due_end, removal)
            if slots != list(range(request.slot_from, request.slot_from + len(slots))):
                self._fail(
                    time,
                    "learn-full",
                    f"n{node_id} answered n{request.src}'s LearnRequest from slot "
                    f"{request.slot_from} with slots {slots[:8]}: not the slots from there on",
                )
                continue
            end = request.slot_from + len(slots)
            following = replica._log.get(end)
            if end >= due_end or following is None:
                continue
            size = sum(len(c.payload) for entry in message.entries for c in entry.value.commands)
            more = sum(len(command.payload) for command in following.value.commands)
            if size + more <= config.learn_max_bytes:
                self._fail(
                    time,
                    "learn-full",
                    f"n{node_id} answered n{request.src}'s LearnRequest from slot "
                    f"{request.slot_from} with {len(slots)} entries ({size} bytes), though "
                    f"slot {end} ({more} bytes) fit (at most {config.learn_max_entries} "
                    f"entries, {config.learn_max_bytes} bytes, chosen to {due_end})",
                )

    # ------------------------------------------------------------- helpers

    def _timer(self, node_id: NodeId, replica: Replica) -> _Timer:
        timer = self._timers.get(node_id)
        if timer is None or timer.replica_id != id(replica):
            timer = self._timers[node_id] = _Timer(reset_at=replica.now, replica_id=id(replica))
        return timer

    def _fail(self, time: float, rule: str, detail: str) -> None:
        self.violations.append(Violation(time, rule, detail))


def _configs_ahead(replica: Replica) -> tuple[frozenset[NodeId], ...]:
    """The voters of each configuration ``replica`` holds from its chosen prefix
    on; a change that keeps the voters (an incarnation binding, a learner added)
    asks no other quorum, so it counts once."""
    voters: list[frozenset[NodeId]] = []
    for config in replica._history.from_slot(replica.slot_chosen):
        if not voters or voters[-1] != config.voters:
            voters.append(config.voters)
    return tuple(voters)


def _lease_judged(node_id: NodeId, replica: Replica, reign: _Reign) -> bool:
    """Whether the lease rule, as written for one fixed configuration, applies."""
    ahead = _configs_ahead(replica)
    return len(ahead) == 1 and reign.configs == ahead and node_id in ahead[0]


__all__ = ["Before", "TimerChecker", "own_votes", "snapshot"]
