"""Properties: each rule of ``docs/protocol.md`` as a check, asserted on every event.

``SafetyChecker`` (``checkers.py``) judges outcomes: two values chosen at one
slot, an unchosen value applied. Those fire only once a broken rule has done
visible damage, which may need a rare schedule. ``PropertyChecker`` judges each
rule at the moment it is broken, from what a runtime reports:

    on_records_durable(node_id, records, time)   records just became durable, in log order
    on_crash(node_id, time)                      volatile state gone; durable state stays
    on_send(node_id, message, time)              a protocol message leaves (self-addressed too)
    on_read_answered(node_id, read_slot, slot_applied, time)
                                                 a read served with the machine at slot_applied
    on_read_requested(node_id, read_id, time)    optional: read_index(read_id) is called
    on_read_confirmed(node_id, read_id, slot, time)
                                                 optional: its ReadIndex answer (None: lost)
    on_configuration(node_id, slot_chosen, configuration, newest, time)
                                                 optional: the node's chosen prefix moved; it
                                                 holds these in effect and newest
    on_stopped_leading(node_id, time)            optional: a leader became candidate or follower
    on_votes_held(node_id, log_start, held, time)
                                                 optional: what a replica holds in memory now,
                                                 ``held(slot)`` -> (ballot, chosen) or None

Order matters where two events coincide: report a sync's records before the
messages it releases, and a message when it leaves, before anyone can receive
it. Messages a buggy member forges are not "sent" by a member: do not report
them.

It keeps, per node, what that node's disk holds (the durable promise, every
``(slot, ballot)`` it durably accepted, its current entry per slot, its chosen
and snapshot marks) and, for the cluster, what was proposed and voted: a slot is
*chosen* once a majority of the voters of ``C(s)``, the configuration deciding
it, have sent ``Accepted`` for one ballot there (counted when a vote leaves its
node, as ``SafetyChecker`` counts it). ``C(s)`` is read from the chosen log
(``paxon.sim.log_configs``): a change chosen at slot i takes effect at
i + alpha. Without changes every slot has the first configuration, and every
rule below reads as it did before membership.

The properties, by rule name (``Violation.rule``), with the rule of
``docs/protocol.md`` each one states:

- ``prepare-durable``: when a ``Prepare`` under ballot b leaves node n, n's disk
  already holds a promise of at least b. ("A ballot is made durable before
  anyone hears of it.")
- ``promise-durable``: when a ``Promise`` under b leaves n, n's disk holds a
  promise of at least b, and every entry it reports was durably accepted by n
  under that slot and ballot. ("It persists the promise ... before the
  ``Promise`` leaves.")
- ``vote-durable``: when ``Accepted(b, s)`` leaves n, n's disk holds a promise of
  at least b, and either n durably accepted (s, b), or s is chosen and n's disk
  shows it: s is below n's durable chosen or snapshot mark, or n's durable entry
  at s holds the chosen value. ("It persists ... the accepted entry before the
  ``Accepted`` leaves"; "An ``Accept`` for such a [chosen] slot gets an
  ``Accepted`` vote ... but no new record.")
- ``chosen-claim``: whatever a node says is chosen was chosen by a majority of
  the configuration. Every ``slot_chosen`` a message names (the chosen prefix
  of ``Accept`` and ``Heartbeat``, ``Promise``, ``Accepted``, ``HeartbeatReply``)
  and every durable ``ChosenRecord`` or ``SnapshotRecord``: every slot below it
  is chosen. Every
  ``BallotRun``: each of its slots is chosen, and the value its ballot proposed
  there is the chosen value. Every ``Learn`` entry (s, b, v): s is chosen with
  v, and b proposed v at s. ("Quorums are majorities"; "chosen at a majority of
  ``Accepted`` under its ballot"; "a ballot carries one value per slot, so the
  same ballot means the same value".) The run's ballot need not be the one the
  majority voted for: a learner that learns the value it holds "keeps the held
  ballot", and announces it later; the value is what must match.
- ``read-applied``: a read is answered only once the state machine has applied
  every slot below its read index. ("A read served once the state machine has
  applied every slot below ``slot_next`` is linearizable.")
- ``read-fresh``: a read index confirmed as slot k, for a read requested at
  time t, is above every slot chosen before t. ("When a majority ... has
  answered that round under the leader's ballot, no other leader can have
  chosen anything at the time the read started.") This is what a wrong read
  quorum breaks, whether or not a client ever observes a stale value.
- ``lead-quorum``: an ``Accept`` or ``Heartbeat`` under b leaves b's owner only
  after a majority of the voters of ``C(slot_from)`` have sent it a
  ``Promise(b)`` that reports every slot from its ``slot_from``
  (``log_start <= slot_from``, or at most the prefix the message claims
  chosen), ``slot_from`` that of its latest Phase 1
  ``Prepare`` (one sent before it led). (Phase 2 starts after Phase 1: "Only
  then does it take new commands"; and the compacted-log rule.)
- ``probe-quorum``: a ``Prepare`` leaves only after a majority of the voters of
  ``C(slot_from)`` (``slot_from`` of its first ``Prepare``), the candidate
  included, granted its latest ``Probe``, or after the leader handed it
  leadership (``TimeoutNow`` under a lower ballot). ("Only with a majority of
  grants does the candidate persist its ballot and send ``Prepare``"; and
  leadership transfer.)
- ``acceptor-monotone``: the ballots of the ``Promise`` and ``Accepted``
  messages a node sends never go down, across restarts. ("It promises b only
  if b >= ballot_promised ... It accepts under b only if b >= ballot_promised.")
  Holds because the runtime releases after-persist messages in log order.
- ``chosen-stable``: a node's disk never takes an accept record for a slot
  below its own durable chosen or snapshot mark. ("It never rewrites a slot it
  knows is chosen.")
- ``ballot-owner``: ``Probe``, ``Prepare``, ``Accept`` and ``Heartbeat`` leave a
  node only under its own ballots. ("Ballots are ``(round, node_id)`` ... no
  two nodes ever share one.")
- ``ballot-fresh``: a node never prepares a ballot below one it prepared
  before, nor, after a crash, one it prepared in an earlier life. ("A node
  restarted after a crash therefore always picks a round above any it used.")
- ``read-answer``: every ``read_index`` gets exactly one ``ReadIndex`` answer:
  none without a request or twice, and none left open when the leader stops
  leading (a crash excuses it). ("If leadership is lost first, the answer is
  ``ReadIndex(read_id, None)``.")
- ``recovery-fold``: a restart recovers a promise and a chosen mark at least
  the durable ones, and at each slot at or above its snapshot mark the last
  durable accept record there, or a later one. ("``recover(records)`` folds
  them in log order: ... the last accept record for a slot wins.")
- ``votes-held``: a replica's memory never forgets a vote its disk holds: at
  each slot from its ``log_start`` on where n's disk holds an accept record
  (s, b), its log holds s under b or a later ballot, or knows s chosen.
  (Votes are durable; an acceptor's answers come from memory, so a vote
  dropped there, say by a snapshot install, is missing from its promises
  until it restarts: mutation s13 #23.) Checked after each
  ``install_snapshot`` and every 1024th step (``ReplicaObserver``).
- ``chosen-advances``: the chosen mark is written when the prefix advances,
  and only then. Only then: a durable ``ChosenRecord`` of a node names a
  chosen prefix above every chosen or snapshot mark that node held in the
  same life (the mark it recovered included). When: a call that moves a
  node's chosen prefix hands out, in the same ``Ready``, a ``ChosenRecord``
  of the new prefix, or an installed snapshot's ``SnapshotRecord`` that
  reaches it (a mark never written is a prefix a restart must learn again:
  s18 #21). ("``ChosenRecord`` ... is written whenever the chosen prefix
  advances, and only when it advances past every mark the replica holds".)
  Judged on the runtime engine, which reports each recovery and each call.
- ``promise-raises``: a ``PromiseRecord`` is written only when it raises the
  node's promise: above the promise it held when the call began, and above
  every promise or vote handed out before it in the same ``Ready`` (an
  accept record raises the recovered promise too). A redundant one costs a
  write and an fsync, as a redundant chosen mark does. ("The promise is
  raised, and persisted, only by a ballot above it.")
- ``dashboard-truthful``: what the dashboard's log view shows of a replica
  (``recent_slots``) is what it holds: at most ``RECENT_SLOTS_MAX`` (64)
  consecutive slots, none below ``log_start``, fewer only when they start at
  ``log_start``, reaching the end of the chosen prefix, and ending at the last
  slot it holds within ``slots_ahead_max`` past it (or before ``slot_next``, if
  later); every slot below the prefix shown chosen; a slot shown with no
  ballot (a hole) shown not chosen, no no-op and no command; a slot shown
  chosen has the command count and no-op flag of the value chosen there;
  asked for fewer, the last that many of them. Checked every 64th call
  (``ReplicaObserver``), asking for twice the cap and for 0 to 3 slots in
  turn.
- ``self-vote``: the only messages a node sends itself are its own votes
  (``Promise``, ``Accepted``); its peers are the other members, so a heartbeat
  or a read round answered by itself would count it twice.

Membership (docs/protocol.md, "Membership: configurations in the log"); they
never fire while the configuration does not change:

- ``config-known``: an ``Accept`` at slot s leaves only once ``C(s)`` is known,
  every slot up to ``s - alpha`` chosen. ("A leader proposes slot s only while
  s < slot_chosen + alpha.")
- ``config-effect``: a change takes effect exactly alpha slots after it is
  chosen: the configuration a replica holds in effect at its ``slot_chosen``
  k is ``C(k)``, and its newest is the last change chosen below k (checked on
  ``on_configuration``).
- ``prepared-config``: Phase 1 per configuration. An ``Accept(b, s)`` leaves
  only after a majority of ``C(s)``'s voters have sent ``Promise(b)`` reporting
  every slot from s on (``max(slot_from, log_start) <= s``); checked once per
  ballot and configuration, and not for a ballot that broke ``lead-quorum``. ("Before it
  proposes at a slot s of a later configuration ... it needs promises of its
  ballot ... from a majority of C(s)'s voters.")
- ``learner-vote``: a learner's vote never counts. Fires beside
  ``chosen-claim`` when a slot claimed chosen is not, but would be if the
  learners' votes were counted.
- ``promise-non-voter``: a ``Promise(b)`` leaves an acceptor whose chosen
  prefix ends at k only if b's owner is a voter of a configuration it holds
  from k on. ("A Probe or Prepare from a node that is not a voter of a
  configuration from slot_chosen on is ignored.")
- ``stand-non-voter``: a ``Probe`` leaves a node only if it is a voter of
  ``C(k)`` and of the newest configuration it holds, k its chosen prefix as
  last reported by ``on_configuration`` (unchecked without it). ("A learner
  never stands; a voter whose removal is chosen stops standing at once.")

Cost: every event is a few dict lookups, except a ``BallotRun`` or a ``Learn``,
checked slot by slot; a run already verified from its first slot is not
walked again. Memory grows with the proposals and votes of the run, as
``SafetyChecker``'s does.

Not checked here: losing durable records to a storage fault (the checker keeps
everything it was told became durable, so such a loss is never excused).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from paxon.protocol.membership import Configuration
from paxon.protocol.messages import (
    Accept,
    Accepted,
    ChosenPrefix,
    Heartbeat,
    HeartbeatReply,
    Learn,
    Message,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
    TimeoutNow,
)
from paxon.protocol.records import (
    AcceptRecord,
    ChosenRecord,
    DurableState,
    PromiseRecord,
    SnapshotRecord,
)
from paxon.protocol.replica import RECENT_SLOTS_MAX, SlotView
from paxon.protocol.types import BALLOT_ZERO, Ballot, BallotRun, Entry, NodeId, Slot, Value
from paxon.sim.checkers import Violation
from paxon.sim.log_configs import LogConfigs

# A chosen slot whose value no Accept ever carried (a one-node cluster sends none).
_VALUE_UNKNOWN = None


@dataclass(slots=True)
class _DiskView:
    """What one node's disk holds, folded from the records reported durable."""

    ballot_promised: Ballot = BALLOT_ZERO
    accepted: set[tuple[Slot, Ballot]] = field(default_factory=set)  # ever, durably
    entries: dict[Slot, Entry] = field(default_factory=dict)  # the last accept per slot
    slot_chosen: Slot = 0
    log_start: Slot = 0


