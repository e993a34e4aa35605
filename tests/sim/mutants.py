"""Deliberately broken replicas, one rule broken in each: the checkers must catch them.

These live in the tests only. Each overrides one small hook of ``Replica`` (or,
for the runtime glue, of ``SimCluster``, for the node runtime, of ``Node``, and
for leases, of ``KvStore``: built per node by a ``StoreFactory``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from paxon.errors import Busy
from paxon.kv.model import LeaseKeepAlive, LeaseKeepAliveResult
from paxon.kv.store import KvStore
from paxon.node.node import Node
from paxon.protocol.membership import (
    ConfigHistory,
    ConfigState,
    Configuration,
    RemovedState,
    change_in,
)
from paxon.protocol.messages import (
    Accept,
    Accepted,
    ChosenPrefix,
    Learn,
    Message,
    Prepare,
    Promise,
    TimeoutNow,
)
from paxon.protocol.ready import Ready
from paxon.protocol.records import ChosenRecord
from paxon.protocol.replica import Replica, Role, _Refusal
from paxon.protocol.types import NOOP, Ballot, Entry, NodeId, Slot, Value
from paxon.sim.cluster import SimCluster, _ClientReply, _SimNode
from paxon.sim.runtime import RuntimeCluster, StoreFactory


class AcceptsLowerBallot(Replica):
    """Accepts a value whatever it promised."""

    def _may_accept(self, ballot: Ballot) -> bool:
        return True


class SkipsReproposal(Replica):
    """A new leader fills every slot with a no-op instead of the highest-ballot value."""

    def _choose_reproposal(self, highest: Entry) -> Value:
        return NOOP


class SpeaksBeforePersist(Replica):
    """Sends Accepted before its accept record is durable."""

    def _reply_accepted(self, reply: Accepted) -> None:
        self._send(reply)


class AppliesBeforeChosen(Replica):
    """A follower treats a value as chosen the moment it accepts it."""

    def _on_accept(self, message: Accept) -> None:
        super()._on_accept(message)
        if message.src == self.node_id:
            return
        held = self._log.get(message.slot)
        if held is not None and held.ballot == message.ballot:
            held.chosen = True
            self._advance_chosen()


class TrustsStrangers(Replica):
    """Takes messages from nodes that are not members."""

    def _refusal(self, message: Message) -> _Refusal | None:
        if message.dst == self.node_id and message.src not in self.members:
            return None
        return super()._refusal(message)


class TrustsAnyRound(Replica):
    """Takes any ballot: rounds past the wire, absurd jumps, other nodes' ballots."""

    def _refusal(self, message: Message) -> _Refusal | None:
        refusal = super()._refusal(message)
        return None if refusal is _Refusal.BAD_BALLOT else refusal


class IgnoresSlotWindow(Replica):
    """Accepts a peer's value at any slot, however far past its chosen prefix."""

    def _refusal(self, message: Message) -> _Refusal | None:
        refusal = super()._refusal(message)
        return None if refusal is _Refusal.OUT_OF_BOUNDS else refusal


MUTANTS = {
    "accepts-lower-ballot": AcceptsLowerBallot,
    "skips-reproposal": SkipsReproposal,
    "speaks-before-persist": SpeaksBeforePersist,
    "applies-before-chosen": AppliesBeforeChosen,
    "trusts-strangers": TrustsStrangers,
    "trusts-any-round": TrustsAnyRound,
    "ignores-slot-window": IgnoresSlotWindow,
}


# ------------------------------------------------------------------------------
# Mutants for the properties (paxon.sim.properties): each breaks one rule, and the
# property that states the rule must name it, not only a downstream failure.


class CandidateSpeaksEarly(Replica):
    """Sends Prepare before its own promise of the ballot is durable."""

    def _send_after_persist(self, message: Message) -> None:
        if isinstance(message, Prepare):
            self._send(message)
        else:
            super()._send_after_persist(message)


class PromisesBeforePersist(Replica):
    """Sends Promise (its own included) before the promise is durable."""

    def _send_after_persist(self, message: Message) -> None:
        if isinstance(message, Promise):
            self._send(message)
        else:
            super()._send_after_persist(message)


class CountsVotesAcrossBallots(Replica):
    """A leader counts a vote cast under an earlier ballot of its own toward its current one.

    (Only its own ballots: the edge refuses a reply under another node's ballot.)
    """

    def _on_accepted(self, message: Accepted) -> None:
        if self.role is Role.LEADER and message.ballot.node_id == self.node_id:
            message = dataclasses.replace(message, ballot=self.ballot_own)
        super()._on_accepted(message)


