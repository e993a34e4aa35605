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

PROBING is a phase before Phase 1 that changes no durable state: a candidate
asks whether a majority would promise its ballot, and an acceptor says no while
it still hears a live leader. A replica cut off from the leader alone therefore
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
| ``src`` is not a member                             | ignored          | ignored_non_member      |
| a ballot round >= ROUND_END (2**63), or more than   | ignored          | ignored_bad_ballot      |
| ROUND_JUMP_MAX (2**32) above the rounds known; a    |                  |                         |
| non-member's ballot; a Probe, Prepare, Accept or    |                  |                         |
| Heartbeat under a ballot its sender does not own;   |                  |                         |
| a reply under a ballot that is not ours             |                  |                         |
| a peer's Accept at ``slot_chosen + W`` or beyond    | ignored          | ignored_out_of_bounds   |
| LearnRequest from beyond ``slot_chosen + W``        | ignored          | ignored_out_of_bounds   |
| Learn entries at ``slot_chosen + W`` or beyond      | entries dropped  | ignored_out_of_bounds   |
| Learn from a node this replica did not ask          | ignored          | ignored_unsolicited     |
| Promise with an entry at ``slot_from + 2W`` or      | not counted      | ignored_out_of_bounds   |
| beyond, or for another ``slot_from``                | toward a quorum  |                         |
| HeartbeatReply with a read round never sent         | ignored          | ignored_out_of_bounds   |

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
- Every slot held lies below ``slot_chosen + 2W`` (a peer's slots below
  ``slot_chosen + W``; a new leader's fill below ``slot_from + 2W``).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, assert_never

from paxon.errors import Busy, NotLeader
from paxon.protocol.config import ROUND_END, ROUND_JUMP_MAX, ReplicaConfig
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
)
from paxon.protocol.quorum import majority, quorum_floor
from paxon.protocol.ready import ChosenEntry, ReadIndex, Ready, SnapshotRequest
from paxon.protocol.records import (
    AcceptRecord,
    ChosenRecord,
    DurableState,
    PromiseRecord,
    SnapshotRecord,
)
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
    ignored_bad_ballot: int = 0
    ignored_out_of_bounds: int = 0
    ignored_unsolicited: int = 0
    # Elections not started because the next round would reach ROUND_END.
    elections_blocked_round_end: int = 0