@dataclass(slots=True)
class _NodeView:
    disk: _DiskView = field(default_factory=_DiskView)
    # The highest ballot of any Promise or Accepted this node sent, in any life.
    ballot_voted: Ballot = BALLOT_ZERO
    # The highest ballot it sent a Prepare under, and the life that sent it.
    ballot_prepared: Ballot = BALLOT_ZERO
    life_prepared: int = 0
    life: int = 0
    # Volatile: the ballot of its latest Probe, and the reads it has in flight
    # (read_id -> the end of the slots chosen when the read was requested).
    # Ballots this life probed with; a Prepare needs one of them granted.
    ballots_probed: list[Ballot] = field(default_factory=list)
    # The ballot of a leader that handed leadership to this node (TimeoutNow).
    handed_over_by: Ballot | None = None
    reads: dict[int, Slot] = field(default_factory=dict)
    # Volatile: its chosen prefix as last reported by on_configuration.
    slot_chosen: Slot | None = None
    # Reads a crash left unanswered: a late answer of an earlier life is no second one.
    reads_of_earlier_lives: set[int] = field(default_factory=set)
    # The highest chosen or snapshot mark this life started from or wrote (None:
    # not known, so ``chosen-advances`` waits: a life the core engine restarted,
    # or one whose snapshot a storage fault struck).
    mark_this_life: Slot | None = 0


