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
  as a disk does; ``_SimCommitter`` plays the group committer, with the write
  and the fsync as separate events, so a power cut can fall between them;
- **network**: ``_SimTransport`` hands peer messages to ``SimNetwork`` (loss,
  duplication, delay, reordering, partitions); clients reach nodes the same
  way, through the native request types (``Submit``, ``Query``);
- **work on threads** (snapshot encoding, writing, checking): run by the
  simulator a little later, so it finishes in an order the seed picks.

A crash drops the whole process (its loop, pending work, unsynced bytes) and
restarts it from its disk. Beside crashes between events, the process faults
include a power cut *inside* a multi-step disk operation (a roll-over, a
snapshot write, a compaction, the repairs of a start-up: ``_SimDisk``), a
directory whose new names reach the disk without an fsync (a journal commit),
a graceful stop and restart (``Node.stop``, as on SIGTERM), and an I/O error
on a log fsync, after which the node must stop and comes back as after a crash.
The ``SafetyChecker`` watches every message that leaves a node (a node's
message to itself counts when the node takes it in) and every entry its state
machine applies; the client history goes to the linearizability checker. The
two phases are those of ``SimCluster``: faults, then healing, after which the
cluster must serve and catch every member up.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import logging
import os
import random
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from paxon.errors import Busy, NotLeader, PaxonError
from paxon.kv.store import KvStore
from paxon.net.client_messages import (
    ClientRequest,
    ClientResponse,
    Failure,
    Query,
    Redirect,
    Reply,
    Submit,
)
from paxon.net.peer_messages import PeerMessage, SnapshotChunk
from paxon.net.transport import TransportStats
from paxon.node.config import NodeConfig
from paxon.node.environment import Environment
from paxon.node.logclock import CLOCK_CLIENT_ID
from paxon.node.machine import Applied, ReplicatedMachine
from paxon.node.node import Node
from paxon.protocol.messages import Message
from paxon.protocol.ready import ChosenEntry, Ready
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import BALLOT_ZERO, Command
from paxon.sim import buggy
from paxon.sim.checkers import SafetyChecker
from paxon.sim.config import (
    FAULT_KINDS,
    PROCESS_FAULTS,
    HistoryOp,
    ReplicaFactory,
    SimConfig,
    SimStats,
)
from paxon.sim.healing import HealWatch, NodeState
from paxon.sim.loop import SimLoop
from paxon.sim.network import CLIENT_BASE, LinkFaults, SimNetwork
from paxon.sim.properties import PropertyChecker
from paxon.sim.storage_faults import KINDS as DISK_FAULT_KINDS
from paxon.sim.storage_faults import REFUSE, StorageFault, check_recovery, strike
from paxon.sim.timers import TimerChecker, snapshot
from paxon.sim.trace import describe
from paxon.sim.workload import (
    UnexpectedReply,
    cas_command,
    decode_reply,
    read_query,
    write_command,
)
from paxon.storage.codec import StorageRecord
from paxon.storage.config import StorageConfig
from paxon.storage.errors import StorageError
from paxon.storage.memfs import MemFileSystem, PowerCut
from paxon.storage.storage import Storage

# The log clock's epoch: wall time at simulated time 0 (any fixed value works).
_WALL_EPOCH_S = 1_800_000_000.0
# A node's loop is due at a global time a hair after its local deadline, so
# float rounding of a drifted clock never leaves a timer "almost due".
_DUE_SLACK_S = 1e-9