class _ShortQuorums(Replica):
    """Counts majorities one short while ``short`` is set (by ``_one_short``)."""

    short = False

    def _quorum_size(self, config: Configuration) -> int:
        return super()._quorum_size(config) - (1 if self.short else 0)


@contextmanager
def _one_short(replica: _ShortQuorums) -> Iterator[None]:
    replica.short = True
    try:
        yield
    finally:
        replica.short = False


class ChoosesWithoutMajority(_ShortQuorums):
    """A leader marks a slot chosen one vote short of a majority."""

    def _on_accepted(self, message: Accepted) -> None:
        with _one_short(self):
            super()._on_accepted(message)


class LeadsWithoutMajority(_ShortQuorums):
    """A candidate leads one promise short of a majority."""

    def _on_promise(self, message: Promise) -> None:
        with _one_short(self):
            super()._on_promise(message)


class ConfirmsReadsWithoutMajority(_ShortQuorums):
    """A leader confirms a read-index round one answer short of a majority, and
    its serving bound (``Replica.serving``, which ``read_index`` checks first and
    the runtime watches) counts one short too: without that, a deposed leader
    in a minority fails its readers over to other nodes after
    ``election_timeout_min_s`` and the hazard shrinks to a slow clock's sliver."""

    @property
    def serving(self) -> bool:
        with _one_short(self):
            return bool(Replica.serving.fget(self))  # type: ignore[attr-defined]

    def _resolve_reads(self) -> None:
        with _one_short(self):
            super()._resolve_reads()


class PreparesWithoutProbe(Replica):
    """Skips the probe: a timed-out follower persists a ballot and prepares at once."""

    def _start_probe(self) -> None:
        ballot = self._next_ballot()
        if ballot is None:
            super()._start_probe()
            return
        self.role = Role.PROBING
        self.ballot_own = ballot
        self._see_round(ballot)
        self._start_prepare()


class ReleasesOneFsyncEarly(SimCluster):
    """Runtime glue: after-persist messages wait only for the earlier batches' records."""

    def _perform(self, node: _SimNode, ready: Ready) -> None:
        if ready.records and ready.messages_after_persist:
            lsn_before = node.disk.lsn_appended
            early, ready.messages_after_persist = ready.messages_after_persist, []
            if node.disk.lsn_durable >= lsn_before:
                for message in early:
                    self._send(node.node_id, message)
            else:
                node.waiting.append((lsn_before, early))
        super()._perform(node, ready)


class ServesReadsBeforeApplied(SimCluster):
    """Runtime glue: a confirmed read is served at once, applied or not."""

    def _serve_reads(self, node: _SimNode) -> None:
        applied = node.replica.slot_applied
        for slot, client, op_id, key in node.reads_applying:
            self.properties.on_read_answered(node.node_id, slot, applied, self.time)
            self._send_client(node.node_id, client, _ClientReply(op_id, node.machine.read(key)))
        node.reads_applying = []


PROPERTY_MUTANTS = {
    "candidate-speaks-early": CandidateSpeaksEarly,
    "promises-before-persist": PromisesBeforePersist,
    "counts-votes-across-ballots": CountsVotesAcrossBallots,
    "chooses-without-majority": ChoosesWithoutMajority,
    "leads-without-majority": LeadsWithoutMajority,
    "confirms-reads-without-majority": ConfirmsReadsWithoutMajority,
    "prepares-without-probe": PreparesWithoutProbe,
}

# ------------------------------------------------------------------------------
# Membership mutants: each breaks one rule of docs/protocol.md, "Membership", and
# the property stating that rule must name it.


class _HistoryAtOnce(ConfigHistory):
    """Takes a change effect at the next slot, not alpha slots after it is chosen."""

    def chosen(self, slot: Slot, value: Value) -> Configuration | None:
        change = change_in(value)
        newest = self.newest
        if change is None or change.epoch != newest.epoch + 1 or change.alpha != newest.alpha:
            return None
        self._effects.append(slot + 1)
        self._configs.append(change)
        return change


