"""The lease and the acceptors' promise to a live leader, judged from outside.

``docs/protocol.md`` ("Lease reads") states both halves of a leader lease, and
no rule judged either: a core whose leader answered from a lease too long, or
whose acceptors promised a candidate while they kept a live leader's lease,
passed the run unless a stale read happened to be checked (session 16's
mutation sample: five such mutants survived; the seed budget held no lease
seeds either). A runtime reports every call into a replica, as to
``FailFastChecker``:

    on_call(node_id, replica, call, args, ready, time)

Times are the replica's own clock (``now`` after the call); ``B`` is
``election_timeout_min_s`` and rho ``clock_drift_max``. Following: a replica
follows a node when it steps an ``Accept`` or ``Heartbeat`` from it and answers
with ``Accepted`` or ``HeartbeatReply``; promising another candidate's
``Prepare`` ends it, and so does leading. The rules, by name
(``Violation.rule``); within 1e-9 s of a bound nothing is judged:

- ``lease-bound`` (lease reads): a leader answers a read from its lease (the
  ``read_index`` call returns its ``ReadIndex`` with no heartbeat sent) only if
  some heartbeat round it sent at ``t`` with ``now < t + B * (1 - rho) / (1 +
  rho)`` was acknowledged (a ``HeartbeatReply`` under its ballot naming that
  round or a later one, stepped in this reign) by a majority of every
  configuration it holds from its chosen prefix on, itself counted. The bound
  is the document's formula, computed here, not ``ReplicaConfig.lease_s``.
- ``lease-forfeit`` (lease reads): and never while it hands leadership over
  (``transferring_to``), nor for the rest of a reign in which it sent a
  ``TimeoutNow``: the target's Prepares, naming its ballot, may be promised
  while its followers still hear it (``docs/protocol.md``, "When there is no
  lease"; session 24's sample: a ``lease_holds`` that answered ``True``
  where it refuses survived every rule).
- ``lease-promise`` (lease reads): an acceptor does not promise another
  candidate (a ``Promise`` in reply to a ``Prepare`` above its promise, or a
  granted ``ProbeReply``) while it leads, or while it follows a leader it
  heard within ``B`` that votes in a configuration it holds from its chosen
  prefix on, unless the ``Prepare`` names the promised ballot as the one that
  handed over (``handover_from``).
- ``lease-refused`` (lease reads): it refuses a ``Prepare`` for the lease (the
  ``ignored_leader_lease`` counter) only in those cases or within ``B`` of its
  start (bounded here by its first call), and only one above its promise.
- ``lease-used`` (lease reads): and it does answer from its lease whenever
  the lease surely holds: a ``read_index`` call given the runtime's clock
  that sends a heartbeat round instead is a violation if, before the call, a
  round it sent at ``t`` with ``now < t + B * (1 - rho) / (1 + rho)`` was
  acknowledged by a majority of every configuration ahead, counting only
  peers whose last reply under its ballot showed a chosen prefix at or past
  the slot from which it votes in every configuration it holds (the core
  counts no other: such a peer may hold none where it votes), while it votes
  in every configuration ahead, hands nothing over and sent no
  ``TimeoutNow`` in this reign. A lease that is never used costs every read
  a round, which only speed would show (s16 row 9).
- ``probe-denied`` (always): an acceptor denies a ``Probe`` above its promise
  only while it leads, or while it follows a leader it heard within ``B``, or
  (lease reads) within ``B`` of its start, or when the prober is a node it
  saw removed (which it may not grant anyway). A core that denied more would leave
  the cluster leaderless with every acceptor able to grant.

Cost: per call, a few attribute reads; per lease read, a walk of the
acknowledged rounds per configuration ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from paxon.protocol.membership import Configuration
from paxon.protocol.messages import (
    Accept,
    Accepted,
    Heartbeat,
    HeartbeatReply,
    Message,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
    TimeoutNow,
)
from paxon.protocol.ready import Ready
from paxon.protocol.replica import _LEASE_ROUNDS_MAX as LEASE_ROUNDS_MAX
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import Ballot, NodeId
from paxon.sim.checkers import Violation
from paxon.sim.failfast import follows

# Float slack for comparing two readings of one replica clock.
_EPSILON_S = 1e-9


@dataclass(slots=True)
class _Life:
    """What the checker saw of one replica object (a restart builds a new one)."""

    replica: Replica  # the object, not its id(): a new one may reuse a freed id
    started_at: float
    role: Role
    promised: Ballot
    # The node it follows, and when it last followed it (its clock).
    leader: NodeId | None = None
    leader_at: float = float("-inf")
    # As a leader: its ballot, when each heartbeat round went out, and the
    # highest round each peer acknowledged under that ballot.
    ballot: Ballot | None = None
    round_sent_at: dict[int, float] = field(default_factory=dict)
    acked: dict[NodeId, int] = field(default_factory=dict)
    # The chosen prefix each peer's last reply under that ballot showed, and
    # whether it sent ``TimeoutNow`` in this reign (its lease is forfeit).
    peer_chosen: dict[NodeId, int] = field(default_factory=dict)
    forfeited: bool = False
    # Prepares it refused for a lease so far (``ignored_leader_lease``).
    refusals: int = 0


class LeaseChecker:
    """Checks the rules of the module docstring on each call it is told of."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        self._lives: dict[NodeId, _Life] = {}

    def on_call(
        self,
        node_id: NodeId,
        replica: Replica,
        call: str,
        args: Sequence[Any],
        ready: Ready,
        time: float,
    ) -> None:
        life = self._lives.get(node_id)
        if life is None or life.replica is not replica:
            # The first call of a replica object: what it held before is unknown.
            self._lives[node_id] = life = _Life(
                replica, replica.now, replica.role, replica.ballot_promised
            )
            life.refusals = replica.counters.ignored_leader_lease
            self._note_leading(replica, life, ready)
            return
        if call == "step":
            message = args[0]
            if message.src != node_id:
                self._on_step(node_id, replica, life, message, ready, time)
        elif call == "read_index" and not _peers(replica):
            pass  # alone in every configuration ahead: it confirms reads by itself
        elif call == "read_index" and ready.reads and not _heartbeats(ready):
            # Judged at the clock of the moment, the runtime's when it gave one
            # (a core that kept its last tick's time would judge a paused
            # leader's lease as it stood before the pause: s21 sample row 13).
            given = args[1] if len(args) > 1 and args[1] is not None else replica.now
            clock = max(replica.now, given)
            self._check_lease_bound(node_id, replica, life, clock, time)  # a lease read
            self._check_lease_forfeit(node_id, replica, life, clock, time)
        elif call == "read_index" and len(args) > 1 and args[1] is not None:
            self._check_lease_used(node_id, replica, life, time)  # a round sent
        self._note_leading(replica, life, ready)
        life.role = replica.role
        life.promised = replica.ballot_promised

    # ------------------------------------------------------------- acceptor

    def _on_step(
        self,
        node_id: NodeId,
        replica: Replica,
        life: _Life,
        message: Message,
        ready: Ready,
        time: float,
    ) -> None:
        replies = (*ready.messages, *ready.messages_after_persist)
        if isinstance(message, Accept | Heartbeat):
            if follows(message, ready):
                life.leader, life.leader_at = message.src, replica.now
            return
        if isinstance(message, HeartbeatReply):
            # A reply under this reign's ballot to a round it sent: acknowledged.
            if message.ballot == life.ballot and message.read_round in life.round_sent_at:
                acked = life.acked.get(message.src, 0)
                life.acked[message.src] = max(acked, message.read_round)
            if message.ballot == life.ballot and message.read_round <= max(
                life.round_sent_at, default=-1
            ):
                # Not a round it never sent (refused at the edge): the core notes it.
                life.peer_chosen[message.src] = message.slot_chosen
            return
        if isinstance(message, Accepted):
            if message.ballot == life.ballot:
                life.peer_chosen[message.src] = message.slot_chosen
            return
        lease = replica.config.lease_reads
        if isinstance(message, Prepare):
            promised = any(isinstance(r, Promise) and r.dst == message.src for r in replies)
            if lease and promised and message.ballot > life.promised:
                self._check_promise(node_id, replica, life, message, "promised", time)
            if promised:
                life.leader, life.leader_at = None, float("-inf")
            if lease:
                self._check_refused(node_id, replica, life, message, time)
        elif isinstance(message, Probe):
            reply = next(
                (r for r in replies if isinstance(r, ProbeReply) and r.dst == message.src), None
            )
            if reply is not None and reply.granted and lease:
                self._check_promise(node_id, replica, life, message, "granted a probe to", time)
            elif reply is not None and not reply.granted:
                self._check_probe_denied(node_id, replica, life, message, time)

    def _keeps_lease(self, replica: Replica, life: _Life, candidate: NodeId) -> str | None:
        """Why the acceptor keeps a lease against ``candidate`` now, surely; or None."""
        if life.role is Role.LEADER:
            return "it leads"
        if _follows_live_voter(replica, life, candidate, -_EPSILON_S):
            return f"it followed n{life.leader} {replica.now - life.leader_at:.6f} s before"
        return None

    def _check_promise(
        self,
        node_id: NodeId,
        replica: Replica,
        life: _Life,
        message: Prepare | Probe,
        what: str,
        time: float,
    ) -> None:
        if isinstance(message, Prepare) and message.handover_from == life.promised:
            return  # the leader it promised handed over to this candidate
        why = self._keeps_lease(replica, life, message.src)
        if why is not None:
            self._fail(
                time,
                "lease-promise",
                f"n{node_id} {what} n{message.src} under {message.ballot} at "
                f"{replica.now:.6f}, keeping a lease: {why}",
            )

    def _check_refused(
        self, node_id: NodeId, replica: Replica, life: _Life, message: Prepare, time: float
    ) -> None:
        refused = replica.counters.ignored_leader_lease
        before, life.refusals = life.refusals, refused
        if refused == before:
            return
        just_started = self._just_started(replica, life)
        if message.ballot <= life.promised:
            why = f"at or below its promise {life.promised}"
        elif (
            life.role is Role.LEADER
            or just_started
            or _follows_live_voter(replica, life, message.src, _EPSILON_S)
        ):
            return
        else:
            why = "while it kept no lease"
        self._fail(
            time,
            "lease-refused",
            f"n{node_id} refused n{message.src}'s Prepare under {message.ballot} for a "
            f"lease at {replica.now:.6f} {why}",
        )

    def _check_probe_denied(
        self, node_id: NodeId, replica: Replica, life: _Life, message: Probe, time: float
    ) -> None:
        bound = replica.config.election_timeout_min_s
        if (
            message.ballot <= life.promised
            or life.role is Role.LEADER
            or replica.now - life.leader_at < bound + _EPSILON_S
            or (replica.config.lease_reads and self._just_started(replica, life))
            # A node it saw removed: its probe counts for nothing, and the
            # refusal tells it to ask for the log (Replica._tell_the_removed).
            or message.src in replica.removed_addresses()
        ):
            return
        heard = "none" if life.leader is None else f"n{life.leader} at {life.leader_at:.6f}"
        self._fail(
            time,
            "probe-denied",
            f"n{node_id} denied n{message.src}'s Probe under {message.ballot} (its promise "
            f"{life.promised}) at {replica.now:.6f}, leading none and following {heard}",
        )

    def _just_started(self, replica: Replica, life: _Life) -> bool:
        """Whether it may be within ``B`` of its start (its first call bounds that)."""
        bound = replica.config.election_timeout_min_s
        return replica.now < life.started_at + bound + _EPSILON_S

    # --------------------------------------------------------------- leader

    def _note_leading(self, replica: Replica, life: _Life, ready: Ready) -> None:
        if replica.role is not Role.LEADER:
            life.ballot = None
            return
        if life.ballot != replica.ballot_own:
            life.ballot = replica.ballot_own
            life.round_sent_at = {}
            life.acked = {}
            life.peer_chosen = {}
            life.forfeited = False
            life.leader, life.leader_at = None, float("-inf")
        if any(isinstance(m, TimeoutNow) for m in ready.messages):
            life.forfeited = True
        for read_round in {m.read_round for m in _heartbeats(ready)}:
            life.round_sent_at.setdefault(read_round, replica.now)

    def _check_lease_bound(
        self, node_id: NodeId, replica: Replica, life: _Life, clock: float, time: float
    ) -> None:
        bound = _lease_bound(replica)
        confirmed = _confirmed_round(
            node_id, life, life.acked, replica._history.from_slot(replica.slot_chosen)
        )
        sent_at = life.round_sent_at.get(confirmed)
        if sent_at is not None and clock < sent_at + bound + _EPSILON_S:
            return
        since = "none" if sent_at is None else f"round {confirmed}, sent at {sent_at:.6f}"
        self._fail(
            time,
            "lease-bound",
            f"n{node_id} answered a read from its lease at {clock:.6f}; the last round "
            f"a majority of every configuration ahead acknowledged: {since} (lease "
            f"{bound:.6f} s)",
        )

    def _check_lease_forfeit(
        self, node_id: NodeId, replica: Replica, life: _Life, clock: float, time: float
    ) -> None:
        handing = replica.transferring_to
        if not life.forfeited and handing is None:
            return
        why = "sent TimeoutNow in this reign" if life.forfeited else f"hands over to n{handing}"
        self._fail(
            time,
            "lease-forfeit",
            f"n{node_id} answered a read from its lease at {clock:.6f}, though it {why}",
        )

    def _check_lease_used(
        self, node_id: NodeId, replica: Replica, life: _Life, time: float
    ) -> None:
        config = replica.config
        history = replica._history
        voter_since = history.voter_since(node_id)
        ahead = history.from_slot(replica.slot_chosen)
        if (
            not config.lease_reads
            or life.ballot is None
            or life.forfeited
            or replica.transferring_to is not None
            or voter_since is None
            or any(node_id not in c.voters for c in ahead)
            or len(life.round_sent_at) >= LEASE_ROUNDS_MAX  # the core may have dropped some
        ):
            return
        bound = _lease_bound(replica)
        counted = {
            peer: acked
            for peer, acked in life.acked.items()
            if life.peer_chosen.get(peer, -1) >= voter_since
        }
        # Judged on the rounds before this call's: the one it just sent is not noted yet.
        confirmed = _confirmed_round(node_id, life, counted, ahead)
        sent_at = life.round_sent_at.get(confirmed)
        if sent_at is None or replica.now >= sent_at + bound - _EPSILON_S:
            return
        self._fail(
            time,
            "lease-used",
            f"n{node_id} sent a heartbeat round for a read at {replica.now:.6f} while its "
            f"lease held: round {confirmed}, sent at {sent_at:.6f}, acknowledged by a "
            f"majority of every configuration ahead (lease {bound:.6f} s)",
        )

    def _fail(self, time: float, rule: str, detail: str) -> None:
        self.violations.append(Violation(time, rule, detail))