def _storage_config(segment_max_bytes: int) -> StorageConfig:
    """Storage of a simulated node: small segments (``SimConfig.segment_max_bytes``),
    so roll-overs happen often; records stay far above what a batch needs."""
    record_max = min(32 * 1024, segment_max_bytes // 2)
    return StorageConfig(
        segment_max_bytes=segment_max_bytes,
        record_max_bytes=record_max,
        snapshot_chunk_bytes=min(16 * 1024, record_max),
    )


class _SimDisk(MemFileSystem):
    """A host's disk whose power can fail *inside* a multi-step disk operation.

    Crashes between simulator events never split a roll-over, a snapshot
    write, a compaction or the repairs of a start-up: each runs in one event.
    ``arm_power_cut(n)`` makes the power fail at the ``n``-th mutating call
    counted from the next structural one (create, rename, unlink, truncate,
    fsync_dir, mkdir: calls only those operations make), so the cut lands
    between two of their steps. At the cut, ``on_power_cut`` is told at once
    (the process stops there) and the call raises ``PowerCut``, as every
    later call does until the simulator crashes the disk.
    """

    def __init__(self) -> None:
        super().__init__()
        self.on_power_cut: Callable[[str], None] | None = None
        self._cut_after: int | None = None
        self._counting = False

    def arm_power_cut(self, ops_after: int) -> None:
        self._cut_after = ops_after
        self._counting = False

    def disarm_power_cut(self) -> None:
        self._cut_after = None

    def crash(self, *args: Any, **kwargs: Any) -> None:
        self._cut_after = None
        super().crash(*args, **kwargs)

    def commit_directory(self, directory: str) -> None:
        """The file system wrote ``directory``'s names to the media on its own (a
        journal commit): as ``fsync_dir``, but nobody asked, and with the power off.

        A created file may so outlive a crash without its directory's fsync (a
        ``*.tmp`` of a snapshot, a new segment whose header never synced)."""
        with self._lock:
            directory = os.path.normpath(directory)
            if directory in self._dirs:  # not yet made: the power failed before its mkdir
                self._dirs_durable[directory] = dict(self._dirs[directory])

    def clear_faults(self) -> bool:
        """Forget the I/O errors set with ``fail`` that have not struck yet (True: some)."""
        with self._lock:
            pending = bool(self._faults)
            self._faults.clear()
            return pending

    def _op(self, op: str, path: str) -> str:
        if self._cut_after is not None and op in _MUTATING_OPS and not self.power_is_cut:
            self._counting = self._counting or op in _STRUCTURAL_OPS
            if self._counting:
                if self._cut_after == 0:
                    self._cut_after = None
                    self.cut_power_after(0)  # this very call is where the power fails
                else:
                    self._cut_after -= 1
        try:
            return super()._op(op, path)
        except PowerCut:
            if not self._was_dead_before and self.on_power_cut is not None:
                self.on_power_cut(f"{op} {os.path.basename(path)}")
            raise


_MUTATING_OPS = frozenset(
    {"create", "write", "fdatasync", "fsync", "truncate", "rename", "unlink", "fsync_dir", "mkdir"}
)
_STRUCTURAL_OPS = frozenset({"create", "rename", "unlink", "truncate", "fsync_dir", "mkdir"})


@dataclass(slots=True)
class _Ticket:
    lsn: int


class _SimCommitter:
    """The group committer of one process: one write, then one fsync, at a time.

    ``submit`` appends at once (the log assigns lsns in call order). A sync is
    two simulator events: the *write* (the records reach the page cache) and,
    a disk-dependent time later, the *fsync* (they are durable). Everything
    appended by the write is covered by that fsync; batches submitted while a
    sync runs wait for the next one, as with the real committer's thread.
    """

    def __init__(self, cluster: RuntimeCluster, host: _Host, storage: Storage) -> None:
        self._cluster = cluster
        self._host = host
        self._storage = storage
        self._lsn_wanted = storage.lsn_durable
        self._lsn_durable = storage.lsn_durable
        self._syncing = False
        self._waiters: list[tuple[int, int, Any]] = []
        self._order = 0
        self.incarnation = host.incarnation
        # Records appended and not yet durable, by the lsn of a batch's last one.
        self._unsynced: deque[tuple[int, Sequence[StorageRecord]]] = deque()
        # What the last write event handed to the disk (the next fsync covers it).
        self._lsn_written = storage.lsn_durable
        # A failed write or fsync fails every waiter and every later submit,
        # as GroupCommitter does.
        self._failure: StorageError | None = None

    @property
    def lsn_durable(self) -> int:
        return self._lsn_durable

    @property
    def syncing(self) -> bool:
        """A write or fsync event is pending."""
        return self._syncing

    def submit(self, records: Sequence[StorageRecord], *, sync: bool = True) -> _Ticket:
        if self._failure is not None:
            raise self._failure
        lsn = self._storage.append(records)
        if records:
            self._unsynced.append((lsn, records))
        if sync and lsn > self._lsn_wanted:
            self._lsn_wanted = lsn
            self._start_sync()
        return _Ticket(lsn)

    def durable_future(self, lsn: int) -> Any:
        process = self._host.process
        assert process is not None
        future = process.loop.create_future()
        if self._lsn_durable >= lsn:
            future.set_result(None)
        elif self._failure is not None:
            future.set_exception(self._failure)
        else:
            self._order += 1
            heapq.heappush(self._waiters, (lsn, self._order, future))
        return future

    def close(self, timeout: float | None = None) -> None:
        pass

    def _live(self) -> bool:
        return self._host.incarnation == self.incarnation and self._host.process is not None

    def _start_sync(self) -> None:
        if self._syncing:
            return
        self._syncing = True
        write_s, fsync_s = self._cluster.disk_times(self._host)
        self._cluster.later(write_s, self._write)
        self._cluster.later(write_s + fsync_s, self._fsync)

    def _write(self) -> None:
        """The records reach the page cache (written, not yet synced)."""
        if not self._live():
            return
        try:
            self._lsn_written = self._storage.flush()
        except StorageError as error:
            self._fail(error)
            return
        if self._host.crash_in_fsync:
            # The power fails with the batch written, before its fsync returns:
            # the written bytes may be torn at any byte.
            self._cluster.crash_host(self._host, "mid-fsync")

    def _fsync(self) -> None:
        if not self._live():
            return
        self._syncing = False
        if self._failure is not None:
            return
        try:
            durable = self._storage.sync_through(self._lsn_written)
        except StorageError as error:
            self._fail(error)
            return
        if self._cluster.crash_point(self._host, "fsync done, messages unsent"):
            return
        if durable > self._lsn_durable:
            self._lsn_durable = durable
            unsynced = self._unsynced
            while unsynced and unsynced[0][0] <= durable:
                self._cluster.on_records_durable(self._host, unsynced.popleft()[1])
            waiters = self._waiters
            while waiters and waiters[0][0] <= durable:
                future = heapq.heappop(waiters)[2]
                if not future.done():
                    future.set_result(None)
        if self._lsn_wanted > self._lsn_durable:
            self._start_sync()

    def _fail(self, error: StorageError) -> None:
        self._failure = error
        self._syncing = False
        for _, _, future in self._waiters:
            if not future.done():
                future.set_exception(error)
        self._waiters.clear()


class _SimTransport:
    """Peer links of one process, over ``SimNetwork``. Never blocks, never buffers."""

    def __init__(self, cluster: RuntimeCluster, host: _Host, settings: dict[str, Any]) -> None:
        self._cluster = cluster
        self._host = host
        self.incarnation = host.incarnation
        self.on_peer_message: Callable[[PeerMessage], None] = settings["on_peer_message"]
        self.on_client_request: Callable[[Any, ClientRequest], None] = settings["on_client_request"]

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    @property
    def address(self) -> tuple[str, int]:
        return ("sim", self._host.node_id)

    def send(self, message: PeerMessage) -> None:
        if self._host.incarnation == self.incarnation:
            self._cluster.send(self._host.node_id, message)

    def backlog_bytes(self, peer: int) -> int:
        return 0

    def reachable(self, peer: int) -> bool:
        return not self._cluster.network.is_cut(self._host.node_id, peer)

    def client_address_of(self, peer: int) -> str | None:
        return f"sim{peer}:1"

    def stats(self) -> TransportStats:
        return _NO_TRAFFIC


_NO_TRAFFIC = TransportStats(
    frames_in=0,
    frames_out=0,
    bytes_in=0,
    bytes_out=0,
    dropped_sends=0,
    bad_frames=0,
    handshakes_refused=0,
    connections_refused=0,
    requests_refused=0,
    peers={},
    clients_connected=0,
)


@dataclass(slots=True)
class _Connection:
    """A client's connection to one process: answers go back over the network."""

    cluster: RuntimeCluster
    host: _Host
    incarnation: int
    client: int

    def send(self, response: ClientResponse) -> None:
        if self.host.incarnation != self.incarnation or self.host.process is None:
            return
        if isinstance(response, Reply) and self.cluster.crash_point(
            self.host, "applied, not yet answered"
        ):
            return
        self.cluster.send_to_client(self.host.node_id, self.client, response)

    def peer_name(self) -> str:
        return f"client{self.client}"

    def closed(self) -> bool:
        return self.host.incarnation != self.incarnation


class _ObservedMachine(ReplicatedMachine):
    """The node's replicated machine, reporting every applied entry to the checker."""

    def __init__(self, cluster: RuntimeCluster, node_id: int) -> None:
        super().__init__(KvStore())
        self._cluster = cluster
        self._node_id = node_id

    def apply(self, entry: ChosenEntry) -> Iterator[Applied]:
        self._cluster.on_apply(self._node_id, entry)
        fresh = []
        for applied in super().apply(entry):
            if applied.fresh:
                fresh.append((applied.client_id, applied.seq))
            yield applied
        self._cluster.on_effects(self._node_id, entry, fresh)

    def restore(self, data: bytes) -> None:
        super().restore(data)
        self._cluster.on_restore(self._node_id, self.slot_applied)


def _observed(node_class: type[Node], cluster: RuntimeCluster) -> type[Node]:
    """``node_class`` (the real ``Node``, or a planted bug in it) telling the
    cluster when it answers a linearizable query."""

    class Observed(node_class):  # type: ignore[valid-type,misc]
        def _answer_query(self, query: Any) -> None:
            cluster.read_answered(self, query)
            super()._answer_query(query)

        def _send(self, message: PeerMessage) -> None:
            if message.dst == self.node_id and not isinstance(message, SnapshotChunk):
                # A message to itself leaves the node here, released in log order.
                cluster.sent_to_self(self.node_id, message)
                if cluster.delay_own_message(self, message):
                    return
            super()._send(message)

    return Observed


@dataclass(slots=True)
class _Process:
    """One incarnation of ``paxon serve`` on a host."""

    loop: SimLoop
    node: Node
    started: bool = False
    stopping: bool = False


@dataclass(slots=True)
class _Host:
    """A simulated machine: its disk outlives crashes; its process does not."""

    node_id: int
    fs: _SimDisk
    clock_rate: float
    clock_offset: float
    process: _Process | None = None
    incarnation: int = 0
    paused_until: float = 0.0
    crash_in_fsync: bool = False
    # An I/O error is due on the next fsync of a log segment (and may have struck).
    io_error: bool = False
    # Set when recovery refused the disk: the host stays down for the run.
    dead: str | None = None


@dataclass(slots=True)
class _SimClient:
    endpoint: int
    seq: int = 0
    attempt: int = 0
    target: int = 1
    op: HistoryOp | None = None
    payload: bytes | None = None
    redirected: bool = False
    last_seen: dict[str, str | None] = field(default_factory=dict)


class RuntimeCluster:
    """One seed: real nodes, simulated world. Same interface as ``SimCluster``."""

    def __init__(
        self,
        seed: int,
        config: SimConfig,
        *,
        replica_factory: ReplicaFactory = Replica,
        node_class: type[Node] = Node,
        trace: bool = False,
    ) -> None:
        """``replica_factory`` and ``node_class`` may plant a bug in the core or
        the runtime (the mutation tests do)."""
        self.seed = seed
        self._observed_node_class = _observed(node_class, self)
        self.config = config
        self._factory = replica_factory
        self._trace_on = trace
        self.trace: list[str] = []
        self.time = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = 0
        self._rng_faults = random.Random(f"{seed}:faults")
        self._rng_clients = random.Random(f"{seed}:clients")
        self._rng_buggy = random.Random(f"{seed}:buggy")
        self._rng_disk = random.Random(f"{seed}:disk")
        self.network = SimNetwork(random.Random(f"{seed}:net"), self._link_faults())
        self.members = list(range(1, config.nodes + 1))
        self.checker = SafetyChecker(self.members, internal_client_ids={CLOCK_CLIENT_ID})
        # The rules of docs/protocol.md, checked on every send, fsync and read.
        self.properties = PropertyChecker(self.members, self.checker.violations)
        # Its timers and limits: leases, election timeouts, queue, batch, Learn.
        self.timers = TimerChecker(self.checker.violations)
        # Liveness after healing: it settles on a leader, keeps it, and serves.
        self.healing = HealWatch(config, self.checker.violations)
        self.stats = SimStats(faults={kind: 0 for kind in FAULT_KINDS})
        self.history: list[HistoryOp] = []
        self._fsync_max_s = self._rng_faults.uniform(0.0005, 0.005)
        self._storage_config = _storage_config(config.segment_max_bytes)
        self._node_config = NodeConfig(
            cluster_id="sim",
            tick_interval_s=config.tick_s,
            replica=config.replica,
            snapshot_interval_slots=config.snapshot_interval_slots,
            snapshot_chunk_bytes=config.snapshot_chunk_bytes,
            snapshot_resend_s=1.0,
            request_timeout_s=config.client_timeout_s,
        )
        self.hosts = {node_id: self._new_host(node_id) for node_id in self.members}
        self.clients = [
            _SimClient(CLIENT_BASE + index, target=self.members[index % config.nodes])
            for index in range(config.clients)
        ]
        self._healed_at: float | None = None
        self._chosen_at_heal = 0
        self._done = False
        # Linearizable queries waiting on a read index: id(query) -> (query,
        # slot); holding the query keeps its id from being reused meanwhile.
        self._read_slots: dict[int, tuple[object, int]] = {}
        # Storage faults: which kinds, and how many disks may still be refused
        # (fewer than a majority, so the cluster can serve to the end).
        self._disk_kinds = DISK_FAULT_KINDS if "disk" in config.faults else frozenset()
        self._disk_refusals_left = (config.nodes - 1) // 2
        self._rng_storage = random.Random(f"{seed}:storage")
        # Storage faults strike from a drawn time on: later ones meet an older
        # disk (snapshots taken, segments rolled over and compacted) before the
        # refusals a cluster can afford are spent on a young log.
        warm_up = random.Random(f"{seed}:storage-warm-up").uniform(0.0, _DISK_WARM_UP)
        self._disk_faults_from = warm_up * config.fault_phase_s
        self._disk_faults: dict[int, StorageFault | None] = {}
        # Messages held back by the "hold" fault, released at the worst moment.
        self._held: list[tuple[int, PeerMessage]] = []
        self._holding = "hold" in config.faults
        self._crash_points = "crashpoint" in config.faults
        self._rng_hold = random.Random(f"{seed}:hold")
        self._rng_crash = random.Random(f"{seed}:crashpoint")
        self._rng_cut = random.Random(f"{seed}:powercut")
        self._rng_journal = random.Random(f"{seed}:journal")
        self._rng_stop = random.Random(f"{seed}:stop")
        self._rng_io = random.Random(f"{seed}:io-error")
        self._rng_stop_io = random.Random(f"{seed}:io-error-in-stop")
        self._rng_creation = random.Random(f"{seed}:creation-cut")
        self._rng_zero = random.Random(f"{seed}:zero-fill")
        # When the last snapshot chunk on each link arrives (they stay in order).
        self._stream_tail: dict[tuple[int, int], float] = {}
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
            if "crash" in config.faults and self._rng_creation.random() < _CUT_IN_CREATION:
                # The power fails while the node sets its data directory up.
                ops = self._rng_creation.randrange(_CREATION_OPS)
                host.fs.arm_power_cut(ops)
                self._log(f"fault: power of n{host.node_id} fails {ops} calls into its creation")
            self._start_process(host)
        for index, _ in enumerate(self.clients):
            self._push(0.05 + 0.01 * index, functools.partial(self._client_next, index))
        if {"partition", "crash", "pause"} & config.faults:
            self._push(0.5 + self._rng_faults.random() * 0.5, self._inject_fault)
        if "buggy" in config.faults:
            self._push(0.2 + self._rng_buggy.random() * 0.3, self._inject_buggy)
        if "crash" in config.faults:
            for _ in range(self._rng_cut.randint(0, _POWER_CUTS_MAX)):
                at = self._rng_cut.uniform(0.2, 0.9 * config.fault_phase_s)
                self._push(at, self._arm_power_cut)
        self._push(config.fault_phase_s, self._heal_everything)
        self._push(config.fault_phase_s + config.heal_phase_s, self._finish)

    def run_until(self, time: float) -> bool:
        """Run events and node loops up to simulated ``time``; False once the run is over."""
        queue = self._queue
        hosts = list(self.hosts.values())
        while not self._done:
            # The process due first (ties: the lowest node id), against the next event.
            due_host: _Host | None = None
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
                # A process whose power failed inside a disk operation (``_SimDisk``)
                # unwinds no further: it was crashed at the cut.
                if not any(host.fs.power_is_cut for host in hosts):
                    raise
        self.stats.slots_chosen = len(self.checker.chosen)
        self.stats.commands_chosen = sum(
            len(value.commands) for value in self.checker.chosen.values()
        )
        return not self._done

    def crash(self, node_id: int) -> None:
        """Crash a node now; it restarts by itself a little later."""
        host = self.hosts[node_id]
        if host.process is not None:
            self.crash_host(host, "scripted")

    def at(self, time: float, action: Callable[[RuntimeCluster], None]) -> None:
        """Run ``action(cluster)`` at simulated ``time`` (for scripted scenarios)."""
        self._push(time, lambda: action(self))

    def leader(self) -> int | None:
        """The up node that believes it leads with the highest ballot, if any."""
        best: tuple[Any, int] | None = None
        for host in self.hosts.values():
            node = self._node(host)
            if node is None or not node.is_leader:
                continue
            ballot = node._replica.ballot_own
            if best is None or ballot > best[0]:
                best = (ballot, host.node_id)
        return None if best is None else best[1]

    def node(self, node_id: int) -> Node | None:
        """The running node on ``node_id``'s host, if it is up."""
        return self._node(self.hosts[node_id])

    # ------------------------------------------------------------------ hooks

    def later(self, delay: float, action: Callable[[], None]) -> None:
        self._push(self.time + delay, action)

    def disk_times(self, host: _Host) -> tuple[float, float]:
        """How long the next write and its fsync take on ``host``'s disk."""
        rng = self._rng_disk
        return 0.00005 + 0.0002 * rng.random(), self._fsync_max_s * (0.2 + 0.8 * rng.random())

    def send(self, src: int, message: PeerMessage) -> None:
        """A peer message leaves ``src`` (its transport's ``send``).

        Protocol messages meet every fault of the network, reordering and
        duplication included (the core is built for that). A snapshot's chunks
        are a stream over one TCP connection, as in production: they may be
        lost (the connection broke), never duplicated or reordered."""
        delays = self.network.delays(src, message.dst)
        if isinstance(message, SnapshotChunk):
            if delays:
                link = (src, message.dst)
                at = max(self.time + delays[0], self._stream_tail.get(link, 0.0))
                self._stream_tail[link] = at
                self._push(at, lambda: self._deliver_peer(src, message))
            return
        self.checker.on_send(message, self.time)
        self.properties.on_send(src, message, self.time)
        if delays and self._holding and self._rng_hold.random() < self.config.hold_rate:
            self._hold(src, message)
            return
        for delay in delays:
            self._push(self.time + delay, lambda: self._deliver_peer(src, message))

    def sent_to_self(self, node_id: int, message: Message) -> None:
        self.checker.on_send(message, self.time)
        self.properties.on_send(node_id, message, self.time)

    def delay_own_message(self, node: Node, message: Message) -> bool:
        """With "hold", now and then deliver a node's own vote or promise to it late.

        The runtime hands it to itself on the next loop turn; a slow turn (a
        long callback, a GC pause) can put other messages first."""
        if not self._holding or self._rng_hold.random() >= self.config.hold_rate:
            return False
        host = self.hosts[node.node_id]
        process = host.process
        if process is None:
            return False
        self.stats.faults["hold"] += 1

        def deliver() -> None:
            if host.process is process:
                process.loop.call_soon(node._on_peer_message, message)

        self.later(0.0005 + 0.02 * self._rng_hold.random(), deliver)
        return True

    def _hold(self, src: int, message: PeerMessage) -> None:
        self._held.append((src, message))
        if len(self._held) > _HELD_MAX:
            self._held.pop(0)  # lost after all
        self.stats.faults["hold"] += 1

    def release_held(self, why: str) -> None:
        """Deliver every held message now, in a burst: stale news at the worst moment."""
        if not self._held:
            return
        held, self._held = self._held, []
        self._log(f"fault: release {len(held)} held messages ({why})")
        for src, message in held:
            delay = 0.002 * self._rng_hold.random()
            self._push(self.time + delay, functools.partial(self._deliver_peer, src, message))

    def crash_point(self, host: _Host, where: str) -> bool:
        """Whether to crash ``host`` here, between two steps of its runtime (and do it)."""
        if not self._crash_points or self._rng_crash.random() >= self.config.crashpoint_rate:
            return False
        self.stats.faults["crashpoint"] += 1
        self.crash_host(host, f"crash point: {where}")
        return True

    def send_to_client(self, src: int, client: int, response: ClientResponse) -> None:
        for delay in self.network.delays(src, client):
            self._push(self.time + delay, lambda: self._client_receive(client, response))

    def on_records_durable(self, host: _Host, records: Sequence[StorageRecord]) -> None:
        self.properties.on_records_durable(host.node_id, records, self.time)

    def on_apply(self, node_id: int, entry: ChosenEntry) -> None:
        self.checker.on_apply(node_id, entry.slot, entry.value, self.time)

    def on_effects(self, node_id: int, entry: ChosenEntry, fresh: list[tuple[int, int]]) -> None:
        if not fresh:
            return
        commands = {(c.client_id, c.seq): c for c in entry.value.commands}
        for key in fresh:
            self.checker.on_effect(node_id, commands[key], self.time)

    def on_restore(self, node_id: int, slot: int) -> None:
        self.checker.on_restore(node_id, slot)
        process = self.hosts[node_id].process
        if process is not None and process.started:
            self.stats.snapshots_installed += 1
            self.release_held(f"n{node_id} installs a snapshot")
        else:
            self.stats.snapshots_recovered += 1
        self._log(f"n{node_id} restored a snapshot: applied through slot {slot}")

    def crash_host(self, host: _Host, why: str) -> None:
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
            self._push(self.time, lambda: self._power_off(host))
        else:
            self._power_off(host)
        self._log(f"fault: crash n{host.node_id} ({why}, role {role})")
        self._push(self.time + 0.05 + 1.5 * self._rng_faults.random(), lambda: self._restart(host))

    def _arm_power_cut(self) -> None:
        """Cut a node's power inside its next multi-step disk operation (``_SimDisk``)."""
        up = [host for host in self.hosts.values() if host.process is not None]
        if not up or self._healed_at is not None:
            return
        host = self._rng_cut.choice(up)
        ops = self._rng_cut.randrange(_CUT_OPS_MAX)
        host.fs.arm_power_cut(ops)
        self._log(f"fault: power of n{host.node_id} fails {ops} calls into a disk operation")

    def _stop_gracefully(self, host: _Host) -> None:
        """Stop ``host``'s node as ``paxon serve`` does on SIGTERM (``Node.stop``:
        finish the fsync in flight, close the data directory), then start it again."""
        process = host.process
        assert process is not None
        process.stopping = True
        self._log(f"fault: stop n{host.node_id} (a graceful restart)")
        syncing = isinstance(committer := process.node._committer, _SimCommitter) and (
            committer.syncing
        )
        if syncing and not host.io_error and self._rng_stop_io.random() < _IO_ERROR_IN_STOP:
            # The disk fails while the node shuts down: the fsync in flight.
            host.fs.fail("fdatasync", path_contains="/wal-")
            host.io_error = True
            self._log(f"fault: the next fsync of n{host.node_id}'s log fails (EIO)")
        stop = process.loop.create_task(process.node.stop())

        def stopped(task: Any) -> None:
            if host.process is not process:
                return  # crashed while stopping
            error = None if task.cancelled() else task.exception()
            if isinstance(error, StorageError):
                # Its log had failed (an injected I/O error): the stop reports
                # it, as ``paxon serve`` exits non-zero; the process is gone.
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
            self._log(f"n{host.node_id} stopped")
            back = self.time + 0.05 + 0.5 * self._rng_stop.random()
            self._push(back, lambda: self._restart(host))

        stop.add_done_callback(stopped)

    def _power_off(self, host: _Host) -> None:
        self._crash_disk(host)
        self.properties.on_crash(host.node_id, self.time)
        if self._healed_at is None and self._rng_cut.random() < _CUT_IN_RECOVERY:
            # The power fails again in the repairs of the next start (or the
            # next multi-step operation after it).
            ops = self._rng_cut.randrange(4)
            host.fs.arm_power_cut(ops)
            self._log(f"fault: power of n{host.node_id} fails {ops} calls into its recovery")

    # ------------------------------------------------------------------ processes

    def _open_storage(self, host: _Host, cluster_id: str) -> Storage:
        """The node's storage, recovered; what recovery found is durable now.

        Written bytes a crash did not tear survive without their fsync: the
        checkers learn them here, as the node does."""
        storage = Storage.open(
            f"/node{host.node_id}",
            node_id=host.node_id,
            cluster_id=cluster_id,
            fs=host.fs,
            config=self._storage_config,
            incarnation=host.node_id,
        )
        self.properties.on_recovered(host.node_id, storage.recovered.state, self.time)
        return storage

    def _crash_disk(self, host: _Host) -> None:
        """Power off ``host``'s disk: unsynced bytes torn, and now and then a storage fault."""
        fault: StorageFault | None = None
        if (
            self._disk_kinds
            and self._disk_refusals_left > 0
            and self.time >= self._disk_faults_from
            and self._healed_at is None
            and self._rng_storage.random() < self.config.disk_fault_rate
        ):
            kinds = self._disk_kinds
            fault = strike(host.fs, f"/node{host.node_id}", self._rng_storage, kinds)
            if fault is not None and fault.expect == REFUSE:
                self._disk_refusals_left -= 1
            if fault is not None:
                self.stats.faults["disk"] += 1
                self._log(
                    f"fault: disk of n{host.node_id}: {fault.kind} {fault.path}@{fault.offset} "
                    f"({fault.detail}); recovery must {fault.expect}"
                )
        else:
            if self._rng_journal.random() < _JOURNAL_COMMIT:
                host.fs.commit_directory(f"/node{host.node_id}")
                self._log(f"n{host.node_id}: its directory reached the disk without an fsync")
            host.fs.crash(
                tear=lambda _path, unsynced: self._rng_disk.randint(0, unsynced),
                zero_fill=self._zero_fill,
            )
        self._disk_faults[host.node_id] = fault

    def _zero_fill(self, _path: str, torn_off: int) -> int:
        """How many zeros a file system leaves where ``torn_off`` written bytes were
        lost (ext4 and XFS may keep the new size without the data)."""
        rng = self._rng_zero
        if rng.random() >= _ZERO_FILL:
            return 0
        return torn_off if rng.random() < 0.5 else rng.randint(1, torn_off)

    def _new_host(self, node_id: int) -> _Host:
        drift = "drift" in self.config.faults
        rate = 1.0 + (self._rng_faults.uniform(-0.05, 0.05) if drift else 0.0)
        offset = self._rng_faults.uniform(0, 100) if drift else 0.0
        if drift:
            self.stats.faults["drift"] += 1
        host = _Host(node_id, _SimDisk(), rate, offset)
        host.fs.on_power_cut = lambda at: self.crash_host(host, f"power cut at {at}")
        return host

    def _local_now(self, host: _Host) -> float:
        return host.clock_offset + host.clock_rate * self.time

    def _start_process(self, host: _Host) -> None:
        incarnation = host.incarnation
        node_id = host.node_id

        def clock() -> float:
            return self._local_now(host)

        def defer(work: Callable[[], None]) -> None:
            def run() -> None:
                if host.incarnation == incarnation and host.process is not None:
                    work()
                    self.crash_point(host, "work on a thread done, loop not told")

            self._push(self.time + 0.0001 + 0.002 * self._rng_disk.random(), run)

        def transport(**settings: Any) -> _SimTransport:
            return _SimTransport(self, host, settings)

        loop = SimLoop(clock, defer, functools.partial(self._on_loop_error, host))
        environment = Environment(
            open_storage=lambda _dir, _id, cluster_id: self._open_storage(host, cluster_id),
            make_committer=lambda storage, _observe: _SimCommitter(self, host, storage),
            make_transport=transport,
            make_rng=lambda: random.Random(f"{self.seed}:node{node_id}:{incarnation}"),
            replica_factory=self._observed_replica_factory(host, incarnation),
            stopwatch=clock,
        )
        node = self._observed_node_class(
            node_id,
            {member: ("sim", member) for member in self.members},
            f"/node{node_id}",
            KvStore(),
            config=self._node_config,
            logger=self._logger.getChild(f"n{node_id}"),
            wall_time_s=lambda: _WALL_EPOCH_S + self._local_now(host),
            environment=environment,
        )
        node.machine = _ObservedMachine(self, node_id)
        process = _Process(loop, node)
        host.process = process
        task = loop.create_task(node.start())

        def started(task: Any) -> None:
            if host.process is not process:
                return
            error = None if task.cancelled() else task.exception()
            fault = self._disk_faults.pop(node_id, None)
            wrong = check_recovery(fault, error if isinstance(error, Exception) else None)
            if wrong is not None:
                self.checker.fail(self.time, "recovery", f"n{node_id}: {wrong}")
            if error is None:
                process.started = True
                loop.create_task(self._watch_failure(host, process))
                return
            self._on_start_failed(host, error)

        task.add_done_callback(started)

    async def _watch_failure(self, host: _Host, process: _Process) -> None:
        error = await process.node.wait_failed()
        if process.stopping and host.io_error and isinstance(error, StorageError):
            return  # stopping already: the stop ends it (``_stop_gracefully``)
        if host.process is process and host.io_error and isinstance(error, StorageError):
            host.io_error = False
            self.crash_host(host, "stopped on an injected I/O error")
        elif host.process is process:
            self.checker.fail(self.time, "node-stopped", f"n{host.node_id} stopped on {error!r}")
            self.crash_host(host, "stopped on an internal error")

    def _on_start_failed(self, host: _Host, error: BaseException) -> None:
        if host.process is not None:
            host.process.loop.bury()
        host.process = None
        if isinstance(error, StorageError):
            # Refused rightly (a damaged disk) or wrongly (checked above): either
            # way the node cannot come back as itself; it stays down.
            host.dead = f"recovery refused the disk: {error}"
        else:
            self.checker.fail(self.time, "start", f"n{host.node_id} failed to start: {error!r}")
        self._log(f"n{host.node_id} did not start: {error!r}")

    def _on_loop_error(self, host: _Host, loop: SimLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        message = context.get("message", "")
        if host.process is None or host.process.loop is not loop:
            return  # a crashed process's tasks, collected with it
        self.checker.fail(self.time, "exception", f"n{host.node_id}: {message} {error!r}".strip())

    def _observed_replica_factory(self, host: _Host, incarnation: int) -> Callable[..., Replica]:
        """The configured replica, with every call's output reported to the checkers."""
        factory = self._factory

        def build(*args: Any, **kwargs: Any) -> Replica:
            replica = factory(*args, **kwargs)
            self.timers.on_start(host.node_id, replica, self.time)
            for name in ("step", "tick", "propose_many", "read_index", "install_snapshot"):
                setattr(replica, name, self._observe(host, replica, getattr(replica, name)))
            return replica

        return build

    def _observe(
        self, host: _Host, replica: Replica, call: Callable[..., Ready]
    ) -> Callable[..., Ready]:
        node_id = host.node_id

        def observed(*args: Any) -> Ready:
            name = call.__name__
            if name == "step":
                message = args[0]
                if self._trace_on and message.src != node_id:
                    self._log(f"n{message.src}->n{node_id} {describe(message)}")
            elif name == "read_index":
                self.properties.on_read_requested(node_id, args[0], self.time)
            role_before = replica.role
            before = snapshot(replica)
            try:
                ready = call(*args)
            except NotLeader:
                if name == "read_index":
                    self.properties.on_read_confirmed(node_id, args[0], None, self.time)
                raise
            except Busy:
                self.timers.on_busy(node_id, replica, args[0], self.time)
                raise
            self.timers.on_call(node_id, replica, name, args, before, ready, self.time)
            if ready.reads:
                self._note_read_indexes(host, ready)
            if replica.role is not role_before:
                ballot = (
                    replica.ballot_promised if replica.role is Role.FOLLOWER else replica.ballot_own
                )
                self._log(f"n{node_id} {role_before.value} -> {replica.role.value} b={ballot}")
                self.healing.on_role_change(node_id, replica.role, self.time)
                if replica.role is Role.LEADER:
                    self.stats.leader_changes += 1
                    self.release_held(f"n{node_id} leads")
                self._strike_at_transition(host, replica.role)
                self._aim_buggy_at_transition(host, replica.role)
            try:
                replica.check_invariants(full=self.stats.steps % 64 == 0)
            except AssertionError as error:
                self.checker.on_invariant_broken(node_id, error, self.time)
            return ready

        observed.__name__ = call.__name__
        return observed

    def _note_read_indexes(self, host: _Host, ready: Ready) -> None:
        """Tell the properties each read index, and remember it for its queries."""
        process = host.process
        waiting = process.node._reads_confirming if process is not None else {}
        for answer in ready.reads:
            self.properties.on_read_confirmed(host.node_id, answer.read_id, answer.slot, self.time)
            if answer.slot is not None:
                for query in waiting.get(answer.read_id, ()):
                    self._read_slots[id(query)] = (query, answer.slot)

    def read_answered(self, node: Node, query: object) -> None:
        """``node`` answers a linearizable query: at or after its read index?"""
        waiting = self._read_slots.pop(id(query), None)
        if waiting is not None:
            self.properties.on_read_answered(
                node.node_id, waiting[1], node.machine.slot_applied, self.time
            )

    def _restart(self, host: _Host) -> None:
        if host.process is not None or host.dead is not None:
            return
        self.checker.on_restart(host.node_id)
        self._log(f"restart n{host.node_id}")
        self._start_process(host)
        self.release_held(f"n{host.node_id} restarts")

    def _retire(self, process: _Process) -> None:
        """Keep a replica's refusal counts before it is replaced or the run ends."""
        if not process.started:
            return
        counters = process.node._replica.counters
        for name, count in dataclasses.asdict(counters).items():
            self.stats.refused[name] = self.stats.refused.get(name, 0) + count

    def _node(self, host: _Host) -> Node | None:
        process = host.process
        if process is None or not process.started:
            return None
        return process.node

    # ------------------------------------------------------------------ delivery

    def _deliver_peer(self, src: int, message: PeerMessage) -> None:
        host = self.hosts.get(message.dst)
        if host is None:
            detail = f"n{src} sent to node {message.dst}, which is not a member"
            self.checker.fail(self.time, "non-member", detail)
            return
        process = host.process
        if process is None or not process.started:
            return
        if host.paused_until > self.time:
            # Held in the socket buffer until the node runs again, in order.
            self._push(host.paused_until, lambda: self._deliver_peer(src, message))
            return
        transport = process.node._transport
        assert isinstance(transport, _SimTransport)
        process.loop.call_soon(transport.on_peer_message, message)

    def _deliver_request(self, client: int, node_id: int, request: ClientRequest) -> None:
        host = self.hosts[node_id]
        process = host.process
        if process is None or not process.started:
            return  # connection refused: the client times out and moves on
        if host.paused_until > self.time:
            self._push(host.paused_until, lambda: self._deliver_request(client, node_id, request))
            return
        transport = process.node._transport
        assert isinstance(transport, _SimTransport)
        connection = _Connection(self, host, host.incarnation, client)
        process.loop.call_soon(transport.on_client_request, connection, request)

    # ------------------------------------------------------------------ clients

    def _client_next(self, index: int) -> None:
        """Start a new operation, or retry the current one on the next node."""
        client = self.clients[index]
        if client.op is None:
            self._client_start_op(client)
            return
        if not client.redirected:
            client.target = self.members[client.target % len(self.members)]
        client.redirected = False
        self._client_send(client)

    def _client_start_op(self, client: _SimClient) -> None:
        rng = self._rng_clients
        key = f"k{rng.randrange(self.config.keys)}"
        op_id = len(self.history)
        roll = rng.random()
        # The first ``readers`` clients only read (a dashboard, a cache
        # filler): one sticks to a deposed leader while others write elsewhere.
        if roll < 0.4 or client.endpoint - CLIENT_BASE < self.config.readers:
            op = HistoryOp(op_id, key, "read", (), self.time)
            client.payload = None
        else:
            client.seq += 1
            value = f"c{client.endpoint}.{client.seq}"
            if roll < 0.75:
                op = HistoryOp(op_id, key, "write", (value,), self.time)
                client.payload = write_command(key, value)
            else:
                expect = client.last_seen.get(key)
                op = HistoryOp(op_id, key, "cas", (expect, value), self.time)
                client.payload = cas_command(key, expect, value)
            self.checker.on_submit(Command(client.endpoint, client.seq, client.payload))
        client.op = op
        self.history.append(op)
        if self._trace_on:
            self._log(f"client {client.endpoint} invokes #{op_id} {op.kind} {key} {op.args}")
        self._client_send(client)

    def _client_send(self, client: _SimClient) -> None:
        op = client.op
        assert op is not None
        client.attempt += 1
        request: ClientRequest
        if client.payload is None:
            request = Query(client.attempt, read_query(op.key), True)
        else:
            request = Submit(client.attempt, client.endpoint, client.seq, client.payload)
        target = client.target
        for delay in self.network.delays(client.endpoint, target):
            self._push(
                self.time + delay,
                lambda: self._deliver_request(client.endpoint, target, request),
            )
        attempt = client.attempt
        index = client.endpoint - CLIENT_BASE
        self._push(
            self.time + self.config.client_timeout_s,
            lambda: self._client_timeout(index, attempt),
        )

    def _client_timeout(self, index: int, attempt: int) -> None:
        client = self.clients[index]
        if client.attempt == attempt and client.op is not None:
            self._client_next(index)

    def _client_receive(self, endpoint: int, response: ClientResponse) -> None:
        client = self.clients[endpoint - CLIENT_BASE]
        op = client.op
        if op is None or response.request_id != client.attempt:
            return  # an answer to an attempt already given up
        index = endpoint - CLIENT_BASE
        if isinstance(response, Redirect | Failure):
            if isinstance(response, Redirect) and response.leader_id is not None:
                client.target = response.leader_id
                client.redirected = True
            elif isinstance(response, Failure) and response.code not in _RETRYABLE:
                self.checker.fail(
                    self.time,
                    "client-error",
                    f"client {endpoint} #{op.op_id} {op.kind} failed: "
                    f"{response.code}: {response.message}",
                )
            client.attempt += 1  # the pending timeout no longer applies
            self._push(self.time + 0.005, lambda: self._client_next(index))
            return
        assert isinstance(response, Reply)
        try:
            result = decode_reply(op.kind, response.payload)
        except (UnexpectedReply, PaxonError) as error:
            self.checker.fail(self.time, "client-reply", f"client {endpoint}: {error}")
            result = "?"
        op.returned_at = self.time
        op.result = result
        self.stats.ops_completed += 1
        self.healing.on_op_completed(self.time)
        if op.kind == "read":
            client.last_seen[op.key] = result if isinstance(result, str) else None
        elif op.kind == "write" or (op.kind == "cas" and result is True):
            client.last_seen[op.key] = str(op.args[-1])
        if self._trace_on:
            self._log(f"client {endpoint} completes #{op.op_id}: {result!r}")
        if self._healed_at is not None and self.stats.heal_progress_s is None:
            self.stats.heal_progress_s = self.time - self._healed_at
        client.op = None
        client.payload = None
        client.attempt += 1
        think = 0.005 + 0.03 * self._rng_clients.random()
        self._push(self.time + think, lambda: self._client_next(index))

    # ------------------------------------------------------------------ faults

    def _inject_fault(self) -> None:
        if self._healed_at is not None:
            return
        rng = self._rng_faults
        weights = [
            weight if kind in self.config.faults else 0.0
            for kind, weight in zip(PROCESS_FAULTS, self.config.fault_weights, strict=True)
        ]
        if not any(weights):
            return
        kind = rng.choices(PROCESS_FAULTS, weights)[0]
        if kind == "partition":
            self._inject_partition(rng)
        elif kind == "crash":
            self._inject_crash(rng)
        else:
            self._inject_pause(rng)
        self.stats.faults[kind] += 1
        self._push(self.time + rng.uniform(*self.config.fault_gap_s), self._inject_fault)

    def _inject_partition(self, rng: random.Random) -> None:
        members = self.members
        if self.config.readers and rng.random() < 0.3:
            self._deposed_leader_keeps_readers(rng, tries=100)
            return
        shape = rng.choice(("isolate", "split", "partial", "asymmetric"))
        links: set[tuple[int, int]] = set()
        if shape == "isolate" or len(members) < 3:
            # Half the time the leader: cut off from its peers, not from its
            # clients, it may serve them while a new leader commits.
            leaders = [host.node_id for host in self.hosts.values() if self._is_leader(host)]
            alone = rng.choice(leaders) if leaders and rng.random() < 0.5 else rng.choice(members)
            links = {(alone, other) for other in members if other != alone}
            links |= {(b, a) for a, b in links}
        elif shape == "split":
            side = set(rng.sample(members, rng.randrange(1, len(members))))
            links = {(a, b) for a in side for b in members if b not in side}
            links |= {(b, a) for a, b in links}
        elif shape == "partial":
            a, b = rng.sample(members, 2)
            links = {(a, b), (b, a)}
        else:
            a, b = rng.sample(members, 2)
            links = {(a, b)}
        cut_id = self.network.cut(links)
        self._log(f"fault: {shape} partition #{cut_id} cuts {sorted(links)}")
        self._push(self.time + 0.2 + 1.8 * rng.random(), lambda: self._heal_cut(cut_id))

    def _deposed_leader_keeps_readers(self, rng: random.Random, *, tries: int) -> None:
        """Cut the leader off from most peers and its writing clients, not its readers.

        At a quiet moment (no slot in flight, so nothing holds its reads
        back): for an election timeout or more it may answer reads while a
        new leader commits writes elsewhere. Only a read quorum keeps those
        answers fresh, which is what this fault is for."""
        leader = self.leader()
        if leader is None or self._healed_at is not None:
            return
        node = self.node(leader)
        if node is None:
            return
        replica = node._replica
        if replica.slot_next > replica.slot_chosen and tries > 0:
            self.later(0.001, lambda: self._deposed_leader_keeps_readers(rng, tries=tries - 1))
            return
        # The leader's side is a minority: alone, or with a few followers.
        followers = [member for member in self.members if member != leader]
        size = rng.randint(1, (len(self.members) - 1) // 2 or 1)
        side = {leader, *rng.sample(followers, size - 1)}
        rest = [member for member in self.members if member not in side]
        writers = [c.endpoint for c in self.clients[self.config.readers :]]
        links = {(a, b) for a in side for b in [*rest, *writers]}
        links |= {(b, a) for a, b in links}
        cut_id = self.network.cut(links)
        self._log(
            f"fault: leader n{leader} keeps only its readers, with {sorted(side)} "
            f"on its side, partition #{cut_id}"
        )
        self._push(self.time + 0.3 + 1.7 * rng.random(), lambda: self._heal_cut(cut_id))

    def _heal_cut(self, cut_id: int) -> None:
        self.network.heal(cut_id)
        self._log(f"heal cut #{cut_id}")

    def _inject_crash(self, rng: random.Random) -> None:
        up = [host for host in self.hosts.values() if host.process is not None]
        if not up:
            return
        if self._rng_io.random() < _IO_ERROR:
            host = self._rng_io.choice(up)
            host.fs.fail("fdatasync", path_contains="/wal-")
            host.io_error = True
            self._log(f"fault: the next fsync of n{host.node_id}'s log fails (EIO)")
            return
        if self._rng_stop.random() < _GRACEFUL_STOP:
            started = [
                host
                for host in up
                if host.process and host.process.started and not host.process.stopping
            ]
            if started:
                self._stop_gracefully(self._rng_stop.choice(started))
                return
        if rng.random() < 0.25:
            mid_fsync = rng.random() < 0.5
            self._log(f"fault: power cut{' mid-fsync' if mid_fsync else ''}")
            for host in up:
                if mid_fsync:
                    host.crash_in_fsync = True
                else:
                    self.crash_host(host, "power cut")
            return
        leaders = [host for host in up if self._is_leader(host)]
        host = rng.choice(leaders) if leaders and rng.random() < 0.5 else rng.choice(up)
        if rng.random() < 0.5:
            host.crash_in_fsync = True
            return
        self.crash_host(host, "crash")

    def _inject_pause(self, rng: random.Random) -> None:
        """Freeze a node (a GC pause, a stalled VM, SIGSTOP): it wakes to a stale world."""
        up = [
            host
            for host in self.hosts.values()
            if host.process is not None and host.paused_until <= self.time
        ]
        if not up:
            return
        leaders = [host for host in up if self._is_leader(host)]
        host = rng.choice(leaders) if leaders and rng.random() < 0.5 else rng.choice(up)
        host.paused_until = self.time + 0.2 + 1.8 * rng.random()
        self._log(f"fault: pause n{host.node_id} until {host.paused_until:.6f}")

    def _strike_at_transition(self, host: _Host, role: Role) -> None:
        """Pause a node the moment it becomes a candidate or a leader, now and then.

        Faults at random times rarely land in the few milliseconds a ballot
        is being won; here they do: a candidate frozen with its Prepare out
        wakes to promises for a ballot long overtaken, a new leader frozen
        with its first Accepts in flight wakes to a newer leader."""
        if (
            "pause" not in self.config.faults
            or self._healed_at is not None
            or role not in (Role.PREPARING, Role.LEADER)
            or host.paused_until > self.time
            or self._rng_faults.random() >= _TRANSITION_PAUSE
        ):
            return
        host.paused_until = self.time + 0.05 + 1.5 * self._rng_faults.random()
        self.stats.faults["pause"] += 1
        self._log(
            f"fault: pause n{host.node_id} as it becomes {role.value}, "
            f"until {host.paused_until:.6f}"
        )

    def _inject_buggy(self) -> None:
        """A buggy member or an outsider sends one out-of-bounds message now.

        Once healed, it waits for the cluster to settle, then forges only what a
        correct core ignores outright (``buggy.QUIET_KINDS``): a settled leader
        must keep leading through them (``quiet-stable``)."""
        rng = self._rng_buggy
        quiet = self._healed_at is not None
        up = [host for host in self.hosts.values() if self._node(host) is not None]
        if up and (not quiet or self.healing.settled_at is not None):
            # Half the time at a candidate or a leader: its reply guards are the
            # ones a forged reply reaches.
            aimed = [host for host in up if not self._is_follower(host)]
            self._forge_to(rng.choice(aimed if aimed and rng.random() < 0.5 else up), quiet=quiet)
        low, high = self.config.buggy_gap_s
        self._push(self.time + low + (high - low) * rng.random(), self._inject_buggy)

    def _forge_to(self, target: _Host, *, quiet: bool = False) -> None:
        node = self._node(target)
        if node is None or (self._healed_at is not None and not quiet):
            return
        kind, message = buggy.forge(self._rng_buggy, node._replica, quiet=quiet)
        self._log(
            f"fault: buggy {kind} n{message.src}->n{message.dst} {describe(message)}"
            f" delivered to n{target.node_id}"
        )
        process = target.process
        assert process is not None
        transport = node._transport
        assert isinstance(transport, _SimTransport)
        process.loop.call_soon(transport.on_peer_message, message)
        self.stats.faults["buggy"] += 1

    def _aim_buggy_at_transition(self, host: _Host, role: Role) -> None:
        """Now and then, forge a reply to a node the moment it stands or leads.

        A prober or a preparer is one for a few milliseconds; injections at
        random times rarely find one, so its reply guards would go untried."""
        if (
            "buggy" not in self.config.faults
            or self._healed_at is not None
            or role is Role.FOLLOWER
            or self._rng_buggy.random() >= _TRANSITION_FORGE
        ):
            return
        delay = 0.002 * self._rng_buggy.random()
        self._push(self.time + delay, functools.partial(self._forge_to, host))

    def _is_follower(self, host: _Host) -> bool:
        node = self._node(host)
        return node is None or node._replica.role is Role.FOLLOWER

    def _is_leader(self, host: _Host) -> bool:
        node = self._node(host)
        return node is not None and node.is_leader

    def _link_faults(self) -> LinkFaults:
        rng = self._rng_faults
        faults = self.config.faults
        if self.config.link is not None:
            return self.config.link
        return LinkFaults(
            drop_rate=rng.uniform(0.0, 0.1) if "drop" in faults else 0.0,
            duplicate_rate=rng.uniform(0.0, 0.05) if "duplicate" in faults else 0.0,
            reorder_rate=rng.uniform(0.05, 0.3) if "reorder" in faults else 0.0,
            reorder_max_s=rng.uniform(0.005, 0.05) if "reorder" in faults else 0.0,
            stall_rate=rng.uniform(0.001, 0.02) if "delay" in faults else 0.0,
            stall_max_s=rng.uniform(0.2, 1.5) if "delay" in faults else 0.0,
        )

    def _heal_everything(self) -> None:
        self.stats.faults["drop"] = self.network.dropped
        self.stats.faults["duplicate"] = self.network.duplicated
        self.stats.faults["delay"] = self.network.stalled
        self.stats.faults["reorder"] = self.network.reordered
        self.network.heal_all()
        self.network.faults = LinkFaults()
        self._holding = self._crash_points = False
        self.release_held("healing")
        for host in self.hosts.values():
            host.crash_in_fsync = False
            host.fs.disarm_power_cut()
            if host.fs.clear_faults():
                host.io_error = False
            host.paused_until = min(host.paused_until, self.time)
            if host.process is None:
                self._restart(host)
        self._healed_at = self.time
        self._chosen_at_heal = self._chosen_prefix()
        self._log(f"heal: all faults end; chosen prefix {self._chosen_at_heal}")
        self.healing.on_heal(self.time)
        self._sample_settled()

    def _sample_settled(self) -> None:
        """Tell the heal watch what each live member is, until the cluster settles."""
        if self._done or self.healing.settled_at is not None:
            return
        states = []
        for host in self.hosts.values():
            if host.dead is not None:
                continue
            node = self._node(host)
            if node is None:
                states.append(NodeState(host.node_id, None, BALLOT_ZERO, BALLOT_ZERO))
            else:
                replica = node._replica
                states.append(
                    NodeState(
                        host.node_id, replica.role, replica.ballot_own, replica.ballot_promised
                    )
                )
        self.healing.sample(states, self.time)
        self.later(_SETTLE_SAMPLE_S, self._sample_settled)

    def _finish(self) -> None:
        self._done = True
        self.healing.finish(self.time)
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
        for host in self.hosts.values():
            if host.dead is not None:
                continue
            node = self._node(host)
            applied = node.machine.slot_applied if node is not None else -1
            if applied < self._chosen_at_heal:
                self.checker.fail(
                    self.time,
                    "liveness",
                    f"n{host.node_id} applied only {applied} slots "
                    f"{self.config.heal_phase_s}s after healing; {self._chosen_at_heal} "
                    "were chosen at heal time",
                )

    def close(self) -> None:
        """Stop every process (after the run's last checks)."""
        for host in self.hosts.values():
            if host.process is not None:
                host.process.loop.bury()
                host.process = None
                host.incarnation += 1

    def _chosen_prefix(self) -> int:
        slot = 0
        while slot in self.checker.chosen:
            slot += 1
        return slot

    # ------------------------------------------------------------------ helpers

    def _push(self, time: float, action: Callable[[], None]) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (time, self._sequence, action))

    def _log(self, line: str) -> None:
        if self._trace_on:
            self.trace.append(f"{self.time:10.6f} {line}")

    def _make_logger(self) -> logging.Logger:
        """The nodes' logs: into the trace when tracing, else nowhere."""
        logger = logging.getLogger("paxon.sim.nodes")
        logger.propagate = False
        logger.handlers.clear()
        if self._trace_on:
            cluster = self

            class _ToTrace(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    cluster._log(f"log {record.name.rsplit('.', 1)[-1]}: {record.getMessage()}")

            logger.addHandler(_ToTrace())
            logger.setLevel(logging.INFO)
        else:
            logger.setLevel(logging.CRITICAL + 1)
        return logger


# How often the heal watch looks whether the cluster has settled.
_SETTLE_SAMPLE_S = 0.01
# With "pause", the share of elections where the candidate or the new leader
# is frozen at once (``_strike_at_transition``).
_TRANSITION_PAUSE = 0.15
# Share of role changes to candidate or leader that draw a forged reply at once.
_TRANSITION_FORGE = 0.5
# With "crash", up to this many times in the fault phase, a node's power fails
# inside its next multi-step disk operation (``_SimDisk``), 0 to _CUT_OPS_MAX - 1
# calls into it.
_POWER_CUTS_MAX = 5
# At this share of crashes in the fault phase, the power fails again inside
# the repairs the restart makes (cut a torn tail, drop a segment, remove *.tmp).
_CUT_IN_RECOVERY = 0.4
_CUT_OPS_MAX = 12
# At this share of plain crashes, the directory's unsynced names reach the disk
# anyway (``_SimDisk.commit_directory``), as a file system's journal may.
_JOURNAL_COMMIT = 0.3
# Storage faults strike from a time drawn up to this share of the fault phase.
_DISK_WARM_UP = 0.6
# At this share of the torn writes of a plain crash, the file keeps its new
# size with zeros where the lost bytes were (all of them or a prefix).
_ZERO_FILL = 0.3
# Of the crashes injected, this share is a graceful stop and restart instead.
_GRACEFUL_STOP = 0.15
# Of the crashes injected, this share is an I/O error on a node's next log
# fsync instead: the node must stop (it cannot trust its page cache), and
# comes back as after a crash.
_IO_ERROR = 0.1
# Of the graceful stops with a log fsync in flight, this share sees it fail.
_IO_ERROR_IN_STOP = 0.7
# With "crash", each node's power fails at these odds while it first sets its
# data directory up, 0 to _CREATION_OPS - 1 calls in (the directories, IDENTITY,
# the first segment: 11 calls).
_CUT_IN_CREATION = 0.15
_CREATION_OPS = 11
# Messages held at once by the "hold" fault; beyond, the oldest are lost.
_HELD_MAX = 256

_RETRYABLE = frozenset({"busy", "unavailable", "timeout", "not_leader"})

__all__ = ["RuntimeCluster"]