class PropertyChecker:
    """Checks every rule in the module docstring on each event it is fed."""

    def __init__(
        self,
        members: Sequence[NodeId],
        violations: list[Violation] | None = None,
        *,
        configuration: Configuration | None = None,
    ):
        """``members``: every node of the run; ``configuration``: the first one
        (default: every member votes)."""
        initial = configuration or Configuration.initial(members)
        self.configs = LogConfigs(initial)
        self.quorum = initial.quorum  # of the first configuration
        # Shared with SafetyChecker when given, so a runner reports one list.
        self.violations: list[Violation] = [] if violations is None else violations
        self._nodes = {node_id: _NodeView() for node_id in members}
        self._proposed: dict[tuple[Slot, Ballot], Value] = {}
        self._votes: dict[tuple[Slot, Ballot], set[NodeId]] = {}
        self._chosen: dict[Slot, Value | None] = {}
        self._chosen_end = 0  # every slot below is chosen
        self._chosen_high = 0  # one past the highest chosen slot
        self._waiting: dict[Slot, set[Ballot]] = {}  # votes whose C(s) is not known yet
        self._reading = False  # inside _on_chosen's loop
        self._ballots_voted: dict[Slot, set[Ballot]] = {}
        # Per ballot, each promiser and the first slot its promises report.
        self._promisers: dict[Ballot, dict[NodeId, Slot]] = {}
        self._grants: dict[Ballot, set[NodeId]] = {}
        # Per ballot, the slot_from of every Prepare sent under it, and of every
        # Promise sent to its owner.
        self._prepared_from: dict[Ballot, set[Slot]] = {}
        self._leading: set[Ballot] = set()  # ballots whose Phase 1 checked out
        self._leading_unproven: set[Ballot] = set()  # ... or broke lead-quorum
        self._prepared_configs: set[tuple[Ballot, int]] = set()  # (ballot, epoch) checked
        self._unknown_proposers: set[Ballot] = set()  # config-known reported once per ballot
        self._runs_verified: dict[tuple[Ballot, Slot], Slot] = {}  # (ballot, start) -> end

    # -------------------------------------------------------------- events

    def on_records_durable(self, node_id: NodeId, records: Sequence[object], time: float) -> None:
        """``records`` just became durable on ``node_id``'s disk, in log order."""
        disk = self._node(node_id).disk
        for record in records:
            match record:  # the commonest kinds first
                case AcceptRecord(entry):
                    if entry.slot < max(disk.slot_chosen, disk.log_start):
                        self._fail(
                            time,
                            "chosen-stable",
                            f"n{node_id} durably accepted {_entry(entry)} below its "
                            f"durable chosen mark {disk.slot_chosen} / snapshot "
                            f"mark {disk.log_start}",
                        )
                    if entry.ballot > disk.ballot_promised:
                        disk.ballot_promised = entry.ballot
                    disk.accepted.add((entry.slot, entry.ballot))
                    disk.entries[entry.slot] = entry
                case ChosenRecord(slot_chosen):
                    self._check_prefix_claim(node_id, "ChosenRecord", slot_chosen, time)
                    self._check_chosen_advances(node_id, slot_chosen, time)
                    disk.slot_chosen = max(disk.slot_chosen, slot_chosen)
                case PromiseRecord(ballot):
                    if ballot > disk.ballot_promised:
                        disk.ballot_promised = ballot
                case SnapshotRecord(slot):
                    self._check_prefix_claim(node_id, "SnapshotRecord", slot, time)
                    view = self._node(node_id)
                    if view.mark_this_life is not None:
                        view.mark_this_life = max(view.mark_this_life, slot)
                    disk.log_start = max(disk.log_start, slot)
                    disk.slot_chosen = max(disk.slot_chosen, slot)
                case _:
                    pass  # records the protocol does not read (a configuration)

    def on_recovered(
        self, node_id: NodeId, state: DurableState, time: float, *, snapshot_struck: bool = False
    ) -> None:
        """A restart recovered ``state`` from ``node_id``'s disk (``snapshot_struck``:
        a storage fault hit a snapshot file, which recovery skips, so the chosen
        mark it carried is not owed).

        Records written but not yet synced at a crash may survive it (the
        crash tore nothing, or not them): from now on they are durable, as
        the node rightly assumes. Nothing here is a new claim: every entry
        was accepted, and every mark set, by an earlier life of the node."""
        view = self._node(node_id)
        disk = view.disk
        # The mark the replica holds: a struck installed snapshot's holes outlive
        # the restart that met them, and a later life, still short of them,
        # learns and marks the slots below the durable mark again (seed 14001053).
        view.mark_this_life = None if snapshot_struck else _chosen_held(state)
        if snapshot_struck:
            # Recovery fell back to an older snapshot and the log after it. The
            # slots the struck one carried that this node never accepted (it
            # installed that snapshot) are holes now, and the node knows the
            # chosen prefix only to its first hole: it learns the rest again,
            # and may accept there again (swarm seed 3000029).
            disk.slot_chosen = min(disk.slot_chosen, _chosen_held(state))
            disk.log_start = min(disk.log_start, state.log_start)
        self._check_recovered(node_id, disk, state, time)
        if state.ballot_promised > disk.ballot_promised:
            disk.ballot_promised = state.ballot_promised
        for slot, entry in state.entries.items():
            disk.accepted.add((slot, entry.ballot))
            disk.entries[slot] = entry
            if entry.ballot > disk.ballot_promised:
                disk.ballot_promised = entry.ballot
        disk.slot_chosen = max(disk.slot_chosen, _chosen_held(state))
        disk.log_start = max(disk.log_start, state.log_start)

    def _check_recovered(
        self, node_id: NodeId, disk: _DiskView, state: DurableState, time: float
    ) -> None:
        """``recovery-fold``: the recovered state holds every durable record's effect
        (or a later record's: unsynced bytes may survive, and a slot's ballot
        only grows), for each slot at or above the recovered snapshot mark."""
        problems = []
        if state.ballot_promised < disk.ballot_promised:
            problems.append(
                f"promise {state.ballot_promised} below the durable {disk.ballot_promised}"
            )
        if max(state.slot_chosen, state.log_start) < disk.slot_chosen:
            problems.append(
                f"chosen mark {max(state.slot_chosen, state.log_start)} below the "
                f"durable {disk.slot_chosen}"
            )
        for slot, durable in disk.entries.items():
            if slot < state.log_start:
                continue
            held = state.entries.get(slot)
            if held is None or held.ballot < durable.ballot:
                found = "nothing" if held is None else _entry(held)
                problems.append(f"{found} at slot {slot}, where {_entry(durable)} is durable")
                break
        if problems:
            self._fail(time, "recovery-fold", f"n{node_id} recovered " + "; ".join(problems))

    def _check_chosen_advances(self, node_id: NodeId, slot_chosen: Slot, time: float) -> None:
        """``chosen-advances``: a ``ChosenRecord`` is written only when the chosen
        prefix moved past every mark this life holds (no fsync for nothing)."""
        view = self._node(node_id)
        mark = view.mark_this_life
        if mark is None:
            return
        if slot_chosen <= mark:
            self._fail(
                time,
                "chosen-advances",
                f"n{node_id} wrote a chosen mark {slot_chosen} that does not advance "
                f"past {mark}, which this life already held",
            )
        view.mark_this_life = max(mark, slot_chosen)

    def on_prefix_moved(
        self, node_id: NodeId, before: Slot, after: Slot, records: Sequence[object], time: float
    ) -> None:
        """``chosen-advances``, when: a call moved ``node_id``'s chosen prefix from
        ``before`` to ``after``; ``records`` are what it hands out to persist."""
        if after <= before:
            return
        written = max(
            (
                record.slot_chosen if isinstance(record, ChosenRecord) else record.slot
                for record in records
                if isinstance(record, ChosenRecord | SnapshotRecord)
            ),
            default=None,
        )
        if written is None or written < after:
            self._fail(
                time,
                "chosen-advances",
                f"n{node_id}'s chosen prefix moved from {before} to {after} with "
                + ("no mark written" if written is None else f"a mark of {written} written"),
            )

    def on_promises_handed(
        self, node_id: NodeId, held: Ballot, records: Sequence[object], time: float
    ) -> None:
        """``promise-raises``: ``records`` are what one call hands out to persist,
        ``held`` the promise ``node_id`` held when the call began."""
        for record in records:
            if isinstance(record, AcceptRecord):
                held = max(held, record.entry.ballot)
            elif isinstance(record, PromiseRecord):
                if record.ballot <= held:
                    self._fail(
                        time,
                        "promise-raises",
                        f"n{node_id} wrote a promise of {record.ballot}, which does not "
                        f"raise the {held} it held",
                    )
                    return
                held = record.ballot

    def on_slot_views(
        self,
        node_id: NodeId,
        views: Sequence[SlotView],
        slot_chosen: Slot,
        log_start: Slot,
        time: float,
        few: tuple[int, Sequence[SlotView]] = (0, ()),
        end: Slot | None = None,
    ) -> None:
        """``dashboard-truthful``: ``views`` is what ``recent_slots`` showed when
        asked for more than its cap; ``few`` a small count asked and what it
        showed; ``end`` (when given) the slot the view must end before: past
        ``slot_next`` and every slot held within ``slots_ahead_max`` of the prefix."""
        problem = _views_problem(views, slot_chosen, log_start)
        shown_end = views[-1].slot + 1 if views else log_start
        if problem is None and end is not None and shown_end != max(end, log_start):
            ends = f"ends at s{shown_end - 1}" if views else "shows no slot"
            problem = f"the view {ends}, not at s{end - 1}, the last slot it must reach"
        asked, few_shown = few
        last = tuple(views[len(views) - min(asked, len(views)) :])
        if problem is None and tuple(few_shown) != last:
            problem = (
                f"asked for {asked} slots, shown {[view.slot for view in few_shown]}, "
                f"not the last {asked} of {[view.slot for view in views][-4:]}"
            )
        for view in views if problem is None else ():
            chosen = self._chosen.get(view.slot, _VALUE_UNKNOWN)
            if view.slot < slot_chosen and not view.chosen:
                problem = f"slot {view.slot}, below the chosen prefix, shown not chosen"
            elif view.ballot is None and (view.chosen or view.is_noop or view.commands):
                problem = (
                    f"slot {view.slot} shown as a hole (no ballot) with (chosen, no-op, "
                    f"commands) {(view.chosen, view.is_noop, view.commands)}"
                )
            elif view.chosen and chosen is not _VALUE_UNKNOWN and chosen is not None:
                shown = (view.commands, bool(view.is_noop))
                if shown != (len(chosen.commands), not chosen.commands):
                    problem = (
                        f"slot {view.slot} shown chosen with (commands, no-op) {shown}, "
                        f"where {chosen} was chosen"
                    )
            if problem is not None:
                break
        if problem is not None:
            self._fail(
                time,
                "dashboard-truthful",
                f"n{node_id}'s log view (chosen prefix {slot_chosen}, log_start {log_start}): "
                + problem,
            )

    def on_crash(self, node_id: NodeId, time: float) -> None:
        """``node_id`` lost its volatile state; what its disk holds stays."""
        view = self._node(node_id)
        view.life += 1
        view.mark_this_life = None  # until on_recovered says what the next life holds
        # The prefix reported by the life before: the next life reports its own,
        # unless it holds a spare's --peers guess, which is not judged (swarm
        # seed 6001908: a spare that lost its unsynced learning probed under its
        # guess and was judged by the prefix it had reached before the crash).
        view.slot_chosen = None
        view.ballots_probed = []
        view.reads_of_earlier_lives.update(view.reads)
        view.reads.clear()

    def durable_slot_chosen(self, node_id: NodeId) -> Slot:
        """The chosen prefix ``node_id``'s disk holds (its chosen or snapshot
        mark): what the node will know after a crash."""
        return self._node(node_id).disk.slot_chosen

    def on_wipe(self, node_id: NodeId, time: float) -> None:
        """``node_id``'s disk was replaced by an empty one (a new incarnation):
        a new acceptor, so its own rules (``acceptor-monotone``, ``ballot-fresh``,
        ``recovery-fold``, the durable-before-send ones) start afresh for it,
        after ``on_crash``. The cluster-wide counts (votes, chosen slots) keep
        every vote its earlier incarnation sent."""
        old = self._node(node_id)
        self._nodes[node_id] = _NodeView(
            life=old.life + 1, reads_of_earlier_lives=old.reads_of_earlier_lives
        )

    def on_send(self, node_id: NodeId, message: Message, time: float) -> None:
        """``message`` leaves ``node_id`` (handed to the network, or to itself)."""
        if message.dst == node_id and not isinstance(message, Promise | Accepted):
            self._fail(time, "self-vote", f"n{node_id} sent itself {type(message).__name__}")
        # The commonest kinds first: a match tries its cases in order.
        match message:
            case Accept():
                self._check_owner(node_id, message, time)
                self._check_leading(node_id, message, message.ballot, time)
                self._check_slot_configuration(node_id, message, time)
                self._on_proposed(message)
                self._check_prefix(node_id, message, message.chosen, time)
            case Accepted():
                self._on_accepted_sent(node_id, message, time)
            case Heartbeat():
                self._check_owner(node_id, message, time)
                self._check_leading(node_id, message, message.ballot, time)
                self._check_prefix(node_id, message, message.chosen, time)
            case HeartbeatReply():
                self._check_prefix_claim(node_id, "HeartbeatReply", message.slot_chosen, time)
            case Learn():
                for entry in message.entries:
                    self._check_entry_claim(node_id, entry, time)
            case Probe():
                self._check_owner(node_id, message, time)
                self._check_stands(node_id, time)
                probed = self._node(node_id).ballots_probed
                if not probed or probed[-1] != message.ballot:
                    probed.append(message.ballot)
            case ProbeReply():
                if message.granted and message.dst == message.ballot.node_id:
                    self._grants.setdefault(message.ballot, set()).add(node_id)
            case Prepare():
                self._on_prepare_sent(node_id, message, time)
            case TimeoutNow():
                self._check_owner(node_id, message, time)
                if message.ballot in self._leading:
                    self._node(message.dst).handed_over_by = message.ballot
            case Promise():
                self._on_promise_sent(node_id, message, time)
            case _:
                pass  # Nack, LearnRequest: they claim nothing durable or chosen

    def on_read_requested(self, node_id: NodeId, read_id: int, time: float) -> None:
        """``read_index(read_id)`` is about to be called on ``node_id``."""
        self._node(node_id).reads[read_id] = self._chosen_high

    def on_read_confirmed(
        self, node_id: NodeId, read_id: int, slot: Slot | None, time: float
    ) -> None:
        """The core answered ``read_id`` with ``ReadIndex(read_id, slot)``."""
        view = self._node(node_id)
        reads = view.reads
        if read_id not in reads:
            if read_id in view.reads_of_earlier_lives:
                view.reads_of_earlier_lives.discard(read_id)
                return
            self._fail(
                time,
                "read-answer",
                f"n{node_id} answered read {read_id}, which it was not asked or answered before",
            )
            return
        chosen_high = reads.pop(read_id)
        if slot is None:
            return
        if slot < chosen_high:
            self._fail(
                time,
                "read-fresh",
                f"n{node_id} confirmed read {read_id} at slot {slot}, but slot "
                f"{chosen_high - 1} was chosen before the read was requested",
            )

    def on_configuration(
        self,
        node_id: NodeId,
        slot_chosen: Slot,
        configuration: Configuration,
        newest: Configuration,
        time: float,
    ) -> None:
        """``node_id``'s chosen prefix now ends at ``slot_chosen``; it holds
        ``configuration`` in effect there and ``newest`` as its newest."""
        self._node(node_id).slot_chosen = slot_chosen
        if slot_chosen > self._chosen_end:
            return  # a claim chosen-claim judges; the configurations there are unknown
        expected = self.configs.at(slot_chosen)
        expected_newest = self.configs.newest_known_at(slot_chosen)
        if configuration != expected or newest != expected_newest:
            self._fail(
                time,
                "config-effect",
                f"n{node_id} holds epoch {configuration.epoch} in effect at slot "
                f"{slot_chosen} (newest {newest.epoch}), but the log puts epoch "
                f"{expected.epoch} there (newest {expected_newest.epoch}; a change "
                f"chosen at slot i takes effect at i + {self.configs.alpha})",
            )

    def on_stopped_leading(self, node_id: NodeId, time: float) -> None:
        """``node_id`` is no longer leader: every read it was asked is answered."""
        reads = self._node(node_id).reads
        if reads:
            self._fail(
                time,
                "read-answer",
                f"n{node_id} stopped leading with reads {sorted(reads)} never answered",
            )
            reads.clear()

    def on_votes_held(
        self,
        node_id: NodeId,
        log_start: Slot,
        held: Callable[[Slot], tuple[Ballot, bool] | None],
        time: float,
    ) -> None:
        """``votes-held``: ``node_id``'s replica, whose log starts at ``log_start``,
        holds ``held(slot)`` (its ballot there and whether it knows it chosen)."""
        for slot, durable in self._node(node_id).disk.entries.items():
            if slot < log_start:
                continue
            found = held(slot)
            if found is None or (not found[1] and found[0] < durable.ballot):
                holds = "nothing" if found is None else f"ballot {found[0]}"
                self._fail(
                    time,
                    "votes-held",
                    f"n{node_id} holds {holds} at slot {slot} (log from {log_start}), "
                    f"where its disk holds {_entry(durable)}",
                )
                return

    def on_read_answered(
        self, node_id: NodeId, read_slot: Slot, slot_applied: Slot, time: float
    ) -> None:
        """A read at index ``read_slot`` was answered, the slots below ``slot_applied`` applied."""
        if slot_applied < read_slot:
            self._fail(
                time,
                "read-applied",
                f"n{node_id} answered a read at index {read_slot} having applied "
                f"only the slots below {slot_applied}",
            )

    # ------------------------------------------------------------ messages

    def _on_prepare_sent(self, node_id: NodeId, message: Prepare, time: float) -> None:
        self._check_owner(node_id, message, time)
        view = self._node(node_id)
        ballot = message.ballot
        if view.disk.ballot_promised < ballot:
            self._fail(
                time,
                "prepare-durable",
                f"n{node_id} sent Prepare({ballot}) to n{message.dst} with only "
                f"{view.disk.ballot_promised} promised on disk",
            )
        if ballot < view.ballot_prepared or (
            ballot == view.ballot_prepared and view.life != view.life_prepared
        ):
            self._fail(
                time,
                "ballot-fresh",
                f"n{node_id} sent Prepare({ballot}) after preparing "
                f"{view.ballot_prepared}"
                + ("" if view.life == view.life_prepared else " before a crash"),
            )
        if ballot >= view.ballot_prepared:
            view.ballot_prepared, view.life_prepared = ballot, view.life
        prepared_from = self._prepared_from.setdefault(ballot, set())
        prepared_from.add(message.slot_from)
        slot_from = min(prepared_from)  # the first Prepare's: later ones start higher
        # The Prepare may leave after its fsync, when a newer probe has begun:
        # the probe it follows is the latest one at or below its ballot (a
        # candidate keeps the probed ballot, or takes a fresh higher one).
        probed = next((b for b in reversed(view.ballots_probed) if b <= ballot), None)
        grants = {node_id}.union(self._grants.get(probed, ()) if probed is not None else ())
        config = self.configs.at(slot_from)
        granted = len(config.voters.intersection(grants))
        # A leader that hands leadership over (TimeoutNow) stands in for the probe.
        handed_over = view.handed_over_by is not None and view.handed_over_by < ballot
        if granted < config.quorum and not handed_over:
            self._fail(
                time,
                "probe-quorum",
                f"n{node_id} sent Prepare({ballot}) with {granted} of "
                f"{config.quorum} grants for its probe {probed}",
            )

    def _on_promise_sent(self, node_id: NodeId, message: Promise, time: float) -> None:
        disk = self._node(node_id).disk
        if disk.ballot_promised < message.ballot:
            self._fail(
                time,
                "promise-durable",
                f"n{node_id} sent Promise({message.ballot}) to n{message.dst} with only "
                f"{disk.ballot_promised} promised on disk",
            )
        for entry in message.entries:
            if (entry.slot, entry.ballot) not in disk.accepted:
                self._fail(
                    time,
                    "promise-durable",
                    f"n{node_id} reported {_entry(entry)} in Promise({message.ballot}) "
                    "before accepting it durably",
                )
                break
        self._check_voter_order(node_id, message, message.ballot, time)
        self._check_prefix_claim(node_id, "Promise", message.slot_chosen, time)
        owner = message.ballot.node_id
        if owner not in self.configs.voters_ahead_known_at(message.slot_chosen):
            self._fail(
                time,
                "promise-non-voter",
                f"n{node_id} promised {message.ballot} to n{owner}, which is no voter of "
                f"a configuration from its chosen prefix {message.slot_chosen} on",
            )
        if message.dst == owner:
            # A candidate alone in its configuration sends no Prepare, only its
            # own Promise, which names the slot_from too (and comes first).
            self._prepared_from.setdefault(message.ballot, set()).add(message.slot_from)
            reported_from = max(message.slot_from, message.log_start)
            promisers = self._promisers.setdefault(message.ballot, {})
            promisers[node_id] = min(reported_from, promisers.get(node_id, reported_from))

    def _on_proposed(self, message: Accept) -> None:
        self.on_proposed(message.slot, message.ballot, message.value)

    def on_proposed(self, slot: Slot, ballot: Ballot, value: Value) -> None:
        """``ballot``'s owner proposed ``value`` at ``slot`` (an ``Accept`` it
        sent, or its own vote where it has nobody to send one to)."""
        key = (slot, ballot)
        if key in self._proposed:
            return
        self._proposed[key] = value
        # (0 stands for "not chosen": only a chosen slot can hold _VALUE_UNKNOWN.)
        if self._chosen.get(slot, 0) is _VALUE_UNKNOWN and (
            self.configs.at(slot).has_quorum(self._votes.get(key, ()))
        ):
            self._chosen[slot] = value  # the votes came first

    def _on_accepted_sent(self, node_id: NodeId, message: Accepted, time: float) -> None:
        disk = self._node(node_id).disk
        ballot, slot = message.ballot, message.slot
        problem = None
        if disk.ballot_promised < ballot:
            problem = f"with only {disk.ballot_promised} promised on disk"
        elif (slot, ballot) not in disk.accepted and not self._durably_chosen(disk, slot):
            held = disk.entries.get(slot)
            problem = (
                "with nothing at that slot on disk"
                if held is None
                else f"with {_entry(held)} on disk, which is not the chosen value"
            )
        if problem is not None:
            self._fail(
                time,
                "vote-durable",
                f"n{node_id} sent Accepted({ballot}, s{slot}) to n{message.dst} {problem}",
            )
        self._check_voter_order(node_id, message, ballot, time)
        self._check_prefix_claim(node_id, "Accepted", message.slot_chosen, time)
        voters = self._votes.setdefault((slot, ballot), set())
        if not voters:
            self._ballots_voted.setdefault(slot, set()).add(ballot)
        voters.add(node_id)
        if slot in self._chosen:
            return
        if self.configs.known(slot):
            self._count(slot, ballot)
        else:
            self._waiting.setdefault(slot, set()).add(ballot)

    # -------------------------------------------------------------- checks

    def _check_owner(
        self,
        node_id: NodeId,
        message: Probe | Prepare | Accept | Heartbeat | TimeoutNow,
        time: float,
    ) -> None:
        ballot = message.ballot
        if ballot.node_id != node_id:
            self._fail(
                time,
                "ballot-owner",
                f"n{node_id} sent {type(message).__name__} under n{ballot.node_id}'s "
                f"ballot {ballot}",
            )

    def _check_leading(
        self, node_id: NodeId, message: Accept | Heartbeat, ballot: Ballot, time: float
    ) -> None:
        if ballot in self._leading:
            return
        # Phase 1 ends on a majority of C(slot_from) for the slot_from of the
        # candidate's latest Phase 1 Prepare (it prepares again, higher, after
        # catching up): a majority of C(p) for any p it prepared from will do.
        # Only promises that report every slot from there count (the
        # compacted-log rule): reported_from <= slot_from, or at most the
        # prefix the message claims chosen (an acceptor compacts only chosen
        # slots, and a leader that knows them chosen misses nothing there;
        # chosen-claim judges the claim). Swarm seed 7000575: a candidate
        # learned slots 1..2 between its Prepare from 1 and its own promise,
        # which then reported from its new log_start, 3.
        promised = self._promisers.get(ballot, {})
        known_chosen = message.chosen.slot_chosen
        counts = []
        for slot_from in self._prepared_from.get(ballot, {0}):
            config = self.configs.at(slot_from)
            covered = max(slot_from, known_chosen)
            complete = {n for n, reported_from in promised.items() if reported_from <= covered}
            counts.append((len(config.voters.intersection(complete)), config.quorum))
        promisers, quorum = max(counts, key=lambda count: count[0] - count[1])
        if promisers >= quorum:
            self._leading.add(ballot)
            return
        self._fail(
            time,
            "lead-quorum",
            f"n{node_id} sent {type(message).__name__}({ballot}) with {promisers} of "
            f"{quorum} promises for it",
        )
        self._leading.add(ballot)  # once per ballot is enough
        self._leading_unproven.add(ballot)

    def _check_slot_configuration(self, node_id: NodeId, message: Accept, time: float) -> None:
        """config-known and prepared-config: the configuration deciding the slot
        is known, and a majority of its voters promised the ballot from there."""
        ballot, slot = message.ballot, message.slot
        if not self.configs.known(slot):
            if ballot not in self._unknown_proposers:
                self._unknown_proposers.add(ballot)
                self._fail(
                    time,
                    "config-known",
                    f"n{node_id} proposed at slot {slot} under {ballot} with slot "
                    f"{self._chosen_end} not chosen: the configuration deciding slot "
                    f"{slot} is not known (alpha {self.configs.alpha})",
                )
            return
        config = self.configs.at(slot)
        if (ballot, config.epoch) in self._prepared_configs or ballot in self._leading_unproven:
            return  # checked, or lead-quorum said it already
        self._prepared_configs.add((ballot, config.epoch))  # checked once
        promisers = self._promisers.get(ballot, {})
        covering = [voter for voter in config.voters if promisers.get(voter, slot + 1) <= slot]
        if len(covering) < config.quorum:
            self._fail(
                time,
                "prepared-config",
                f"n{node_id} proposed at slot {slot} under {ballot} with promises from "
                f"{sorted(covering)}, not a majority of epoch {config.epoch}'s voters "
                f"{sorted(config.voters)}",
            )

    def _check_stands(self, node_id: NodeId, time: float) -> None:
        slot_chosen = self._node(node_id).slot_chosen
        if slot_chosen is None or slot_chosen > self._chosen_end:
            return
        now, newest = self.configs.at(slot_chosen), self.configs.newest_known_at(slot_chosen)
        if node_id not in now.voters or node_id not in newest.voters:
            self._fail(
                time,
                "stand-non-voter",
                f"n{node_id} probed at chosen prefix {slot_chosen}, a voter of neither "
                f"epoch {now.epoch} in effect there or of the newest, epoch {newest.epoch}",
            )

    def _check_voter_order(
        self, node_id: NodeId, message: Message, ballot: Ballot, time: float
    ) -> None:
        view = self._node(node_id)
        if ballot < view.ballot_voted:
            self._fail(
                time,
                "acceptor-monotone",
                f"n{node_id} sent {type(message).__name__}({ballot}) after promising "
                f"or voting for {view.ballot_voted}",
            )
        else:
            view.ballot_voted = ballot

    def _check_prefix(
        self, node_id: NodeId, message: Message, prefix: ChosenPrefix, time: float
    ) -> None:
        self._check_prefix_claim(node_id, type(message).__name__, prefix.slot_chosen, time)
        for run in prefix.runs:
            self._check_run_claim(node_id, run, time)

    def _check_prefix_claim(
        self, node_id: NodeId, where: str, slot_chosen: Slot, time: float
    ) -> None:
        if slot_chosen > self._chosen_end:
            self._fail(
                time,
                "chosen-claim",
                f"n{node_id} claimed every slot below {slot_chosen} chosen ({where}), "
                f"but slot {self._chosen_end} is not",
            )
            self._check_learner_votes(node_id, self._chosen_end, time)

    def _check_run_claim(self, node_id: NodeId, run: BallotRun, time: float) -> None:
        key = (run.ballot, run.slot_start)
        slot = self._runs_verified.get(key, run.slot_start)
        while slot < run.slot_end:
            problem = self._claim_problem(slot, run.ballot, None)
            if problem is not None:
                self._fail(
                    time,
                    "chosen-claim",
                    f"n{node_id} claimed slot {slot} chosen under {run.ballot} "
                    f"(run [{run.slot_start}, {run.slot_end})), but {problem}",
                )
                self._check_learner_votes(node_id, slot, time)
                return
            slot += 1
        self._runs_verified[key] = max(slot, self._runs_verified.get(key, 0))

    def _check_entry_claim(self, node_id: NodeId, entry: Entry, time: float) -> None:
        problem = self._claim_problem(entry.slot, entry.ballot, entry.value)
        if problem is not None:
            self._fail(
                time,
                "chosen-claim",
                f"n{node_id} sent {_entry(entry)} as chosen (Learn), but {problem}",
            )
            self._check_learner_votes(node_id, entry.slot, time)

    def _check_learner_votes(self, node_id: NodeId, slot: Slot, time: float) -> None:
        """A slot claimed chosen is not: was it chosen only if learners counted?"""
        if slot in self._chosen or not self.configs.known(slot):
            return
        config = self.configs.at(slot)
        for ballot in sorted(self._ballots_voted.get(slot, ())):
            votes = self._votes[(slot, ballot)]
            if len(config.ids.intersection(votes)) >= config.quorum:
                self._fail(
                    time,
                    "learner-vote",
                    f"n{node_id} claimed slot {slot} chosen: {ballot} has votes from "
                    f"{sorted(votes)}, a majority of epoch {config.epoch}'s voters "
                    f"{sorted(config.voters)} only if its learners "
                    f"{sorted(config.learners)} count",
                )
                return

    def _claim_problem(self, slot: Slot, ballot: Ballot, value: Value | None) -> str | None:
        """Why "slot was chosen, with the value ``ballot`` proposed there" is false."""
        if slot not in self._chosen:
            return f"no ballot has {self.configs.at(slot).quorum} votes there"
        chosen = self._chosen[slot]
        proposed = self._proposed.get((slot, ballot))
        if proposed is None:
            return f"{ballot} never proposed there" if chosen is not _VALUE_UNKNOWN else None
        if value is not None and value != proposed:
            return f"{ballot} proposed {proposed} there, not {value}"
        if chosen is not _VALUE_UNKNOWN and proposed != chosen:
            return f"{ballot} proposed {proposed} there, and {chosen} was chosen"
        return None

    # ------------------------------------------------------------- helpers

    def _durably_chosen(self, disk: _DiskView, slot: Slot) -> bool:
        """Whether ``slot`` is chosen and the disk shows it (a vote needs no new record)."""
        if slot < disk.slot_chosen or slot < disk.log_start:
            return True
        held = disk.entries.get(slot)
        chosen = self._chosen.get(slot, _VALUE_UNKNOWN)
        return held is not None and chosen is not _VALUE_UNKNOWN and held.value == chosen

    def _count(self, slot: Slot, ballot: Ballot) -> None:
        """Count the votes for ``ballot`` at ``slot`` in ``C(slot)``, which is known."""
        if slot not in self._chosen and self.configs.at(slot).has_quorum(
            self._votes[(slot, ballot)]
        ):
            self._on_chosen(slot, self._proposed.get((slot, ballot), _VALUE_UNKNOWN))

    def _on_chosen(self, slot: Slot, value: Value | None) -> None:
        self._chosen[slot] = value
        self._chosen_high = max(self._chosen_high, slot + 1)
        if self._reading:
            return  # the loop below goes on from here
        self._reading = True
        while True:
            while self._chosen_end in self._chosen:
                self.configs.read(self._chosen[self._chosen_end])
                self._chosen_end += 1
            # Votes that waited for the configuration of their slot (a loop, not
            # a recursion: a runaway leader may leave many slots waiting).
            ready = [slot for slot in self._waiting if self.configs.known(slot)]
            for slot_ready in sorted(ready):
                for ballot in sorted(self._waiting.pop(slot_ready, ())):
                    self._count(slot_ready, ballot)
            if self._chosen_end not in self._chosen:
                break
        self._reading = False

    def _node(self, node_id: NodeId) -> _NodeView:
        view = self._nodes.get(node_id)
        if view is None:  # not a member: SafetyChecker and the edge handle those
            view = self._nodes[node_id] = _NodeView()
        return view

    def _fail(self, time: float, rule: str, detail: str) -> None:
        self.violations.append(Violation(time, rule, detail))