class TakesEffectAtOnce(Replica):
    """A change chosen at slot i decides slot i + 1 on, not i + alpha."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._history = _HistoryAtOnce(self._history.state(self.log_start))


class CountsLearners(Replica):
    """Counts a learner's vote (and its word) toward a majority of the voters."""

    def _has_quorum(self, config: Configuration, ids: Iterable[NodeId]) -> bool:
        return len(config.ids.intersection(ids)) >= self._quorum_size(config)


class CountsRemovedVoters(Replica):
    """Counts the vote of a member removed from the voters (a voter of any
    configuration it has seen) toward a majority of the voters in effect."""

    def _has_quorum(self, config: Configuration, ids: Iterable[NodeId]) -> bool:
        seen = self.__dict__.setdefault("_ever_voters", set())
        seen.update(config.voters)
        return len(seen.intersection(ids)) >= self._quorum_size(config)


class IgnoresNonVoters(Replica):
    """Stands whatever its part, and takes a Probe or Prepare from any node it
    knows: a learner, or a voter whose removal is chosen."""

    def _may_stand(self) -> bool:
        return True

    def _voters_ahead(self) -> frozenset[NodeId]:
        return frozenset(self._member_set)


class SkipsPhaseOnePerConfiguration(Replica):
    """A leader treats every configuration as prepared: it never asks a later
    configuration's voters to promise before it proposes where they decide."""

    def _prepared(self, slot: Slot) -> bool:
        return self.role is Role.LEADER or super()._prepared(slot)


class AcceptsWipedMember(Node):
    """Never hands the incarnations its configuration binds to the transport:
    a member wiped and started again on an empty disk (same id, new
    incarnation) is accepted back, with every promise and vote forgotten."""

    def _follow_incarnations(self) -> None:
        self._bindings_from = (self._replica.configuration, self._replica.configuration_newest)


class ForgetsVotesAboveSnapshot(Replica):
    """Installing a snapshot also drops the accepted entries above its slot
    (mutation s13 #23): votes it acknowledged stay on disk, but its promises
    no longer report them until it restarts."""

    def install_snapshot(self, slot: Slot, configs: Any = (), removed: Any = ()) -> Ready:
        if slot > self.slot_chosen:
            for above in [s for s in self._log if s > slot]:
                del self._log[above]
        return super().install_snapshot(slot, configs, removed)


class RewritesTheChosenMark(Replica):
    """At each start it writes its recovered chosen mark again (mutation s13
    #17, ``_advance_chosen(persist=True)`` in the constructor): a redundant
    record and fsync, which no safety check sees."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._persist(ChosenRecord(self.slot_chosen))


class NeverHandsOver(Replica):
    """A transfer never sends ``TimeoutNow`` (mutation s13 #37, the retry test
    reversed): the leader serves on once the transfer's time is up."""

    def _try_transfer(self) -> None:
        if self._now > self._transfer_until or self._transfer_to not in self._transfer_targets():
            self._transfer_to = None


class StopsLearningAtAChosenSlot(Replica):
    """The walk of a run stops at a slot already known chosen under another
    ballot (the core before swarm seed 30 showed it): the slots after it wait
    for a ``Learn`` round trip."""

    def _learn_prefix(self, prefix: ChosenPrefix, source: NodeId) -> None:
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


class StopsAskingAtAPromiser(Replica):
    """Phase 1 for a new configuration stops at the first voter that already
    promised (mutation s13 #33, ``continue`` made ``break``): voters with
    higher ids are never asked, and the change can stall."""

    def _prepare_configuration(self, slot: Slot) -> None:
        if self._now - self._prepare_sent_at < self.config.accept_retry_s:
            return
        self._prepare_sent_at = self._now
        config = self._history.at(slot)
        start = max(self._history.effect_of(slot), self._slot_prepared)
        for voter in sorted(config.voters - {self.node_id}):
            promise = self._promises.get(voter)
            if promise is not None and self._covers(promise, start):
                break
            self._prepared_from[voter] = start
            self._send(Prepare(self.node_id, voter, self.ballot_own, start))


class RetriesAtOnce(Replica):
    """A new proposal counts as sent long ago, so the next tick sends its
    Accepts again at once (as mutants that resend on every tick do: a retry
    storm that costs every follower a write)."""

    def _propose_slot(self, slot: Slot, value: Value) -> None:
        super()._propose_slot(slot, value)
        self._proposals[slot].sent_at = float("-inf")


