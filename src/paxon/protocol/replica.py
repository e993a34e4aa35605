"""One Multi-Paxos replica: proposer, acceptor and learner in one pure object.

House rules (read these before changing anything below):
- No I/O. Messages come in through ``step``, time through ``tick(now)``,
  randomness through the ``rng`` given at construction. Everything the replica
  wants done comes back as a ``Ready`` (see ``ready.py`` for the order in which
  the runtime must perform it).
- Persist before you speak. A promise or an accepted vote leaves only in
  ``messages_after_persist``; that includes the votes a replica sends itself.
- A ballot is used by one node only, and that node proposes at most one value
  per slot under it. A candidate's ballot is made durable (its own promise)
  before its first Prepare leaves, so a restarted node never reuses a ballot.

Theory of operation. Roles move like this:

    FOLLOWER --election timeout--> PROBING --majority grants--> PREPARING
    PREPARING --majority promises--> LEADER
    any role --sees a higher ballot / nack / probe or prepare timeout--> FOLLOWER
    LEADER --no word from a majority for election_timeout_max_s--> FOLLOWER

Serving bound (check quorum's first half; docs/architecture.md "Failing
fast"). A leader that has heard from no majority (itself counted, every
configuration ahead) for ``election_timeout_min_s`` still leads, but
``propose_many`` and ``read_index`` raise ``NoQuorum`` at once rather than
hold what it cannot get chosen or confirmed (``serving``); it steps down at
``election_timeout_max_s`` as before. A follower says whether it heard from
the leader it follows within ``election_timeout_min_s`` (``leader_live``), the
same bound under which it refuses a Probe, so the runtime forwards only then.

PROBING is a phase before Phase 1 that changes no durable state: a candidate
asks whether a majority would promise its ballot, and an acceptor says no while
it still hears a live leader that is a voter from its chosen prefix on (a
removed leader only waits to hand over, and a new voter restored past the
removal may ignore it, so it holds nobody back). A replica cut off from the leader alone therefore
cannot raise everyone's ballot and depose a healthy leader (the job PreVote
does in Raft). Only after a majority says yes does the candidate promise itself,
persist that, and send Prepare.

Trust bounds. ``step`` never raises on what a peer sends: a message that breaks
a bound is ignored (as if lost, which Paxos survives) and counted in
``ReplicaCounters``. ``_refusal`` checks every message at the edge; ``W`` is
``config.slots_ahead_max`` (1,024 slots by default):

| what a peer sent                                    | verdict          | counter                 |
|-----------------------------------------------------|------------------|-------------------------|
| ``dst`` is not this replica                         | ignored          | ignored_misaddressed    |
| ``src`` is in no configuration held (a LearnRequest | ignored (*)      | ignored_non_member      |
| aside); a Probe or Prepare from a node that is not  |                  |                         |
| a voter from ``slot_chosen`` on (membership.py)     |                  |                         |
| LearnRequest from a node in no configuration held   | ignored          | (**)                    |
| and not among the removed remembered (***)          |                  |                         |
| a ballot round >= ROUND_END (2**63), or more than   | ignored          | ignored_bad_ballot      |
| ROUND_JUMP_MAX (2**32) above the rounds known; a    |                  |                         |
| Probe, Prepare, Accept or Heartbeat under a ballot  |                  |                         |
| its sender does not own; a reply under a ballot     |                  |                         |
| that is not ours                                    |                  |                         |
| a peer's Accept at ``slot_chosen + W`` or beyond    | ignored          | ignored_out_of_bounds   |
| LearnRequest from beyond ``slot_chosen + W``        | ignored          | ignored_out_of_bounds   |
| Learn entries at ``slot_chosen + W`` or beyond      | entries dropped  | ignored_out_of_bounds   |
| Learn from a node this replica did not ask          | ignored          | ignored_unsolicited     |
| Promise with an entry at ``slot_from + 2W`` or      | not counted      | ignored_out_of_bounds   |
| beyond, or for another ``slot_from``                | toward a quorum  |                         |
| HeartbeatReply with a read round never sent         | ignored          | ignored_out_of_bounds   |
| RemovedNotice at or below the newest epoch held, or | ignored          | ignored_unsolicited     |
| from a node not a voter of that configuration       |                  |                         |

(*) A non-member's Heartbeat or Accept under its own ballot below our promise
is answered with a Nack, as a member's would be: a removed leader learns so
that it is behind and steps down (``_nack_a_stale_stranger``).

(**) Counted as ``ignored_non_member_learn_request``, apart from
``ignored_non_member``, which stays a sign of election or agreement traffic
from a node no configuration names. This one is honest traffic: a removed
node asks a member it knows, once an election timeout, what it missed
(``_start_probe``), so that one added back catches up even through a leader
it never knew. A member that holds it in no configuration cannot tell it from
an outsider and answers nothing; once it holds the configuration that adds it
back, it answers as it answers any member.

(***) A removed node that missed its removal. A replica remembers the last
``REMOVED_REMEMBERED_MAX`` (16) nodes gone from its members, with their
addresses and the slot their removal took effect at (``removed_addresses``;
the runtime keeps a link to each); a snapshot carries the same memory, so a
restart or an installed snapshot keeps it (``RemovedState``). It answers their
LearnRequests with the chosen entries below that slot only (never a
snapshot: one past the change is refused and counted as (**), and answered
with a ``RemovedNotice``, as a learner, which never probes, asks nothing else),
and a Probe of theirs, still ignored as a vote (``ignored_non_member``), gets a
refusing ProbeReply and a ``RemovedNotice`` naming the epoch
(``_tell_the_removed``): a refused prober asks for the log, learns the change
that removed it, and stops standing; once every member compacted past the
change, a majority of notices is what stops it, and what tells a learner
(``protocol/removal_notices.py``).

An acceptor whose chosen prefix is more than ``W`` past a Prepare's
``slot_from`` reports ``log_start = slot_chosen`` in its Promise: the Promise
stays small, does not count toward a quorum, and the candidate learns from it
(the compacted-log rule). A replica whose next round would reach ROUND_END
does not stand.

Invariants (``check_invariants`` asserts them after every step in tests):
- ``slot_applied <= slot_chosen``; every slot in ``[log_start, slot_chosen)``
  holds an entry marked chosen.
- ``ballot_promised`` is at least every ballot in the log, and its round is
  below ROUND_END.
- While PREPARING or LEADER, ``ballot_promised == ballot_own``.
- A LEADER's proposals lie in ``[slot_chosen, slot_next)`` and none is chosen.
- Every slot held lies in ``[log_start, slot_chosen + 2W)`` (a peer's slots
  below ``slot_chosen + W``; a new leader's fill below ``slot_from + 2W``):
  compacted slots are forgotten.
- ``members`` are the members of every configuration in effect from
  ``slot_chosen`` on, and the edge hears from every node of the history.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, assert_never

from paxon.errors import Busy, NoQuorum, NotLeader
from paxon.protocol.config import ROUND_END, ROUND_JUMP_MAX, ReplicaConfig
from paxon.protocol.membership import (
    ConfigHistory,
    ConfigState,
    Configuration,
    InvalidConfiguration,
    RemovedMember,
    RemovedState,
    change_in,
    remember_removed,
)
from paxon.protocol.messages import (
    Accept,
    Accepted,
    ChosenPrefix,
    Heartbeat,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Message,
    Nack,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
    RemovedNotice,
    TimeoutNow,
)
from paxon.protocol.quorum import quorum_floor
from paxon.protocol.ready import ChosenEntry, ReadIndex, Ready, SnapshotRequest
from paxon.protocol.records import (
    AcceptRecord,
    ChosenRecord,
    DurableState,
    PromiseRecord,
    SnapshotRecord,
)
from paxon.protocol.removal_notices import RemovalNotices
from paxon.protocol.types import (
    BALLOT_ZERO,
    NOOP,
    Ballot,
    BallotRun,
    Command,
    Entry,
    NodeId,
    Slot,
    Value,
)


class RandomSource(Protocol):
    """Anything with ``random() -> float in [0, 1)``, e.g. ``random.Random(seed)``."""

    def random(self) -> float: ...


class Role(enum.Enum):
    FOLLOWER = "follower"
    PROBING = "probing"
    PREPARING = "preparing"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class ReplicaCounters:
    """Messages (or parts of them) a replica refused, by reason, since it started.

    Counts are volatile (a restart starts at zero). See the module docstring for
    which message lands in which counter.
    """

    ignored_misaddressed: int = 0
    ignored_non_member: int = 0
    # A LearnRequest from a node in no configuration held (a removed node asking).
    ignored_non_member_learn_request: int = 0
    ignored_bad_ballot: int = 0
    ignored_out_of_bounds: int = 0
    ignored_unsolicited: int = 0
    # Prepares refused because this acceptor keeps a leader's lease (lease reads).
    ignored_leader_lease: int = 0
    # Elections not started because the next round would reach ROUND_END.
    elections_blocked_round_end: int = 0


class _Refusal(enum.Enum):
    """Why a message was refused; the value names its ``ReplicaCounters`` field."""

    MISADDRESSED = "ignored_misaddressed"
    NON_MEMBER = "ignored_non_member"
    NON_MEMBER_LEARN_REQUEST = "ignored_non_member_learn_request"
    BAD_BALLOT = "ignored_bad_ballot"
    OUT_OF_BOUNDS = "ignored_out_of_bounds"
    UNSOLICITED = "ignored_unsolicited"
    LEADER_LEASE = "ignored_leader_lease"
    ROUND_END = "elections_blocked_round_end"


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    node_id: NodeId
    role: Role
    ballot_promised: Ballot
    leader_hint: NodeId | None
    slot_chosen: Slot
    slot_applied: Slot
    slot_next: Slot
    log_start: Slot
    counters: ReplicaCounters = ReplicaCounters()


_LEASE_ROUNDS_MAX = 4096
"""Lease reads: at most this many heartbeat rounds' send times are kept (those
of the last ``lease_s``; dropping the oldest only shortens a lease)."""

RECENT_SLOTS_MAX = 64
"""``recent_slots`` shows at most this many slots (the dashboard's log view)."""


@dataclass(frozen=True, slots=True)
class SlotView:
    """One slot as this replica holds it (``Replica.recent_slots``): the ballot of the
    value it accepted there (None: a hole, nothing accepted here yet), whether it
    knows that value chosen, whether the value is a no-op, and its command count."""

    slot: Slot
    ballot: Ballot | None
    chosen: bool
    is_noop: bool
    commands: int


@dataclass(slots=True)
class _LogEntry:
    ballot: Ballot
    value: Value
    chosen: bool = False


@dataclass(slots=True)
class _Proposal:
    value: Value
    sent_at: float
    votes: set[NodeId] = field(default_factory=set)


@dataclass(slots=True)
class _PendingRead:
    read_round: int
    read_id: int
    slot: Slot


class Replica:
    """A Multi-Paxos replica. See the module docstring for its rules."""

    def __init__(
        self,
        node_id: NodeId,
        members: Iterable[NodeId] | Configuration,
        *,
        rng: RandomSource,
        now: float = 0.0,
        config: ReplicaConfig | None = None,
        durable: DurableState | None = None,
    ) -> None:
        self.node_id = node_id
        self.config = config or ReplicaConfig()
        # Plain ids: the tests' and the core engine's shorthand for a first
        # configuration; the runtime passes its Configuration.
        if not isinstance(members, Configuration):  # sim: one-way: see above
            voters = sorted(set(members))
            if node_id not in voters:
                raise ValueError(  # sim: unreachable: argument check; the runtime passes its own id
                    f"node {node_id} is not among the members {voters}"
                )
            members = Configuration.initial(voters)
        self._rng = rng
        self._now = now
        self._ready = Ready()

        durable = durable or DurableState()
        # Membership: every configuration from log_start on (membership.py).
        self._history = ConfigHistory(durable.configs or ((0, members),))
        # Acceptor.
        self.ballot_promised = durable.ballot_promised
        self._log: dict[Slot, _LogEntry] = {
            slot: _LogEntry(entry.ballot, entry.value)
            for slot, entry in durable.entries.items()
            if slot >= durable.log_start
        }
        # Learner.
        self.log_start = durable.log_start
        self.slot_chosen = durable.log_start
        self.slot_applied = durable.log_start
        self.role = Role.FOLLOWER
        self.members: tuple[NodeId, ...] = ()
        self._member_addresses: dict[NodeId, str] = {}
        self._newest_seen: Configuration | None = None
        # The last REMOVED_REMEMBERED_MAX nodes that left this replica's members,
        # oldest first, with their addresses, the slot their removal took
        # effect at and the epoch then in effect: their probes are refused out
        # loud with a RemovedNotice, and their learn requests answered below
        # that slot (``removed_addresses``).
        self._removed: dict[NodeId, RemovedMember] = {}
        # Counts the changes to that memory: the runtime links to those nodes,
        # and a joiner learns some by replaying the log, with no member change.
        self.removed_version = 0
        # What the members said of this node's own removal (``RemovedNotice``).
        self._removal_notices = RemovalNotices()
        self._refresh_members()
        self._remember_removed_before(durable.removed)
        self._runs: list[tuple[Slot, Ballot]] = []  # (first slot, ballot) per run
        # A ChosenRecord is written after the AcceptRecord of every slot below
        # it (_advance_chosen), or after a snapshot installed past them. If
        # that snapshot is struck on disk, recovery falls back to an older one
        # and the log, whose slots the lost one carried without accepts: the
        # prefix then stops at the first hole, and the rest is learned again
        # (swarm seed 3000029, a one-hour run of session 22).
        for slot in range(durable.log_start, durable.slot_chosen):
            if slot not in self._log:  # sim: one-way: a struck installed snapshot, seed 3000029
                break
            self._log[slot].chosen = True
        self._learn_requested_at = float("-inf")
        self._learn_turn = 0  # which known member to ask when a stranger leads
        # Peers asked for a Learn that has not come yet: only they may send one.
        self._learn_pending: set[NodeId] = set()
        self._refused: dict[_Refusal, int] = dict.fromkeys(_Refusal, 0)
        # Who leads, as far as this replica knows.
        self.role = Role.FOLLOWER
        self.leader_id: NodeId | None = None
        self._leader_seen_at = float("-inf")
        # The ballot of the last Accept or Heartbeat from leader_id: the reign we
        # follow. It may be above our promise: a Heartbeat does not raise it, so a
        # voter that missed its leader's Prepare follows above it until a write.
        self._leader_ballot = BALLOT_ZERO
        # The highest chosen prefix a peer has announced (readiness: how far behind).
        self._slot_chosen_heard: Slot = 0
        self._round_seen = self.ballot_promised.round
        self._backoff = 1.0
        self._election_deadline = 0.0
        self._reset_election_timer()
        # Proposer (meaningful while PROBING, PREPARING or LEADER).
        self.ballot_own = BALLOT_ZERO
        self.slot_next = self.slot_chosen
        self._slot_prepared = self.slot_chosen  # the slot_from of our last Prepare
        self._grants: set[NodeId] = set()
        self._promises: dict[NodeId, Promise] = {}
        self._prepared_from: dict[NodeId, Slot] = {}  # the slot_from we asked each voter
        self._prepared_epochs: set[int] = set()  # configurations a majority promised
        self._prepare_sent_at = float("-inf")
        # While PREPARING or LEADER: per slot, the entry of highest ballot any
        # promise reported, and the end of the slots the promises reported.
        self._reported: dict[Slot, Entry] = {}
        self._fill_end: Slot = 0
        self._catch_up_to = 0  # while PREPARING: the highest log_start past slot_from
        # While LEADER: the voter leadership is being handed to, and until when.
        self._transfer_to: NodeId | None = None
        self._transfer_until = 0.0
        self._transfer_sent_at = float("-inf")
        self._proposals: dict[Slot, _Proposal] = {}
        self._queue: deque[Command] = deque()
        self._proposing_configuration = False  # propose_configuration is calling
        self._peer_seen_at: dict[NodeId, float] = {}
        self._peer_slot_chosen: dict[NodeId, Slot] = {}
        self._heartbeat_due = 0.0
        self._leader_since = 0.0
        # Read index.
        self._read_round = 0
        self._peer_read_round: dict[NodeId, int] = {}
        self._reads: deque[_PendingRead] = deque()
        # Lease reads (config.lease_reads; docs/protocol.md "Lease reads"). An
        # acceptor just started refuses every candidate until ``_quiet_until``:
        # it may have acknowledged a leader's heartbeat before it stopped. A
        # leader dates its lease by when each recent heartbeat round went out,
        # and forfeits it for the rest of its term once it hands over. A
        # candidate remembers the ballot of the leader that handed over to it.
        lease = self.config.lease_reads
        self._quiet_until = now + self.config.election_timeout_min_s if lease else float("-inf")
        self._round_sent_at: dict[int, float] = {}
        self._lease_forfeit = False
        self._handover_from: Ballot | None = None
        # Recovered chosen entries are handed out by the first call's Ready.
        self._advance_chosen(persist=False)

    # ------------------------------------------------------------------ public

    @property
    def leader_hint(self) -> NodeId | None:
        """Where to send a client: this node if it leads, else the leader it follows,
        unless that one is no voter of the newest configuration known (a removed
        node hears from no new leader, so its hint would send clients in circles)."""
        if self.role is Role.LEADER:
            return self.node_id
        if self.leader_id is None or self.leader_id not in self._history.newest.voters:
            return None
        return self.leader_id

    @property
    def now(self) -> float:
        return self._now

    @property
    def leader_live(self) -> bool:
        """A follower heard from the leader it follows (``leader_hint``) within
        ``election_timeout_min_s``: the runtime may forward to it. A leader: True."""
        if self.role is Role.LEADER:
            return True
        return self.leader_hint is not None and self._leader_is_live()

    @property
    def serving(self) -> bool:
        """A leader heard from a majority of every configuration ahead (itself
        counted) within ``election_timeout_min_s``, or leads for less than that:
        it takes commands and reads. False on any other role."""
        if self.role is not Role.LEADER:
            return False
        recent = self._now - self.config.election_timeout_min_s
        if self._leader_since > recent:
            return True
        heard = {self.node_id}.union(
            peer for peer, seen in self._peer_seen_at.items() if seen >= recent
        )
        return self._has_quorums_ahead(heard)

    @property
    def lease_holds(self) -> bool:
        """Lease reads: this leader answers a linearizable read without a round.
        A majority of every configuration ahead acknowledged a heartbeat round
        that went out less than ``config.lease_s`` ago, each of them holding a
        configuration where this leader votes; the leader votes in every
        configuration ahead, hands nothing over, and has not this term."""
        if (
            not self.config.lease_reads
            or self.role is not Role.LEADER
            or self._lease_forfeit
            or self._transfer_to is not None
        ):
            return False
        voter_since = self._history.voter_since(self.node_id)
        if voter_since is None or any(
            self.node_id not in config.voters
            for config in self._history.from_slot(self.slot_chosen)
        ):
            return False  # being removed: voters may stand while they hear us
        # A peer that holds no configuration where we vote may promise another
        # while it hears us: its acknowledgement does not count.
        rounds = {
            peer: read_round
            for peer, read_round in self._peer_read_round.items()
            if self._peer_slot_chosen.get(peer, -1) >= voter_since
        }
        sent_at = self._round_sent_at.get(self._confirmed_round(rounds))
        return sent_at is not None and self._now < sent_at + self.config.lease_s

    @property
    def quorum(self) -> int:
        """A majority of the voters in effect now."""
        return self._quorum_size(self.configuration)

    def step(self, message: Message) -> Ready:
        """Handle one message from a peer (or from this replica itself).

        Never raises on what a peer sends: a message outside the trust bounds
        (module docstring) is ignored and counted in ``counters``.
        """
        refusal = self._refusal(message)
        if refusal is not None:
            self._refuse(refusal)
            if refusal is _Refusal.NON_MEMBER:
                self._nack_a_stale_stranger(message)
                self._behind_a_stranger(message)
                self._tell_the_removed(message)
            return self._take_ready()
        match message:
            case Probe():
                self._on_probe(message)
            case ProbeReply():
                self._on_probe_reply(message)
            case Prepare():
                self._on_prepare(message)
            case Promise():
                self._on_promise(message)
            case Nack():
                self._on_nack(message)
            case Accept():
                self._on_accept(message)
            case Accepted():
                self._on_accepted(message)
            case Heartbeat():
                self._on_heartbeat(message)
            case HeartbeatReply():
                self._on_heartbeat_reply(message)
            case LearnRequest():
                self._on_learn_request(message)
            case Learn():
                self._on_learn(message)
            case TimeoutNow():
                self._on_timeout_now(message)
            case RemovedNotice():
                self._on_removed_notice(message)
            case _:
                assert_never(message)
        return self._take_ready()

    def tick(self, now: float) -> Ready:
        """Let time pass: elections, heartbeats, retries. ``now`` never goes back."""
        self._now = max(self._now, now)
        match self.role:
            case Role.FOLLOWER:
                if self._now >= self._election_deadline:
                    self._start_probe()
            case Role.PROBING:
                if self._now >= self._election_deadline:
                    self._step_down(preempted=True)
            case Role.PREPARING:
                if self._now >= self._election_deadline:
                    self._step_down(preempted=True)
            case Role.LEADER:
                self._tick_leader()
            case _:
                assert_never(self.role)
        return self._take_ready()

    def propose(self, command: Command) -> Ready:
        """Queue a client command for a slot. Only the leader takes commands."""
        return self.propose_many((command,))

    def propose_many(self, commands: Iterable[Command]) -> Ready:
        # The node queues commands only while it leads, and a step-down's Ready
        # clears its queue before the next flush (docs/testing.md, "Coverage").
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_hint)  # sim: unreachable: the node asks only a leader
        if self._transfer_to is not None:
            raise Busy(f"leadership is moving to node {self._transfer_to}; retry shortly")
        if self.node_id not in self._history.at(self.slot_chosen).voters:
            # Removed: it proposes nothing more and only waits to hand over, so a
            # command would wait until then; say so at once instead.
            raise Busy("this node was removed and is handing leadership over; retry shortly")
        if not self._proposing_configuration:
            self._check_serving()
        commands = tuple(commands)
        if len(self._queue) + len(commands) > self.config.queue_max_commands:
            raise Busy(f"proposal queue full ({self.config.queue_max_commands} commands)")
        self._queue.extend(commands)
        self._flush_queue()
        return self._take_ready()

    def transfer_leadership(self, target: NodeId | None = None) -> Ready:
        """Hand leadership to ``target`` (default: the voter furthest along).

        The leader takes no new commands (``Busy``) while the transfer runs;
        once ``target`` has every slot chosen here, it gets ``TimeoutNow`` and
        stands at once, without waiting out an election timeout. A transfer
        not done within ``election_timeout_max_s`` is dropped and the leader
        serves on. Raises ``NotLeader``, and ``ValueError`` for a target that
        is not a voter (now and in the newest configuration) other than this one.
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_hint)  # sim: unreachable: argument check; leader only
        eligible = self._transfer_targets()
        if target is None:
            if not eligible:
                raise ValueError("no other voter to hand leadership to")
            # A voter heard from lately first (one down for maintenance would
            # leave the cluster to an election timeout), then the furthest along.
            recent = self._now - self.config.election_timeout_min_s
            target = max(
                eligible,
                key=lambda peer: (
                    self._peer_seen_at.get(peer, float("-inf")) >= recent,
                    self._peer_slot_chosen.get(peer, -1),
                    -peer,
                ),
            )
        elif target not in eligible:
            raise ValueError(f"node {target} is not another voter: leadership cannot go there")
        self._transfer_to = target
        self._transfer_until = self._now + self.config.election_timeout_max_s
        self._transfer_sent_at = float("-inf")
        self._try_transfer()
        return self._take_ready()

    @property
    def transferring_to(self) -> NodeId | None:
        """The voter leadership is being handed to, while a transfer runs."""
        return self._transfer_to if self.role is Role.LEADER else None

    def read_index(self, read_id: int, now: float | None = None) -> Ready:
        """Start a read-index confirmation; the answer comes as a ``ReadIndex``.

        ``now``: the runtime's clock as it takes the read. Under lease reads the
        read is judged at it (the lease and the serving bound), and a lease read
        happens only with it: a replica paused since its last tick must not
        trust the time it was last told (simulated seed 10 of a pause, drift
        0.6: a leader resumed after 1.2 s answered from a lease long gone)."""
        lease_clock = now is not None and self.config.lease_reads
        if now is not None and lease_clock:
            # Before the serving bound is judged too. Without lease reads the
            # replica keeps the time of its last tick, as it always did.
            self._now = max(self._now, now)
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_hint)
        self._check_serving()
        # Every slot a promise reported may be chosen already: the read waits for
        # the re-proposals too, not only for the slots proposed so far.
        read_slot = max(self.slot_next, self._fill_end)
        if lease_clock and self.lease_holds:
            # No other leader can have chosen anything yet: the read needs no round.
            self._ready.reads.append(ReadIndex(read_id, read_slot))
            return self._take_ready()
        self._read_round += 1
        self._reads.append(_PendingRead(self._read_round, read_id, read_slot))
        self._broadcast_heartbeat()
        self._resolve_reads()
        return self._take_ready()

    def compact(self, slot: Slot) -> None:
        """Forget log entries below ``slot``: a durable snapshot now covers them."""
        if not self.log_start <= slot <= self.slot_applied:  # sim: one-way: argument check
            raise ValueError(f"can compact only within [{self.log_start}, {self.slot_applied}]")
        for stale in range(self.log_start, slot):
            self._log.pop(stale, None)
        self.log_start = slot
        self._trim_runs()
        self._history.forget_before(slot)
        self._refresh_members()

    def configs_at(self, slot: Slot) -> ConfigState:
        """The configurations a snapshot at ``slot`` must carry (the one in
        effect at ``slot`` and every later one, pending changes included)."""
        if not self.log_start <= slot <= self.slot_chosen:
            raise ValueError(  # sim: unreachable: argument check; the node asks at slot_chosen
                f"configurations are known within [{self.log_start}, {self.slot_chosen}]"
            )
        return self._history.state(slot)

    @property
    def configuration(self) -> Configuration:
        """The configuration in effect at the first slot not yet chosen."""
        return self._history.at(self.slot_chosen)

    @property
    def slot_fill_end(self) -> Slot:
        """While leading: the slots below this that it proposes are Phase 1's
        re-proposals and no-op fills, not commands from its queue."""
        return self._fill_end

    def member_addresses(self) -> dict[NodeId, str]:
        """Every member (voter or learner) of a configuration from slot_chosen on,
        with its address; a newer configuration's address wins."""
        addresses: dict[NodeId, str] = {}
        for config in self._history.from_slot(self.slot_chosen):
            for member in config.members:
                addresses[member.node_id] = member.address
        return addresses

    def removed_addresses(self) -> dict[NodeId, str]:
        """The last ``REMOVED_REMEMBERED_MAX`` nodes gone from the members, with
        their addresses: the runtime keeps links to them, so that one that
        missed its removal hears of it (``_tell_the_removed``)."""
        return {node_id: removed.address for node_id, removed in self._removed.items()}

    def removal_effect(self, node_id: NodeId) -> Slot | None:
        """For a node this replica remembers removed, the slot its removal took
        effect at: its learn requests get no slot from there on. None else."""
        removed = self._removed.get(node_id)
        return None if removed is None else removed.effect

    @property
    def removed_by_notice(self) -> int | None:
        """The epoch a majority of the voters this replica knows said it was
        removed at (``protocol/removal_notices.py``): it stands no more. None
        while they have not, or once it holds a configuration that new."""
        return self._removal_notices.removed_at(self._history.newest)

    @property
    def configuration_newest(self) -> Configuration:
        """The newest configuration chosen, which may not be in effect yet."""
        return self._history.newest

    @property
    def change_in_progress(self) -> bool:
        """A change is chosen but not in effect yet, or on its way (proposed or
        queued here): ``propose_configuration`` refuses another."""
        if self._history.newest.epoch != self._history.at(self.slot_chosen).epoch:
            return True
        return self.configuration_on_its_way is not None

    @property
    def configuration_on_its_way(self) -> Configuration | None:
        """The change this leader proposed or queued and is not chosen yet, if
        any: a request that asks for it again waits for it (``member_duties``)."""
        for proposal in self._proposals.values():
            change = change_in(proposal.value)
            if change is not None:
                return change
        for command in self._queue:
            change = change_in(Value((command,)))
            if change is not None:
                return change
        return None

    def propose_configuration(self, configuration: Configuration) -> Ready:
        """Queue a change to ``configuration`` (the leader only), one at a time.

        Raises ``NotLeader``; ``Busy`` while another change is chosen but not in
        effect or is on its way; ``InvalidConfiguration`` unless it is the next
        epoch with the same alpha.
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_hint)  # sim: unreachable: argument check; leader only
        newest = self._history.newest
        if self.change_in_progress:
            raise Busy("a configuration change is in progress; try again once it is in effect")
        if configuration.epoch != newest.epoch + 1 or configuration.alpha != newest.alpha:
            raise InvalidConfiguration(  # sim: unreachable: argument check; callers ask a successor
                f"the next configuration is epoch {newest.epoch + 1} with alpha {newest.alpha}"
            )
        # An operator's (or a leader duty's) change is not held to the serving
        # bound: nobody waits on it at once, and a leader that hears no
        # majority steps down within election_timeout_max_s anyway.
        # Through ``propose`` on purpose: the simulator observes every command a
        # leader queues at ``propose_many`` (its queue-bound rule counts them).
        self._proposing_configuration = True
        try:
            return self.propose(configuration.command())
        finally:
            self._proposing_configuration = False

    def install_snapshot(
        self, slot: Slot, configs: ConfigState = (), removed: RemovedState = ()
    ) -> Ready:
        """The runtime restored a snapshot covering every slot below ``slot``,
        carrying ``configs`` (``configs_at(slot)`` where it was taken; empty
        keeps this replica's own, for a cluster whose members never change) and
        the nodes removed before ``slot`` that it remembers."""
        # The node installs only above slot_chosen, checked in the same step
        # (node/snapshot_transfer.py, _install).
        if slot <= self.slot_chosen:  # sim: one-way: the node checks it first
            return self._take_ready()
        catching_up = self.role is Role.PREPARING and self._catch_up_to > 0
        if self.role is not Role.FOLLOWER and not catching_up:
            self._step_down(preempted=False)  # a replica this far behind should not lead
        for stale in [s for s in self._log if s < slot]:
            del self._log[stale]
        self.log_start = self.slot_chosen = self.slot_applied = slot
        self.slot_next = max(self.slot_next, slot)
        self._runs.clear()
        # The runtime's machine always carries configurations (empty: the core
        # engine and tests, whose members never change).
        if configs:  # sim: one-way: see above
            self._history = ConfigHistory(configs)
        self._refresh_members()
        self._remember_removed_before(removed)
        self._persist_snapshot_mark(slot)
        self._advance_chosen()
        if catching_up:
            # The snapshot it asked for: prepare again from the new slot_from, or
            # keep preparing (the old promises, for the old slot_from, still hold).
            self._prepare_again_if_caught_up()
        return self._take_ready()

    def status(self) -> ReplicaStatus:
        return ReplicaStatus(
            node_id=self.node_id,
            role=self.role,
            ballot_promised=self.ballot_promised,
            leader_hint=self.leader_hint,
            slot_chosen=self.slot_chosen,
            slot_applied=self.slot_applied,
            slot_next=self.slot_next,
            log_start=self.log_start,
            counters=self.counters,
        )

    def recent_slots(self, count: int) -> tuple[SlotView, ...]:
        """The last ``min(count, RECENT_SLOTS_MAX)`` slots of the log this replica holds,
        oldest first, from ``log_start`` to its highest accepted slot (looked for at
        most ``slots_ahead_max`` past ``slot_chosen``). Read-only: a view for the
        dashboard, never an input to the protocol."""
        count = max(0, min(count, RECENT_SLOTS_MAX))
        top = max(self.slot_chosen, self.slot_next)
        for slot in range(top, self.slot_chosen + self.config.slots_ahead_max):
            if slot in self._log:
                top = slot + 1
        views = []
        for slot in range(max(self.log_start, top - count), top):
            entry = self._log.get(slot)
            if entry is None:
                views.append(SlotView(slot, None, False, False, 0))
            else:
                chosen = entry.chosen or slot < self.slot_chosen
                commands = len(entry.value.commands)
                views.append(SlotView(slot, entry.ballot, chosen, entry.value.is_noop, commands))
        return tuple(views)

    @property
    def counters(self) -> ReplicaCounters:
        return ReplicaCounters(**{refusal.value: count for refusal, count in self._refused.items()})

    @property
    def slot_chosen_heard(self) -> Slot:
        """The end of the chosen prefix as far as this replica has heard (its own
        ``slot_chosen`` or beyond): how far it may be behind."""
        return max(self._slot_chosen_heard, self.slot_chosen)

    def leader_contact_at(self) -> float | None:
        """When this replica last knew a leader to be leading, on its clock (``now``):
        a leader, when it last heard from enough voters in effect to make a majority
        with itself; any other role, when it last heard from the leader it follows.
        None when it knows of no leader (readiness: ``paxon.node.readiness``)."""
        if self.role is Role.LEADER:
            voters = self.configuration.voters
            need = self.quorum - (1 if self.node_id in voters else 0)
            if need <= 0:
                return self._now
            seen = sorted(
                (
                    self._peer_seen_at.get(peer, float("-inf"))
                    for peer in voters
                    if peer != self.node_id
                ),
                reverse=True,
            )
            heard = seen[need - 1] if len(seen) >= need else float("-inf")
            return heard if heard > float("-inf") else None
        if self.leader_id is None or self._leader_seen_at == float("-inf"):
            return None
        return self._leader_seen_at

    def peer_slot_chosen(self, peer: NodeId) -> Slot | None:
        """How far ``peer`` said its chosen prefix reached (known while leading)."""
        return self._peer_slot_chosen.get(peer) if self.role is Role.LEADER else None

    def check_invariants(self, *, full: bool = True) -> None:
        """Assert the invariants in the module docstring.

        ``full=False`` skips the checks that walk the whole log, so a simulator
        can afford it after every step and run the full check now and then.
        """
        assert self.log_start <= self.slot_applied <= self.slot_chosen, self.status()
        if self.slot_chosen > self.log_start:
            assert self._log[self.slot_chosen - 1].chosen, "last chosen slot is not chosen"
        if self.role in (Role.PREPARING, Role.LEADER):
            assert self.ballot_promised == self.ballot_own, "a candidate lost its own promise"
        if self.role is Role.LEADER:
            assert self.slot_next >= self.slot_chosen, "slot_next behind the chosen prefix"
        else:
            assert not self._proposals and not self._queue and not self._reads
            assert self._transfer_to is None, "a transfer outlived the leadership"
            # Its hint would send clients back to it (mutation s14 row 25).
            assert self.leader_id != self.node_id, "a replica that does not lead names itself"
        # Who the edge hears from follows every change of the history and of
        # the chosen prefix at once (the unmarked flip of _advance_chosen's
        # refresh left a member outside until the next call).
        assert self.members == self._members_now(), "members not refreshed"
        assert self._member_set == self._history.ids(), "the edge's member set not refreshed"
        if not full:
            return
        for slot in range(self.log_start, self.slot_chosen):
            assert self._log[slot].chosen, f"slot {slot} below slot_chosen is not chosen"
        # A compacted slot is forgotten: memory is bounded by the window and
        # two snapshot intervals (mutation s16 row 11 kept them all).
        assert not self._log or min(self._log) >= self.log_start, "a slot below log_start held"
        assert self.ballot_promised.round < ROUND_END, "promised a round the wire cannot carry"
        for entry in self._log.values():
            assert entry.ballot <= self.ballot_promised, "accepted above the promise"
        if self._log:
            slot_high = max(self._log)
            assert slot_high < self.slot_chosen + 2 * self.config.slots_ahead_max, (
                f"slot {slot_high} held, beyond the window of slot_chosen {self.slot_chosen}"
            )
        for slot in self._proposals:
            assert self.slot_chosen <= slot < self.slot_next, f"proposal at {slot}"
            assert not self._is_chosen(slot), f"proposal at chosen slot {slot}"

    def entry(self, slot: Slot) -> Entry | None:
        """The entry this replica holds for ``slot`` (for tests and tools)."""
        held = self._log.get(slot)
        return None if held is None else Entry(slot, held.ballot, held.value)

    # ---------------------------------------------------------------- handlers

    def _on_probe(self, message: Probe) -> None:
        self._see_round(message.ballot)
        # A leader that is no voter from our chosen prefix on was removed: it
        # proposes nothing more and only waits to hand over, which it may never
        # do if a new voter ignores it (one restored from a snapshot past the
        # removal no longer lists it: runtime swarm seed 85). It keeps no voter
        # from standing.
        leader_votes = self.leader_id in self._voters_ahead()
        granted = (
            message.ballot > self.ballot_promised
            and self.role is not Role.LEADER
            and not (self._leader_is_live() and leader_votes)
            and not self._keeps_a_lease(message.src, None)
        )
        self._send(ProbeReply(self.node_id, message.src, message.ballot, granted))

    def _keeps_a_lease(self, candidate: NodeId, handover_from: Ballot | None) -> bool:
        """Lease reads: this acceptor must not promise ``candidate`` now. It keeps
        the lease of the leader it hears, or leads, or (just started) one it may
        have heard before it stopped, unless that leader handed over to
        ``candidate`` (the Prepare names the ballot it promised)."""
        if not self.config.lease_reads or candidate == self.node_id:
            return False
        if handover_from is not None and handover_from == self.ballot_promised:
            return False
        if self._now < self._quiet_until or self.role is Role.LEADER:
            return True
        return (
            candidate != self.leader_id
            and self._leader_is_live()
            and self.leader_id in self._voters_ahead()
        )

    def _on_probe_reply(self, message: ProbeReply) -> None:
        if self.role is not Role.PROBING or message.ballot != self.ballot_own:
            return
        if message.granted:
            self._grants.add(message.src)
            if self._has_quorums_ahead(self._grants):
                self._start_prepare()
            return
        # Refused: the peer hears a live leader, leads, or promised higher. We
        # may hear none of that because the leader is a node no configuration
        # we hold names (added while we were behind), which we do not link to:
        # then nobody ever sends us the log. Ask the peer that refused
        # (learn_retry_s paces it; swarm seed 6000580, session 25's hour).
        self._request_learn(message.src)

    def _on_prepare(self, message: Prepare) -> None:
        self._see_round(message.ballot)
        if message.ballot > self.ballot_promised and self._keeps_a_lease(
            message.src, message.handover_from
        ):
            self._refuse(_Refusal.LEADER_LEASE)  # as if lost: the candidate tries again
            return
        if message.ballot < self.ballot_promised:
            self._send(Nack(self.node_id, message.src, message.ballot, self.ballot_promised))
            return
        if message.ballot > self.ballot_promised:
            self._raise_promise(message.ballot)
            self._persist(PromiseRecord(message.ballot))
        if message.src != self.node_id:
            # Give the candidate time to finish Phase 1 before standing ourselves.
            self.leader_id = None
            self._leader_seen_at = float("-inf")
            self._reset_election_timer()
        log_start = self.log_start
        if self.slot_chosen - message.slot_from > self.config.slots_ahead_max:
            # The candidate is far behind: say the slots below our chosen prefix
            # cannot be reported, so it learns them instead of leading (the
            # compacted-log rule), and the Promise stays within the window.
            log_start = self.slot_chosen
        slot_low = max(message.slot_from, log_start)
        entries = tuple(
            Entry(slot, held.ballot, held.value)
            for slot, held in sorted(self._log.items())
            if slot >= slot_low
        )
        promise = Promise(
            self.node_id,
            message.src,
            message.ballot,
            message.slot_from,
            entries,
            self.slot_chosen,
            log_start,
        )
        self._send_after_persist(promise)

    def _on_promise(self, message: Promise) -> None:
        if self.role not in (Role.PREPARING, Role.LEADER) or message.ballot != self.ballot_own:
            return
        slot_fill_end = message.slot_from + 2 * self.config.slots_ahead_max
        if message.slot_from != self._prepared_from.get(message.src) or (
            message.entries and message.entries[-1].slot >= slot_fill_end
        ):
            # Leading on it would mean filling slots a peer named, without bound.
            # Not counting it toward the quorum is as safe as losing it.
            self._refuse(_Refusal.OUT_OF_BOUNDS)
            return
        self._promises[message.src] = message
        for entry in message.entries:
            best = self._reported.get(entry.slot)
            if best is None or entry.ballot > best.ballot:
                self._reported[entry.slot] = entry
            self._fill_end = max(self._fill_end, entry.slot + 1)
        if message.log_start > max(message.slot_from, self.slot_chosen):
            # The compacted-log rule: this acceptor cannot report the slots below
            # its log_start, so its promise does not count (_covers) until we
            # know them chosen; learn them from it. A candidate then prepares
            # again (_prepare_again_if_caught_up); a leader preparing a later
            # configuration counts the promise once caught up (runtime seed
            # 1307: it asked again and again and never learned).
            if self.role is Role.PREPARING:
                self._catch_up_to = max(self._catch_up_to, message.log_start)
            self._request_learn(message.src)
        if self.role is Role.PREPARING:
            if self._prepared(self._slot_prepared):
                self._become_leader()
        else:
            self._flush_queue()  # a configuration taking effect may now be prepared
            self._resolve_reads()  # and a read that waits for it answered

    def _prepared(self, slot: Slot) -> bool:
        """Whether a majority of the voters deciding ``slot`` promised our ballot
        in promises that report every slot from where that configuration (or our
        Phase 1) starts, so Phase 1 saw whatever that majority accepted there."""
        config = self._history.at(slot)
        if config.epoch in self._prepared_epochs:
            return True
        start = max(self._history.effect_of(slot), self._slot_prepared)
        covering = [src for src, promise in self._promises.items() if self._covers(promise, start)]
        if not self._has_quorum(config, covering):
            return False
        self._prepared_epochs.add(config.epoch)
        return True

    def _covers(self, promise: Promise, start: Slot) -> bool:
        """Whether ``promise`` reports every slot from ``start`` that we do not
        know chosen: an acceptor compacts only chosen slots, so what it cannot
        report below its log_start is chosen, and once we know those chosen
        (slot_chosen reached its log_start) nothing of Phase 1 is missing."""
        return max(promise.slot_from, promise.log_start) <= max(start, self.slot_chosen)

    def _prepare_configuration(self, slot: Slot) -> None:
        """Phase 1 for the configuration that takes effect at or before ``slot``:
        ask its voters that have not promised (a leader's ballot reaches a new
        configuration's voters before it proposes there)."""
        if self._now - self._prepare_sent_at < self.config.accept_retry_s:
            return
        self._prepare_sent_at = self._now
        config = self._history.at(slot)
        start = max(self._history.effect_of(slot), self._slot_prepared)
        for voter in sorted(config.voters - {self.node_id}):
            promise = self._promises.get(voter)
            if promise is not None and self._covers(promise, start):
                continue
            self._prepared_from[voter] = start
            self._send(Prepare(self.node_id, voter, self.ballot_own, start))

    def _prepare_again_if_caught_up(self) -> None:
        """A candidate that learned past an acceptor's log_start prepares again at
        once, from its new slot_from, instead of waiting out a timeout."""
        if self.role is not Role.PREPARING or not 0 < self._catch_up_to <= self.slot_chosen:
            return
        if self._has_quorums_ahead(self._grants):
            self._start_prepare()
            return
        # What it learned changed the configurations (a snapshot's may drop a
        # voter that granted): their voters must grant anew (runtime reconfig
        # seed 172), so it probes again, or stays a follower if it may not stand.
        self._step_down(preempted=False)
        self._start_probe()

    def _on_timeout_now(self, message: TimeoutNow) -> None:
        """Our leader hands leadership to us: stand at once, skipping the probe
        (the probe only protects a live leader, and this one consents).

        Only under the reign we follow: the ballot of its last Accept or
        Heartbeat, at or above our promise. That may be above the promise (we
        missed its Prepare and no write came since): refused there, the
        operator's transfer would be answered and never happen. A stale
        TimeoutNow, from that node's earlier reign, is below it."""
        if (
            self.role is not Role.FOLLOWER
            or message.src != self.leader_id
            or message.ballot != self._leader_ballot
            or message.ballot < self.ballot_promised
            or not self._may_stand()
        ):
            return
        ballot = self._next_ballot()
        if ballot is None:  # sim: one-way: rounds never near 2**63
            return
        self.role = Role.PROBING
        self.ballot_own = ballot
        self._see_round(ballot)
        self._handover_from = message.ballot
        self._start_prepare()

    def _transfer_targets(self) -> list[NodeId]:
        newest = self._history.newest.voters
        return sorted(
            voter for voter in self.configuration.voters & newest if voter != self.node_id
        )

    def _try_transfer(self) -> None:
        """Send TimeoutNow once the target holds every slot chosen here."""
        target = self._transfer_to
        # Every caller checks a transfer runs, and only a leader runs one
        # (transfer_leadership; _step_down ends it).
        assert target is not None and self.role is Role.LEADER
        if self._now > self._transfer_until or target not in self._transfer_targets():
            self._transfer_to = None  # not done in time: serve on
            return
        if self._proposals or self._peer_slot_chosen.get(target, -1) < self.slot_chosen:
            return
        if self._now - self._transfer_sent_at < self.config.accept_retry_s:
            return  # sent; the target's Prepare will end our reign
        self._transfer_sent_at = self._now
        self._lease_forfeit = True  # its Prepares may be promised while we are heard
        self._send(TimeoutNow(self.node_id, target, self.ballot_own))

    def _nack_a_stale_stranger(self, message: Message) -> None:
        """A node in no configuration we hold leads under a ballot below our
        promise: most likely a removed leader waiting for us to show that we
        know its removal, which we never would by ignoring it (it then leads on,
        refusing its clients, forever: swarm seed 9 of the membership faults).
        A Nack is what a member would get, changes nothing here, and answers
        one message with one; the stranger steps down and, removed, never
        stands again."""
        if (
            isinstance(message, Accept | Heartbeat)
            and message.ballot.node_id == message.src
            and message.ballot < self.ballot_promised
        ):
            self._send(Nack(self.node_id, message.src, message.ballot, self.ballot_promised))

    def _tell_the_removed(self, message: Message) -> None:
        """A node gone from our members probes: it may have missed its removal
        (down or cut off while it was chosen and took effect), and so stands
        again and again, in vain. Say no out loud: a refused prober asks the
        refuser for the log (``_on_probe_reply``), and we answer a removed
        node's LearnRequest, so it learns the change that removed it and stops
        standing (docs/membership.md). One reply to one probe; nothing changes
        here."""
        if isinstance(message, Probe) and message.src in self._removed:
            self._send(ProbeReply(self.node_id, message.src, message.ballot, False))
            self._notify_removed(message.src)

    def _notify_removed(self, node_id: NodeId) -> None:
        """Tell ``node_id``, remembered removed, the epoch it is in no configuration
        from: once the log holds the change no more, the epoch is all we can tell
        it (protocol/removal_notices.py); a majority of us must."""
        self._send(RemovedNotice(self.node_id, node_id, self._removed[node_id].epoch))

    def _on_removed_notice(self, message: RemovedNotice) -> None:
        """A member says we were removed (``protocol/removal_notices.py``)."""
        newest = self._history.newest
        if not self._removal_notices.take(message.src, message.epoch, newest, self.node_id):
            self._refuse(_Refusal.UNSOLICITED)  # stale, or not from a voter we know

    def _behind_a_stranger(self, message: Message) -> None:
        """A node in no configuration we hold leads, or stands, past what we know:
        it was added by changes we have not learned yet (we joined late, or were
        cut off). Take nothing from it; learn the log from a member we know, which
        brings the configurations that name it. A stranger's Probe says nothing of
        how far it has chosen, yet it may need our vote to lead at all (we were
        added as a voter before we heard so), so it asks too; learn_retry_s bounds
        what a stranger's flood costs.

        A stranger's Accept, Heartbeat or Prepare ahead of us needs a node that
        was removed and added back while we missed both: a node links only to
        the members it names, and to those gone for LEAVING_LINK_S (5 s), and a
        removed node that knows more than we do knows it was removed, so it
        neither stands nor leads past its removal. No simulated operator builds
        that within 5 s (docs/testing.md, "Coverage"); test_membership.py
        (readded_through_a_stranger) and test_mutations.py (stranger-asks)
        drive it call by call."""
        match message:
            case Accept() | Heartbeat():
                if message.chosen.slot_chosen <= self.slot_chosen:  # sim: one-way: see above
                    return
            case Prepare():
                nothing_new = message.slot_from <= self.slot_chosen
                if nothing_new or self._leader_is_live():  # sim: one-way: see above
                    return
            case Probe():
                if self.role is Role.LEADER or self._leader_is_live():
                    return  # we are not stuck: a live leader would bring the change
            case _:
                return
        known = [member for member in self.members if member != self.node_id]
        if not known:  # sim: one-way: a replica alone in its configuration leads itself
            return
        self._learn_turn = (self._learn_turn + 1) % len(known)
        self._request_learn(known[self._learn_turn])

    def _on_nack(self, message: Nack) -> None:
        self._see_round(message.ballot_promised)
        if self.role is Role.FOLLOWER or message.ballot != self.ballot_own:
            return
        # Acceptors nack only a ballot below their promise (_on_prepare,
        # _on_accept, _on_heartbeat): the promise named is higher than ours.
        if message.ballot_promised > self.ballot_own:  # sim: one-way: nacks name a higher one
            self._step_down(preempted=True)

    def _on_accept(self, message: Accept) -> None:
        self._see_round(message.ballot)
        if not self._may_accept(message.ballot):
            self._send(Nack(self.node_id, message.src, message.ballot, self.ballot_promised))
            return
        self._follow(message.src, message.ballot)
        held = self._log.get(message.slot)
        if message.slot < self.log_start or (held is not None and held.chosen):
            # Already chosen here; Paxos guarantees it is this very value. Vote
            # without rewriting the entry, so chosen entries never change.
            if message.ballot > self.ballot_promised:
                self._raise_promise(message.ballot)
                self._persist(PromiseRecord(message.ballot))
        else:
            self._raise_promise(message.ballot)
            self._log[message.slot] = _LogEntry(message.ballot, message.value)
            self._persist(AcceptRecord(Entry(message.slot, message.ballot, message.value)))
        self._reply_accepted(
            Accepted(self.node_id, message.src, message.ballot, message.slot, self.slot_chosen)
        )
        self._learn_prefix(message.chosen, message.src)

    def _on_accepted(self, message: Accepted) -> None:
        self._see_round(message.ballot)
        if self.role is not Role.LEADER or message.ballot != self.ballot_own:
            return
        self._note_peer(message.src, message.slot_chosen)
        proposal = self._proposals.get(message.slot)
        if proposal is None:
            return
        proposal.votes.add(message.src)
        if self._has_quorum(self._history.at(message.slot), proposal.votes):
            del self._proposals[message.slot]
            self._mark_chosen(message.slot, message.ballot, proposal.value)
            self._advance_chosen()
            self._flush_queue()

    def _on_heartbeat(self, message: Heartbeat) -> None:
        self._see_round(message.ballot)
        if message.ballot < self.ballot_promised:
            self._send(Nack(self.node_id, message.src, message.ballot, self.ballot_promised))
            return
        self._follow(message.src, message.ballot)
        self._learn_prefix(message.chosen, message.src)
        self._send(
            HeartbeatReply(
                self.node_id, message.src, message.ballot, self.slot_chosen, message.read_round
            )
        )

    def _on_heartbeat_reply(self, message: HeartbeatReply) -> None:
        self._see_round(message.ballot)
        if self.role is not Role.LEADER or message.ballot != self.ballot_own:
            return
        if message.read_round > self._read_round:
            self._refuse(_Refusal.OUT_OF_BOUNDS)  # it would confirm reads not yet asked
            return
        self._note_peer(message.src, message.slot_chosen)
        if message.read_round > self._peer_read_round.get(message.src, 0):
            self._peer_read_round[message.src] = message.read_round
        if self._reads:
            # Also a read confirmed already that waits for a configuration's
            # Phase 1 (_resolve_reads): it asks again at accept_retry_s, and is
            # answered within a heartbeat once prepared, not at the next read.
            self._resolve_reads()

    def _on_learn_request(self, message: LearnRequest) -> None:
        if message.slot_from > self.slot_chosen + self.config.slots_ahead_max:
            self._refuse(_Refusal.OUT_OF_BOUNDS)
            return
        # A removed node learns no slot from its removal on: it needs the change
        # that removed it, and what the cluster chose since is not its to read
        # (a node is often removed because its machine is no longer trusted).
        # Nor a snapshot, which holds the state since; so once this replica has
        # compacted past the change, it learns nothing here (**).
        removal = self.removal_effect(message.src)
        slot_chosen = self.slot_chosen if removal is None else min(self.slot_chosen, removal)
        if message.slot_from < self.log_start:
            if removal is not None:
                self._refuse(_Refusal.NON_MEMBER_LEARN_REQUEST)
                # A removed learner never probes: once the log holds its removal
                # no more, its learn requests are all it sends that can be told.
                self._notify_removed(message.src)
                return
            self._ready.snapshot_requests.append(SnapshotRequest(message.src, message.slot_from))
            return
        slot_end = min(slot_chosen, message.slot_from + self.config.learn_max_entries)
        entries: list[Entry] = []
        size = 0
        for slot in range(message.slot_from, slot_end):
            held = self._log[slot]
            size += sum(len(command.payload) for command in held.value.commands)
            if entries and size > self.config.learn_max_bytes:
                break
            entries.append(Entry(slot, held.ballot, held.value))
        if entries:
            self._send(Learn(self.node_id, message.src, tuple(entries)))

    def _on_learn(self, message: Learn) -> None:
        if message.src not in self._learn_pending:
            self._refuse(_Refusal.UNSOLICITED)
            return
        self._learn_pending.discard(message.src)
        slot_end = self.slot_chosen + self.config.slots_ahead_max
        if message.entries and message.entries[-1].slot >= slot_end:
            self._refuse(_Refusal.OUT_OF_BOUNDS)  # the entries below the window still count
        for entry in message.entries:
            if entry.slot >= slot_end:
                break
            held = self._log.get(entry.slot)
            if entry.slot < self.log_start or (held is not None and held.chosen):
                continue
            # A new leader may be re-proposing this very slot (it asked to learn
            # it as a follower): the chosen value settles it.
            self._proposals.pop(entry.slot, None)
            if held is not None and held.value == entry.value:
                # Same value under our ballot: keep our ballot, so the runs we
                # announce still match what the followers accepted. A higher
                # ballot still raises the promise (a stale leader steps down).
                if entry.ballot > self.ballot_promised:
                    self._raise_promise(entry.ballot)
                    self._persist(PromiseRecord(entry.ballot))
                held.chosen = True
                continue
            if entry.ballot > self.ballot_promised:
                self._raise_promise(entry.ballot)
            self._log[entry.slot] = _LogEntry(entry.ballot, entry.value, chosen=True)
            self._persist(AcceptRecord(entry))
        before = self.slot_chosen
        self._advance_chosen()
        if self.role is Role.LEADER:
            # Slots chosen that this leader never proposed mean a newer leader
            # existed; never propose into them (its Accepts will be refused).
            self.slot_next = max(self.slot_next, self.slot_chosen)
        self._flush_queue()
        if self.slot_chosen > before and self._learn_was_cut(message):
            self._learn_requested_at = float("-inf")
            self._request_learn(message.src)
        self._prepare_again_if_caught_up()

    def _learn_was_cut(self, message: Learn) -> bool:
        """Whether a ``Learn`` likely stopped at a limit, so more is waiting.

        Guessing wrong costs little: heartbeats show the chosen prefix, and a
        follower behind it asks again after ``learn_retry_s``.
        """
        if len(message.entries) >= self.config.learn_max_entries:
            return True
        size = sum(len(c.payload) for entry in message.entries for c in entry.value.commands)
        return size > self.config.learn_max_bytes - self.config.batch_max_bytes

    # ---------------------------------------------------------- role changes

    def _start_probe(self) -> None:
        if not self._may_stand():
            if self.role is Role.PROBING:
                # A candidate that learned, while it probed, that it may not
                # stand (its own removal, _tell_the_removed) stands down.
                self.role = Role.FOLLOWER
            self._reset_election_timer()
            # No leader for a whole timeout, and we may not stand: perhaps only
            # because we are behind (the slots that make us a voter are chosen
            # but not known here, and whoever knows them follows no one: the
            # only voter replaced, then every node restarted; core reconfig
            # seed 17). Ask a member we know to catch us up, once a timeout.
            # A node in none of the configurations it holds is not removed but
            # behind them: a learner that lost, in a power cut, the unsynced
            # entries that added it is back at a snapshot older than its add
            # (reconfig seed 102 of 5 nodes: it waited for good, and the leader,
            # which it did not know, could not link to it). A removed node asks
            # too: it may have been added back through a leader it never knew,
            # which cannot reach it (swarm seed 108 of 5 nodes: it stayed at its
            # removal for good). A member that holds it in no configuration
            # refuses the request (ignored_non_member_learn_request); one that
            # holds the configuration adding it back answers.
            # A configuration ahead has a voter that is not this node (it may
            # not stand), and members holds every member of those: never empty.
            known = [member for member in self.members if member != self.node_id]
            if known:  # sim: one-way: see above
                self._learn_turn = (self._learn_turn + 1) % len(known)
                self._request_learn(known[self._learn_turn])
            return
        ballot = self._next_ballot()
        # No ballot is left only at round 2**63 - 1: refused jumps bound a round
        # to 2**32 above the rounds known, and honest rounds climb by one.
        if ballot is None:  # sim: one-way: rounds never near 2**63
            self._refuse(_Refusal.ROUND_END)
            self._reset_election_timer()
            return
        self.role = Role.PROBING
        self.ballot_own = ballot
        self._handover_from = None  # a candidate of its own, not a transfer's
        self._see_round(self.ballot_own)  # a retry probes with a fresh ballot
        self._grants = {self.node_id}
        self._reset_election_timer()
        for peer in sorted(self._voters_ahead() - {self.node_id}):
            self._send(Probe(self.node_id, peer, self.ballot_own))
        # Only a one-member cluster grants itself a quorum; the swarm draws 3 to
        # 7 members (test_a_single_node_cluster_chooses_after_its_own_persist).
        if self._has_quorums_ahead(self._grants):  # sim: one-way: one-member clusters only
            self._start_prepare()

    def _start_prepare(self) -> None:
        self.role = Role.PREPARING
        # Keep the ballot the majority granted, unless it went stale meanwhile.
        # It is fresh either way: above our promise, so never prepared before.
        probed = self.ballot_own
        if not (probed > self.ballot_promised and probed.round >= self._round_seen):
            ballot = self._next_ballot()
            if ballot is None:  # sim: one-way: rounds never near 2**63 (see _start_probe)
                self._refuse(_Refusal.ROUND_END)
                self._step_down(preempted=True)
                return
            self.ballot_own = ballot
        self._forget_phase_one()
        self._reset_election_timer()
        slot_from = self._slot_prepared = self.slot_chosen
        # Our own promise goes first and is persisted before any Prepare leaves,
        # so this ballot is durable before anyone can hear of it. Every voter of
        # a configuration known from slot_from on is asked.
        self._prepared_from = dict.fromkeys(self._voters_ahead() | {self.node_id}, slot_from)
        self._prepare_sent_at = self._now
        self._on_prepare(Prepare(self.node_id, self.node_id, self.ballot_own, slot_from))
        for peer in sorted(self._voters_ahead() - {self.node_id}):
            self._send_after_persist(
                Prepare(self.node_id, peer, self.ballot_own, slot_from, self._handover_from)
            )

    def _forget_phase_one(self) -> None:
        self._promises = {}
        self._prepared_from = {}
        self._prepared_epochs = set()
        self._reported = {}
        self._fill_end = 0
        self._catch_up_to = 0

    def _become_leader(self) -> None:
        self.role = Role.LEADER
        self.leader_id = self.node_id
        self._backoff = 1.0
        self._leader_since = self._now
        self._proposals = {}
        self._queue.clear()
        self._peer_seen_at = {peer: self._now for peer in self._peers()}
        self._peer_slot_chosen = {
            promise.src: promise.slot_chosen for promise in self._promises.values()
        }
        self._peer_read_round = {}
        self._round_sent_at = {}
        self._lease_forfeit = False
        self._handover_from = None
        # Phase 2 re-proposes, slot by slot from here, what the promises
        # reported, and fills the holes below the last reported slot with
        # no-ops (_flush_queue); only then new commands.
        self.slot_next = self.slot_chosen
        self._flush_queue()
        self._broadcast_heartbeat()

    def _step_down(self, *, preempted: bool) -> None:
        was_leader = self.role is Role.LEADER
        self.role = Role.FOLLOWER
        self._transfer_to = None
        if was_leader:
            self.leader_id = None
        for read in self._reads:
            self._ready.reads.append(ReadIndex(read.read_id, None))
        self._reads.clear()
        self._proposals.clear()
        self._queue.clear()
        self._grants = set()
        self._handover_from = None
        self._forget_phase_one()
        if preempted:
            self._backoff = min(
                self._backoff * self.config.backoff_factor, self.config.backoff_max_factor
            )
        self._reset_election_timer()

    # ------------------------------------------------------------- proposer

    def _reproposal(self, slot: Slot) -> Value:
        """Phase 1's rule: the value accepted under the highest ballot any promise
        reported at ``slot``, or a no-op where none did (a hole below the last
        reported slot). Promises beyond a majority only add reports, which is
        as safe: a value chosen under ballot b is the only one accepted at that
        slot under any ballot from b up."""
        highest = self._reported.get(slot)
        return NOOP if highest is None else self._choose_reproposal(highest)

    def _choose_reproposal(self, highest: Entry) -> Value:
        return highest.value

    def _propose_slot(self, slot: Slot, value: Value) -> None:
        self._proposals[slot] = _Proposal(value, sent_at=self._now)
        for member in self.members:
            accept = Accept(
                self.node_id, member, self.ballot_own, slot, value, self._prefix_for(member)
            )
            if member == self.node_id:
                self._on_accept(accept)
            else:
                self._send(accept)

    def _flush_queue(self) -> None:
        """Propose the next slots: re-proposals first, then queued commands.

        Slot s goes out only while ``s < slot_chosen + alpha`` (the window is
        never wider), so the configuration deciding s is known; only once a
        majority of its voters promised our ballot; and only while this
        replica is one of its voters (a leader being removed stops at the
        slot its removal takes effect, _tick_leader).
        """
        if self.role is not Role.LEADER:
            return
        window = min(self.config.pipeline_window_slots, self._history.newest.alpha)
        while self.slot_next - self.slot_chosen < window:
            slot = self.slot_next
            if self._is_chosen(slot):  # learned while we led: nothing to propose
                self.slot_next += 1
                continue
            # A chosen change takes effect alpha slots on; with nothing else to
            # propose, no-ops carry the log there, so an idle cluster does not
            # hold a change (and the next one) back.
            pending = slot < self._history.newest_effect
            if slot >= self._fill_end and not self._queue and not pending:
                return
            if self.node_id not in self._history.at(slot).voters:
                return
            if not self._prepared(slot):
                self._prepare_configuration(slot)
                return
            if slot < self._fill_end:
                value = self._reproposal(slot)
            elif self._queue:
                value = Value(self._take_batch())
            else:
                value = NOOP
            self.slot_next += 1
            self._propose_slot(slot, value)

    def _take_batch(self) -> tuple[Command, ...]:
        """The next slot's commands: at most ``batch_max_commands`` and, past the
        first, at most ``batch_max_bytes`` of payload (one big command still fits)."""
        batch = [self._queue.popleft()]
        size = len(batch[0].payload)
        while self._queue and len(batch) < self.config.batch_max_commands:
            size += len(self._queue[0].payload)
            if size > self.config.batch_max_bytes:
                break
            batch.append(self._queue.popleft())
        return tuple(batch)

    def _tick_leader(self) -> None:
        horizon = self._now - self.config.election_timeout_max_s
        heard = {self.node_id}.union(
            peer for peer, seen in self._peer_seen_at.items() if seen >= horizon
        )
        in_effect = self._history.at(self.slot_chosen)
        removed = self.node_id not in in_effect.voters
        # A removed leader waiting to hand over proposes nothing, and a read
        # still needs the new voters' answers, so it may outlast its lease: it
        # may be the only one that can tell the new voters (seed 17 of the
        # core reconfig test: the only voter replaced while cut off from it).
        if not removed and not self._has_quorums_ahead(heard) and self._leader_since <= horizon:
            self._step_down(preempted=False)
            return
        if removed:
            # Our removal took effect (every slot before it is chosen, and we
            # propose none after it). Lead on, proposing nothing, until a
            # majority of the new voters know it (their chosen prefix reached
            # ours): before that they hold the old configuration, where they
            # may not stand (swarm core seeds 235, 238, 249, 284). Then hand
            # leadership to the one furthest along and never stand again.
            informed = [
                voter
                for voter in in_effect.voters
                if self._peer_slot_chosen.get(voter, -1) >= self.slot_chosen
            ]
            if self._has_quorum(in_effect, informed):
                best = max(informed, key=lambda p: (self._peer_slot_chosen.get(p, -1), -p))
                self._lease_forfeit = True
                self._send(TimeoutNow(self.node_id, best, self.ballot_own))
                self._step_down(preempted=False)
                return
        if self._transfer_to is not None:
            self._try_transfer()  # again each tick, or drop it once its time is up
        waiting = (
            self._queue
            or self._fill_end > self.slot_next
            or self.slot_next < self._history.newest_effect
        )
        if waiting and not self._prepared(self.slot_next):
            self._prepare_configuration(self.slot_next)  # asked again while unanswered
        if self._now >= self._heartbeat_due:
            self._broadcast_heartbeat()
        for slot, proposal in self._proposals.items():
            if self._now - proposal.sent_at >= self.config.accept_retry_s:
                proposal.sent_at = self._now
                for peer in self._peers():
                    if peer not in proposal.votes:
                        self._send(
                            Accept(
                                self.node_id,
                                peer,
                                self.ballot_own,
                                slot,
                                proposal.value,
                                self._prefix_for(peer),
                            )
                        )

    def _broadcast_heartbeat(self) -> None:
        self._heartbeat_due = self._now + self.config.heartbeat_interval_s
        if self.config.lease_reads:
            # Every round of heartbeats is a read round: its acknowledgements
            # date the lease. Rounds older than a lease are of no more use.
            self._read_round += 1
            self._round_sent_at[self._read_round] = self._now
            horizon = self._now - self.config.lease_s
            # The round just added went out now, within the horizon, and alone
            # it is within the bound: the loop always stops at it at the latest.
            for read_round, sent_at in list(self._round_sent_at.items()):  # sim: one-way: above
                if sent_at >= horizon and len(self._round_sent_at) <= _LEASE_ROUNDS_MAX:
                    break
                del self._round_sent_at[read_round]  # oldest first: a lease only shortens
        for peer in self._peers():
            self._send(
                Heartbeat(
                    self.node_id, peer, self.ballot_own, self._prefix_for(peer), self._read_round
                )
            )

    def _confirmed_round(self, peer_rounds: dict[NodeId, int]) -> int:
        """The highest read round a majority of every configuration ahead
        acknowledged (this leader counting with its own round)."""
        rounds = dict(peer_rounds)
        rounds[self.node_id] = self._read_round
        return min(
            quorum_floor(
                [rounds.get(voter, 0) for voter in config.voters], self._quorum_size(config)
            )
            for config in self._history.from_slot(self.slot_chosen)
        )

    def _resolve_reads(self) -> None:
        confirmed = self._confirmed_round(self._peer_read_round)
        while self._reads and self._reads[0].read_round <= confirmed:
            unprepared = self._unprepared_from(self._reads[0].slot)
            if unprepared is not None:
                # A configuration ahead whose Phase 1 is not done: another
                # leader may have chosen slots there that only its voters'
                # promises will report (core reconfig seed 21: a leader elected
                # in the old voters confirmed a read at 24 with the new ones'
                # heartbeats, though they had chosen up to 38). Ask them, as a
                # proposal there would (a leader with only reads to serve
                # would never: core reconfig seed 14), and wait.
                if self.node_id in self._history.at(unprepared).voters:
                    self._prepare_configuration(unprepared)
                break
            read = self._reads.popleft()
            # Slots those promises reported are re-proposed below _fill_end.
            self._ready.reads.append(ReadIndex(read.read_id, max(read.slot, self._fill_end)))

    def _unprepared_from(self, slot: Slot) -> Slot | None:
        """The first slot from ``slot`` on whose configuration (of those held) is
        not prepared (``_prepared``: a majority of it promised our ballot and
        reported what it accepted), or None when every one is."""
        for effect, _ in self._history.state(slot):
            at = max(effect, slot)
            if not self._prepared(at):
                return at
        return None

    def _note_peer(self, peer: NodeId, slot_chosen: Slot) -> None:
        if peer == self.node_id:
            return  # its own vote: check quorum counts the leader once (_tick_leader)
        self._peer_seen_at[peer] = self._now
        self._peer_slot_chosen[peer] = slot_chosen
        if peer == self._transfer_to:
            self._try_transfer()

    # ------------------------------------------------------------- acceptor

    def _may_accept(self, ballot: Ballot) -> bool:
        return ballot >= self.ballot_promised

    def _reply_accepted(self, reply: Accepted) -> None:
        self._send_after_persist(reply)

    def _raise_promise(self, ballot: Ballot) -> None:
        """Raise the promise (the caller persists it); a stale candidate steps down."""
        if ballot <= self.ballot_promised:
            return
        self.ballot_promised = ballot
        if self.role is not Role.FOLLOWER and ballot > self.ballot_own:
            self._step_down(preempted=True)

    def _follow(self, leader: NodeId, ballot: Ballot) -> None:
        """A message under ``ballot >= promised`` came from ``leader``."""
        if self.role is Role.PROBING:
            self._step_down(preempted=False)  # a live leader: no need to stand
        elif self.role is not Role.FOLLOWER and ballot > self.ballot_own:
            self._step_down(preempted=True)
        if leader != self.node_id:
            self.leader_id = leader
            self._leader_ballot = ballot
            self._leader_seen_at = self._now
            self._backoff = 1.0
            self._reset_election_timer()

    # -------------------------------------------------------------- learner

    def _learn_prefix(self, prefix: ChosenPrefix, source: NodeId) -> None:
        """Mark chosen every slot whose entry matches the ballot it was chosen under."""
        self._slot_chosen_heard = max(self._slot_chosen_heard, prefix.slot_chosen)
        if prefix.slot_chosen <= self.slot_chosen:
            return
        for run in prefix.runs:
            if run.slot_end <= self.slot_chosen:
                continue
            if run.slot_start > self.slot_chosen:
                break
            slot = self.slot_chosen
            while slot < run.slot_end:
                held = self._log.get(slot)
                if held is None:
                    break
                # A slot known chosen keeps the ballot it was chosen under, which
                # a later leader's re-proposal of the same value does not carry:
                # step over it (swarm seed 30: the walk stopped there and the
                # slots after it waited for a Learn round trip).
                if not held.chosen:
                    if held.ballot != run.ballot:
                        break
                    held.chosen = True
                slot += 1
            self._advance_chosen()
            if self.slot_chosen < run.slot_end:
                break
        if self.slot_chosen < prefix.slot_chosen:
            self._request_learn(source)

    def _request_learn(self, source: NodeId) -> None:
        # A replica's prefix to itself carries its own slot_chosen, never ahead.
        if source == self.node_id:  # sim: one-way: its own prefix is never ahead
            return
        if self._now - self._learn_requested_at < self.config.learn_retry_s:
            return
        self._learn_requested_at = self._now
        self._learn_pending.add(source)
        self._send(LearnRequest(self.node_id, source, self.slot_chosen))

    def _mark_chosen(self, slot: Slot, ballot: Ballot, value: Value) -> None:
        held = self._log.get(slot)
        # Called for a slot with an open proposal: proposals go to slots not yet
        # chosen here and leave as they become chosen (_on_accepted, _on_learn),
        # and the leader accepted its own (_propose_slot) under this ballot; a
        # higher promise since would have stepped it down, clearing proposals.
        if held is not None and held.chosen:  # sim: one-way: an open proposal is unchosen
            return
        if held is None or held.ballot != ballot:  # sim: one-way: the leader holds its own
            self._log[slot] = _LogEntry(ballot, value)
            self._persist(AcceptRecord(Entry(slot, ballot, value)))
        self._log[slot].chosen = True

    def _is_chosen(self, slot: Slot) -> bool:
        held = self._log.get(slot)
        return slot < self.log_start or (held is not None and held.chosen)

    def _advance_chosen(self, *, persist: bool = True) -> None:
        start = self.slot_chosen
        passed: list[Configuration] = []  # the changes chosen in this advance
        while True:
            held = self._log.get(self.slot_chosen)
            if held is None or not held.chosen:
                break
            if not self._runs or self._runs[-1][1] != held.ballot:
                self._runs.append((self.slot_chosen, held.ballot))
            change = self._history.chosen(self.slot_chosen, held.value)
            if change is not None:
                self._forget_promises_of_the_removed(change)
                passed.append(change)
            self.slot_chosen += 1
        for _, gone in self._history.replayed():  # the log from before it joined
            self._remember_removed_before(gone)
        if self.slot_chosen > start:
            self._refresh_members(passed)
        if persist and self.slot_chosen > start:
            self._persist(ChosenRecord(self.slot_chosen))
        self._apply_chosen()

    def _forget_promises_of_the_removed(self, change: Configuration) -> None:
        """A member gone from ``change`` can only come back as a new entry, on
        what may be a new disk (the replace procedure): the promise its old self
        gave does not bind that one, so a later configuration that has it vote
        again must have its promise anew (``_prepare_configuration``). Dropping
        a promise is as safe as losing it."""
        for node_id in [src for src in self._promises if src not in change.ids]:
            del self._promises[node_id]

    def _apply_chosen(self) -> None:
        for slot in range(self.slot_applied, self.slot_chosen):
            self._ready.apply.append(ChosenEntry(slot, self._log[slot].value))
        self.slot_applied = max(self.slot_applied, self.slot_chosen)

    def _prefix_for(self, peer: NodeId) -> ChosenPrefix:
        """The chosen prefix, with ballots from where ``peer`` last said it stood."""
        if peer == self.node_id:
            return ChosenPrefix(self.slot_chosen)
        slot_low = max(self.log_start, self._peer_slot_chosen.get(peer, self.log_start))
        runs: list[BallotRun] = []
        slot_end = self.slot_chosen
        for slot_start, ballot in reversed(self._runs):
            if slot_end <= slot_low or len(runs) == self.config.runs_max:
                break
            start = max(slot_start, slot_low)
            # Run starts strictly increase, each below slot_chosen, and the loop
            # stopped at slot_low: no run here is empty.
            if start < slot_end:  # sim: one-way: runs are never empty
                runs.append(BallotRun(start, slot_end, ballot))
            slot_end = slot_start
        runs.reverse()
        return ChosenPrefix(self.slot_chosen, tuple(runs))

    def _trim_runs(self) -> None:
        while len(self._runs) > 1 and self._runs[1][0] <= self.log_start:
            self._runs.pop(0)

    # ------------------------------------------------------------ the edge

    def _refusal(self, message: Message) -> _Refusal | None:
        """Why ``message`` must be ignored, or None when it is within bounds."""
        if message.dst != self.node_id:
            return _Refusal.MISADDRESSED
        if message.src not in self._member_set:
            if isinstance(message, LearnRequest):
                if message.src in self._removed:
                    return None  # a removed node asking: answered (***)
                return _Refusal.NON_MEMBER_LEARN_REQUEST  # not known here (**)
            return _Refusal.NON_MEMBER
        if isinstance(message, Probe | Prepare) and message.src not in self._voters_ahead():
            return _Refusal.NON_MEMBER  # a learner or a removed voter never stands
        # (ballot, the node that must own it): a ballot is used by one node only.
        owned: tuple[Ballot, NodeId] | None
        match message:
            case Probe() | Prepare() | Accept() | Heartbeat() | TimeoutNow():
                owned = (message.ballot, message.src)
            case ProbeReply() | Promise() | Nack() | Accepted() | HeartbeatReply():
                owned = (message.ballot, self.node_id)  # a reply carries our ballot
            case LearnRequest() | Learn() | RemovedNotice():
                owned = None
            case _:
                assert_never(message)
        if owned is not None and owned[0].node_id != owned[1]:
            return _Refusal.BAD_BALLOT
        round_known = max(self._round_seen, self.ballot_promised.round)
        round_max = min(ROUND_END - 1, round_known + ROUND_JUMP_MAX)
        for ballot in _ballots_of(message):
            # A round the wire carries, and no absurd jump above every round this
            # replica knows. (Entries and runs may name any node's ballot: a
            # removed member's entries stay in the log.)
            if ballot.round > round_max:
                return _Refusal.BAD_BALLOT
        if (
            isinstance(message, Accept)
            and message.src != self.node_id  # our own fill is bounded by _on_promise
            and message.slot >= self.slot_chosen + self.config.slots_ahead_max
        ):
            return _Refusal.OUT_OF_BOUNDS
        return None

    def _refuse(self, refusal: _Refusal) -> None:
        self._refused[refusal] += 1

    # -------------------------------------------------------------- helpers

    def _peers(self) -> list[NodeId]:
        """Every member (voter or learner) of a configuration from slot_chosen on."""
        return [member for member in self.members if member != self.node_id]

    def _may_stand(self) -> bool:
        """Only a voter now and in the newest configuration stands: a learner
        never does, nor a voter whose removal is chosen."""
        return (
            self.node_id in self._history.at(self.slot_chosen).voters
            and self.node_id in self._history.newest.voters
            and self.removed_by_notice is None
        )

    def _voters_ahead(self) -> frozenset[NodeId]:
        """The voters of every configuration from slot_chosen on."""
        return frozenset().union(
            *(config.voters for config in self._history.from_slot(self.slot_chosen))
        )

    def _quorum_size(self, config: Configuration) -> int:
        return config.quorum

    def _has_quorum(self, config: Configuration, ids: Iterable[NodeId]) -> bool:
        return len(config.voters.intersection(ids)) >= self._quorum_size(config)

    def _has_quorums_ahead(self, ids: Iterable[NodeId]) -> bool:
        """A majority of every configuration from slot_chosen on: what an election,
        a read and a leader's lease need while a change is pending, so that no
        other leader can rise in either configuration meanwhile."""
        ids = set(ids)
        return all(
            self._has_quorum(config, ids) for config in self._history.from_slot(self.slot_chosen)
        )

    def _refresh_members(self, passed: Sequence[Configuration] = ()) -> None:
        """The ids this replica talks to and hears from (the history changed);
        ``passed``: the changes chosen since the last refresh."""
        previous = self.members
        before = frozenset(previous)
        self.members = self._members_now()
        self._member_set = self._history.ids()
        if self.members != previous or self._history.newest is not self._newest_seen:
            self._remember_the_removed(before, passed)
        if self.role is Role.LEADER:
            # A member that (re)joins gets a whole lease to answer before check
            # quorum counts it as unheard: the leader only now talks to it.
            for member in set(self.members) - before - {self.node_id}:
                self._peer_seen_at[member] = self._now

    def _remember_the_removed(
        self, before: frozenset[NodeId], passed: Sequence[Configuration]
    ) -> None:
        """Members gone since the last refresh join ``_removed`` (bounded: the
        oldest is forgotten first); members back leave it. So do the members of
        a change ``passed`` over that no configuration held from here on keeps:
        a node added and removed within one advance of the prefix (a follower
        catching up in one Learn) was a member here too, if never refreshed as
        one (swarm seed 13000390: n1 never remembered n6, so it would not have
        told n6 of its removal)."""
        effect = self._history.effect_of(self.slot_chosen)
        epoch = self._history.at(self.slot_chosen).epoch
        addresses = {m.node_id: m.address for config in passed for m in config.members}
        addresses.update(self._member_addresses)
        were = before.union(*(config.ids for config in passed))
        gone = sorted(were - set(self.members) - {self.node_id})
        remember_removed(
            self._removed,
            (RemovedMember(n, addresses.get(n, ""), effect, epoch) for n in gone),
            self.members,
        )
        self.removed_version += 1
        self._member_addresses = self.member_addresses()
        self._newest_seen = self._history.newest

    def _remember_removed_before(self, removed: RemovedState) -> None:
        """Nodes removed before this replica's configurations begin: what a
        snapshot remembers (the log that removed them is gone here; restarted,
        or restored from a peer's), or what the log before the configuration
        it joined with says (``ConfigHistory.replayed``)."""
        others = (gone for gone in removed if gone.node_id != self.node_id)
        remember_removed(self._removed, others, self.members)
        self.removed_version += 1

    def _members_now(self) -> tuple[NodeId, ...]:
        """Every member of a configuration in effect from the chosen prefix on."""
        live = self._history.from_slot(self.slot_chosen)
        return tuple(sorted(frozenset().union(*(config.ids for config in live))))

    def _next_ballot(self) -> Ballot | None:
        """A fresh ballot above every round known, or None once rounds run out."""
        round_next = max(self._round_seen, self.ballot_promised.round) + 1
        return Ballot(round_next, self.node_id) if round_next < ROUND_END else None

    def _see_round(self, ballot: Ballot) -> None:
        self._round_seen = max(self._round_seen, ballot.round)

    def _check_serving(self) -> None:
        if not self.serving:
            raise NoQuorum(
                f"node {self.node_id} leads but has heard from no majority within "
                f"{self.config.election_timeout_min_s} s; nothing was done here; retry on "
                "another node"
            )

    def _leader_is_live(self) -> bool:
        return self._now - self._leader_seen_at < self.config.election_timeout_min_s

    def _reset_election_timer(self) -> None:
        low = self.config.election_timeout_min_s
        high = self.config.election_timeout_max_s
        timeout = (low + (high - low) * self._rng.random()) * self._backoff
        self._election_deadline = self._now + timeout

    def _persist(self, record: PromiseRecord | AcceptRecord | ChosenRecord) -> None:
        self._ready.records.append(record)

    def _persist_snapshot_mark(self, slot: Slot) -> None:
        self._ready.records.append(SnapshotRecord(slot))

    def _send(self, message: Message) -> None:
        self._ready.messages.append(message)

    def _send_after_persist(self, message: Message) -> None:
        self._ready.messages_after_persist.append(message)

    def _take_ready(self) -> Ready:
        ready, self._ready = self._ready, Ready()
        return ready


def _ballots_of(message: Message) -> list[Ballot]:
    """Every ballot a message names, so the edge can check each one."""
    match message:
        case Probe() | ProbeReply() | Prepare() | Accepted() | HeartbeatReply() | TimeoutNow():
            return [message.ballot]
        case Promise():
            return [message.ballot, *(entry.ballot for entry in message.entries)]
        case Nack():
            return [message.ballot, message.ballot_promised]
        case Accept() | Heartbeat():
            return [message.ballot, *(run.ballot for run in message.chosen.runs)]
        case Learn():
            return [entry.ballot for entry in message.entries]
        case LearnRequest() | RemovedNotice():
            return []
        case _:
            assert_never(message)
