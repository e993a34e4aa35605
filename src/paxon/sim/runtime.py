"""A seeded cluster of real nodes (``paxon.node.Node``) on simulated machines.

This is the simulator of the runtime, not of a copy of it: each member is the
``Node`` that ``paxon serve`` runs, with its real ``KvStore``, session table,
log clock, group commit rule, snapshots, compaction and snapshot transfer.
Only the outside world is simulated, through ``paxon.node.environment``:

- **time and scheduling**: each node's asyncio loop is a ``SimLoop`` whose
  clock is the simulator's global time, drifted per machine; one scheduler
  turns whichever loop or simulator event is due first, in (time, sequence)
  order, so a seed replays exactly;
- **disk**: the real ``Storage`` on a ``MemFileSystem`` that survives crashes
  as a disk does; ``SimCommitter`` plays the group committer, with the write
  and the fsync as separate events, so a power cut can fall between them;
- **network**: ``SimTransport`` hands peer messages to ``SimNetwork`` (loss,
  duplication, delay, reordering, partitions); clients reach nodes the same
  way, through the native request types (``Submit``, ``Query``);
- **work on threads** (snapshot encoding, writing, checking): run by the
  simulator a little later, so it finishes in an order the seed picks.

A crash drops the whole process (its loop, pending work, unsynced bytes) and
restarts it from its disk. Beside crashes between events, the process faults
include a power cut *inside* a multi-step disk operation (a roll-over, a
snapshot write, a compaction, the repairs of a start-up: ``SimDisk``), a
directory whose new names reach the disk without an fsync (a journal commit),
a graceful stop and restart (``Node.stop``, as on SIGTERM), and an I/O error
on a log fsync, after which the node must stop and comes back as after a crash.
The ``SafetyChecker`` watches every message that leaves a node (a node's
message to itself counts when the node takes it in) and every entry its state
machine applies; the client history goes to the linearizability checker. The
two phases are those of ``SimCluster``: faults, then healing, after which the
cluster must serve and catch every member up.

With the ``reconfig`` kind the members change through the real path: the
run starts ``spares`` more nodes outside the first configuration, each with
``--peers`` naming the first members and itself (docs/membership.md, step 2),
and an ``Operator`` (``paxon.sim.operator``) sends ``ChangeMembers`` requests
over the client network during the fault phase. With ``spares_join`` the
spares start instead as ``paxon serve --join`` starts a node: each only once
a running member's newest configuration names it, from that configuration,
and at every later start ``node/join.held_state`` decides, as ``serve``
does, whether --join still holds (``_serve_flags``). The checkers read the
configurations from the chosen log; each replica reports the ones it holds
(``on_configuration``), except a spare still holding its ``--peers`` guess
(epoch 0 with itself in it: not the log's, and docs/membership.md says so),
and a joined spare below where the log reaches the epoch it joined with.
After the heal only the members of the configurations from the chosen prefix
on are waited for: a node removed, or never added, may stay behind.

With the ``wipe`` fault a voter loses its disk and starts again, same flags,
on an empty one with a new data-directory incarnation (``wipe``; the
process-restart count ``Host.incarnation`` is another thing). ``SimTransport``
mirrors the peer handshake: a link is refused, and its messages dropped, when
either side's bindings (``set_bound_incarnations``) name the other with
another incarnation than its disk holds. ``incarnation-bound`` checks each
message against the nodes' newest configurations, so a node that accepts a
wiped member back is named. The checkers take the wiped node as a new
acceptor (``PropertyChecker.on_wipe``); until the operator replaces it
(``Operator``: remove, add back as a learner, promote), it counts as dead for
the heal (``refused_members``).

The parts, one job each: ``host`` (the machine a node runs on: disk, group
commit, links), ``observe`` (what the nodes do, told to the checkers),
``clients`` (the workload and its history; ``lease_clients``,
``lock_clients`` and ``watch_clients`` beside it, judged by ``lease_watch``,
``fencing`` and ``watch_check``), ``faults`` (every fault of the
run, drawn from the seed). This module keeps the hosts and their processes
(start, crash, graceful stop, restart), the scheduler (``run_until``), the
delivery of messages, the heal and the run's last checks.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import logging
import random
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from paxon.kv.store import KvStore
from paxon.net.client_messages import ChangeMembers, ClientRequest, ClientResponse
from paxon.net.codec import PEER_CODES, DecodeError, decode_body, encode_body
from paxon.net.config import NetConfig
from paxon.net.frames import FrameTooLarge
from paxon.net.peer_messages import PeerMessage, SnapshotChunk
from paxon.node.config import NodeConfig
from paxon.node.environment import Environment
from paxon.node.history import HistoryRetention
from paxon.node.join import held_state
from paxon.node.logclock import CLOCK_CLIENT_ID
from paxon.node.node import Node
from paxon.protocol.membership import SYSTEM_CLIENT_ID, Configuration
from paxon.protocol.messages import Message, TimeoutNow
from paxon.protocol.ready import ChosenEntry
from paxon.protocol.replica import Replica
from paxon.protocol.types import BALLOT_ZERO
from paxon.sim.aims import Aims
from paxon.sim.change_answers import ChangeAnswerChecker, JudgedAnswers
from paxon.sim.change_restart import ChangeRestarts
from paxon.sim.checkers import SafetyChecker
from paxon.sim.clients import Clients
from paxon.sim.config import (
    FAULT_KINDS,
    HistoryOp,
    ReplicaFactory,
    SimConfig,
    SimStats,
)
from paxon.sim.config_memory import history_problem
from paxon.sim.duties import DutyChecker
from paxon.sim.failfast import FailFastChecker
from paxon.sim.faults import FaultInjector
from paxon.sim.fencing import LockWatch
from paxon.sim.handover import SAMPLE_S, HandoverWatch, RemovedLeader
from paxon.sim.healing import HealWatch, NodeState
from paxon.sim.host import (
    FSYNC_MAX_S,
    SNAPSHOT_OVER_REACCEPT,
    SNAPSHOT_TAKEN,
    Connection,
    HeldWhilePaused,
    Host,
    Process,
    SimCommitter,
    SimDisk,
    SimTransport,
    refuses,
    storage_config,
)
from paxon.sim.lagging_candidate import LaggingCandidate
from paxon.sim.lease_clients import LeaseClients
from paxon.sim.lease_rules import LeaseChecker
from paxon.sim.lease_watch import LeaseWatch
from paxon.sim.lock_clients import LockClients
from paxon.sim.loop import SimLoop
from paxon.sim.membership_faults import MembershipFaults
from paxon.sim.moments import LeaderStop, UnheardMoment
from paxon.sim.network import SimNetwork
from paxon.sim.observe import ObservedMachine, ReplicaObserver, observed_node_class
from paxon.sim.offline_check import OfflineCheck
from paxon.sim.operator import Operator, sim_address
from paxon.sim.operator_rules import OperatorChecker
from paxon.sim.promptness import PromptnessChecker
from paxon.sim.properties import PropertyChecker
from paxon.sim.removed_learns import (
    NodeView,
    memory_problem,
    removed_in_time,
    unaware_removed,
)
from paxon.sim.reproposal import ReproposalChecker
from paxon.sim.split_slot import SplitSlot
from paxon.sim.stalled_chunk import StalledChunk
from paxon.sim.status_roles import role_problems
from paxon.sim.storage_faults import check_recovery
from paxon.sim.timers import TimerChecker
from paxon.sim.watch_check import WatchCheck
from paxon.sim.watch_clients import WatchClients
from paxon.sim.wrong_disk import WrongDiskCheck
from paxon.storage.codec import StorageRecord
from paxon.storage.errors import StorageError
from paxon.storage.memfs import PowerCut
from paxon.storage.storage import Storage

StoreFactory = Callable[["RuntimeCluster", int], KvStore]
"""Builds node ``node_id``'s key-value store (the mutation tests plant a bug in it)."""