class _Refusal(enum.Enum):
    """Why a message was refused; the value names its ``ReplicaCounters`` field."""

    MISADDRESSED = "ignored_misaddressed"
    NON_MEMBER = "ignored_non_member"
    BAD_BALLOT = "ignored_bad_ballot"
    OUT_OF_BOUNDS = "ignored_out_of_bounds"
    UNSOLICITED = "ignored_unsolicited"
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
        members: Iterable[NodeId],
        *,
        rng: RandomSource,
        now: float = 0.0,
        config: ReplicaConfig | None = None,
        durable: DurableState | None = None,
    ) -> None:
        self.node_id = node_id
        self.members: tuple[NodeId, ...] = tuple(sorted(set(members)))
        self._member_set = frozenset(self.members)
        if node_id not in self.members:
            raise ValueError(  # sim: unreachable: argument check; the runtime passes its own id
                f"node {node_id} is not among the members {self.members}"
            )
        self.quorum = majority(len(self.members))
        self.config = config or ReplicaConfig()
        self._rng = rng
        self._now = now
        self._ready = Ready()

        durable = durable or DurableState()
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
        self._runs: list[tuple[Slot, Ballot]] = []  # (first slot, ballot) per run
        # A ChosenRecord is written after the AcceptRecord of every slot below
        # it (_advance_chosen), and recovery keeps a prefix of the log, so no
        # recovered slot below slot_chosen lacks its entry.
        for slot in range(durable.log_start, durable.slot_chosen):
            if slot not in self._log:  # sim: one-way: chosen slots were accepted first
                break
            self._log[slot].chosen = True
        self._learn_requested_at = float("-inf")
        # Peers asked for a Learn that has not come yet: only they may send one.
        self._learn_pending: set[NodeId] = set()
        self._refused: dict[_Refusal, int] = dict.fromkeys(_Refusal, 0)
        # Who leads, as far as this replica knows.
        self.role = Role.FOLLOWER
        self.leader_id: NodeId | None = None
        self._leader_seen_at = float("-inf")
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
        self._catch_up_to = 0  # while PREPARING: the highest log_start past slot_from
        self._proposals: dict[Slot, _Proposal] = {}
        self._queue: deque[Command] = deque()
        self._peer_seen_at: dict[NodeId, float] = {}
        self._peer_slot_chosen: dict[NodeId, Slot] = {}
        self._heartbeat_due = 0.0
        self._leader_since = 0.0
        # Read index.
        self._read_round = 0
        self._peer_read_round: dict[NodeId, int] = {}
        self._reads: deque[_PendingRead] = deque()
        # Recovered chosen entries are handed out by the first call's Ready.
        self._advance_chosen(persist=False)

    # ------------------------------------------------------------------ public

    @property
    def leader_hint(self) -> NodeId | None:
        return self.node_id if self.role is Role.LEADER else self.leader_id

    @property
    def now(self) -> float:
        return self._now

    def step(self, message: Message) -> Ready:
        """Handle one message from a peer (or from this replica itself).

        Never raises on what a peer sends: a message outside the trust bounds
        (module docstring) is ignored and counted in ``counters``.
        """
        refusal = self._refusal(message)
        if refusal is not None:
            self._refuse(refusal)
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
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_hint)
        commands = tuple(commands)
        if len(self._queue) + len(commands) > self.config.queue_max_commands:
            raise Busy(f"proposal queue full ({self.config.queue_max_commands} commands)")
        self._queue.extend(commands)
        self._flush_queue()
        return self._take_ready()

    def read_index(self, read_id: int) -> Ready:
        """Start a read-index confirmation; the answer comes as a ``ReadIndex``."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_hint)
        self._read_round += 1
        self._reads.append(_PendingRead(self._read_round, read_id, self.slot_next))
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

    def install_snapshot(self, slot: Slot) -> Ready:
        """The runtime restored a snapshot covering every slot below ``slot``."""
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

    @property
    def counters(self) -> ReplicaCounters:
        return ReplicaCounters(**{refusal.value: count for refusal, count in self._refused.items()})

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
        if not full:
            return
        for slot in range(self.log_start, self.slot_chosen):
            assert self._log[slot].chosen, f"slot {slot} below slot_chosen is not chosen"
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
        granted = (
            message.ballot > self.ballot_promised
            and self.role is not Role.LEADER
            and not self._leader_is_live()
        )
        self._send(ProbeReply(self.node_id, message.src, message.ballot, granted))

    def _on_probe_reply(self, message: ProbeReply) -> None:
        if self.role is not Role.PROBING or message.ballot != self.ballot_own:
            return
        if message.granted:
            self._grants.add(message.src)
            if len(self._grants) >= self.quorum:
                self._start_prepare()

    def _on_prepare(self, message: Prepare) -> None:
        self._see_round(message.ballot)
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
        if self.role is not Role.PREPARING or message.ballot != self.ballot_own:
            return
        slot_fill_end = self._slot_prepared + 2 * self.config.slots_ahead_max
        if message.slot_from != self._slot_prepared or (
            message.entries and message.entries[-1].slot >= slot_fill_end
        ):
            # Leading on it would mean filling slots a peer named, without bound.
            # Not counting it toward the quorum is as safe as losing it.
            self._refuse(_Refusal.OUT_OF_BOUNDS)
            return
        self._promises[message.src] = message
        if message.log_start > self._slot_prepared:
            # The compacted-log rule: this acceptor cannot report the slots below
            # its log_start, so its promise does not count; learn them from it,
            # and prepare again once caught up (_prepare_again_if_caught_up).
            self._catch_up_to = max(self._catch_up_to, message.log_start)
            self._request_learn(message.src)
        if self._complete_promises() >= self.quorum:
            self._become_leader()

    def _complete_promises(self) -> int:
        """Promises that report every slot from our ``slot_from``: a Phase 1 quorum."""
        slot_from = self._slot_prepared
        return sum(1 for promise in self._promises.values() if promise.log_start <= slot_from)

    def _prepare_again_if_caught_up(self) -> None:
        """A candidate that learned past an acceptor's log_start prepares again at
        once, from its new slot_from, instead of waiting out a timeout."""
        if self.role is Role.PREPARING and 0 < self._catch_up_to <= self.slot_chosen:
            self._start_prepare()

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
        if len(proposal.votes) >= self.quorum:
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
            self._resolve_reads()

    def _on_learn_request(self, message: LearnRequest) -> None:
        if message.slot_from > self.slot_chosen + self.config.slots_ahead_max:
            self._refuse(_Refusal.OUT_OF_BOUNDS)
            return
        if message.slot_from < self.log_start:
            self._ready.snapshot_requests.append(SnapshotRequest(message.src, message.slot_from))
            return
        slot_end = min(self.slot_chosen, message.slot_from + self.config.learn_max_entries)
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
        ballot = self._next_ballot()
        # No ballot is left only at round 2**63 - 1: refused jumps bound a round
        # to 2**32 above the rounds known, and honest rounds climb by one.
        if ballot is None:  # sim: one-way: rounds never near 2**63
            self._refuse(_Refusal.ROUND_END)
            self._reset_election_timer()
            return
        self.role = Role.PROBING
        self.ballot_own = ballot
        self._see_round(self.ballot_own)  # a retry probes with a fresh ballot
        self._grants = {self.node_id}
        self._reset_election_timer()
        for peer in self._peers():
            self._send(Probe(self.node_id, peer, self.ballot_own))
        # Only a one-member cluster grants itself a quorum; the swarm draws 3 to
        # 7 members (test_a_single_node_cluster_chooses_after_its_own_persist).
        if len(self._grants) >= self.quorum:  # sim: one-way: one-member clusters only
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
        self._promises = {}
        self._catch_up_to = 0
        self._reset_election_timer()
        slot_from = self._slot_prepared = self.slot_chosen
        # Our own promise goes first and is persisted before any Prepare leaves,
        # so this ballot is durable before anyone can hear of it.
        self._on_prepare(Prepare(self.node_id, self.node_id, self.ballot_own, slot_from))
        for peer in self._peers():
            self._send_after_persist(Prepare(self.node_id, peer, self.ballot_own, slot_from))

    def _become_leader(self) -> None:
        slot_from = self._slot_prepared  # every promise counted is for this slot_from
        # Lead on the promises that report every slot from slot_from, a quorum
        # of them (_on_promise); the others' slots below their log_start were
        # compacted away and could not be re-proposed from them.
        self._promises = {
            src: promise
            for src, promise in self._promises.items()
            if promise.log_start <= slot_from
        }
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
        reproposals = self._values_to_repropose(slot_from)
        self.slot_next = max([self.slot_chosen, *(slot + 1 for slot in reproposals)])
        for slot, value in sorted(reproposals.items()):
            if slot >= self.slot_chosen and not self._is_chosen(slot):
                self._propose_slot(slot, value)
        self._broadcast_heartbeat()
        self._flush_queue()

    def _step_down(self, *, preempted: bool) -> None:
        was_leader = self.role is Role.LEADER
        self.role = Role.FOLLOWER
        if was_leader:
            self.leader_id = None
        for read in self._reads:
            self._ready.reads.append(ReadIndex(read.read_id, None))
        self._reads.clear()
        self._proposals.clear()
        self._queue.clear()
        self._grants = set()
        self._promises = {}
        if preempted:
            self._backoff = min(
                self._backoff * self.config.backoff_factor, self.config.backoff_max_factor
            )
        self._reset_election_timer()

    # ------------------------------------------------------------- proposer

    def _values_to_repropose(self, slot_from: Slot) -> dict[Slot, Value]:
        """Phase 1's rule: per slot, the value accepted under the highest ballot.

        Every slot from ``slot_from`` up to the highest one any promise reports
        gets a value; a slot no promise mentions is a hole and gets a no-op.
        """
        best: dict[Slot, Entry] = {}
        for promise in self._promises.values():
            for entry in promise.entries:
                current = best.get(entry.slot)
                if current is None or entry.ballot > current.ballot:
                    best[entry.slot] = entry
        if not best:
            return {}
        return {
            slot: self._choose_reproposal(best[slot]) if slot in best else NOOP
            for slot in range(slot_from, max(best) + 1)
        }

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
        if self.role is not Role.LEADER:
            return
        window = self.config.pipeline_window_slots
        while self._queue and self.slot_next - self.slot_chosen < window:
            batch = self._take_batch()
            slot = self.slot_next
            self.slot_next += 1
            self._propose_slot(slot, Value(batch))

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
        heard = 1 + sum(1 for seen in self._peer_seen_at.values() if seen >= horizon)
        if heard < self.quorum and self._leader_since <= horizon:
            self._step_down(preempted=False)
            return
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
        for peer in self._peers():
            self._send(
                Heartbeat(
                    self.node_id, peer, self.ballot_own, self._prefix_for(peer), self._read_round
                )
            )

    def _resolve_reads(self) -> None:
        rounds = [self._read_round, *self._peer_read_round.values()]
        confirmed = quorum_floor(rounds, self.quorum)
        while self._reads and self._reads[0].read_round <= confirmed:
            read = self._reads.popleft()
            self._ready.reads.append(ReadIndex(read.read_id, read.slot))

    def _note_peer(self, peer: NodeId, slot_chosen: Slot) -> None:
        if peer == self.node_id:
            return  # its own vote: check quorum counts the leader once (_tick_leader)
        self._peer_seen_at[peer] = self._now
        self._peer_slot_chosen[peer] = slot_chosen

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
            self._leader_seen_at = self._now
            self._backoff = 1.0
            self._reset_election_timer()

    # -------------------------------------------------------------- learner

    def _learn_prefix(self, prefix: ChosenPrefix, source: NodeId) -> None:
        """Mark chosen every slot whose entry matches the ballot it was chosen under."""
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
                if held is None or held.ballot != run.ballot:
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
        while True:
            held = self._log.get(self.slot_chosen)
            if held is None or not held.chosen:
                break
            if not self._runs or self._runs[-1][1] != held.ballot:
                self._runs.append((self.slot_chosen, held.ballot))
            self.slot_chosen += 1
        if persist and self.slot_chosen > start:
            self._persist(ChosenRecord(self.slot_chosen))
        self._apply_chosen()

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
            return _Refusal.NON_MEMBER
        # (ballot, the node that must own it): a ballot is used by one node only.
        owned: tuple[Ballot, NodeId] | None
        match message:
            case Probe() | Prepare() | Accept() | Heartbeat():
                owned = (message.ballot, message.src)
            case ProbeReply() | Promise() | Nack() | Accepted() | HeartbeatReply():
                owned = (message.ballot, self.node_id)  # a reply carries our ballot
            case LearnRequest() | Learn():
                owned = None
            case _:
                assert_never(message)
        if owned is not None and owned[0].node_id != owned[1]:
            return _Refusal.BAD_BALLOT
        round_known = max(self._round_seen, self.ballot_promised.round)
        round_max = min(ROUND_END - 1, round_known + ROUND_JUMP_MAX)
        for ballot in _ballots_of(message):
            # A member's ballot (or the zero ballot), a round the wire carries,
            # and no absurd jump above every round this replica knows.
            if ballot.round > round_max or (
                ballot.node_id not in self._member_set and ballot.round != 0
            ):
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
        return [member for member in self.members if member != self.node_id]

    def _next_ballot(self) -> Ballot | None:
        """A fresh ballot above every round known, or None once rounds run out."""
        round_next = max(self._round_seen, self.ballot_promised.round) + 1
        return Ballot(round_next, self.node_id) if round_next < ROUND_END else None

    def _see_round(self, ballot: Ballot) -> None:
        self._round_seen = max(self._round_seen, ballot.round)

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
        case Probe() | ProbeReply() | Prepare() | Accepted() | HeartbeatReply():
            return [message.ballot]
        case Promise():
            return [message.ballot, *(entry.ballot for entry in message.entries)]
        case Nack():
            return [message.ballot, message.ballot_promised]
        case Accept() | Heartbeat():
            return [message.ballot, *(run.ballot for run in message.chosen.runs)]
        case Learn():
            return [entry.ballot for entry in message.entries]
        case LearnRequest():
            return []
        case _:
            assert_never(message)
