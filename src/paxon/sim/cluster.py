"""A seeded cluster of pure replicas over a simulated network, disk and clocks.

One ``SimCluster`` is one seed. Everything random comes from generators seeded
from that seed, and events run in (time, sequence) order, so a seed replays
exactly. The cluster plays the runtime's part for each replica, following the
rule in ``paxon.protocol.ready``: records go to a ``MemoryDisk`` whose fsync
takes time, after-persist messages wait for it, a crash loses what was not
synced. Clients submit register reads, writes and CAS with retries, and the
``SafetyChecker`` watches every message sent and every entry applied; the
``PropertyChecker`` (``paxon.sim.properties``) checks each protocol rule on
every send, every fsync, every crash and every read, and reports into the same
list of violations.

With the ``reconfig`` kind (``paxon.sim.reconfig``) the leader is asked now
and then to change the configuration: nodes join as learners (``spares``
start outside it), learners are promoted, voters demoted, removed or replaced,
the leader among them. The checkers read the configurations from the chosen
log, and each replica reports the ones it holds (``on_configuration``).

A run has two phases. During the fault phase the enabled faults strike at
random. Then everything heals (partitions close, crashed nodes restart, the
network stops losing messages) and the cluster must make progress and bring
every replica of the configurations from the final chosen prefix on up to
date within ``heal_phase_s`` of simulated time (a node removed, or never added,
is not waited for).
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paxon.errors import Busy, NoQuorum, NotLeader
from paxon.kv.sessions import SessionVerdict
from paxon.protocol.membership import SYSTEM_CLIENT_ID, Configuration
from paxon.protocol.messages import Message
from paxon.protocol.ready import Ready
from paxon.protocol.records import DurableState
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import Command, Slot
from paxon.sim import buggy, reconfig
from paxon.sim.checkers import SafetyChecker
from paxon.sim.config import (
    FAULT_KINDS,
    HistoryOp,
    ReplicaFactory,
    SimConfig,
    SimStats,
    draw_process_fault,
)
from paxon.sim.disk import MemoryDisk, WalDisk
from paxon.sim.network import CLIENT_BASE, LinkFaults, SimNetwork, draw_partition
from paxon.sim.properties import PropertyChecker
from paxon.sim.registers import RegisterMachine, RegisterOp, Result
from paxon.sim.trace import describe

Disk = MemoryDisk | WalDisk

# Event kinds, in the heap as (time, sequence, kind, payload).
(
    _DELIVER,
    _TICK,
    _FSYNC,
    _CLIENT,
    _FAULT,
    _CRASH,
    _RESTART,
    _HEAL,
    _END_FAULTS,
    _END,
    _CALL,
    _BUGGY,
    _RECONFIG,
) = range(13)


# Client <-> server messages of the simulated service (not protocol messages).
@dataclass(frozen=True, slots=True)
class _ClientWrite:
    op_id: int
    command: Command


@dataclass(frozen=True, slots=True)
class _ClientRead:
    op_id: int
    key: str


@dataclass(frozen=True, slots=True)
class _ClientReply:
    op_id: int
    result: Result | str


@dataclass(frozen=True, slots=True)
class _Redirect:
    op_id: int
    leader_hint: int | None


@dataclass(slots=True)
class _SimNode:
    node_id: int
    rng: random.Random
    clock_rate: float
    clock_offset: float
    replica: Replica
    disk: Disk = field(default_factory=MemoryDisk)
    machine: RegisterMachine = field(default_factory=RegisterMachine)
    up: bool = True
    crash_in_fsync: bool = False
    paused_until: float = 0.0
    incarnation: int = 0
    fsync_in_flight: bool = False
    waiting: list[tuple[int, list[Message]]] = field(default_factory=list)
    writes: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    reads_confirming: dict[int, tuple[int, int, str]] = field(default_factory=dict)
    reads_applying: list[tuple[Slot, int, int, str]] = field(default_factory=list)
    next_read_id: int = 1
    slot_chosen_reported: Slot = -1  # to the PropertyChecker (on_configuration)


@dataclass(slots=True)
class _SimClient:
    endpoint: int
    seq: int = 0
    token: int = 0
    target: int = 1
    op: HistoryOp | None = None
    command: Command | None = None
    redirected: bool = False
    last_seen: dict[str, str | None] = field(default_factory=dict)
    # Which member to try next when no leader is named: its own turn, as
    # paxon.Client keeps, so a stale hint cannot trap it between two nodes.
    turn: int = 0


class SimCluster:
    def __init__(
        self,
        seed: int,
        config: SimConfig,
        *,
        replica_factory: ReplicaFactory = Replica,
        trace: bool = False,
    ) -> None:
        self.seed = seed
        self.config = config
        self._factory = replica_factory
        self._trace_on = trace
        self.trace: list[str] = []
        self.time = 0.0
        self._queue: list[tuple[float, int, int, Any]] = []
        self._sequence = 0
        self._rng_faults = random.Random(f"{seed}:faults")
        self._rng_clients = random.Random(f"{seed}:clients")
        # Its own stream, so turning the buggy member on leaves the other faults as they were.
        self._rng_buggy = random.Random(f"{seed}:buggy")
        self._rng_reconfig = random.Random(f"{seed}:reconfig")
        self.network = SimNetwork(random.Random(f"{seed}:net"), self._link_faults())
        # Every node of the run; the first configuration's voters, then the spares.
        self.members = list(range(1, config.nodes + config.spares + 1))
        self.initial = Configuration.initial(range(1, config.nodes + 1), alpha=config.alpha)
        self.checker = SafetyChecker(
            self.members, internal_client_ids={SYSTEM_CLIENT_ID}, configuration=self.initial
        )
        self.properties = PropertyChecker(
            self.members, self.checker.violations, configuration=self.initial
        )
        self.stats = SimStats(faults={kind: 0 for kind in FAULT_KINDS})
        self.history: list[HistoryOp] = []
        self.nodes = {node_id: self._new_node(node_id) for node_id in self.members}
        self.clients = [
            _SimClient(CLIENT_BASE + index, target=self.members[index % config.nodes])
            for index in range(config.clients)
        ]
        # Each seed gets its own disk: from fast NVMe to a slow spinning disk.
        self._fsync_max_s = self._rng_faults.uniform(0.0005, 0.005)
        self._healed_at: float | None = None
        self._chosen_at_heal = 0
        self._done = False

    # ------------------------------------------------------------------ run

    def run(self) -> SimStats:
        """Run the whole seed: both phases, then the final liveness checks."""
        self.start()
        self.run_until(float("inf"))
        return self.stats

    def start(self) -> None:
        config = self.config
        for node in self.nodes.values():
            self._start_replica(node)
            self._push(self._rng_faults.random() * config.tick_s, _TICK, node.node_id)
        for index, _ in enumerate(self.clients):
            self._push(0.05 + 0.01 * index, _CLIENT, (index, 0))
        if {"partition", "crash", "pause"} & config.faults:
            self._push(0.5 + self._rng_faults.random() * 0.5, _FAULT, None)
        if "buggy" in config.faults:
            self._push(0.2 + self._rng_buggy.random() * 0.3, _BUGGY, None)
        if "reconfig" in config.faults:
            self._push(0.3 + self._rng_reconfig.random() * 0.3, _RECONFIG, None)
        self._push(config.fault_phase_s, _END_FAULTS, None)
        self._push(config.fault_phase_s + config.heal_phase_s, _END, None)

    def run_until(self, time: float) -> bool:
        """Process events up to simulated ``time``; False once the run is over."""
        queue = self._queue
        while queue and not self._done and queue[0][0] <= time:
            self.time, _, kind, payload = heapq.heappop(queue)
            self.stats.steps += 1
            self._dispatch(kind, payload)
        self.stats.slots_chosen = len(self.checker.chosen)
        self.stats.commands_chosen = sum(
            len(value.commands) for value in self.checker.chosen.values()
        )
        self.stats.configs_chosen = self.checker.configs.changes_chosen
        return bool(queue) and not self._done

    def crash(self, node_id: int) -> None:
        """Crash a node now; it restarts by itself a little later."""
        node = self.nodes[node_id]
        if node.up:
            self._crash(node)

    def at(self, time: float, action: Callable[[SimCluster], None]) -> None:
        """Run ``action(cluster)`` at simulated ``time`` (for scripted scenarios)."""
        self._push(time, _CALL, action)

    def leader(self) -> int | None:
        """The node that believes it leads with the highest ballot, if any."""
        leaders = [
            node for node in self.nodes.values() if node.up and node.replica.role is Role.LEADER
        ]
        if not leaders:
            return None
        return max(leaders, key=lambda node: node.replica.ballot_own).node_id

    def _dispatch(self, kind: int, payload: Any) -> None:
        if kind == _DELIVER:
            self._deliver(*payload)
        elif kind == _TICK:
            self._tick(payload)
        elif kind == _FSYNC:
            self._fsync_done(*payload)
        elif kind == _CLIENT:
            self._client_wake(*payload)
        elif kind == _FAULT:
            self._inject_fault()
        elif kind == _CRASH:
            node = self.nodes[payload]
            if node.up and self._healed_at is None:
                self._crash(node)
        elif kind == _RESTART:
            self._restart(payload)
        elif kind == _HEAL:
            self.network.heal(payload)
            self._log(f"heal cut #{payload}")
        elif kind == _END_FAULTS:
            self._heal_everything()
        elif kind == _END:
            self._finish()
        elif kind == _CALL:
            payload(self)
        elif kind == _BUGGY:
            self._inject_buggy()
        elif kind == _RECONFIG:
            self._inject_reconfig()

    # ----------------------------------------------------------- replicas

    def _new_node(self, node_id: int) -> _SimNode:
        drift = "drift" in self.config.faults
        most = self.config.drift_rate_max
        rate = 1.0 + (self._rng_faults.uniform(-most, most) if drift else 0.0)
        offset = self._rng_faults.uniform(0, 100) if drift else 0.0
        if drift:
            self.stats.faults["drift"] += 1
        rng = random.Random(f"{self.seed}:node{node_id}")
        disk: Disk
        if self.config.storage == "wal":
            disk = WalDisk(node_id, random.Random(f"{self.seed}:disk{node_id}"))
        else:
            disk = MemoryDisk()
        replica = self._build_replica(node_id, rng, offset, disk.recover())
        return _SimNode(node_id, rng, rate, offset, replica=replica, disk=disk)

    def _build_replica(
        self, node_id: int, rng: random.Random, now: float, durable: DurableState
    ) -> Replica:
        return self._factory(
            node_id,
            self.initial,
            rng=rng,
            now=now,
            config=self.config.replica_config,
            durable=durable,
        )

    def _local_now(self, node: _SimNode) -> float:
        return node.clock_offset + node.clock_rate * self.time

    def _start_replica(self, node: _SimNode) -> None:
        # The first tick hands out the entries recovered as chosen.
        self._call(node, lambda: node.replica.tick(self._local_now(node)))

    def _tick(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.up and node.paused_until <= self.time:
            self._call(node, lambda: node.replica.tick(self._local_now(node)))
        self._push(self.time + self.config.tick_s, _TICK, node_id)

    def _call(self, node: _SimNode, action: Callable[[], Ready]) -> None:
        """Run one call into the core and perform its output, as a runtime would."""
        replica = node.replica
        role_before = replica.role
        try:
            ready = action()
        except (NotLeader, Busy, NoQuorum):
            raise  # answers to a client, handled by the caller
        except Exception as error:
            # The runtime stops a node whose core raises: nothing a peer sends may do that.
            detail = f"n{node.node_id} raised {type(error).__name__}: {error}"
            self.checker.fail(self.time, "exception", detail)
            self._crash(node)
            return
        if replica.role is not role_before:
            ballot = (
                replica.ballot_promised if replica.role is Role.FOLLOWER else replica.ballot_own
            )
            self._log(f"n{node.node_id} {role_before.value} -> {replica.role.value} b={ballot}")
            if replica.role is Role.LEADER:
                self.stats.leader_changes += 1
        try:
            replica.check_invariants(full=self.stats.steps % 64 == 0)
        except AssertionError as error:
            self.checker.on_invariant_broken(node.node_id, error, self.time)
        if replica.slot_chosen != node.slot_chosen_reported:
            # Before its messages leave: a Probe is judged by the prefix it was sent at.
            node.slot_chosen_reported = replica.slot_chosen
            self.properties.on_configuration(
                node.node_id,
                replica.slot_chosen,
                replica.configuration,
                replica.configuration_newest,
                self.time,
            )
        self._perform(node, ready)

    def _perform(self, node: _SimNode, ready: Ready) -> None:
        lsn = node.disk.append(ready.records) if ready.records else node.disk.lsn_appended
        if ready.records:
            self._start_fsync(node)
        if ready.messages_after_persist:
            if node.disk.lsn_durable >= lsn:
                for message in ready.messages_after_persist:
                    self._send(node.node_id, message)
            else:
                node.waiting.append((lsn, list(ready.messages_after_persist)))
        for message in ready.messages:
            self._send(node.node_id, message)
        for chosen in ready.apply:
            self.checker.on_apply(node.node_id, chosen.slot, chosen.value, self.time)
            for command in chosen.value.commands:
                self._apply_command(node, command)
        for read in ready.reads:
            self.properties.on_read_confirmed(node.node_id, read.read_id, read.slot, self.time)
            waiting = node.reads_confirming.pop(read.read_id, None)
            if waiting is None:
                continue
            client, op_id, key = waiting
            if read.slot is None:
                self._send_client(node.node_id, client, _Redirect(op_id, None))
            else:
                node.reads_applying.append((read.slot, client, op_id, key))
        if node.reads_applying:
            self._serve_reads(node)

    def _apply_command(self, node: _SimNode, command: Command) -> None:
        if command.client_id == SYSTEM_CLIENT_ID:
            return  # a configuration change: the replica's business, not the registers'
        verdict, result = node.machine.apply(command)
        if verdict is SessionVerdict.NEW:
            self.checker.on_effect(node.node_id, command, self.time)
        waiting = node.writes.pop((command.client_id, command.seq), None)
        if waiting is not None and verdict is not SessionVerdict.STALE:
            client, op_id = waiting
            self._send_client(node.node_id, client, _ClientReply(op_id, result))

    def _serve_reads(self, node: _SimNode) -> None:
        applied = node.replica.slot_applied
        still_waiting = []
        for slot, client, op_id, key in node.reads_applying:
            if applied >= slot:
                self.properties.on_read_answered(node.node_id, slot, applied, self.time)
                value = node.machine.read(key)
                self._send_client(node.node_id, client, _ClientReply(op_id, value))
            else:
                still_waiting.append((slot, client, op_id, key))
        node.reads_applying = still_waiting

    def _start_fsync(self, node: _SimNode) -> None:
        if node.fsync_in_flight or node.disk.lsn_appended == node.disk.lsn_durable:
            return
        node.fsync_in_flight = True
        latency = 0.0001 + self._fsync_max_s * self._rng_faults.random()
        payload = (node.node_id, node.incarnation, node.disk.lsn_appended)
        self._push(self.time + latency, _FSYNC, payload)
        if node.crash_in_fsync:
            self._push(self.time + latency * self._rng_faults.random(), _CRASH, node.node_id)

    def _fsync_done(self, node_id: int, incarnation: int, lsn: int) -> None:
        node = self.nodes[node_id]
        if not node.up or node.incarnation != incarnation:
            return
        if node.paused_until > self.time:
            self._push(node.paused_until, _FSYNC, (node_id, incarnation, lsn))
            return
        synced = node.disk.sync_through(lsn)
        self.properties.on_records_durable(node_id, synced, self.time)
        node.fsync_in_flight = False
        durable = node.disk.lsn_durable
        released = [batch for batch in node.waiting if batch[0] <= durable]
        node.waiting = [batch for batch in node.waiting if batch[0] > durable]
        for _, messages in released:
            for message in messages:
                self._send(node_id, message)
        self._start_fsync(node)

    # ------------------------------------------------------------ network

    def _send(self, src: int, message: Message) -> None:
        self.checker.on_send(message, self.time)
        self.properties.on_send(src, message, self.time)
        for delay in self.network.delays(src, message.dst):
            self._push(self.time + delay, _DELIVER, (src, message.dst, message))

    def _send_client(self, src: int, dst: int, message: Any) -> None:
        for delay in self.network.delays(src, dst):
            self._push(self.time + delay, _DELIVER, (src, dst, message))

    def _deliver(self, src: int, dst: int, message: Any) -> None:
        if dst >= CLIENT_BASE:
            self._client_receive(self.clients[dst - CLIENT_BASE], message)
            return
        node = self.nodes.get(dst)
        if node is None:
            detail = f"n{src} answered node {dst}, which is not a member: {describe(message)}"
            self.checker.fail(self.time, "non-member", detail)
            return
        if not node.up:
            return
        if node.paused_until > self.time:
            # Held in the socket buffer until the node runs again, in order.
            self._push(node.paused_until, _DELIVER, (src, dst, message))
            return
        if self._trace_on and src != dst:
            self._log(f"n{src}->n{dst} {describe(message)}")
        if isinstance(message, _ClientWrite):
            self._on_client_write(node, src, message)
        elif isinstance(message, _ClientRead):
            self._on_client_read(node, src, message)
        else:
            self._call(node, lambda: node.replica.step(message))

    def _on_client_write(self, node: _SimNode, client: int, request: _ClientWrite) -> None:
        command = request.command
        verdict = node.machine.sessions.verdict(command.client_id, command.seq)
        if verdict is SessionVerdict.DUPLICATE:
            result = node.machine.sessions.reply(command.client_id, command.seq)
            self._send_client(node.node_id, client, _ClientReply(request.op_id, result))
            return
        if verdict is SessionVerdict.STALE:
            return
        try:
            self._call(node, lambda: node.replica.propose(command))
        except NotLeader as error:
            self._send_client(node.node_id, client, _Redirect(request.op_id, error.leader_hint))
            return
        except (Busy, NoQuorum):
            # As paxon.Client does: a busy node, or a leader that hears no
            # majority, is left for the next one.
            self._send_client(node.node_id, client, _Redirect(request.op_id, None))
            return
        node.writes[(command.client_id, command.seq)] = (client, request.op_id)

    def _on_client_read(self, node: _SimNode, client: int, request: _ClientRead) -> None:
        read_id = node.next_read_id
        node.next_read_id += 1
        node.reads_confirming[read_id] = (client, request.op_id, request.key)
        self.properties.on_read_requested(node.node_id, read_id, self.time)
        try:
            self._call(node, lambda: node.replica.read_index(read_id, self._local_now(node)))
        except (NotLeader, NoQuorum) as error:
            del node.reads_confirming[read_id]
            self.properties.on_read_confirmed(node.node_id, read_id, None, self.time)
            hint = error.leader_hint if isinstance(error, NotLeader) else None
            self._send_client(node.node_id, client, _Redirect(request.op_id, hint))

    # ------------------------------------------------------------- clients

    def _client_wake(self, index: int, token: int) -> None:
        client = self.clients[index]
        if token != client.token:
            return
        if client.op is None:
            self._client_start_op(index, client)
            return
        if not client.redirected:
            # No answer in time: try the next server with the same request.
            client.target = self._next_member(client)
        client.redirected = False
        self._client_send(index, client)

    def _next_member(self, client: _SimClient) -> int:
        client.turn += 1
        return self.members[client.turn % len(self.members)]

    def _client_start_op(self, index: int, client: _SimClient) -> None:
        rng = self._rng_clients
        key = f"k{rng.randrange(self.config.keys)}"
        op_id = len(self.history)
        roll = rng.random()
        client.command = None
        if roll < 0.4:
            op = HistoryOp(op_id, key, "read", (), self.time)
        else:
            client.seq += 1
            value = f"c{client.endpoint}.{client.seq}"
            if roll < 0.75:
                op = HistoryOp(op_id, key, "write", (value,), self.time)
                register_op = RegisterOp("write", key, value)
            else:
                expect = client.last_seen.get(key)
                op = HistoryOp(op_id, key, "cas", (expect, value), self.time)
                register_op = RegisterOp("cas", key, value, expect)
            client.command = Command(client.endpoint, client.seq, register_op.encode())
            self.checker.on_submit(client.command)
        client.op = op
        self.history.append(op)
        if self._trace_on:
            self._log(f"client {client.endpoint} invokes #{op_id} {op.kind} {key} {op.args}")
        self._client_send(index, client)

    def _client_send(self, index: int, client: _SimClient) -> None:
        assert client.op is not None
        message: _ClientWrite | _ClientRead
        if client.command is not None:
            message = _ClientWrite(client.op.op_id, client.command)
        else:
            message = _ClientRead(client.op.op_id, client.op.key)
        self._send_client(client.endpoint, client.target, message)
        client.token += 1
        self._push(self.time + self.config.client_timeout_s, _CLIENT, (index, client.token))

    def _client_receive(self, client: _SimClient, message: Any) -> None:
        op = client.op
        if op is None or message.op_id != op.op_id:
            return  # an answer to an operation already finished
        index = client.endpoint - CLIENT_BASE
        if isinstance(message, _Redirect):
            hint = message.leader_hint
            client.target = hint if hint is not None else self._next_member(client)
            client.redirected = True
            client.token += 1
            self._push(self.time + 0.005, _CLIENT, (index, client.token))
            return
        op.returned_at = self.time
        op.result = message.result
        self.stats.ops_completed += 1
        if op.kind == "read":
            client.last_seen[op.key] = message.result
        elif op.kind == "write" or (op.kind == "cas" and message.result):
            client.last_seen[op.key] = op.args[-1]
        if self._trace_on:
            self._log(f"client {client.endpoint} completes #{op.op_id}: {message.result!r}")
        if self._healed_at is not None and self.stats.heal_progress_s is None:
            self.stats.heal_progress_s = self.time - self._healed_at
        client.op = None
        client.command = None
        client.token += 1
        think = 0.005 + 0.03 * self._rng_clients.random()
        self._push(self.time + think, _CLIENT, (index, client.token))

    # -------------------------------------------------------------- faults

    def _inject_fault(self) -> None:
        if self._healed_at is not None:
            return
        rng = self._rng_faults
        kind = draw_process_fault(rng, self.config)
        if kind is None:
            return
        if kind == "partition":
            self._inject_partition(rng)
        elif kind == "crash":
            self._inject_crash(rng)
        else:
            self._inject_pause(rng)
        self.stats.faults[kind] += 1
        self._push(self.time + rng.uniform(*self.config.fault_gap_s), _FAULT, None)

    def _inject_partition(self, rng: random.Random) -> None:
        members = self.members
        shape, links = draw_partition(rng, members)
        cut_id = self.network.cut(links)
        self._log(f"fault: {shape} partition #{cut_id} cuts {sorted(links)}")
        self._push(self.time + 0.2 + 1.8 * rng.random(), _HEAL, cut_id)

    def _inject_crash(self, rng: random.Random) -> None:
        up = [node for node in self.nodes.values() if node.up]
        if not up:
            return
        if rng.random() < 0.25:
            # A power cut takes the whole cluster down: at one instant, or as
            # each node is in the middle of writing (the worst moment).
            mid_fsync = rng.random() < 0.5
            self._log(f"fault: power cut{' mid-fsync' if mid_fsync else ''}")
            for node in up:
                if mid_fsync:
                    node.crash_in_fsync = True
                else:
                    self._crash(node)
            return
        leaders = [node for node in up if node.replica.role is Role.LEADER]
        node = rng.choice(leaders) if leaders and rng.random() < 0.5 else rng.choice(up)
        if rng.random() < 0.5:
            # Strike mid-fsync: the power fails while records are in flight to
            # disk, the moment persist-before-speak is about.
            node.crash_in_fsync = True
            return
        self._crash(node)

    def _inject_pause(self, rng: random.Random) -> None:
        """Freeze a node (a GC pause, a stalled VM, SIGSTOP): it wakes to a stale world."""
        up = [node for node in self.nodes.values() if node.up and node.paused_until <= self.time]
        if not up:
            return
        leaders = [node for node in up if node.replica.role is Role.LEADER]
        node = rng.choice(leaders) if leaders and rng.random() < 0.5 else rng.choice(up)
        node.paused_until = self.time + 0.2 + 1.8 * rng.random()
        self._log(f"fault: pause n{node.node_id} until {node.paused_until:.6f}")

    def _inject_buggy(self) -> None:
        """A buggy member or an outsider sends one out-of-bounds message now."""
        if self._healed_at is not None:
            return
        rng = self._rng_buggy
        up = [node for node in self.nodes.values() if node.up]
        if up:
            target = rng.choice(up)
            kind, message = buggy.forge(rng, target.replica)
            self._log(
                f"fault: buggy {kind} n{message.src}->n{message.dst} {describe(message)}"
                f" delivered to n{target.node_id}"
            )
            # Delivered at once: the slots it names are measured from the state now.
            self._push(self.time, _DELIVER, (message.src, target.node_id, message))
            self.stats.faults["buggy"] += 1
        self._push(self.time + 0.02 + 0.08 * rng.random(), _BUGGY, None)

    def _inject_reconfig(self) -> None:
        """Ask the leader to change the configuration (``paxon.sim.reconfig``)."""
        if self._healed_at is not None:
            return
        rng = self._rng_reconfig
        leader_id = self.leader()
        node = self.nodes[leader_id] if leader_id is not None else None
        proposed = False
        if node is not None and node.paused_until <= self.time:
            replica = node.replica
            drawn = reconfig.draw_change(
                rng, replica.configuration_newest, self.members, node.node_id
            )
            if drawn is not None:
                label, change = drawn
                try:
                    self._call(node, lambda: replica.propose_configuration(change))
                except (NotLeader, Busy) as error:
                    self._log(f"reconfig: n{node.node_id} refused to {label}: {error!r}")
                else:
                    self._log(f"reconfig: n{node.node_id} proposes epoch {change.epoch}: {label}")
                    self.stats.faults["reconfig"] += 1
                    proposed = True
        else:
            self._log("reconfig: no leader to ask")
        # Refused or not asked: try again sooner.
        gap = rng.uniform(*self.config.reconfig_gap_s) / (1 if proposed else 4)
        self._push(self.time + gap, _RECONFIG, None)

    def _retire(self, replica: Replica) -> None:
        """Keep a replica's refusal counts before it is replaced or the run ends."""
        for name, count in dataclasses.asdict(replica.counters).items():
            self.stats.refused[name] = self.stats.refused.get(name, 0) + count

    def _crash(self, node: _SimNode) -> None:
        self._push(self.time + 0.05 + 1.5 * self._rng_faults.random(), _RESTART, node.node_id)
        node.crash_in_fsync = False
        node.paused_until = 0.0
        node.up = False
        node.incarnation += 1
        node.disk.crash()
        self.properties.on_crash(node.node_id, self.time)
        node.fsync_in_flight = False
        node.waiting = []
        node.writes = {}
        node.reads_confirming = {}
        node.reads_applying = []
        self._log(f"fault: crash n{node.node_id} (role {node.replica.role.value})")

    def _restart(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.up:
            return
        node.up = True
        node.machine = RegisterMachine()
        self._retire(node.replica)
        node.replica = self._build_replica(
            node_id, node.rng, self._local_now(node), node.disk.recover()
        )
        node.slot_chosen_reported = -1
        self.checker.on_restart(node_id)
        self._log(
            f"restart n{node_id} promised={node.replica.ballot_promised} "
            f"chosen<{node.replica.slot_chosen}"
        )
        self._start_replica(node)

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
        for node in self.nodes.values():
            node.crash_in_fsync = False
            node.paused_until = min(node.paused_until, self.time)
            if not node.up:
                self._restart(node.node_id)
        self._healed_at = self.time
        self._chosen_at_heal = self._chosen_prefix()
        self._log(f"heal: all faults end; chosen prefix {self._chosen_at_heal}")

    def _finish(self) -> None:
        self._done = True
        for node in self.nodes.values():
            self._retire(node.replica)
        if self.stats.heal_progress_s is None:
            self.checker.fail(
                self.time,
                "liveness",
                "no client operation completed within "
                f"{self.config.heal_phase_s}s after all faults healed",
            )
        # Nodes removed, or never added, are not kept up to date.
        kept = self.checker.configs.members_from(self._chosen_prefix())
        for node in self.nodes.values():
            if node.node_id in kept and node.replica.slot_applied < self._chosen_at_heal:
                self.checker.fail(
                    self.time,
                    "liveness",
                    f"n{node.node_id} applied only {node.replica.slot_applied} slots "
                    f"{self.config.heal_phase_s}s after healing; {self._chosen_at_heal} "
                    "were chosen at heal time",
                )

    def _chosen_prefix(self) -> int:
        slot = 0
        while slot in self.checker.chosen:
            slot += 1
        return slot

    # ------------------------------------------------------------- helpers

    def _push(self, time: float, kind: int, payload: Any) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (time, self._sequence, kind, payload))

    def _log(self, line: str) -> None:
        if self._trace_on:
            self.trace.append(f"{self.time:10.6f} {line}")
