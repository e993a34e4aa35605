"""Liveness once every fault has healed: the cluster settles, then stays quiet and serves.

After the fault phase the network is perfect, no node crashes or pauses, and
every member that recovery did not refuse is restarted; once the cluster has
settled, a buggy member forges only messages a correct core drops outright
(``buggy.QUIET_KINDS``), which must change nothing below. From then on a
correct cluster must, by the rules of ``docs/protocol.md`` ("Leader
stability"):

- ``heal-settles``: *settle* within ``settle_bound(config)`` of the heal: every
  live member up, one leader, every other member a follower promised to the
  leader's ballot, or one that names that leader under a lower promise (a
  voter that missed its Prepare, or a learner: a Heartbeat does not raise a
  promise, so with no write since it follows above it; session 33, a cluster
  with only readers), and so for a heartbeat interval and 0.1 s with no role
  changing (``confirm_window``: a follower cut off until the heal may stand
  once before the leader's first heartbeat reaches it). The bound is what an
  election may honestly take: one election timeout at the largest backoff,
  another for a split vote, the confirm window, and half a second for
  start-up and catch-up (slack); and for each configuration change that took
  effect after the heal, what bringing it into effect may take
  (``change_effect_bound``): the cluster is not settled while one is on its
  way (swarm seed 7003556: with a window of one slot, two changes of 64
  slots each took 0.7 s after the heal);
- ``quiet-stable``: once settled, keep that leader: no replica changes role
  until the run ends (heartbeats reach every follower well inside its
  timeout, a probe is refused while a leader is live, and nothing else
  deposes a leader in a quiet cluster), but for a node added after the
  cluster settled, which becomes a follower when it joins. One deposition
  is owed, not a fault: a learner added after the heal that promised a
  higher ballot while it was away (a node removed while it stood, added
  back) refuses every Accept of the leader's ballot, and the leader steps
  down so that a ballot above it is chosen (``docs/protocol.md``, "Leader
  stability"; swarm seed 2002105). The leader's step-down then starts the
  rules over, as a restart does (``learner_outbidding``, ``on_restart``);
- ``quiet-progress``: once settled, complete client operations with no gap
  longer than ``progress_gap_bound(config)``: two client timeouts (a retry
  that went to a node that was not leader) plus two accept retries and half a
  second of slack. Measured on swarm seeds: gaps stay under 0.05 s.

A seed whose settle bound passes the end of the run checks only what it can.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from paxon.node.node import DUTIES_INTERVAL_S
from paxon.protocol.replica import Role
from paxon.protocol.types import Ballot, NodeId
from paxon.sim.checkers import Violation
from paxon.sim.config import SimConfig
from paxon.sim.host import FSYNC_MAX_S
from paxon.sim.network import LinkFaults

# Slack on top of the protocol's own timings (start-up, catch-up, a few ticks).
_SLACK_S = 0.5
_CONFIRM_SLACK_S = 0.1


def settle_bound(config: SimConfig) -> float:
    """Seconds after healing by which the cluster must have settled."""
    replica = config.replica
    election = replica.election_timeout_max_s * replica.backoff_max_factor
    return 2 * election + confirm_window(config) + _SLACK_S


def change_effect_bound(config: SimConfig) -> float:
    """Seconds a configuration change may honestly take, once healed, to take
    effect: the leader's next look for a member to bind (every
    ``DUTIES_INTERVAL_S``; the one change it makes unasked), then ``alpha``
    slots, chosen ``pipeline_window_slots`` at a time (no-ops when no command
    waits), each a round trip and two fsyncs at the slowest."""
    window = min(config.replica.pipeline_window_slots, config.alpha)
    rounds = -(-config.alpha // window)
    slot = 2 * LinkFaults().delay_max_s + 2 * FSYNC_MAX_S  # the healed network
    return DUTIES_INTERVAL_S + rounds * slot


def _changes_note(changes: int) -> str:
    return f", {changes} configuration changes taking effect" if changes else ""


def confirm_window(config: SimConfig) -> float:
    """How long the cluster must look settled before it counts as settled.

    A follower cut off until the heal may be a moment from its election
    timeout; the leader's next heartbeat restarts its timer. Settled means
    every follower has had that heartbeat: one interval, and slack for delivery."""
    return config.replica.heartbeat_interval_s + _CONFIRM_SLACK_S


def progress_gap_bound(config: SimConfig) -> float:
    """Longest a settled cluster may go without completing a client operation."""
    return 2 * config.client_timeout_s + 2 * config.replica.accept_retry_s + _SLACK_S


def learner_outbidding(
    learners: Iterable[NodeId], promised: Mapping[NodeId, Ballot], ballot: Ballot
) -> NodeId | None:
    """The lowest of ``learners`` (of the leader's newest configuration) whose
    promise, by ``promised`` (every live member's), is above the leader's
    ``ballot``: it refuses all the leader sends, and only a higher ballot
    brings it the log. None if there is none."""
    for node_id in sorted(learners):
        if node_id in promised and promised[node_id] > ballot:
            return node_id
    return None


@dataclass(frozen=True, slots=True)
class NodeState:
    """One member as a sample sees it (``None`` role: down or starting)."""

    node_id: NodeId
    role: Role | None
    ballot_own: Ballot
    ballot_promised: Ballot
    leader_id: NodeId | None = None


@dataclass(slots=True)
class HealWatch:
    config: SimConfig
    violations: list[Violation]
    healed_at: float | None = None
    settled_at: float | None = None
    # When a leader sent TimeoutNow after settling (``on_handover``).
    _handovers: list[float] = field(default_factory=list)
    leader: NodeId | None = None
    _role_changes: list[tuple[float, NodeId, Role]] = field(default_factory=list)
    _last_op_at: float | None = None
    _gap_max: float = 0.0
    # Since when the cluster has looked settled, no role changing (not yet confirmed).
    _calm_since: float | None = None
    # The members the cluster settled with.
    _settled_members: frozenset[NodeId] = frozenset()
    # How many configuration changes took effect, or are yet to, after the
    # heal (set by the cluster; each extends the settle bound).
    changes_after_heal: Callable[[], int] = lambda: 0

    def on_heal(self, time: float) -> None:
        self.healed_at = time

    def on_role_change(self, node_id: NodeId, role: Role, time: float) -> None:
        # A node added after the cluster settled follows the leader when it
        # joins: no deposition, though it may have stood while outside (a
        # removed node that never heard of its removal probes; swarm seed
        # 4000160: added back as a learner, it went from probing to follower).
        joining = role is Role.FOLLOWER and node_id not in self._settled_members
        if self.settled_at is not None and not joining:
            self._role_changes.append((time, node_id, role))
        self._calm_since = None

    def on_handover(self, time: float) -> None:
        """A leader sent ``TimeoutNow``: once settled, only an operator's
        transfer-leader does that (asked in the faults, still on its way at
        the heal); the role changes of that handover are on purpose."""
        if self.settled_at is not None:
            self._handovers.append(time)

    def on_restart(self, time: float) -> None:
        """An aimed graceful stop after the heal of a node nobody can take over
        from (``lone_voter``: the only voter), a settled leader outbid by a
        learner added back (``learner_outbidding``), or a settled leader asked
        to remove itself (``lease_removal``): what was owed until now
        is judged (``finish``), then the cluster must settle again as after a
        heal, from ``time``, and keep quiet from then on."""
        self.finish(time)
        self.healed_at = time
        self.settled_at = None
        self.leader = None
        self._handovers.clear()
        self._role_changes.clear()
        self._last_op_at = None
        self._gap_max = 0.0
        self._calm_since = None
        self._settled_members = frozenset()

    def on_op_completed(self, time: float) -> None:
        if self.settled_at is None:
            return
        since = self._last_op_at if self._last_op_at is not None else self.settled_at
        self._gap_max = max(self._gap_max, time - since)
        self._last_op_at = time

    def sample(self, states: Iterable[NodeState], time: float) -> None:
        """Whether the cluster has settled now (see the module docstring)."""
        if self.healed_at is None or self.settled_at is not None:
            return
        states = list(states)
        leaders = [state for state in states if state.role is Role.LEADER]
        calm = len(leaders) == 1 and all(_under(state, leaders[0]) for state in states)
        if not calm:
            self._calm_since = None
        elif self._calm_since is None:
            self._calm_since = time
        elif time - self._calm_since >= confirm_window(self.config):
            self.settled_at = time
            self.leader = leaders[0].node_id
            self._settled_members = frozenset(state.node_id for state in states)

    def finish(self, time: float) -> None:
        if self.healed_at is None:
            return
        changes = self.changes_after_heal()
        bound = settle_bound(self.config) + changes * change_effect_bound(self.config)
        if self.settled_at is None:
            if time >= self.healed_at + bound:
                self._fail(
                    time,
                    "heal-settles",
                    f"the cluster did not settle on one leader within {bound:.3f} s of healing"
                    f"{_changes_note(changes)}",
                )
            return
        if self.settled_at > self.healed_at + bound:
            self._fail(
                self.settled_at,
                "heal-settles",
                f"the cluster settled {self.settled_at - self.healed_at:.3f} s after "
                f"healing (at most {bound:.3f} s{_changes_note(changes)})",
            )
        # A handover's own role changes (the leader steps down, the target
        # prepares and leads) fall within one election timeout of it.
        window = self.config.replica.election_timeout_max_s
        unexplained = [
            change
            for change in self._role_changes
            if not any(0 <= change[0] - at <= window for at in self._handovers)
        ]
        if unexplained:
            at, node_id, role = unexplained[0]
            self._fail(
                at,
                "quiet-stable",
                f"n{node_id} became {role.value} in a quiet cluster settled on "
                f"n{self.leader} at {self.settled_at:.6f} ({len(unexplained)} "
                "role changes since)",
            )
        if self._last_op_at is not None:
            self.on_op_completed(time)  # the tail counts as a gap too
        else:
            self._gap_max = time - self.settled_at
        gap = progress_gap_bound(self.config)
        if self._gap_max > gap:
            self._fail(
                time,
                "quiet-progress",
                f"a settled cluster completed no client operation for {self._gap_max:.3f} s "
                f"(at most {gap:.3f} s)",
            )

    def _fail(self, time: float, rule: str, detail: str) -> None:
        self.violations.append(Violation(time, rule, detail))


def _under(state: NodeState, leader: NodeState) -> bool:
    """``state`` is the leader, or a follower promised to its ballot, or one
    that names it under a lower promise (it follows its heartbeats)."""
    if state.role not in (Role.FOLLOWER, Role.LEADER):
        return False
    if state.ballot_promised == leader.ballot_own:
        return True
    return (
        state.role is Role.FOLLOWER
        and state.leader_id == leader.node_id
        and state.ballot_promised < leader.ballot_own
    )


__all__ = [
    "HealWatch",
    "NodeState",
    "confirm_window",
    "learner_outbidding",
    "progress_gap_bound",
    "settle_bound",
]