# The log clock's epoch: wall time at simulated time 0 (any fixed value works).
_WALL_EPOCH_S = 1_800_000_000.0
# A node's loop is due at a global time a hair after its local deadline, so
# float rounding of a drifted clock never leaves a timer "almost due".
_DUE_SLACK_S = 1e-9

# A joining spare not named yet by any member tries again after this (``paxon
# serve --join`` refused "not a member", and its service manager starts it again).
JOIN_RETRY_S = 0.2

_FRAME_MAX_BYTES = NetConfig().frame_max_bytes
"""What a real peer link carries at most (the runtime's default ``NetConfig``)."""


class RuntimeCluster:
    """One seed: real nodes, simulated world. Same interface as ``SimCluster``."""

    def __init__(
        self,
        seed: int,
        config: SimConfig,
        *,
        replica_factory: ReplicaFactory = Replica,
        node_class: type[Node] = Node,
        store_factory: StoreFactory | None = None,
        trace: bool = False,
    ) -> None:
        """``replica_factory``, ``node_class`` and ``store_factory`` (each node's
        key-value store, given the cluster and the node id) may plant a bug in
        the core, the runtime or the store (the mutation tests do)."""
        self.seed = seed
        self._store_factory = store_factory
        self._observed_node_class = observed_node_class(node_class, self)
        self.config = config
        self.tracing = trace
        self.trace: list[str] = []
        self.time = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = 0
        # Streams several parts draw from; each other part owns its own.
        self.rng_faults = random.Random(f"{seed}:faults")
        self.rng_disk = random.Random(f"{seed}:disk")
        self.rng_stop = random.Random(f"{seed}:stop")
        self._rng_stop_io = random.Random(f"{seed}:io-error-in-stop")
        # Every node of the run: the first configuration's voters, then the spares.
        self.members = list(range(1, config.nodes + config.spares + 1))
        self.first_members = self.members[: config.nodes]
        # Spares started with --join (``SimConfig.spares_join``), and the
        # configuration each last joined with (``_serve_flags``).
        self.joining = frozenset(self.members[config.nodes :] if config.spares_join else ())
        self.joined_with: dict[int, Configuration] = {}
        # As every first member's node makes it from its --peers.
        self.initial = Configuration.initial(
            {m: sim_address(m) for m in self.first_members}, alpha=config.alpha
        )
        self.faults = FaultInjector(self, seed)
        self.network = SimNetwork(random.Random(f"{seed}:net"), self.faults.link_faults())
        # Bare elections and learners cut off, while the operator changes members.
        self.membership_faults = MembershipFaults(self, seed)
        # Members restarted between a change's choice and its effect.
        self.change_restarts = ChangeRestarts(self, seed)
        # Moments no random fault builds, aimed (``moments``).
        self.leader_stop = LeaderStop(self, seed)
        self.unheard_moment = UnheardMoment(self, seed)
        # The operator's requests aimed at branches the swarm missed (``aims``).
        self.aims = Aims(self, seed)
        # A snapshot's last chunk stalled until its receiver stands (``stalled_chunk``).
        self.stalled_chunk = StalledChunk(self, seed)
        # Two reigns' values at one slot, met by one Phase 1 (``split_slot``).
        self.split_slot = SplitSlot(self, seed)
        # A candidate behind its acceptor by nearly a window (``lagging_candidate``).
        self.lagging_candidate = LaggingCandidate(self, seed)
        self.checker = SafetyChecker(
            self.members,
            internal_client_ids={CLOCK_CLIENT_ID, SYSTEM_CLIENT_ID},
            configuration=self.initial,
        )
        # The rules of docs/protocol.md, checked on every send, fsync and read.
        self.properties = PropertyChecker(
            self.members, self.checker.violations, configuration=self.initial
        )
        # Its timers and limits: leases, election timeouts, queue, batch, Learn.
        self.timers = TimerChecker(self.checker.violations)
        self.promptness = PromptnessChecker(self.checker.violations)
        # Its serving bounds: NoQuorum and LeaderUnreachable exactly past them.
        self.failfast = FailFastChecker(self.checker.violations)
        # Phase 1's rule at the leader: the highest-ballot report is re-proposed.
        self.reproposal = ReproposalChecker(self.checker.violations)
        # Duties owed for liveness: yield to a higher leader, mark learned slots chosen.
        self.duties = DutyChecker(self.checker.violations)
        # Lease reads: the leader's lease and the acceptors' promise.
        self.lease_rules = LeaseChecker(self.checker.violations)
        # The operator's calls: a valid change or transfer is taken.
        self.operator_rules = OperatorChecker(self.checker.violations)
        self.change_answers = ChangeAnswerChecker(self.checker.violations, lambda: self.time)
        self.wrong_disk = WrongDiskCheck(seed, self.checker.violations)
        # paxon check, run on each disk before a start, agrees with the start-up.
        self.offline_check = OfflineCheck(self.checker.violations)
        # Liveness after healing: it settles on a leader, keeps it, and serves.
        self.healing = HealWatch(config, self.checker.violations)
        # The chosen prefix at the heal (or the last restart after it): changes
        # taking effect above it extend the settle bound.
        self._settle_from = 0
        self.healing.changes_after_heal = lambda: self.checker.configs.effects_after(
            self._settle_from
        )
        # A removed leader that can reach the new voters hands over in time.
        self.handover = HandoverWatch(config, self.checker.violations)
        # No lease ends by expiry before its holder may count on (``lease_watch``).
        self.leases = LeaseWatch(self.checker.violations)
        # Locks granted in order and fenced writes in fence order (``fencing``);
        # watch streams exactly once against the store's changes (``watch_check``).
        self.locks = LockWatch(self.checker.violations)
        retention = (
            HistoryRetention()
            if config.history_revisions is None
            else HistoryRetention(revisions=config.history_revisions)
        )
        self.watches = WatchCheck(self.checker.violations, retention.revisions)
        self._point_seen: tuple[int, int] = (-1, 0)  # the last point of the log judged
        self._judges_points = config.lock_clients > 0 or config.watch_clients > 0
        self.replicas = ReplicaObserver(self, replica_factory)
        self.stats = SimStats(faults={kind: 0 for kind in FAULT_KINDS})
        self.history: list[HistoryOp] = []
        self._fsync_max_s = self.rng_faults.uniform(0.0005, FSYNC_MAX_S)
        self._storage_config = storage_config(config.segment_max_bytes)
        self._node_config = NodeConfig(
            cluster_id="sim",
            alpha=config.alpha,
            tick_interval_s=config.tick_s,
            replica=config.replica_config,
            snapshot_interval_slots=config.snapshot_interval_slots,
            snapshot_chunk_bytes=config.snapshot_chunk_bytes,
            snapshot_resend_s=1.0,
            request_timeout_s=config.client_timeout_s,
            history=retention,
        )
        self.hosts = {node_id: self._new_host(node_id) for node_id in self.members}
        self.clients = Clients(self, seed)
        self.lease_clients = LeaseClients(self, seed)
        self.lock_clients = LockClients(self, seed)
        self.watch_clients = WatchClients(self, seed)
        self.operator = Operator(self, seed)
        self.healed_at: float | None = None
        self._chosen_at_heal = 0
        self._done = False
        # When the last snapshot chunk on each link arrives (they stay in order).
        self._stream_tail: dict[tuple[int, int], float] = {}
        # The newest stamp handed out for a peer entry made (``link_stamp``).
        self._link_stamp = 0
        self._logger = self._make_logger()

    # ------------------------------------------------------------------ run

    def run(self) -> SimStats:
        self.start()
        self.run_until(float("inf"))
        self.close()
        return self.stats

    def start(self) -> None:
        config = self.config
        for host in self.hosts.values():
            if host.node_id in self.joining:
                self._join_once_added(host)
                continue
            self.faults.disk.arm_creation_cut(host)
            self._start_process(host)
        self.clients.start()
        self.lease_clients.start()
        self.lock_clients.start()
        self.watch_clients.start()
        self.operator.start()
        self.aims.lease_removal.start()
        self.aims.lone_voter.start()
        self.faults.start()
        self.leader_stop.start()
        self.unheard_moment.start()
        self.push(config.fault_phase_s, self._heal_everything)
        if "reconfig" in config.faults:
            self.later(SAMPLE_S, self._sample_removed_leaders)
        self.push(config.fault_phase_s + config.heal_phase_s, self._finish)

    def run_until(self, time: float) -> bool:
        """Run events and node loops up to simulated ``time``; False once the run is over."""
        queue = self._queue
        hosts = list(self.hosts.values())
        while not self._done:
            # The process due first (ties: the lowest node id), against the next event.
            due_host: Host | None = None
            due_at = float("inf")
            for host in hosts:
                process = host.process
                if process is None or host.paused_until > self.time:
                    continue
                local = process.loop.next_due()
                if local is None:
                    continue
                at = max(self.time, (local - host.clock_offset) / host.clock_rate + _DUE_SLACK_S)
                if at < due_at:
                    due_host, due_at = host, at
            event_at = queue[0][0] if queue else float("inf")
            if min(due_at, event_at) > time:
                break
            self.stats.steps += 1
            try:
                if due_host is not None and due_at < event_at:
                    self.time = due_at
                    assert due_host.process is not None
                    due_host.process.loop.run_turn()
                else:
                    self.time, _, action = heapq.heappop(queue)
                    action()
            except PowerCut:
                # A process whose power failed inside a disk operation (``SimDisk``)
                # unwinds no further: it was crashed at the cut.
                if not any(host.fs.power_is_cut for host in hosts):
                    raise
        self.stats.slots_chosen = len(self.checker.chosen)
        self.stats.commands_chosen = sum(
            len(value.commands) for value in self.checker.chosen.values()
        )
        self.stats.configs_chosen = self.checker.configs.changes_chosen
        self.stats.leases = {**self.leases.counts, **self.lease_clients.counts}
        self.stats.coordination = {
            **self.locks.counts,
            **self.lock_clients.counts,
            **self.watches.counts,
        }
        return not self._done

    def crash(self, node_id: int) -> None:
        """Crash a node now; it restarts by itself a little later."""
        host = self.hosts[node_id]
        if host.process is not None:
            self.crash_host(host, "scripted")

    def at(self, time: float, action: Callable[[RuntimeCluster], None]) -> None:
        """Run ``action(cluster)`` at simulated ``time`` (for scripted scenarios)."""
        self.push(time, lambda: action(self))

    def leader(self) -> int | None:
        """The up node that believes it leads with the highest ballot, if any."""
        best: tuple[Any, int] | None = None
        for host in self.hosts.values():
            node = self.node_of(host)
            if node is None or not node.is_leader:
                continue
            ballot = node._replica.ballot_own
            if best is None or ballot > best[0]:
                best = (ballot, host.node_id)
        return None if best is None else best[1]

    def node(self, node_id: int) -> Node | None:
        """The running node on ``node_id``'s host, if it is up."""
        return self.node_of(self.hosts[node_id])

    # ------------------------------------------------------------------ hooks

    def later(self, delay: float, action: Callable[[], None]) -> None:
        self.push(self.time + delay, action)

    def disk_times(self, host: Host) -> tuple[float, float]:
        """How long the next write and its fsync take on ``host``'s disk."""
        rng = self.rng_disk
        return 0.00005 + 0.0002 * rng.random(), self._fsync_max_s * (0.2 + 0.8 * rng.random())

    def send(self, src: int, message: PeerMessage) -> None:
        """A peer message leaves ``src`` (its transport's ``send``).

        Protocol messages meet every fault of the network, reordering and
        duplication included (the core is built for that). A snapshot's chunks
        are a stream over one TCP connection, as in production: they may be
        lost (the connection broke), never duplicated or reordered."""
        if isinstance(message, TimeoutNow):
            self.healing.on_handover(self.time)
        delays = self.network.delays(src, message.dst)
        if delays and isinstance(message, TimeoutNow):
            delays += [delays[0] + lag for lag in self.aims.timeout_now_lags()]
        if isinstance(message, SnapshotChunk):
            carried = self._over_the_wire(src, message) if delays else None
            stalled = isinstance(carried, SnapshotChunk) and self.stalled_chunk.holds(src, carried)
            if carried is not None and not stalled:
                message = carried
                link = (src, message.dst)
                at = max(self.time + delays[0], self._stream_tail.get(link, 0.0))
                self._stream_tail[link] = at
                sent = self._link_stamp
                self.push(at, lambda: self.deliver_peer(src, message, sent))
            return
        self.checker.on_send(message, self.time)
        self.properties.on_send(src, message, self.time)
        self._check_bound(src, message.dst)
        if delays and (
            self.faults.lose_prepare(message)
            or self.faults.hold(src, message)
            or self._lost_for_a_bare_election(src, message)
            or self.split_slot.drops(src, message)
            or self.lagging_candidate.drops(src, message)
        ):
            return
        if not delays:
            return
        carried = self._over_the_wire(src, message)
        if carried is None:
            return
        sent = self._link_stamp
        for delay in delays:
            self.push(self.time + delay, lambda: self.deliver_peer(src, carried, sent))

    def _lost_for_a_bare_election(self, src: int, message: PeerMessage) -> bool:
        """Whether ``message``, a candidate's Prepare, is lost for a bare election:
        an aimed ballot's (``aims``), else perhaps a drawn one's (``membership_faults``)."""
        aimed = self.aims.lose_prepare(src, message)
        if aimed is not None:
            return aimed
        return self.membership_faults.lose_prepare(src, message)

    def _over_the_wire(self, src: int, message: PeerMessage) -> PeerMessage | None:
        """``message`` as the real transport carries it: encoded to a frame body
        by the sender, decoded by the receiver with the peer link's type codes;
        None if it could not be carried (the real sender drops a frame too large,
        the receiver a frame it cannot decode). Either, or a message that comes
        out different from what went in, is a ``wire`` violation: a node never
        sends what the wire cannot carry, and the codec changes nothing."""
        try:
            carried = decode_body(encode_body(message, _FRAME_MAX_BYTES), PEER_CODES)
        except (FrameTooLarge, DecodeError) as error:
            self.checker.fail(self.time, "wire", f"n{src} sent {type(message).__name__}: {error}")
            return None
        if carried != message:
            self.checker.fail(
                self.time, "wire", f"n{src} sent {message!r}, the wire carried {carried!r}"
            )
        assert isinstance(carried, PeerMessage)
        return carried

    def link_up(self, src: int, dst: int) -> bool:
        """The real transport's link from ``src`` to ``dst`` is up: each names the other
        as a peer (the smaller dials only its peers, the larger accepts only its
        peers' handshakes). A ``dst`` that is down says nothing here: the network
        delivers to its next life, if that life takes ``src`` (``deliver_peer``)."""
        sender = self._transport_of(src)
        if sender is None or not sender.has_peer(dst):
            return False
        receiver = self._transport_of(dst)
        return receiver is None or receiver.has_peer(src)

    def unsent(self, src: int, message: PeerMessage) -> None:
        # The node's own rules (a Promise only to a voter, durable before it
        # leaves, ...) hold for what it tries to send, link or no link; the
        # safety checker counts only what can arrive.
        if not isinstance(message, SnapshotChunk):
            self.properties.on_send(src, message, self.time)

    def link_stamp(self) -> int:
        self._link_stamp += 1
        return self._link_stamp

    def runs(self, node_id: int) -> bool:
        return self._transport_of(node_id) is not None

    def _transport_of(self, node_id: int) -> SimTransport | None:
        """The transport of ``node_id``'s running process, once its node made it."""
        host = self.hosts.get(node_id)
        process = None if host is None else host.process
        if process is None:
            return None
        transport = getattr(process.node, "_transport", None)
        return transport if isinstance(transport, SimTransport) else None

    def sent_to_self(self, node_id: int, message: Message) -> None:
        self.checker.on_send(message, self.time)
        self.properties.on_send(node_id, message, self.time)

    def crash_point(self, host: Host, where: str) -> bool:
        """Whether to crash ``host`` here, between two steps of its runtime (and do it)."""
        return self.faults.crash_point(host, where)

    def storage_crash_point(self, host: Host, where: str) -> bool:
        """Whether to crash ``host`` right after a rare storage event (and do it)."""
        return self.faults.disk.storage_crash_point(host, where)

    def send_to_client(self, src: int, client: int, response: ClientResponse) -> None:
        receive: Callable[[ClientResponse], None]
        if client == self.operator.endpoint:
            receive = self.operator.receive
        elif self.lease_clients.holds(client):
            receive = functools.partial(self.lease_clients.receive, client)
        elif self.lock_clients.holds(client):
            receive = functools.partial(self.lock_clients.receive, client)
        elif self.watch_clients.holds(client):
            receive = functools.partial(self.watch_clients.receive, client)
        else:
            receive = functools.partial(self.clients.receive, client)
        for delay in self.network.delays(src, client):
            self.push(self.time + delay, lambda: receive(response))

    def on_records_durable(self, host: Host, records: Sequence[StorageRecord]) -> None:
        self.properties.on_records_durable(host.node_id, records, self.time)
        self.faults.disk.crash_again.synced(host)

    def on_apply(self, node_id: int, entry: ChosenEntry) -> None:
        self.checker.on_apply(node_id, entry.slot, entry.value, self.time)

    def on_effects(self, node_id: int, entry: ChosenEntry, fresh: list[tuple[int, int]]) -> None:
        if not fresh:
            return
        commands = {(c.client_id, c.seq): c for c in entry.value.commands}
        for key in fresh:
            self.checker.on_effect(node_id, commands[key], self.time)

    def on_point(
        self,
        order: tuple[int, int],
        store: KvStore,
        command: tuple[int, int] | None = None,
        reply: bytes | None = None,
    ) -> None:
        """A replica applied the point ``order`` of the log (a command applied
        fresh with ``reply``, or a clock entry): the first to reach it has the
        lock watch and the watch check judge it, from ``store`` after it."""
        if not self._judges_points or order <= self._point_seen:
            return
        self._point_seen = order
        self.locks.on_point(order, store, self.time, command, reply)
        if self.config.watch_clients:
            self.watches.on_point(store, self.time)

    def on_restore(self, node_id: int, slot: int) -> None:
        self.checker.on_restore(node_id, slot)
        process = self.hosts[node_id].process
        if process is not None and process.started:
            self.stats.snapshots_installed += 1
            self.faults.release_held(f"n{node_id} installs a snapshot")
        else:
            self.stats.snapshots_recovered += 1
        self.log(f"n{node_id} restored a snapshot: applied through slot {slot}")

    def crash_host(self, host: Host, why: str, *, restart_in: float | None = None) -> None:
        """Crash ``host`` (its power lost); it restarts ``restart_in`` seconds
        later, or after a drawn 0.05-1.55 s."""
        process = host.process
        if process is None:
            return
        role = process.node._replica.role.value if process.started else "starting"
        self._retire(process)
        process.loop.bury()
        host.process = None
        host.incarnation += 1
        host.crash_in_fsync = False
        host.paused_until = 0.0
        if host.fs.power_is_cut:
            # Cut inside a disk call: the rest of that call stack unwinds first
            # (every disk call raises PowerCut meanwhile), then the disk crashes.
            self.push(self.time, lambda: self.faults.disk.power_off(host))
        else:
            self.faults.disk.power_off(host)
        self.log(f"fault: crash n{host.node_id} ({why}, role {role})")
        if restart_in is None:
            restart_in = 0.05 + 1.5 * self.rng_faults.random()
        self.push(self.time + restart_in, lambda: self.restart(host))

    def stop_gracefully(self, host: Host, *, io_fault: bool = True) -> None:
        """Stop ``host``'s node as ``paxon serve`` does on SIGTERM (``Node.stop``:
        finish the fsync in flight, close the data directory), then start it again.
        ``io_fault``: the fsync in flight may fail (not after the heal)."""
        process = host.process
        assert process is not None
        process.stopping = True
        self.log(f"fault: stop n{host.node_id} (a graceful restart)")
        syncing = isinstance(committer := process.node._committer, SimCommitter) and (
            committer.syncing
        )
        if (
            io_fault
            and syncing
            and not host.io_error
            and self._rng_stop_io.random() < _IO_ERROR_IN_STOP
        ):
            # The disk fails while the node shuts down: the fsync in flight.
            host.fs.fail("fdatasync", path_contains="/wal-")
            host.io_error = True
            process.io_fault = True
            self.log(f"fault: the next fsync of n{host.node_id}'s log fails (EIO)")
        stop = process.loop.create_task(process.node.stop())

        def stopped(task: Any) -> None:
            if host.process is not process:
                return  # crashed while stopping
            error = None if task.cancelled() else task.exception()
            if isinstance(error, StorageError):
                # Its log had failed (an injected I/O error) and the stop
                # reports it, as ``paxon serve`` exits non-zero; the process is
                # gone. (The committer's close catches a failed last sync, as
                # GroupCommitter's does; the log then closes unsynced.)
                self.crash_host(host, f"stopped with a failed log: {error}")
                return
            if host.io_error and not host.fs.clear_faults():
                # The fsync in flight failed while it stopped (the stop closed
                # a failed log): its page cache is not to be trusted.
                host.io_error = False
                self.crash_host(host, "stopped after an I/O error on its log")
                return
            host.io_error = False
            if error is not None:
                self.checker.fail(self.time, "stop", f"n{host.node_id} failed to stop: {error!r}")
            self._retire(process)
            process.loop.bury()
            host.process = None
            host.incarnation += 1
            host.crash_in_fsync = False
            host.paused_until = 0.0
            self.properties.on_crash(host.node_id, self.time)
            self.log(f"n{host.node_id} stopped")
            back = self.time + 0.05 + 0.5 * self.rng_stop.random()
            self.push(back, lambda: self.restart(host))

        stop.add_done_callback(stopped)

    # ------------------------------------------------------------------ wipes and incarnations

    def wipe(self, host: Host, incarnation: int) -> None:
        """``host`` comes back on an empty disk with a new data-directory
        ``incarnation``, started with the same flags (the operator's mistake:
        same id, empty disk). Crashed first if it runs; its restart is the
        one the crash (or the earlier one) scheduled."""
        if host.process is not None:
            self.crash_host(host, "its disk is wiped")
        host.fs = SimDisk()
        self._wire_disk(host)
        host.data_incarnation = incarnation
        host.accepts.clear()
        host.replaced.clear()
        self.faults.disk.forget_disk(host.node_id)
        self.properties.on_wipe(host.node_id, self.time)
        self.stats.faults["wipe"] += 1
        self.log(f"fault: wipe n{host.node_id}'s disk; new incarnation {incarnation:#x}")

    def handshake_refused(self, a: int, b: int, *, dropping: bool = False) -> bool:
        """Whether the link between ``a`` and ``b`` is refused: either side's
        bindings name the other with another incarnation than its disk's
        (``dropping``: a message is lost to it, counted)."""
        host_a, host_b = self.hosts.get(a), self.hosts.get(b)
        if host_a is None or host_b is None:
            return False
        refused = refuses(host_a, host_b) or refuses(host_b, host_a)
        if refused and dropping:
            faults = self.stats.faults
            faults["incarnation-refused"] = faults.get("incarnation-refused", 0) + 1
        return refused

    def data_incarnation(self, node_id: int) -> int:
        return self.hosts[node_id].data_incarnation

    def _link_admits(self, src: int, dst: int) -> bool:
        """Whether a message from ``src`` may reach ``dst`` now (a refused
        handshake drops the link and what is in flight on it); checks the
        receiver's configuration too (``incarnation-bound``)."""
        if self.handshake_refused(src, dst, dropping=True):
            return False
        self._check_bound(dst, src)
        return True

    def _check_bound(self, node_id: int, peer: int) -> None:
        """``incarnation-bound``: a node exchanges messages with a peer only if
        its newest configuration binds that peer to the data directory the
        peer runs on, or not at all (docs/membership.md, "Incarnations")."""
        node = self.node(node_id)
        host = self.hosts.get(peer)
        if node is None or host is None:
            return
        for member in node._replica.configuration_newest.members:
            if member.node_id != peer:
                continue
            if member.incarnation is not None and member.incarnation != host.data_incarnation:
                self.checker.fail(
                    self.time,
                    "incarnation-bound",
                    f"n{node_id} exchanged a message with n{peer}, whose data directory is "
                    f"{host.data_incarnation:#x}, but its newest configuration (epoch "
                    f"{node._replica.configuration_newest.epoch}) binds n{peer} to "
                    f"{member.incarnation:#x}: a wiped member accepted back",
                )
            return

    def refused_members(self) -> frozenset[int]:
        """Nodes a configuration chosen from the chosen prefix on binds to another
        data directory than the one they run on (wiped): refused by the others
        (``Node._follow_incarnations``: the oldest binding a node holds counts)
        until an operator removes them and the removal takes effect."""
        refused = set()
        for configuration in self.checker.configs.ahead_known_at(self._chosen_prefix()):
            for member in configuration.members:
                host = self.hosts.get(member.node_id)
                if (
                    member.incarnation is not None
                    and host is not None
                    and member.incarnation != host.data_incarnation
                ):
                    refused.add(member.node_id)
        return frozenset(refused)

    # ------------------------------------------------------------------ processes

    def _open_storage(self, host: Host, cluster_id: str) -> Storage:
        """The node's storage, recovered; what recovery found is durable now.

        Written bytes a crash did not tear survive without their fsync: the
        checkers learn them here, as the node does."""
        disks = {other.node_id: other.fs for other in self.hosts.values()}
        self.wrong_disk.on_restart(host.node_id, disks, cluster_id, self._storage_config, self.time)
        directory = f"/node{host.node_id}"
        storage = self.offline_check.open_checked(
            host.node_id,
            directory,
            host.fs,
            self._storage_config,
            lambda: Storage.open(
                directory,
                node_id=host.node_id,
                cluster_id=cluster_id,
                fs=host.fs,
                config=self._storage_config,
                incarnation=host.data_incarnation,
            ),
            self.time,
        )
        self.properties.on_recovered(
            host.node_id,
            storage.recovered.state,
            self.time,
            snapshot_struck=self.faults.disk.snapshot_struck(host.node_id),
        )
        return storage

    def _new_host(self, node_id: int) -> Host:
        drift = "drift" in self.config.faults
        most = self.config.drift_rate_max
        rate = 1.0 + (self.rng_faults.uniform(-most, most) if drift else 0.0)
        offset = self.rng_faults.uniform(0, 100) if drift else 0.0
        if drift:
            self.stats.faults["drift"] += 1
        host = Host(node_id, SimDisk(), rate, offset, data_incarnation=node_id)
        self._wire_disk(host)
        return host

    def _wire_disk(self, host: Host) -> None:
        host.fs.on_power_cut = lambda at: self.crash_host(host, f"power cut at {at}")
        host.fs.at_storage_event = functools.partial(self.faults.disk.storage_event_strikes, host)

    def wall_ms(self, node_id: int) -> int:
        """Node ``node_id``'s wall clock now, in milliseconds, as its log clock
        reads it (for a planted bug that reads its own clock)."""
        return int((_WALL_EPOCH_S + self._local_now(self.hosts[node_id])) * 1000)

    def _local_now(self, host: Host) -> float:
        return host.clock_offset + host.clock_rate * self.time

    def _start_process(self, host: Host) -> None:
        incarnation = host.incarnation
        node_id = host.node_id

        def clock() -> float:
            return self._local_now(host)

        def defer(work: Callable[[], None]) -> None:
            def run() -> None:
                if host.incarnation == incarnation and host.process is not None:
                    newest = _newest_snapshot(host)
                    work()
                    self._judge_compaction(host, newest)
                    if _new_snapshot_over_log(host, newest) and self.storage_crash_point(
                        host, SNAPSHOT_OVER_REACCEPT if _over_reaccept(host) else SNAPSHOT_TAKEN
                    ):
                        return
                    self.crash_point(host, "work on a thread done, loop not told")

            self.push(self.time + 0.0001 + 0.002 * self.rng_disk.random(), run)

        def transport(**settings: Any) -> SimTransport:
            return SimTransport(self, host, settings)

        loop = SimLoop(clock, defer, functools.partial(self._on_loop_error, host))
        environment = Environment(
            open_storage=lambda _dir, _id, cluster_id: self._open_storage(host, cluster_id),
            make_committer=lambda storage, _observe: SimCommitter(
                self, host, storage, sync_here=self.config.sync_here
            ),
            make_transport=transport,
            make_rng=lambda: random.Random(f"{self.seed}:node{node_id}:{incarnation}"),
            replica_factory=self.replicas.factory(host, incarnation),
            stopwatch=clock,
            monotonic=clock,
        )
        peers, joined = self._serve_flags(host)
        node = self._observed_node_class(
            node_id,
            peers,
            f"/node{node_id}",
            KvStore(),
            joined=joined,
            config=self._node_config,
            logger=self._logger.getChild(f"n{node_id}"),
            wall_time_s=lambda: _WALL_EPOCH_S + self._local_now(host),
            environment=environment,
        )
        store = None if self._store_factory is None else self._store_factory(self, node_id)
        node.machine = ObservedMachine(self, node_id, node._initial, store)
        process = Process(loop, node)
        host.process = process
        task = loop.create_task(node.start())

        def started(task: Any) -> None:
            if host.process is not process:
                return
            error = None if task.cancelled() else task.exception()
            fault = self.faults.disk.take_disk_fault(node_id)
            snapshot = None if error is not None else node._storage.recovered.snapshot
            started_from = (0, 0) if snapshot is None else (snapshot.lsn, snapshot.slot)
            raised = error if isinstance(error, Exception) else None
            wrong = check_recovery(fault, raised, started_from)
            if wrong is not None:
                self.checker.fail(self.time, "recovery", f"n{node_id}: {wrong}")
            if error is None:
                process.started = True
                loop.create_task(self._watch_failure(host, process))
                self.faults.disk.crash_again.started(host)
                return
            self._on_start_failed(host, error)

        task.add_done_callback(started)

    async def _watch_failure(self, host: Host, process: Process) -> None:
        error = await process.node.wait_failed()
        if process.stopping and host.io_error and isinstance(error, StorageError):
            return  # stopping already: the stop ends it (``stop_gracefully``)
        if host.process is process and host.io_error and isinstance(error, StorageError):
            host.io_error = False
            # ``paxon serve`` stops the node on its way out (``Node.stop``: the
            # failed log is closed unsynced); the page cache is not to be
            # trusted, so the disk then goes as in a crash.
            process.stopping = True
            stop = process.loop.create_task(process.node.stop())

            def stopped(_task: Any) -> None:
                if host.process is process:
                    self.crash_host(host, "stopped on an injected I/O error")

            stop.add_done_callback(stopped)
        elif host.process is process:
            self.checker.fail(self.time, "node-stopped", f"n{host.node_id} stopped on {error!r}")
            self.crash_host(host, "stopped on an internal error")

    def _on_start_failed(self, host: Host, error: BaseException) -> None:
        if host.process is not None:
            host.process.loop.bury()
        host.process = None
        if isinstance(error, StorageError):
            # Refused rightly (a damaged disk) or wrongly (checked above): either
            # way the node cannot come back as itself; it stays down.
            host.dead = f"recovery refused the disk: {error}"
        else:
            self.checker.fail(self.time, "start", f"n{host.node_id} failed to start: {error!r}")
        self.log(f"n{host.node_id} did not start: {error!r}")

    def _on_loop_error(self, host: Host, loop: SimLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        message = context.get("message", "")
        if host.process is None or host.process.loop is not loop:
            return  # a crashed process's tasks, collected with it
        self.checker.fail(self.time, "exception", f"n{host.node_id}: {message} {error!r}".strip())

    def _judge_compaction(self, host: Host, before: str | None) -> None:
        """``log-compacted``: once a snapshot newer than ``before`` is written, no
        live segment lies wholly at or below the oldest snapshot kept, which
        ``Storage`` deletes in the same call (``_retire_old``). A log that
        compaction never frees grows the disk for good, which no other rule
        sees (s30 sample, ``storage.py:419``: a restart that misread which
        segments are sealed kept every one of them)."""
        storage = _storage_of(host)
        snapshots = [] if storage is None else storage.snapshots()
        if storage is None or not snapshots or snapshots[-1].name == before:
            return
        oldest = snapshots[0].lsn
        segments = storage.segments()
        kept = [
            name for (name, _), (_, next_first) in pairwise(segments) if next_first - 1 <= oldest
        ]
        if kept:
            self.checker.fail(
                self.time,
                "log-compacted",
                f"n{host.node_id} wrote snapshot {snapshots[-1].name} and still holds "
                f"{', '.join(kept)}, whose records are all at or below lsn {oldest}, the "
                "oldest snapshot it keeps",
            )

    def _join_once_added(self, host: Host) -> None:
        """A joining spare's first start: once a member's newest configuration
        names it, as ``paxon serve --join`` refuses to start before (looked
        at again every ``JOIN_RETRY_S``, as a service manager starts it again)."""
        if host.process is not None or host.dead is not None:
            return
        if self._join_configuration(host.node_id) is None:
            self.later(JOIN_RETRY_S, lambda: self._join_once_added(host))
            return
        self.faults.disk.arm_creation_cut(host)
        self._start_process(host)

    def _serve_flags(self, host: Host) -> tuple[dict[int, tuple[str, int]], Configuration | None]:
        """The members ``host``'s node starts with, and the configuration it
        joins with, as ``paxon serve`` decides them (``server/serve.py``): a
        first member or a spare on --peers names the first members and itself
        (docs/membership.md); a joining spare whose directory holds no state
        (``node/join.held_state``: never started, wiped, or stopped before it
        kept FIRST-CONFIG) joins with the newest configuration naming it, and
        one whose directory does ignores --join and names only itself."""
        node_id = host.node_id
        if node_id not in self.joining:
            named = sorted({*self.first_members, node_id})
            return {member: ("sim", member) for member in named}, None
        if held_state(f"/node{node_id}", host.fs) is not None:
            return {node_id: ("sim", node_id)}, None
        joined = self._join_configuration(node_id)
        assert joined is not None, "a joining spare started before it was added"
        self.joined_with[node_id] = joined
        self.log(f"n{node_id} joins with configuration {joined.epoch}")
        return {member.node_id: ("sim", member.node_id) for member in joined.members}, joined

    def _join_configuration(self, node_id: int) -> Configuration | None:
        """What ``node.join.fetch_configuration`` returns: the newest
        configuration a running member holds, if it names ``node_id`` (the
        simulator asks every running node, over no network)."""
        newest: Configuration | None = None
        for other in self.hosts.values():
            node = self.node_of(other)
            if node is None or other.node_id == node_id:
                continue
            held = node._replica.configuration_newest
            if newest is None or held.epoch > newest.epoch:
                newest = held
        return newest if newest is not None and node_id in newest.ids else None

    def restart(self, host: Host) -> None:
        """Start ``host``'s node again from its disk (unless it is up, or dead for the run)."""
        if host.process is not None or host.dead is not None:
            return
        if (
            host.node_id in self.joining
            and held_state(f"/node{host.node_id}", host.fs) is None
            and self._join_configuration(host.node_id) is None
        ):
            # --join on a directory with no state, and no member names it
            # (removed meanwhile): refused; its service manager tries again.
            self.later(JOIN_RETRY_S, lambda: self.restart(host))
            return
        self.checker.on_restart(host.node_id)
        self.log(f"restart n{host.node_id}")
        self._start_process(host)
        self.faults.release_held(f"n{host.node_id} restarts")

    def _retire(self, process: Process) -> None:
        """Keep a replica's refusal counts before it is replaced or the run ends,
        and judge its snapshots (``snapshot-written``)."""
        if not process.started:
            return
        counters = process.node._replica.counters
        for name, count in dataclasses.asdict(counters).items():
            self.stats.refused[name] = self.stats.refused.get(name, 0) + count
        # A snapshot the node started and could not write, with no I/O error
        # injected in this life: the runtime logs it and goes on with a log it
        # cannot compact, which no other rule sees (s18 sample, wal.py:94).
        failed = process.node.metrics.registry.get_sample_value("paxon_snapshot_failures_total")
        if failed and not process.io_fault:
            self.checker.fail(
                self.time,
                "snapshot-written",
                f"n{process.node.node_id} failed to write {failed:.0f} snapshot(s) in this "
                "life, with no I/O error injected",
            )

    def node_of(self, host: Host) -> Node | None:
        """The running node on ``host``, if it has started."""
        process = host.process
        if process is None or not process.started:
            return None
        return process.node

    # ------------------------------------------------------------------ delivery

    def deliver_peer(self, src: int, message: PeerMessage, sent: int | None = None) -> None:
        """``message`` from ``src`` arrives; ``sent``: the link stamp when it left (None:
        a held message, let go late on purpose, which only needs a link now)."""
        host = self.hosts.get(message.dst)
        if host is None:
            detail = f"n{src} sent to node {message.dst}, which is not a member"
            self.checker.fail(self.time, "non-member", detail)
            return
        process = host.process
        if process is None or not process.started:
            return
        if host.paused_until > self.time:
            self.hold_while_paused(host, lambda: self.deliver_peer(src, message, sent))
            return
        if not self._link_admits(src, message.dst):
            return
        transport = process.node._transport
        assert isinstance(transport, SimTransport)
        linked_since = transport.linked_since(src)
        if linked_since is None or (sent is not None and linked_since > sent):
            return  # it hung up on src, or the link it came over is gone: lost
        process.loop.call_soon(transport.on_peer_message, message)

    def hold_while_paused(self, host: Host, deliver: Callable[[], None]) -> None:
        """Held in the socket buffer until the paused node runs again, in order:
        let in at the pause's planned end, or sooner by ``let_in_now``."""
        held = host.held_while_paused
        while held and held[0].done:
            held.popleft()
        entry = HeldWhilePaused(deliver)
        held.append(entry)
        self.push(host.paused_until, entry.let_in)

    def let_in_now(self, host: Host) -> None:
        """The heal ended ``host``'s pause early: what its socket buffers held
        arrives now, in order, before anything sent later, as it would on a
        node that runs again (not at the pause's planned end, where it once
        deposed the leader the cluster had settled on since: swarm seed
        12000083, ``quiet-stable``)."""
        waiting = [entry for entry in host.held_while_paused if not entry.done]
        host.held_while_paused.clear()

        def let_all_in() -> None:
            for entry in waiting:
                entry.let_in()

        if waiting:
            self.push(self.time, let_all_in)

    def deliver_request(self, client: int, node_id: int, request: ClientRequest) -> None:
        host = self.hosts[node_id]
        process = host.process
        if process is None or not process.started:
            return  # connection refused: the client times out and moves on
        if host.paused_until > self.time:
            self.hold_while_paused(host, lambda: self.deliver_request(client, node_id, request))
            return
        transport = process.node._transport
        assert isinstance(transport, SimTransport)
        plain = Connection(self, host, host.incarnation, client)
        connection: Connection | JudgedAnswers = plain
        if isinstance(request, ChangeMembers):
            connection = self.change_answers.watch(plain, request, lambda: self.node_of(host))
        process.loop.call_soon(transport.on_client_request, connection, request)

    # ------------------------------------------------------------------ heal and finish

    def _heal_everything(self) -> None:
        self.faults.end_all()
        self.membership_faults.end()
        self.unheard_moment.end()
        self.healed_at = self.time
        self._chosen_at_heal = self._chosen_prefix()
        self.log(f"heal: all faults end; chosen prefix {self._chosen_at_heal}")
        self._settle_from = self._chosen_at_heal
        self.healing.on_heal(self.time)
        self._sample_settled()
        self._judge_roles()

    def heal_again(self) -> None:
        """An aimed stop after the heal of the node nobody can take over from
        (``lone_voter``), a settled leader outbid by a learner added back
        (``observe``), or a settled leader asked to remove itself
        (``lease_removal``): the cluster must settle again
        (``HealWatch.on_restart``)."""
        settled = self.healing.settled_at is not None
        self.healing.on_restart(self.time)
        self._settle_from = self._chosen_prefix()
        if settled:  # else the samples still run
            self._sample_settled()

    def _sample_settled(self) -> None:
        """Tell the heal watch what each live member is, until the cluster settles."""
        if self._done or self.healing.settled_at is not None:
            return
        if not self._membership_settled():
            # A change chosen before the heal still takes effect, a removed
            # leader hands over after it, and a transfer the operator asked for
            # just before the heal moves the leader: not settled until done.
            self.healing.sample([], self.time)
            self.later(_SETTLE_SAMPLE_S, self._sample_settled)
            return
        states = []
        kept = self.kept_members()
        for host in self.hosts.values():
            if host.dead is not None or host.node_id not in kept:
                continue
            node = self.node_of(host)
            # A graceful stop begun before the heal may outlast it (waiting to
            # hand over): that node counts as down until it is back, so the
            # cluster is not settled on it (swarm seeds 315 and 7334).
            stopping = host.process is not None and host.process.stopping
            if node is None or stopping:
                states.append(NodeState(host.node_id, None, BALLOT_ZERO, BALLOT_ZERO))
            else:
                replica = node._replica
                states.append(
                    NodeState(
                        host.node_id,
                        replica.role,
                        replica.ballot_own,
                        replica.ballot_promised,
                        replica.leader_id,
                    )
                )
        self.healing.sample(states, self.time)
        self.later(_SETTLE_SAMPLE_S, self._sample_settled)

    def _sample_removed_leaders(self) -> None:
        """Tell the handover watch which removed nodes still lead, and whether
        the world lets each reach a majority of the new voters."""
        if self._done:
            return
        leaders = []
        for host in self.hosts.values():
            node = self.node_of(host)
            if node is None or not node.is_leader:
                continue
            replica = node._replica
            if replica.node_id in replica.configuration_newest.voters:
                continue
            in_effect = replica.configuration.voters
            reached = [v for v in in_effect if self._world_links(host.node_id, v)]
            leaders.append(
                RemovedLeader(
                    host.node_id,
                    removal_chosen=True,
                    removal_in_effect=replica.node_id not in in_effect,
                    reaches_majority=len(reached) > len(in_effect) // 2,
                )
            )
        self.handover.sample(leaders, self.time)
        self.later(SAMPLE_S, self._sample_removed_leaders)

    def _world_links(self, a: int, b: int) -> bool:
        """Whether the simulated world lets ``a`` and ``b`` talk now: both up and
        running, neither paused, no partition cutting either way."""
        for node_id in (a, b):
            host = self.hosts[node_id]
            process = host.process
            if process is None or not process.started or process.stopping:
                return False
            if host.paused_until > self.time or host.dead is not None:
                return False
        return not (self.network.is_cut(a, b) or self.network.is_cut(b, a))

    def _finish(self) -> None:
        self._done = True
        self.healing.finish(self.time)
        if "drift" not in self.config.faults:
            self.leases.finish(self.time, self.healed_at)
        for host in self.hosts.values():
            if host.process is not None:
                self._retire(host.process)
        if self.stats.heal_progress_s is None:
            self.checker.fail(
                self.time,
                "liveness",
                "no client operation completed within "
                f"{self.config.heal_phase_s}s after all faults healed",
            )
        kept = self.kept_members()
        for host in self.hosts.values():
            if host.dead is not None or host.node_id not in kept:
                continue
            node = self.node_of(host)
            applied = node.machine.slot_applied if node is not None else -1
            if applied < self._chosen_at_heal:
                self.checker.fail(
                    self.time,
                    "liveness",
                    f"n{host.node_id} applied only {applied} slots "
                    f"{self.config.heal_phase_s}s after healing; {self._chosen_at_heal} "
                    "were chosen at heal time",
                )

        if self.healed_at is not None:
            judged = removed_in_time(
                self.checker.configs.removals(), self.healed_at, self.time, self.config
            )
            # A wiped node is refused by every member: it can hear of nothing.
            judged = [n for n in judged if self.hosts[n].data_incarnation == n]
            for detail in unaware_removed(judged, self._node_view):
                self.checker.fail(self.time, "removed-learns", detail)
        self._judge_memories()
        self._judge_roles()

    def _judge_roles(self) -> None:
        """``status-roles``: each live node's status shows each member's role as
        its newest configuration has it (``status_roles``); ``configs-forgotten``:
        its replica holds no configuration older than its log needs
        (``config_memory``); ``links-follow``: its transport links to exactly
        the peers its members and memory name (``Node._transport_peers``; a
        joiner that learns removed nodes by replaying the log links to them
        too)."""
        for host in self.hosts.values():
            node = None if host.dead is not None else self.node_of(host)
            if node is None:
                continue
            replica = node._replica
            forgotten = history_problem(node.node_id, replica._history, replica.log_start)
            if forgotten is not None:
                self.checker.fail(self.time, "configs-forgotten", forgotten)
            transport = node._transport
            assert isinstance(transport, SimTransport)
            linked = transport.peer_ids()
            wanted = set(node._transport_peers())
            if linked != wanted:
                self.checker.fail(
                    self.time,
                    "links-follow",
                    f"n{node.node_id} links to {sorted(linked)}, where its members, those "
                    f"just gone and those it remembers removed are {sorted(wanted)}",
                )
            for problem in role_problems(
                node.node_id,
                replica.role.value,
                node.status(),
                replica.configuration_newest,
                replica.removed_by_notice,
            ):
                self.checker.fail(self.time, "status-roles", problem)

    def _judge_memories(self) -> None:
        """``removed-remembered``: each live member, at the end, remembers the
        nodes its chosen prefix removed (``removed_learns.memory_problem``)."""
        configs = self.checker.configs
        for node_id in sorted(self.kept_members()):
            view = self._node_view(node_id)
            if view is None or self.hosts[node_id].data_incarnation != node_id:
                continue
            removed = configs.removed_known_at(view.slot_chosen)
            since_join = None
            if node_id in self.joined_with:
                since_join = configs.removed_known_at(view.slot_chosen, since_epoch=1)
            problem = memory_problem(view, removed, since_join)
            if problem is not None:
                self.checker.fail(self.time, "removed-remembered", problem)

    def _node_view(self, node_id: int) -> NodeView | None:
        host = self.hosts.get(node_id)
        node = None if host is None or host.dead is not None else self.node_of(host)
        if node is None:
            return None
        replica = node._replica
        return NodeView(
            node_id,
            replica.configuration_newest,
            replica.members,
            frozenset(replica.removed_addresses()),
            replica.slot_chosen,
            replica.log_start,
            replica.removed_by_notice,
        )

    def close(self) -> None:
        """Stop every process (after the run's last checks)."""
        for host in self.hosts.values():
            if host.process is not None:
                host.process.loop.bury()
                host.process = None
                host.incarnation += 1

    def _membership_settled(self) -> bool:
        """Whether one configuration holds from the chosen prefix on, the leader
        (if any) is one of its voters, and no leadership transfer is under way."""
        configs = self.checker.configs.ahead_known_at(self._chosen_prefix())
        leader = self.leader()
        if leader is None:
            return len(configs) == 1
        node = self.node(leader)
        moving = node is not None and node._replica.transferring_to is not None
        return len(configs) == 1 and leader in configs[0].voters and not moving

    def may_lose(self, node_id: int, lost: set[int]) -> bool:
        """Whether every configuration from the chosen prefix on, and every one the
        operator asked for that may yet be chosen, keeps a majority of its voters
        alive when ``node_id`` joins the ``lost`` nodes for good."""
        gone = lost | self.refused_members() | {node_id}
        configs = self.checker.configs.ahead_known_at(self._chosen_prefix())
        voter_sets = [c.voters for c in configs] + list(self.operator.voters_asked.values())
        return all(len(v & gone) <= len(v) - (len(v) // 2 + 1) for v in voter_sets)

    def kept_members(self) -> frozenset[int]:
        """Who must settle and catch up after the heal: the members of the
        configurations from the chosen prefix on (not a node removed, or never
        added), except a wiped one the others refuse (``refused_members``): as
        dead, until an operator replaces it."""
        members = self.checker.configs.members_from(self._chosen_prefix())
        return members - self.refused_members()

    def _chosen_prefix(self) -> int:
        slot = 0
        while slot in self.checker.chosen:
            slot += 1
        return slot

    # ------------------------------------------------------------------ helpers

    def push(self, time: float, action: Callable[[], None]) -> None:
        """Run ``action`` at simulated ``time`` (ties: in the order pushed)."""
        self._sequence += 1
        heapq.heappush(self._queue, (time, self._sequence, action))

    def log(self, line: str) -> None:
        """Add ``line`` to the trace, stamped with the time, when tracing."""
        if self.tracing:
            self.trace.append(f"{self.time:10.6f} {line}")

    def _make_logger(self) -> logging.Logger:
        """The nodes' logs: into the trace when tracing, else nowhere."""
        logger = logging.getLogger("paxon.sim.nodes")
        logger.propagate = False
        logger.handlers.clear()
        if self.tracing:
            cluster = self

            class _ToTrace(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    cluster.log(f"log {record.name.rsplit('.', 1)[-1]}: {record.getMessage()}")

            logger.addHandler(_ToTrace())
            logger.setLevel(logging.INFO)
        else:
            logger.setLevel(logging.CRITICAL + 1)
        return logger


# How often the heal watch looks whether the cluster has settled.
_SETTLE_SAMPLE_S = 0.01
# Of the graceful stops with a log fsync in flight, this share sees it fail.
_IO_ERROR_IN_STOP = 0.7


def _storage_of(host: Host) -> Storage | None:
    process = host.process
    if process is None:
        return None
    storage: Storage | None = getattr(process.node, "_storage", None)  # set in ``start``
    return storage


def _newest_snapshot(host: Host) -> str | None:
    """The name of the newest snapshot on ``host``'s running node's storage."""
    storage = _storage_of(host)
    snapshots = [] if storage is None else storage.snapshots()
    return snapshots[-1].name if snapshots else None


def _over_reaccept(host: Host) -> bool:
    """Whether the newest snapshot's lsn is an accept that replaced an older one
    of its slot, still in the log (a restart after the first apply snapshots
    over the log's tail: often such an accept, when it crashed right after it)."""
    storage = _storage_of(host)
    assert storage is not None
    log_start = storage.segments()[0][1]
    host.replaced = {lsn: old for lsn, old in host.replaced.items() if old >= log_start}
    replaced = host.replaced.get(storage.snapshots()[-1].lsn)
    return replaced is not None


def _new_snapshot_over_log(host: Host, before: str | None) -> bool:
    """Whether a snapshot newer than ``before`` is on disk with the log
    still reaching back to its lsn or before."""
    storage = _storage_of(host)
    snapshots = [] if storage is None else storage.snapshots()
    if storage is None or not snapshots or snapshots[-1].name == before:
        return False
    segments = storage.segments()
    return bool(segments) and segments[0][1] <= snapshots[-1].lsn


__all__ = ["RuntimeCluster"]