class KeepsStandingAtAnInstall(Replica):
    """A leader or candidate that installs a snapshot does not step down (the
    step-down of ``install_snapshot`` left out)."""

    _installing = False

    def install_snapshot(
        self, slot: Slot, configs: ConfigState = (), removed: RemovedState = ()
    ) -> Ready:
        self._installing = True
        try:
            return super().install_snapshot(slot, configs, removed)
        finally:
            self._installing = False

    def _step_down(self, *, preempted: bool) -> None:
        if not self._installing:
            super()._step_down(preempted=preempted)


class NeverAsksANewConfiguration(Replica):
    """A leader never asks the voters of a configuration its promises do not
    prepare (the Prepare of ``_prepare_configuration`` left out): it proposes
    nothing from that configuration's first slot until it is deposed."""

    def _prepare_configuration(self, slot: Slot) -> None:
        return


class ReportsOnlyItsChosenPrefix(Replica):
    """Every Promise says the slots below the acceptor's chosen prefix cannot be
    reported, as to a candidate far behind (mutation s14 row 16's effect): a
    candidate a few slots behind learns them by a round trip before it leads."""

    def _on_prepare(self, message: Prepare) -> None:
        log_start, self.log_start = self.log_start, self.slot_chosen
        try:
            super()._on_prepare(message)
        finally:
            self.log_start = log_start


class AsksAgainAfterAnyLearn(Replica):
    """Every ``Learn`` is answered with another ``LearnRequest`` at once, whether
    it taught anything or came whole (mutation s14 row 24's effect, widened):
    the learn pacing dropped, a round trip for nothing each time."""

    def _on_learn(self, message: Learn) -> None:
        super()._on_learn(message)
        self._learn_requested_at = float("-inf")
        self._request_learn(message.src)


class IgnoresStrangersAhead(Replica):
    """A node behind a leader it does not know never asks a member it knows for
    the log (mutation s14 row 23's effect on the lowest id, which asked only
    itself): it stays behind until a snapshot or a known leader reaches it."""

    def _behind_a_stranger(self, message: Message) -> None:
        return


class HandsToTheFurthest(Replica):
    """A transfer without a target goes to the voter furthest along, heard from
    lately or not (mutation s14 row 14's effect): one down since may be picked,
    and the cluster waits out the transfer, then an election."""

    def transfer_leadership(self, target: NodeId | None = None) -> Ready:
        if target is None and self.role is Role.LEADER and self._transfer_targets():
            target = max(
                self._transfer_targets(),
                key=lambda peer: (self._peer_slot_chosen.get(peer, -1), -peer),
            )
        return super().transfer_leadership(target)


class SendsNoRuns(Replica):
    """A leader's chosen prefix names no ballots (mutation s13 #50's effect):
    followers learn every chosen slot by a ``Learn`` round trip."""

    def _prefix_for(self, peer: NodeId) -> ChosenPrefix:
        return ChosenPrefix(self.slot_chosen)


class ServesPastTheBound(Replica):
    """A leader serves however long it has heard from no majority (the serving
    bound dropped): it takes commands it cannot get chosen until it steps down."""

    @property
    def serving(self) -> bool:
        return self.role is Role.LEADER


class RefusesBeforeTheBound(Replica):
    """A leader counts a peer heard only within half of ``election_timeout_min_s``:
    it refuses with ``NoQuorum`` while a majority still answers in time."""

    @property
    def serving(self) -> bool:
        return _within_half_the_bound(self, Replica.serving.fget)  # type: ignore[attr-defined]


class ForwardsPastTheBound(Replica):
    """A follower calls its leader live however long it has not heard it: the
    runtime would forward calls to a leader it cannot reach."""

    @property
    def leader_live(self) -> bool:
        return self.role is Role.LEADER or self.leader_hint is not None


class StopsForwardingEarly(Replica):
    """A follower calls its leader unreachable once it has not heard it for half
    of ``election_timeout_min_s``: it would refuse calls it could forward."""

    @property
    def leader_live(self) -> bool:
        return _within_half_the_bound(self, Replica.leader_live.fget)  # type: ignore[attr-defined]


def _within_half_the_bound(replica: Replica, judge: Callable[[Replica], bool]) -> bool:
    """``judge(replica)`` with ``election_timeout_min_s`` halved."""
    config = replica.config
    replica.config = dataclasses.replace(
        config, election_timeout_min_s=config.election_timeout_min_s / 2
    )
    try:
        return judge(replica)
    finally:
        replica.config = config


