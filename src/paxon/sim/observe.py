"""What a simulated node does, reported to the cluster's checkers as it happens.

The node under test is the real one; these wrappers only watch it:

- ``ObservedMachine``: every entry applied, every effect done once, every
  snapshot restored goes to the ``SafetyChecker``;
- ``observed_node_class``: the node's class (the real ``Node``, or a planted
  bug in it) telling the cluster when it answers a linearizable query and
  when it hands a message to itself;
- ``ReplicaObserver``: the replica each node builds, its calls (``step``,
  ``tick``, ``propose_many``, ``read_index``, ``install_snapshot``) wrapped so
  the properties, the timer checks and the heal watch see each output, role
  changes are traced, ``check_invariants`` runs after every call, and the
  configurations a replica holds go to the properties (``on_configuration``)
  whenever its chosen prefix moves, before the call's messages leave.

Contract: observing changes nothing a node does and draws no randomness; the
faults aimed at a role change (``FaultInjector.at_transition``) are the one
thing a call here sets off, in the order the cluster always made them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from paxon.errors import Busy, NoQuorum, NotLeader, PaxonError
from paxon.kv.store import KvStore
from paxon.net.peer_messages import PeerMessage, SnapshotChunk
from paxon.node.logclock import CLOCK_CLIENT_ID, LEADER_MAGIC
from paxon.node.machine import Applied, ReplicatedMachine
from paxon.node.node import Node
from paxon.protocol.membership import Configuration
from paxon.protocol.ready import ChosenEntry, Ready
from paxon.protocol.replica import RECENT_SLOTS_MAX, Replica, Role
from paxon.protocol.types import Ballot, Slot
from paxon.sim.config import ReplicaFactory
from paxon.sim.healing import learner_outbidding
from paxon.sim.host import Host
from paxon.sim.timers import own_votes, snapshot
from paxon.sim.trace import describe

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster

# The replica calls whose output the checkers see.
_OBSERVED_CALLS = (
    "step",
    "tick",
    "propose_many",
    "read_index",
    "install_snapshot",
    "transfer_leadership",
)
# Steps between two ``votes-held`` checks of a replica's whole log (also after
# every snapshot install): the check walks every durable entry of the node.
# Every 64 steps cost a tenth of the run's time (swarm seeds 0-19); 1024, none
# measurable, and the mutant it is for is still caught at the install.
_VOTES_EVERY = 1024
# The dashboard's log view is checked every this many calls (it walks 64 slots).
_VIEWS_EVERY = 64


def _held(replica: Replica) -> Callable[[Slot], tuple[Ballot, bool] | None]:
    """What ``replica`` holds at a slot: its ballot and whether it knows it chosen."""
    log = replica._log

    def held(slot: Slot) -> tuple[Ballot, bool] | None:
        entry = log.get(slot)
        return None if entry is None else (entry.ballot, entry.chosen)

    return held


def _view_end(replica: Replica) -> Slot:
    """Where the dashboard's log view must end (exclusive): past ``slot_next`` and
    past every slot ``replica`` holds within ``slots_ahead_max`` of its chosen prefix."""
    reach = replica.slot_chosen + replica.config.slots_ahead_max
    held = (slot + 1 for slot in replica._log if slot < reach)
    return max(replica.slot_chosen, replica.slot_next, *held)


class ObservedMachine(ReplicatedMachine):
    """The node's replicated machine, reporting every applied entry to the checker,
    and the leases' lives to the lease watch (``paxon.sim.lease_watch``): each
    lease client's command applied fresh, and each lease a clock entry expired,
    at an order key ``(slot, position)`` (position: the entry's clock entries,
    history cuts and client commands counted in log order, the same on every
    replica); and
    every such point, with the store after it, to ``RuntimeCluster.on_point``
    (the lock watch and the watch check judge each point once)."""

    def __init__(
        self,
        cluster: RuntimeCluster,
        node_id: int,
        configuration: Configuration,
        store: KvStore | None = None,
    ) -> None:
        """``configuration``: the node's first one (from its --peers), as ``Node`` gives
        its own machine, so snapshots carry the configurations (version 3);
        ``store``: the key-value store (a fresh ``KvStore``, or a planted bug)."""
        self._store = KvStore() if store is None else store
        super().__init__(self._store, configuration=configuration)
        self._cluster = cluster
        self._node_id = node_id
        self._order: tuple[int, int] = (-1, 0)
        # The live leases as the last point left them: a lease that a clock
        # entry finds gone ended there, in the new leader's renewal that runs
        # just before it included (a store that ends leases there was missed).
        self._lease_ids: set[int] = set()

    def apply(self, entry: ChosenEntry) -> Iterator[Applied]:
        self._cluster.on_apply(self._node_id, entry)
        watch = self._cluster.leases
        fresh = []
        self._order = (entry.slot, 0)
        for command in entry.value.commands:
            if command.client_id == CLOCK_CLIENT_ID and command.payload == LEADER_MAGIC:
                watch.on_leader_stamp(entry.slot, self._cluster.time)
        for applied in super().apply(entry):
            key = (applied.client_id, applied.seq)
            if applied.fresh:
                fresh.append(key)
                if applied.reply is not None and watch.watches(key):
                    watch.on_applied(self._order, key, applied.reply, self._cluster.time)
                self._cluster.on_point(self._order, self._store, key, applied.reply)
            else:
                self._cluster.on_point(self._order, self._store)
            self._order = (entry.slot, self._order[1] + 1)
            if self._lease_ids or self._store.leases.leases:
                self._lease_ids = set(self._store.leases.leases)
            yield applied
        self._cluster.on_effects(self._node_id, entry, fresh)

    def _observe_clock(self, stamp_ms: int) -> None:
        before = self._lease_ids
        super()._observe_clock(stamp_ms)
        leases = self._store.leases.leases
        if before:
            cluster = self._cluster
            for lease_id in sorted(before):
                if lease_id not in leases:
                    cluster.leases.on_expired(self._node_id, lease_id, self._order, cluster.time)
        self._lease_ids = set(leases)
        self._cluster.on_point(self._order, self._store)
        self._order = (self._order[0], self._order[1] + 1)

    def _compact_history(self, payload: bytes) -> None:
        # The leader's retention cut the history here: a point too, so the watch
        # check knows the cut before any watcher is refused for it.
        super()._compact_history(payload)
        self._cluster.on_point(self._order, self._store)
        self._order = (self._order[0], self._order[1] + 1)

    def restore(self, data: bytes) -> None:
        super().restore(data)
        self._lease_ids = set(self._store.leases.leases)
        self._cluster.on_restore(self._node_id, self.slot_applied)

    def prepare_restore(self, data: bytes) -> tuple[Slot, Callable[[], None]]:
        slot, install = super().prepare_restore(data)

        def observed_install() -> None:
            install()
            self._lease_ids = set(self._store.leases.leases)
            self._cluster.on_restore(self._node_id, self.slot_applied)

        return slot, observed_install


def observed_node_class(node_class: type[Node], cluster: RuntimeCluster) -> type[Node]:
    """``node_class`` (the real ``Node``, or a planted bug in it) telling the
    cluster when it answers a linearizable query."""

    class Observed(node_class):  # type: ignore[valid-type,misc]
        def _answer_query(self, query: Any) -> None:
            cluster.replicas.read_answered(self, query)
            super()._answer_query(query)

        def _send(self, message: PeerMessage) -> None:
            if message.dst == self.node_id and not isinstance(message, SnapshotChunk):
                # A message to itself leaves the node here, released in log order.
                cluster.sent_to_self(self.node_id, message)
                if cluster.faults.delay_own_message(self, message):
                    return
            super()._send(message)

        def _fail_held(self, error: PaxonError) -> None:
            if isinstance(error, NoQuorum):  # the serving bound lapsed (``failfast``)
                cluster.failfast.on_held_failed(self.node_id, self._replica, cluster.time)
            super()._fail_held(error)

    return Observed


class ReplicaObserver:
    """Builds each node's replica with every call's output reported to the checkers."""

    def __init__(self, cluster: RuntimeCluster, replica_factory: ReplicaFactory) -> None:
        self._cluster = cluster
        self._factory = replica_factory
        # Linearizable queries waiting on a read index: id(query) -> (query,
        # slot); holding the query keeps its id from being reused meanwhile.
        self._read_slots: dict[int, tuple[object, int]] = {}
        # Each node's chosen prefix as last told to on_configuration (its replica now).
        self._slot_chosen_reported: dict[int, int] = {}

    def factory(self, host: Host, incarnation: int) -> Callable[..., Replica]:
        """The configured replica, with every call's output reported to the checkers."""
        factory = self._factory
        cluster = self._cluster

        def build(*args: Any, **kwargs: Any) -> Replica:
            replica = factory(*args, **kwargs)
            self._slot_chosen_reported[host.node_id] = -1
            cluster.timers.on_start(host.node_id, replica, cluster.time)
            for name in _OBSERVED_CALLS:
                setattr(replica, name, self._observe(host, replica, getattr(replica, name)))
            replica.propose_configuration = self._observe_refusals(  # type: ignore[method-assign]
                host, replica, replica.propose_configuration
            )
            return replica

        return build

    def read_answered(self, node: Node, query: object) -> None:
        """``node`` answers a linearizable query: at or after its read index?"""
        waiting = self._read_slots.pop(id(query), None)
        if waiting is not None:
            self._cluster.properties.on_read_answered(
                node.node_id, waiting[1], node.machine.slot_applied, self._cluster.time
            )

    def _observe(
        self, host: Host, replica: Replica, call: Callable[..., Ready]
    ) -> Callable[..., Ready]:
        node_id = host.node_id
        cluster = self._cluster

        def observed(*args: Any) -> Ready:
            name = call.__name__
            if name == "step":
                message = args[0]
                if cluster.tracing and message.src != node_id:
                    cluster.log(f"n{message.src}->n{node_id} {describe(message)}")
            elif name == "read_index":
                cluster.properties.on_read_requested(node_id, args[0], cluster.time)
            role_before = replica.role
            before = snapshot(replica, name, args)
            try:
                ready = call(*args)
            except (NotLeader, NoQuorum) as error:
                if name == "read_index":
                    cluster.properties.on_read_confirmed(node_id, args[0], None, cluster.time)
                if isinstance(error, NoQuorum):
                    cluster.failfast.on_refused(node_id, replica, name, cluster.time)
                raise
            except Busy:
                if name == "propose_many":
                    cluster.timers.on_busy(node_id, replica, args[0], cluster.time)
                raise
            except ValueError as error:
                if name == "transfer_leadership":
                    cluster.operator_rules.on_transfer(node_id, replica, args, error, cluster.time)
                raise
            if name == "transfer_leadership":
                cluster.operator_rules.on_transfer(node_id, replica, args, None, cluster.time)
            if replica.slot_next > before.slot_next and replica.role is Role.LEADER:
                self._note_own_proposals(node_id, replica, before.slot_next)
            cluster.timers.on_call(node_id, replica, name, args, before, ready, cluster.time)
            cluster.promptness.on_call(node_id, replica, name, args, ready, cluster.time)
            cluster.failfast.on_call(node_id, replica, name, args, ready, cluster.time)
            cluster.lease_rules.on_call(node_id, replica, name, args, ready, cluster.time)
            cluster.reproposal.on_call(node_id, replica, name, args, ready, cluster.time)
            cluster.duties.on_call(node_id, replica, name, args, before, ready, cluster.time)
            if ready.reads:
                self._note_read_indexes(host, ready)
            if replica.role is not role_before:
                self._on_role_change(host, replica, role_before)
            try:
                replica.check_invariants(full=cluster.stats.steps % 64 == 0)
            except AssertionError as error:
                cluster.checker.on_invariant_broken(node_id, error, cluster.time)
            cluster.properties.on_prefix_moved(
                node_id, before.slot_chosen, replica.slot_chosen, ready.records, cluster.time
            )
            cluster.properties.on_promises_handed(
                node_id, before.ballot_promised, ready.records, cluster.time
            )
            if replica.slot_chosen != self._slot_chosen_reported.get(node_id):
                self._report_configuration(node_id, replica)
            if cluster.stats.steps % _VIEWS_EVERY == 0:
                # A small count too, 0 to 3 in turn: the view shows no more than asked.
                asked = cluster.stats.steps // _VIEWS_EVERY % 4
                cluster.properties.on_slot_views(
                    node_id,
                    replica.recent_slots(2 * RECENT_SLOTS_MAX),
                    replica.slot_chosen,
                    replica.log_start,
                    cluster.time,
                    few=(asked, replica.recent_slots(asked)),
                    end=_view_end(replica),
                )
            if name == "install_snapshot" or cluster.stats.steps % _VOTES_EVERY == 0:
                cluster.properties.on_votes_held(
                    node_id, replica.log_start, _held(replica), cluster.time
                )
            return ready

        observed.__name__ = call.__name__
        return observed

    def _note_own_proposals(self, node_id: int, replica: Replica, slot_from: Slot) -> None:
        """The slots a leader opened, as its own votes hold them: the checkers
        learn proposals from the ``Accept`` messages sent, and a leader alone in
        its configuration sends none (swarm seed 3000798: an operator's request,
        delayed, removed the last other member)."""
        cluster = self._cluster
        ballot = replica.ballot_own
        for slot, value in own_votes(replica, slot_from).items():
            cluster.checker.on_proposed(slot, ballot, value, cluster.time)
            cluster.properties.on_proposed(slot, ballot, value)

    def _observe_refusals(
        self, host: Host, replica: Replica, call: Callable[..., Ready]
    ) -> Callable[..., Ready]:
        """``call`` (``propose_configuration``) with its refusals reported. Only
        they: it proposes through ``propose``, whose call is observed in full."""
        cluster = self._cluster

        def observed(*args: Any) -> Ready:
            try:
                return call(*args)
            except (Busy, NotLeader) as error:
                cluster.operator_rules.on_change_refused(host.node_id, replica, error, cluster.time)
                raise

        observed.__name__ = call.__name__
        return observed

    def _on_role_change(self, host: Host, replica: Replica, role_before: Role) -> None:
        cluster = self._cluster
        node_id = host.node_id
        ballot = replica.ballot_promised if replica.role is Role.FOLLOWER else replica.ballot_own
        cluster.log(f"n{node_id} {role_before.value} -> {replica.role.value} b={ballot}")
        guessing = node_id not in cluster.first_members and replica.configuration_newest.epoch == 0
        if role_before is Role.LEADER and cluster.healing.leader == node_id:
            self._judge_outbid(replica)
        if node_id in cluster.kept_members() and not guessing:
            # A node removed, or never added, may stand on its own, and so may a
            # spare just added that still holds its --peers guess: the others ignore it.
            cluster.healing.on_role_change(node_id, replica.role, cluster.time)
        if role_before is Role.LEADER:
            cluster.properties.on_stopped_leading(node_id, cluster.time)
        if replica.role is Role.LEADER:
            cluster.stats.leader_changes += 1
            cluster.faults.release_held(f"n{node_id} leads")
        cluster.faults.at_transition(host, replica.role)
        if replica.role is Role.LEADER:
            cluster.aims.bare_reign.on_leading(node_id, replica)

    def _judge_outbid(self, leader: Replica) -> None:
        """The settled leader stepped down: if a learner of its configuration
        promised above its ballot (added back after standing while away), the
        step-down is owed, and the cluster must settle again (``healing``)."""
        cluster = self._cluster
        if cluster.healing.settled_at is None:
            return
        promised = {}
        for host in cluster.hosts.values():
            node = cluster.node_of(host)
            if node is not None and host.dead is None:
                promised[host.node_id] = node._replica.ballot_promised
        learners = leader.configuration_newest.learners
        outbidding = learner_outbidding(learners, promised, leader.ballot_own)
        if outbidding is not None:
            cluster.log(
                f"n{leader.node_id} outbid by learner n{outbidding} "
                f"(promised {promised[outbidding]}): the cluster settles again"
            )
            cluster.heal_again()

    def _report_configuration(self, node_id: int, replica: Replica) -> None:
        """Tell the properties the configurations ``replica`` holds at its prefix.

        A spare's own first configuration comes from its --peers (the first
        members and itself), not from the log: held until it reads a change,
        it is not the log's epoch 0 and is not judged. A spare that joined
        (--join) holds the configuration it joined with from slot 0 on: below
        where the log reaches that epoch, that is --join's, not the log's."""
        self._slot_chosen_reported[node_id] = replica.slot_chosen
        cluster = self._cluster
        if node_id not in cluster.first_members and replica.configuration.epoch == 0:
            return
        joined = cluster.joined_with.get(node_id)
        if (
            joined is not None
            and replica.configuration.epoch == joined.epoch
            and cluster.properties.configs.at(replica.slot_chosen).epoch < joined.epoch
        ):
            return
        cluster.properties.on_configuration(
            node_id,
            replica.slot_chosen,
            replica.configuration,
            replica.configuration_newest,
            cluster.time,
        )

    def _note_read_indexes(self, host: Host, ready: Ready) -> None:
        """Tell the properties each read index, and remember it for its queries."""
        process = host.process
        waiting = process.node._reads_confirming if process is not None else {}
        for answer in ready.reads:
            self._cluster.properties.on_read_confirmed(
                host.node_id, answer.read_id, answer.slot, self._cluster.time
            )
            if answer.slot is not None:
                for query in waiting.get(answer.read_id, ()):
                    self._read_slots[id(query)] = (query, answer.slot)