def _entry(entry: Entry) -> str:
    return f"(s{entry.slot}, {entry.ballot}, {entry.value})"


def _views_problem(views: Sequence[SlotView], slot_chosen: Slot, log_start: Slot) -> str | None:
    """What is wrong with the shape of a log view, if anything."""
    slots = [view.slot for view in views]
    if len(slots) > RECENT_SLOTS_MAX:
        return f"{len(slots)} slots shown, more than {RECENT_SLOTS_MAX}"
    if slots != list(range(slots[0], slots[0] + len(slots))) if slots else False:
        return f"slots {slots[:3]}... not consecutive"
    if slots and slots[0] < log_start:
        return f"slot {slots[0]} shown, below log_start"
    if slots and len(slots) < RECENT_SLOTS_MAX and slots[0] != log_start:
        return f"{len(slots)} slots shown from {slots[0]}, not from log_start"
    if slot_chosen > log_start and (not slots or slots[-1] < slot_chosen - 1):
        return f"the view ends at {slots[-1] if slots else None}, before the chosen prefix"
    return None


def _chosen_held(state: DurableState) -> Slot:
    """The chosen prefix a replica recovers from ``state``: the durable chosen
    mark, but no further than the first slot from ``log_start`` that holds no
    entry (``Replica.__init__`` marks chosen only the entries it holds)."""
    slot = state.log_start
    while slot < state.slot_chosen and slot in state.entries:
        slot += 1
    return slot