MEMBERSHIP_MUTANTS = {
    "takes-effect-at-once": TakesEffectAtOnce,
    "counts-learners": CountsLearners,
    "counts-removed-voters": CountsRemovedVoters,
    "ignores-non-voters": IgnoresNonVoters,
    "skips-phase-one-per-configuration": SkipsPhaseOnePerConfiguration,
}

GLUE_MUTANTS = {
    "releases-one-fsync-early": ReleasesOneFsyncEarly,
    "serves-reads-before-applied": ServesReadsBeforeApplied,
}


# ---------------------------------------------------------------- leases


OWN_CLOCK_AHEAD_MS = 500
"""How far ahead of its host's wall clock ``ExpiresByOwnClock`` counts."""


class ExpiresByOwnClock(KvStore):
    """Ends leases by its own host's clock (plus ``OWN_CLOCK_AHEAD_MS``) when a
    clock entry applies, while grants and keep-alives still count from the
    log's time: this replica ends leases at other commands than the rest, and
    early whenever its clock reads ahead of the log's."""

    def __init__(self, own_ms: Callable[[], int]) -> None:
        super().__init__()
        self._own_ms = own_ms

    def on_log_time(self, log_time_ms: int) -> None:
        super().on_log_time(log_time_ms)
        for lease_id in self.leases.expired(self._own_ms() + OWN_CLOCK_AHEAD_MS):
            self._end_lease(lease_id)


def expires_by_own_clock(cluster: RuntimeCluster, node_id: int) -> KvStore:
    """Node 1 runs ``ExpiresByOwnClock``; the others are correct."""
    if node_id != 1:
        return KvStore()
    return ExpiresByOwnClock(lambda: cluster.wall_ms(node_id))


class NoRenewalOnNewLeader(KvStore):
    """Takes a new leader's first stamp (``LEADER_MAGIC``) as a plain one: no
    lease is renewed, so a new leader whose clock is ahead expires them early."""

    def on_leader_change(self, log_time_ms: int) -> None:
        pass


class ResetsTtlOnNewLeader(KvStore):
    """A new leader's first stamp sets every lease's remaining time to zero
    instead of renewing it: every lease held across a leader change ends at
    once (the issue's "a new leader that resets remaining TTL to zero")."""

    def on_leader_change(self, log_time_ms: int) -> None:
        for lease_id in self.leases.expired(2**62):
            self._end_lease(lease_id)


class KeepAliveDoesNotExtend(KvStore):
    """Answers a keep-alive as done but leaves the lease's expiry where it was."""

    def _on_lease(self, command: Any, owner: str | None) -> Any:
        if type(command) is LeaseKeepAlive:
            lease = self.leases.get(command.lease)
            return LeaseKeepAliveResult(lease.id, lease.expiry_ms - self.log_time_ms)
        return super()._on_lease(command, owner)


class NeverExpires(KvStore):
    """Moves log time but ends no lease by it (only revoke ends one): caught by
    the liveness check (lease-late-expiry), not by the early-expiry one."""

    def on_log_time(self, log_time_ms: int) -> None:
        self._log_time_ms = max(self._log_time_ms, log_time_ms)


LEASE_MUTANTS: dict[str, StoreFactory] = {
    "expires-by-own-clock": expires_by_own_clock,
    "no-renewal-on-new-leader": lambda _cluster, _node_id: NoRenewalOnNewLeader(),
    "keep-alive-does-not-extend": lambda _cluster, _node_id: KeepAliveDoesNotExtend(),
    "resets-ttl-on-new-leader": lambda _cluster, _node_id: ResetsTtlOnNewLeader(),
}


# ---------------------------------------------------------------- locks and watches

NO_COORDINATION: dict[str, Any] = {"lease_clients": 0, "lock_clients": 0, "watch_clients": 0}
"""``SimConfig`` settings for a seed picked before the lease holders, the lock
contenders and the watchers joined the workload: their traffic moves every
later event of a seed, so without them it replays as it was found."""


class GrantsWithoutCheckingLower(KvStore):
    """Grants a lock to its newest waiter, not checking the waiters below it:
    ``LockAcquire`` answers ``held`` to every newcomer and ``LockState`` names
    it, while a lower-revision waiter key still lives."""

    def _lock_holder(self, name: str) -> Any:
        if self.lock_delays.remaining_ms(name, self.log_time_ms):
            return None
        return max(self._lock_waiters(name), key=lambda kv: kv.create_revision, default=None)