def _peers(replica: Replica) -> bool:
    """Whether another voter decides some slot ahead: a leader alone in every
    configuration ahead confirms a read with itself, no round and no lease
    (swarm seed 3000798)."""
    ahead = replica._history.from_slot(replica.slot_chosen)
    return any(config.voters - {replica.node_id} for config in ahead)


def _lease_bound(replica: Replica) -> float:
    """``B * (1 - rho) / (1 + rho)``, from the documented formula."""
    config = replica.config
    rho = config.clock_drift_max
    return config.election_timeout_min_s * (1 - rho) / (1 + rho)


def _confirmed_round(
    node_id: NodeId, life: _Life, acked: dict[NodeId, int], configs: Sequence[Configuration]
) -> int:
    """The highest round a majority of each of ``configs`` acknowledged (``acked``),
    the leader counting with the newest round it sent."""
    own = max(life.round_sent_at, default=0)
    return min(
        sorted(
            (own if voter == node_id else acked.get(voter, 0) for voter in c.voters),
            reverse=True,
        )[c.quorum - 1]
        for c in configs
    )


def _follows_live_voter(replica: Replica, life: _Life, candidate: NodeId, slack: float) -> bool:
    """Whether the acceptor follows a leader other than ``candidate``, heard
    within ``B + slack``, that votes in a configuration it holds ahead."""
    leader = life.leader
    return (
        leader is not None
        and leader != candidate
        and replica.now - life.leader_at < replica.config.election_timeout_min_s + slack
        and _votes_ahead(replica, leader)
    )


def _votes_ahead(replica: Replica, node: NodeId) -> bool:
    """Whether ``node`` votes in a configuration ``replica`` holds from its chosen prefix on."""
    return any(node in c.voters for c in replica._history.from_slot(replica.slot_chosen))


def _heartbeats(ready: Ready) -> list[Heartbeat]:
    return [m for m in ready.messages if isinstance(m, Heartbeat)]