class IgnoresFenceGuard(KvStore):
    """Takes every ``create_revision`` compare as holding: a stale holder's fenced
    write goes through after the lock went on (fencing-order, not lock-grant-order)."""

    def _holds(self, condition: Any) -> bool:
        return condition.target == "create_revision" or super()._holds(condition)


class ResumesOneLate(KvStore):
    """Answers ``Events`` from one revision past the one asked (a resumed watch
    skips the change at the revision it resumes from)."""

    def _events(self, query: Any) -> Any:
        if not query.after_key:
            query = dataclasses.replace(query, from_revision=query.from_revision + 1)
        return super()._events(query)


class CutsPastTheEntry(KvStore):
    """The leader's retention entry cuts one revision more than it names: a read
    (or a watch) exactly ``--history-revisions`` back is refused."""

    def compact_history(self, revision: int) -> bool:
        return super().compact_history(min(revision + 1, self.revision))


COORDINATION_MUTANTS: dict[str, tuple[StoreFactory, str]] = {
    "grants-without-checking-lower": (
        lambda _cluster, _node_id: GrantsWithoutCheckingLower(),
        "lock-grant-order",
    ),
    "ignores-fence-guard": (lambda _cluster, _node_id: IgnoresFenceGuard(), "fencing-order"),
    "resumes-one-late": (lambda _cluster, _node_id: ResumesOneLate(), "watch-exactly-once"),
}
"""Each planted store bug, with the rule that must name it."""


class IgnoresTimeoutNow(Replica):
    """A follower handed leadership (``TimeoutNow``) does not stand: the
    transfer waits out an election timeout."""

    def _on_timeout_now(self, message: TimeoutNow) -> None:
        return


class WaitsWhenItMayNotStand(Replica):
    """A learner or removed node whose election timer runs out only restarts it:
    it never asks a member to catch it up (the ask of ``_start_probe`` left out)."""

    def _start_probe(self) -> None:
        if not self._may_stand():
            self._reset_election_timer()
            return
        super()._start_probe()


class DropsAStaleGrantedProbe(Replica):
    """A prober granted a majority whose probed ballot went stale meanwhile steps
    down, backed off, instead of preparing under a fresh ballot."""

    def _start_prepare(self) -> None:
        probed = self.ballot_own
        if self.role is Role.PROBING and not (
            probed > self.ballot_promised and probed.round >= self._round_seen
        ):
            self._step_down(preempted=True)
            return
        super()._start_prepare()


class BeatsOnEveryTick(Replica):
    """A leader broadcasts heartbeats on every tick, not once per
    ``heartbeat_interval_s``."""

    def _tick_leader(self) -> None:
        self._heartbeat_due = float("-inf")
        super()._tick_leader()


class RefusesEveryChange(Replica):
    """A leader answers every configuration change ``Busy``, none on its way."""

    def propose_configuration(self, configuration: Configuration) -> Ready:
        raise Busy("a configuration change is in progress; try again once it is in effect")


class HandsToItsOwnChoice(Replica):
    """``transfer_leadership(target)`` ignores the target named and hands to the
    voter it would pick with none named."""

    def transfer_leadership(self, target: NodeId | None = None) -> Ready:
        return super().transfer_leadership(None)


class PromisesThroughALease(Replica):
    """Under lease reads an acceptor keeps no leader's lease: it promises any
    candidate above its promise, while it leads or hears a live leader."""

    def _keeps_a_lease(self, candidate: NodeId, handover_from: Ballot | None) -> bool:
        return False


class RefusesForAStaleLease(Replica):
    """Under lease reads an acceptor keeps the lease of the leader it last
    followed however long ago it heard it (the liveness test left out)."""

    def _keeps_a_lease(self, candidate: NodeId, handover_from: Ballot | None) -> bool:
        if super()._keeps_a_lease(candidate, handover_from):
            return True
        if handover_from is not None and handover_from == self.ballot_promised:
            return False
        return (
            self.config.lease_reads
            and candidate not in (self.node_id, self.leader_id)
            and self.leader_id in self._voters_ahead()
        )


class KeepsCompactedSlots(Replica):
    """``compact`` moves ``log_start`` but forgets no entry below it: memory
    grows with the log (mutation s16 row 11)."""

    def compact(self, slot: Slot) -> None:
        kept = dict(self._log)
        super().compact(slot)
        self._log.update(kept)
