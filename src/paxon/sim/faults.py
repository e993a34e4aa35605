"""The faults a ``RuntimeCluster`` injects, drawn from the seed.

One ``FaultInjector`` per run plans and strikes every fault of the fault
phase, then ends them all at the heal:

- **network**: the link faults of ``SimNetwork`` (loss, duplication, delay,
  reordering) drawn once; a ``Prepare`` lost on its way to an acceptor that
  knows more slots chosen than the candidate; partitions of every shape, among them the deposed
  leader that keeps only its readers; messages held back ("hold") and let go
  in a burst at the worst moment;
- **process**: crashes (one node, or a power cut of all), a crash between the
  write and the fsync of a batch, a graceful stop (and, from ``moments``, one
  aimed at the running leader: it hands over first), an I/O error on a log
  fsync, pauses, crash points between two steps of the runtime and right at
  storage events (a roll-over made durable before the new segment's first
  record, a snapshot written, a SnapshotRecord or a no-op's accept made
  durable), and pauses or forged replies aimed at the moment a node stands
  or leads;
- **disk**: a power cut inside a multi-step disk operation (at creation, in
  the repairs of a restart, or armed at a random time; at creation, now and
  then aimed at the first segment's header: written, not yet synced, its
  name on the disk by a journal commit, its bytes torn), torn and zero-filled
  writes, a directory reaching the disk unsynced, and the storage faults of
  ``storage_faults`` whose recovery the node must classify rightly (some
  aimed at rare targets: at crash points at storage events, at a torn-tail
  cut not yet durable, and in one planned late crash of half the seeds; at a
  roll-over made durable, now and then its directory fsync lost, so the old
  segment's seal names a segment gone; and, from ``snapshot_head``, a
  snapshot's head misdirected onto an older snapshot);
- **buggy peers**: out-of-bounds messages from ``buggy.forge``;
- **crash again**: a node restarted after a crash that lost unsynced log
  bytes, or with its log over two or more segments, crashed again soon after
  (``crash_again``);
- **wipe**: at ``SimConfig.wipe_rate`` odds per run, once, a voter bound to
  its data directory loses its disk and comes back on an empty one with a new
  incarnation, same flags: the others must refuse it (``wipe``).

Contract: each kind draws from its own stream (``{seed}:buggy``,
``{seed}:hold``, ``{seed}:crashpoint-storage``, ...), except those sharing
the cluster's ``rng_faults``, ``rng_disk`` and ``rng_stop``; the draws for
a seed come in the same order run after run, so a seed replays exactly.
After ``end_all`` (the heal) no new fault strikes, except the quiet
forgeries a settled leader must ride out.
"""

from __future__ import annotations

import functools
import random
from typing import TYPE_CHECKING

from paxon.net.peer_messages import PeerMessage
from paxon.node.node import Node
from paxon.protocol.membership import Configuration
from paxon.protocol.messages import Message, Prepare
from paxon.protocol.replica import Role
from paxon.sim import buggy
from paxon.sim.config import draw_process_fault
from paxon.sim.crash_again import CrashAgain
from paxon.sim.host import (
    NOOP_DURABLE,
    REACCEPT_DURABLE,
    ROLL_CUT_SHORT,
    ROLLED_OVER,
    SNAPSHOT_OVER_REACCEPT,
    SNAPSHOT_RECORD_DURABLE,
    Host,
    SimTransport,
)
from paxon.sim.network import LinkFaults, draw_partition
from paxon.sim.snapshot_head import SnapshotHeadAim
from paxon.sim.storage_faults import KINDS as DISK_FAULT_KINDS
from paxon.sim.storage_faults import (
    REFUSE,
    StorageFault,
    rare_targets,
    strike,
    strike_rare,
    strike_successor_lost,
)
from paxon.sim.trace import describe
from paxon.storage.layout import segment_name
from paxon.storage.segments import SEGMENT_HEADER_BYTES

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster


class FaultInjector:
    """Every fault of one run; ``cluster`` is the world it strikes."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        config = cluster.config
        self._rng_buggy = random.Random(f"{seed}:buggy")
        # Storage faults: which kinds, and how many disks may still be refused
        # (fewer than a majority, so the cluster can serve to the end).
        self._disk_kinds = DISK_FAULT_KINDS if "disk" in config.faults else frozenset()
        self._disk_refusals_left = (config.nodes - 1) // 2
        # Nodes struck with a fault recovery must refuse: down for the rest of the
        # run. With "reconfig", fewer than a majority of each configuration's voters.
        self.disks_refused: set[int] = set()
        self._rng_storage = random.Random(f"{seed}:storage")
        # Storage faults strike from a drawn time on: later ones meet an older
        # disk (snapshots taken, segments rolled over and compacted) before the
        # refusals a cluster can afford are spent on a young log.
        warm_up = random.Random(f"{seed}:storage-warm-up").uniform(0.0, _DISK_WARM_UP)
        self._disk_faults_from = warm_up * config.fault_phase_s
        # The storage fault each crashed disk took, for its next start to classify.
        self._disk_faults: dict[int, StorageFault | None] = {}
        # Faults aimed at rare targets (``strike_rare``), and the odds of a fault
        # at rare moments, draw apart, so the draws above stay as they were.
        self._rng_rare = random.Random(f"{seed}:storage-rare")
        # The storage event (``storage_event_strikes``) each host was crashed at.
        self._crashed_at_event: dict[int, str] = {}
        self._rare_seen: dict[str, int] = {}  # rare storage events met in this run, by kind
        # Hosts crashed for a fault aimed at a rare target (``_crash_for_rare_target``).
        self._crashed_for_rare: set[int] = set()
        # Messages held back by the "hold" fault, released at the worst moment.
        self._held: list[tuple[int, PeerMessage]] = []
        self._holding = "hold" in config.faults
        self._crash_points = "crashpoint" in config.faults
        # Roll-overs cut short (``SimConfig.roll_cut_rate``): any fault kinds,
        # drawn from a stream of their own.
        self._cutting_roll_overs = config.roll_cut_rate > 0
        self._rng_roll_cut = random.Random(f"{seed}:roll-cut")
        self._rng_hold = random.Random(f"{seed}:hold")
        # Prepares lost on purpose ("drop"): to an acceptor ahead of the candidate.
        self._losing_prepares = "drop" in config.faults
        self._rng_lose_prepare = random.Random(f"{seed}:lose-prepare")
        self._rng_crash = random.Random(f"{seed}:crashpoint")
        # Crash points at rare storage moments draw apart, so the draws of
        # the crash points above do not shift when one is added.
        self._rng_storage_crash = random.Random(f"{seed}:crashpoint-storage")
        # The re-accept points (mutant #78's schedule) draw apart again.
        self._rng_reaccept_crash = random.Random(f"{seed}:crashpoint-reaccept")
        self._rng_cut = random.Random(f"{seed}:powercut")
        self._rng_journal = random.Random(f"{seed}:journal")
        self._rng_io = random.Random(f"{seed}:io-error")
        # At a crash point right after a roll-over made durable, this stream
        # draws whether its directory fsync is lost (``strike_successor_lost``).
        self._rng_successor_lost = random.Random(f"{seed}:successor-lost")
        self.successors_lost = 0
        # A snapshot's head misdirected onto an older one, aimed (``snapshot_head``).
        self.snapshot_head = SnapshotHeadAim(cluster, seed, self._disk_kinds)
        self._rng_creation = random.Random(f"{seed}:creation-cut")
        # The aimed cut at the first segment's header draws apart, so the
        # draws of the creation cuts above stay as they were.
        self._rng_header_cut = random.Random(f"{seed}:creation-header")
        # Per host whose creation cut is aimed at it: the header bytes kept,
        # then the zeros a file system may leave after them.
        self._header_cuts: dict[int, tuple[int, int]] = {}
        self._rng_zero = random.Random(f"{seed}:zero-fill")
        self._rng_wipe = random.Random(f"{seed}:wipe")
        # A node crashed again soon after a restart that met an odd log.
        self.crash_again = CrashAgain(cluster, seed)

    # ------------------------------------------------------------------ plan

    def link_faults(self) -> LinkFaults:
        """The network's link faults for the fault phase (configured, or drawn)."""
        cluster = self._cluster
        rng = cluster.rng_faults
        faults = cluster.config.faults
        if cluster.config.link is not None:
            return cluster.config.link
        return LinkFaults(
            drop_rate=rng.uniform(0.0, 0.1) if "drop" in faults else 0.0,
            duplicate_rate=rng.uniform(0.0, 0.05) if "duplicate" in faults else 0.0,
            reorder_rate=rng.uniform(0.05, 0.3) if "reorder" in faults else 0.0,
            reorder_max_s=rng.uniform(0.005, 0.05) if "reorder" in faults else 0.0,
            stall_rate=rng.uniform(0.001, 0.02) if "delay" in faults else 0.0,
            stall_max_s=rng.uniform(0.2, 1.5) if "delay" in faults else 0.0,
        )

    def arm_creation_cut(self, host: Host) -> None:
        """Now and then, the power fails while ``host``'s node sets its data directory up."""
        if "crash" not in self._cluster.config.faults:
            return
        if self._rng_creation.random() < _CUT_IN_CREATION:
            ops = self._rng_creation.randrange(_CREATION_OPS)
            host.fs.arm_power_cut(ops)
            self._cluster.log(
                f"fault: power of n{host.node_id} fails {ops} calls into its creation"
            )
            return
        rng = self._rng_header_cut
        if rng.random() < _CUT_AT_FIRST_HEADER:
            # The power fails at the fsync of the first segment's header; a
            # journal commit kept its name, and a prefix of its bytes (maybe
            # zeros after): recovery must drop that lone torn segment and
            # start (``_check_chain``), losing nothing: it held no record.
            kept = rng.randrange(SEGMENT_HEADER_BYTES)
            zeros = 0 if rng.random() < 0.5 else rng.randint(1, SEGMENT_HEADER_BYTES - kept)
            host.fs.arm_power_cut(_FIRST_HEADER_FSYNC_OP)
            self._header_cuts[host.node_id] = (kept, zeros)
            self._cluster.log(
                f"fault: power of n{host.node_id} fails at its first segment header's fsync "
                f"({kept} bytes kept, then {zeros} zeros)"
            )

    def start(self) -> None:
        """Schedule the first process fault, forgery and the armed power cuts."""
        cluster = self._cluster
        config = cluster.config
        if {"partition", "crash", "pause"} & config.faults:
            cluster.push(0.5 + cluster.rng_faults.random() * 0.5, self._inject_fault)
        if "buggy" in config.faults:
            cluster.push(0.2 + self._rng_buggy.random() * 0.3, self._inject_buggy)
        if "crash" in config.faults:
            for _ in range(self._rng_cut.randint(0, _POWER_CUTS_MAX)):
                at = self._rng_cut.uniform(0.2, 0.9 * config.fault_phase_s)
                cluster.push(at, self._arm_power_cut)
            if self._disk_kinds and self._rng_rare.random() < _RARE_CRASH:
                at = self._rng_rare.uniform(*_RARE_CRASH_AT) * config.fault_phase_s
                cluster.push(at, self._crash_for_rare_target)
        self.snapshot_head.start()
        if "wipe" in config.faults and self._rng_wipe.random() < config.wipe_rate:
            cluster.push(self._rng_wipe.uniform(*_WIPE_AT) * config.fault_phase_s, self._wipe)

    def end_all(self) -> None:
        """The heal: every fault ends, held messages go out, every host comes back."""
        cluster = self._cluster
        network = cluster.network
        cluster.stats.faults["drop"] = network.dropped
        cluster.stats.faults["duplicate"] = network.duplicated
        cluster.stats.faults["delay"] = network.stalled
        cluster.stats.faults["reorder"] = network.reordered
        network.heal_all()
        network.faults = LinkFaults()
        self._holding = self._crash_points = self._losing_prepares = False
        self._cutting_roll_overs = False
        self.release_held("healing")
        for host in cluster.hosts.values():
            host.crash_in_fsync = False
            host.fs.disarm_power_cut()
            if host.fs.clear_faults():
                host.io_error = False
            host.paused_until = min(host.paused_until, cluster.time)
            if host.process is None:
                cluster.restart(host)

    # ------------------------------------------------------------------ hooks

    def hold(self, src: int, message: PeerMessage) -> bool:
        """With "hold", now and then keep a sent message back (True: kept)."""
        if not self._holding or self._rng_hold.random() >= self._cluster.config.hold_rate:
            return False
        self._held.append((src, message))
        if len(self._held) > _HELD_MAX:
            self._held.pop(0)  # lost after all
        self._cluster.stats.faults["hold"] += 1
        return True

    def lose_prepare(self, message: PeerMessage) -> bool:
        """With "drop", now and then lose a ``Prepare`` to an acceptor that knows
        slots chosen from the candidate's ``slot_from`` on (True: lost).

        Once leading, the candidate re-proposes those slots; its ``Accept``
        then meets an acceptor that knows them chosen and never promised the
        ballot, which must still make the ballot durable before it votes."""
        if not self._losing_prepares or not isinstance(message, Prepare):
            return False
        cluster = self._cluster
        node = cluster.node(message.dst)
        if node is None or node._replica.slot_chosen <= message.slot_from:
            return False
        if self._rng_lose_prepare.random() >= _PREPARE_LOSS:
            return False
        cluster.stats.faults["lose-prepare"] = cluster.stats.faults.get("lose-prepare", 0) + 1
        cluster.log(f"fault: lose {describe(message)} (n{message.dst} is ahead)")
        return True

    def release_held(self, why: str) -> None:
        """Deliver every held message now, in a burst: stale news at the worst moment."""
        if not self._held:
            return
        cluster = self._cluster
        held, self._held = self._held, []
        cluster.log(f"fault: release {len(held)} held messages ({why})")
        for src, message in held:
            delay = 0.002 * self._rng_hold.random()
            cluster.push(
                cluster.time + delay, functools.partial(cluster.deliver_peer, src, message)
            )

    def delay_own_message(self, node: Node, message: Message) -> bool:
        """With "hold", now and then deliver a node's own vote or promise to it late.

        The runtime hands it to itself on the next loop turn; a slow turn (a
        long callback, a GC pause) can put other messages first."""
        cluster = self._cluster
        if not self._holding or self._rng_hold.random() >= cluster.config.hold_rate:
            return False
        host = cluster.hosts[node.node_id]
        process = host.process
        if process is None:
            return False
        cluster.stats.faults["hold"] += 1

        def deliver() -> None:
            if host.process is process:
                process.loop.call_soon(node._on_peer_message, message)

        cluster.later(0.0005 + 0.02 * self._rng_hold.random(), deliver)
        return True

    def crash_point(self, host: Host, where: str) -> bool:
        """Whether to crash ``host`` here, between two steps of its runtime (and do it)."""
        cluster = self._cluster
        if not self._crash_points or self._rng_crash.random() >= cluster.config.crashpoint_rate:
            return False
        cluster.stats.faults["crashpoint"] += 1
        cluster.crash_host(host, f"crash point: {where}")
        return True

    def storage_crash_point(self, host: Host, where: str) -> bool:
        """Whether to crash ``host`` right after a rare storage event (and do it)."""
        if not self.storage_event_strikes(host, where):
            return False
        self._cluster.crash_host(host, f"crash point: {where}")
        return True

    def storage_event_strikes(self, host: Host, where: str) -> bool:
        """Whether a crash point at the rare storage event ``where`` strikes ``host``
        (counted and logged; the caller crashes it). These events are far fewer
        than messages or fsyncs, so they strike at a higher rate; the rarest
        (a snapshot installed, a no-op persisted: a few a run, mostly after
        the heal) at _RARE_POINT_RATE."""
        cluster = self._cluster
        if where == ROLL_CUT_SHORT:
            strikes = self._cutting_roll_overs
            if not strikes or self._rng_roll_cut.random() >= cluster.config.roll_cut_rate:
                return False
            return self._note_storage_point(host, where)
        if where in _RARE_STORAGE_EVENTS:
            # Aimed while the event is rare; one that turns out common in this
            # run (a no-op fill of alpha slots that lets a configuration change
            # take effect) strikes less and less, so it does not take every
            # node down at the first change.
            seen = self._rare_seen[where] = self._rare_seen.get(where, 0) + 1
            rate = _RARE_POINT_RATE * min(1.0, _RARE_EXPECTED / seen)
        else:
            rate = min(
                _STORAGE_POINT_RATE_MAX, cluster.config.crashpoint_rate * _STORAGE_POINT_BOOST
            )
        rng = self._rng_reaccept_crash if where in _REACCEPT_EVENTS else self._rng_storage_crash
        if not self._crash_points or rng.random() >= rate:
            return False
        return self._note_storage_point(host, where)

    def _note_storage_point(self, host: Host, where: str) -> bool:
        cluster = self._cluster
        cluster.stats.faults[f"crashpoint: {where}"] = (
            cluster.stats.faults.get(f"crashpoint: {where}", 0) + 1
        )
        cluster.log(f"fault: crash point of n{host.node_id} at a storage event: {where}")
        self._crashed_at_event[host.node_id] = where
        return True

    def at_transition(self, host: Host, role: Role) -> None:
        """``host``'s node just changed role: now and then strike it at once."""
        self._strike_at_transition(host, role)
        self._aim_buggy_at_transition(host, role)

    def power_off(self, host: Host) -> None:
        """The disk side of a crash: power off, and maybe fail again in the recovery."""
        cluster = self._cluster
        self._crash_disk(host)
        cluster.properties.on_crash(host.node_id, cluster.time)
        if cluster.healed_at is None and self._rng_cut.random() < _CUT_IN_RECOVERY:
            # The power fails again in the repairs of the next start (or the
            # next multi-step operation after it).
            ops = self._rng_cut.randrange(4)
            host.fs.arm_power_cut(ops)
            cluster.log(f"fault: power of n{host.node_id} fails {ops} calls into its recovery")

    def snapshot_struck(self, node_id: int) -> bool:
        """Whether the storage fault ``node_id``'s disk took at its last crash hit
        a snapshot file: recovery then skips that snapshot, and the chosen mark
        it carried may be relearned from peers instead (``recovery-fold``)."""
        fault = self._disk_faults.get(node_id)
        return fault is not None and fault.path.endswith(".snap")

    def forget_disk(self, node_id: int) -> None:
        """``node_id``'s disk was replaced by an empty one: what struck the old is moot."""
        self._disk_faults.pop(node_id, None)
        self._crashed_at_event.pop(node_id, None)
        self._crashed_for_rare.discard(node_id)

    def take_disk_fault(self, node_id: int) -> StorageFault | None:
        """The storage fault ``node_id``'s disk took at its last crash (once)."""
        return self._disk_faults.pop(node_id, None)

    # ------------------------------------------------------------------ process faults

    def _inject_fault(self) -> None:
        cluster = self._cluster
        if cluster.healed_at is not None:
            return
        rng = cluster.rng_faults
        kind = draw_process_fault(rng, cluster.config)
        if kind is None:
            return
        if kind == "partition":
            self._inject_partition(rng)
        elif kind == "crash":
            self._inject_crash(rng)
        else:
            self._inject_pause(rng)
        cluster.stats.faults[kind] += 1
        cluster.push(cluster.time + rng.uniform(*cluster.config.fault_gap_s), self._inject_fault)

    def _inject_partition(self, rng: random.Random) -> None:
        cluster = self._cluster
        members = cluster.members
        if cluster.config.readers and rng.random() < 0.3:
            self._deposed_leader_keeps_readers(rng, tries=100)
            return
        leaders = [host.node_id for host in cluster.hosts.values() if self._is_leader(host)]
        shape, links = draw_partition(rng, members, leaders)
        cut_id = cluster.network.cut(links)
        cluster.log(f"fault: {shape} partition #{cut_id} cuts {sorted(links)}")
        cluster.push(cluster.time + 0.2 + 1.8 * rng.random(), lambda: self._heal_cut(cut_id))

    def _deposed_leader_keeps_readers(self, rng: random.Random, *, tries: int) -> None:
        """Cut the leader off from most peers and its writing clients, not its readers.

        At a quiet moment (no slot in flight, so nothing holds its reads
        back): for an election timeout or more it may answer reads while a
        new leader commits writes elsewhere. Only a read quorum keeps those
        answers fresh, which is what this fault is for."""
        cluster = self._cluster
        leader = cluster.leader()
        if leader is None or cluster.healed_at is not None:
            return
        node = cluster.node(leader)
        if node is None:
            return
        replica = node._replica
        if replica.slot_next > replica.slot_chosen and tries > 0:
            cluster.later(0.001, lambda: self._deposed_leader_keeps_readers(rng, tries=tries - 1))
            return
        # The leader's side is a minority: alone, or with a few followers.
        followers = [member for member in cluster.members if member != leader]
        size = rng.randint(1, (len(cluster.members) - 1) // 2 or 1)
        side = {leader, *rng.sample(followers, size - 1)}
        rest = [member for member in cluster.members if member not in side]
        writers = [c.endpoint for c in cluster.clients.all[cluster.config.readers :]]
        links = {(a, b) for a in side for b in [*rest, *writers]}
        links |= {(b, a) for a, b in links}
        cut_id = cluster.network.cut(links)
        cluster.log(
            f"fault: leader n{leader} keeps only its readers, with {sorted(side)} "
            f"on its side, partition #{cut_id}"
        )
        cluster.push(cluster.time + 0.3 + 1.7 * rng.random(), lambda: self._heal_cut(cut_id))

    def _heal_cut(self, cut_id: int) -> None:
        self._cluster.network.heal(cut_id)
        self._cluster.log(f"heal cut #{cut_id}")

    def _inject_crash(self, rng: random.Random) -> None:
        cluster = self._cluster
        up = [host for host in cluster.hosts.values() if host.process is not None]
        if not up:
            return
        if self._rng_io.random() < _IO_ERROR:
            host = self._rng_io.choice(up)
            if host.io_error:
                # One failed fsync pending is the fault: the node stops on it,
                # and a second one armed meanwhile would stop its next life as
                # if on a bug of its own (swarm seed 3001238).
                cluster.log(f"fault: n{host.node_id}'s next log fsync fails already")
                return
            host.fs.fail("fdatasync", path_contains="/wal-")
            host.io_error = True
            if host.process is not None:
                host.process.io_fault = True
            cluster.log(f"fault: the next fsync of n{host.node_id}'s log fails (EIO)")
            return
        if cluster.rng_stop.random() < _GRACEFUL_STOP:
            started = [
                host
                for host in up
                if host.process and host.process.started and not host.process.stopping
            ]
            if started:
                cluster.stop_gracefully(cluster.rng_stop.choice(started))
                return
        if rng.random() < 0.25:
            mid_fsync = rng.random() < 0.5
            cluster.log(f"fault: power cut{' mid-fsync' if mid_fsync else ''}")
            for host in up:
                if mid_fsync:
                    host.crash_in_fsync = True
                else:
                    cluster.crash_host(host, "power cut")
            return
        leaders = [host for host in up if self._is_leader(host)]
        host = rng.choice(leaders) if leaders and rng.random() < 0.5 else rng.choice(up)
        if rng.random() < 0.5:
            host.crash_in_fsync = True
            return
        cluster.crash_host(host, "crash")

    def _inject_pause(self, rng: random.Random) -> None:
        """Freeze a node (a GC pause, a stalled VM, SIGSTOP): it wakes to a stale world."""
        cluster = self._cluster
        up = [
            host
            for host in cluster.hosts.values()
            if host.process is not None and host.paused_until <= cluster.time
        ]
        if not up:
            return
        leaders = [host for host in up if self._is_leader(host)]
        host = rng.choice(leaders) if leaders and rng.random() < 0.5 else rng.choice(up)
        host.paused_until = cluster.time + 0.2 + 1.8 * rng.random()
        cluster.log(f"fault: pause n{host.node_id} until {host.paused_until:.6f}")

    def _strike_at_transition(self, host: Host, role: Role) -> None:
        """Pause a node the moment it becomes a candidate or a leader, now and then.

        Faults at random times rarely land in the few milliseconds a ballot
        is being won; here they do: a candidate frozen with its Prepare out
        wakes to promises for a ballot long overtaken, a new leader frozen
        with its first Accepts in flight wakes to a newer leader."""
        cluster = self._cluster
        if (
            "pause" not in cluster.config.faults
            or cluster.healed_at is not None
            or role not in (Role.PREPARING, Role.LEADER)
            or host.paused_until > cluster.time
            or cluster.rng_faults.random() >= _TRANSITION_PAUSE
        ):
            return
        host.paused_until = cluster.time + 0.05 + 1.5 * cluster.rng_faults.random()
        cluster.stats.faults["pause"] += 1
        cluster.log(
            f"fault: pause n{host.node_id} as it becomes {role.value}, "
            f"until {host.paused_until:.6f}"
        )

    # ------------------------------------------------------------------ wipe

    def _wipe(self) -> None:
        """Wipe one voter's disk (``RuntimeCluster.wipe``), or try again a little later.

        Only a voter of every configuration from the chosen prefix on whom
        the newest binds to its data directory (the nodes refuse what their
        newest configuration binds; an unbound member is accepted back, the
        window docs/membership.md leaves open), none while another is refused, and
        none whose loss would leave a configuration's voters short of a
        majority (``may_lose``). Every member must know the binding too
        (``_known_bound_by_all``), unless ``SimConfig.wipe_window``: then a
        voter whose binding some member has not learned is struck first
        (docs/binding-window.md: no rule closes that window yet)."""
        cluster = self._cluster
        if cluster.healed_at is not None:
            return
        rng = self._rng_wipe
        widened = cluster.config.wipe_window
        if not cluster.refused_members():
            configs = cluster.checker.configs.ahead_known_at(cluster._chosen_prefix())
            bound = [
                host
                for host in cluster.hosts.values()
                if host.dead is None
                and host.node_id not in self.disks_refused
                and not host.fs.power_is_cut
                and all(host.node_id in c.voters for c in configs)
                and _bound(configs[-1], host)
                and (widened or self._known_bound_by_all(host, configs))
                and cluster.may_lose(host.node_id, self.disks_refused)
            ]
            unknown: list[Host] = []
            if widened:
                # The window first: a binding chosen that some member has not learned.
                unknown = [h for h in bound if not self._known_bound_by_all(h, configs)]
                bound = unknown or bound
            if bound:
                host = rng.choice(bound)
                if host in unknown:
                    faults = cluster.stats.faults
                    faults["wipe-window"] = faults.get("wipe-window", 0) + 1
                incarnation = rng.getrandbits(64)
                while incarnation == host.data_incarnation:
                    incarnation = rng.getrandbits(64)
                cluster.wipe(host, incarnation)
                return
        cluster.push(cluster.time + _WIPE_RETRY_S, self._wipe)

    def _known_bound_by_all(self, target: Host, configs: list[Configuration]) -> bool:
        """Every other member runs and the newest configuration its *disk* holds
        binds ``target`` to its data directory. Only then does the design promise
        a refusal: a node that has not learned the binding takes the wiped node
        back, and with it in a quorum agreement breaks (swarm seed 100 showed
        it: docs/membership.md, "The window before binding"). Knowledge in
        memory is not enough: a member that learned the binding but had not
        made it durable crashed and came back without it (swarm seed 143 with
        one watcher)."""
        cluster = self._cluster
        for host in cluster.hosts.values():
            if host is target or host.dead is not None:
                continue
            node = cluster.node_of(host)
            if node is None:
                if any(host.node_id in c.ids for c in configs):
                    return False  # a member down: what it will know is unknown here
                continue
            newest = node._replica.configuration_newest
            durable = cluster.checker.configs.newest_known_at(
                cluster.properties.durable_slot_chosen(host.node_id)
            )
            if host.node_id in newest.ids and not (
                _bound(newest, target) and _bound(durable, target)
            ):
                return False
        return True

    # ------------------------------------------------------------------ buggy peers

    def _inject_buggy(self) -> None:
        """A buggy member or an outsider sends one out-of-bounds message now.

        Once healed, it waits for the cluster to settle, then forges only what a
        correct core ignores outright (``buggy.QUIET_KINDS``): a settled leader
        must keep leading through them (``quiet-stable``)."""
        cluster = self._cluster
        rng = self._rng_buggy
        quiet = cluster.healed_at is not None
        up = [host for host in cluster.hosts.values() if cluster.node_of(host) is not None]
        if up and (not quiet or cluster.healing.settled_at is not None):
            # Half the time at a candidate or a leader: its reply guards are the
            # ones a forged reply reaches.
            aimed = [host for host in up if not self._is_follower(host)]
            self._forge_to(rng.choice(aimed if aimed and rng.random() < 0.5 else up), quiet=quiet)
        low, high = cluster.config.buggy_gap_s
        cluster.push(cluster.time + low + (high - low) * rng.random(), self._inject_buggy)

    def _forge_to(self, target: Host, *, quiet: bool = False) -> None:
        cluster = self._cluster
        node = cluster.node_of(target)
        if node is None or (cluster.healed_at is not None and not quiet):
            return
        kind, message = buggy.forge(self._rng_buggy, node._replica, quiet=quiet)
        cluster.log(
            f"fault: buggy {kind} n{message.src}->n{message.dst} {describe(message)}"
            f" delivered to n{target.node_id}"
        )
        process = target.process
        assert process is not None
        transport = node._transport
        assert isinstance(transport, SimTransport)
        process.loop.call_soon(transport.on_peer_message, message)
        cluster.stats.faults["buggy"] += 1

    def _aim_buggy_at_transition(self, host: Host, role: Role) -> None:
        """Now and then, forge a reply to a node the moment it stands or leads.

        A prober or a preparer is one for a few milliseconds; injections at
        random times rarely find one, so its reply guards would go untried."""
        cluster = self._cluster
        if (
            "buggy" not in cluster.config.faults
            or cluster.healed_at is not None
            or role is Role.FOLLOWER
            or self._rng_buggy.random() >= _TRANSITION_FORGE
        ):
            return
        delay = 0.002 * self._rng_buggy.random()
        cluster.push(cluster.time + delay, functools.partial(self._forge_to, host))

    # ------------------------------------------------------------------ disk faults

    def _crash_for_rare_target(self) -> None:
        """Crash a node whose disk holds a rare target (``strike_rare``), and strike it.

        By the late fault phase a disk has rolled segments over, taken and
        installed snapshots and compacted; a crash at a random time with a
        fault drawn over the whole disk seldom meets the few writes that
        matter there (a seal, a header, the newest snapshot)."""
        cluster = self._cluster
        if cluster.healed_at is not None or self._disk_refusals_left <= 0:
            return
        up = [host for host in cluster.hosts.values() if cluster.node_of(host) is not None]
        aimed = [
            host for host in up if rare_targets(host.fs, f"/node{host.node_id}", self._disk_kinds)
        ]
        if not aimed:
            return
        host = self._rng_rare.choice(aimed)
        self._crashed_for_rare.add(host.node_id)
        cluster.crash_host(host, "a disk fault aimed at a rare target")

    def may_refuse_disk(self, host: Host) -> bool:
        """Whether ``host``'s disk may take a fault recovery must refuse now: the
        cluster can afford one more refused disk, and can lose this one."""
        return self._disk_refusals_left > 0 and self._cluster.may_lose(
            host.node_id, self.disks_refused
        )

    def _arm_power_cut(self) -> None:
        """Cut a node's power inside its next multi-step disk operation (``SimDisk``)."""
        cluster = self._cluster
        up = [host for host in cluster.hosts.values() if host.process is not None]
        if not up or cluster.healed_at is not None:
            return
        host = self._rng_cut.choice(up)
        ops = self._rng_cut.randrange(_CUT_OPS_MAX)
        host.fs.arm_power_cut(ops)
        cluster.log(f"fault: power of n{host.node_id} fails {ops} calls into a disk operation")

    def _crash_disk(self, host: Host) -> None:
        """Power off ``host``'s disk: unsynced bytes torn, and now and then a storage fault."""
        cluster = self._cluster
        fault: StorageFault | None = None
        directory, kinds = f"/node{host.node_id}", self._disk_kinds
        # Rare moments: a crash point at a storage event (a roll-over just made
        # durable, a snapshot just written, an installed snapshot just marked
        # in the log), or the restart's torn-tail cut not yet durable. Storage
        # faults at the drawn rate seldom meet them; the disk then holds the
        # rare targets of ``strike_rare``. An installed snapshot is the one
        # struck: the log depends on it.
        header_cut = self._header_cuts.pop(host.node_id, None)
        if header_cut is not None and self._tear_first_header(host, directory, *header_cut):
            return
        event = self._crashed_at_event.pop(host.node_id, None)
        rare_moment = host.fs.truncate_pending or event is not None
        for_rare = host.node_id in self._crashed_for_rare
        self._crashed_for_rare.discard(host.node_id)
        may_strike = bool(kinds) and self.may_refuse_disk(host) and cluster.healed_at is None
        fault = self.snapshot_head.strike(host)
        if fault is not None:
            self._struck_aimed(host, fault)
            return
        if (
            may_strike
            and event == ROLLED_OVER
            and "dirent" in kinds
            and self._rng_successor_lost.random() < _SUCCESSOR_LOST
        ):
            # The roll-over's directory fsync lost, its seal not: the old
            # segment ends with a seal naming a segment that is gone.
            fault = strike_successor_lost(host.fs, directory)
            if fault is not None:
                self.successors_lost += 1
                self._struck_aimed(host, fault)
                return
        if may_strike and (for_rare or (rare_moment and self._rng_rare.random() < _RARE_MOMENT)):
            aimed = kinds & {"bitflip"} if event == SNAPSHOT_RECORD_DURABLE else kinds
            fault = strike_rare(host.fs, directory, self._rng_rare, aimed) or strike(
                host.fs, directory, self._rng_rare, kinds
            )
            struck = True
        else:
            struck = (
                may_strike
                and cluster.time >= self._disk_faults_from
                and self._rng_storage.random() < cluster.config.disk_fault_rate
            )
            if struck and self._rng_rare.random() < _RARE_AIM:
                fault = strike_rare(host.fs, directory, self._rng_rare, kinds)
            if struck and fault is None:
                fault = strike(host.fs, directory, self._rng_storage, kinds)
        if struck:
            if fault is not None and fault.expect == REFUSE:
                self._disk_refusals_left -= 1
                self.disks_refused.add(host.node_id)
            if fault is not None:
                cluster.stats.faults["disk"] += 1
                cluster.log(
                    f"fault: disk of n{host.node_id}: {fault.kind} {fault.path}@{fault.offset} "
                    f"({fault.detail}); recovery must {fault.expect}"
                )
        else:
            if self._rng_journal.random() < _JOURNAL_COMMIT:
                host.fs.commit_directory(f"/node{host.node_id}")
                cluster.log(f"n{host.node_id}: its directory reached the disk without an fsync")
            host.fs.crash(
                tear=self.crash_again.tear(
                    host, lambda _path, unsynced: cluster.rng_disk.randint(0, unsynced)
                ),
                zero_fill=self._zero_fill,
            )
        self.crash_again.crashed(host)
        self._disk_faults[host.node_id] = fault

    def _struck_aimed(self, host: Host, fault: StorageFault) -> None:
        """The bookkeeping of an aimed storage fault ``fault`` that struck ``host``'s disk."""
        if fault.expect == REFUSE:
            self._disk_refusals_left -= 1
            self.disks_refused.add(host.node_id)
        self._cluster.stats.faults["disk"] += 1
        self._cluster.log(
            f"fault: disk of n{host.node_id}: {fault.kind} {fault.path} "
            f"({fault.detail}); recovery must {fault.expect}"
        )
        self.crash_again.crashed(host)
        self._disk_faults[host.node_id] = fault

    def _tear_first_header(self, host: Host, directory: str, kept: int, zeros: int) -> bool:
        """The crash of an aimed creation cut (``arm_creation_cut``): False when the
        cut did not land at the first segment's header (an ordinary crash then)."""
        fs = host.fs
        first = f"{directory}/{segment_name(1)}"
        fs.commit_directory(directory)  # the journal keeps the new name
        try:
            landed = fs.unsynced_bytes(first) == SEGMENT_HEADER_BYTES
        except KeyError:  # sim: one-way: the cut lands at that fsync (the test pins op 9)
            landed = False
        if not landed:  # sim: one-way: as above
            return False
        fs.crash(
            tear=lambda path, _count: kept if path == first else 0,
            zero_fill=lambda path, _count: zeros if path == first else 0,
        )
        cluster = self._cluster
        cluster.stats.faults["crashpoint: first segment header torn"] = (
            cluster.stats.faults.get("crashpoint: first segment header torn", 0) + 1
        )
        self.crash_again.crashed(host)
        self._disk_faults[host.node_id] = None
        return True

    def _zero_fill(self, _path: str, torn_off: int) -> int:
        """How many zeros a file system leaves where ``torn_off`` written bytes were
        lost (ext4 and XFS may keep the new size without the data)."""
        rng = self._rng_zero
        if rng.random() >= _ZERO_FILL:
            return 0
        return torn_off if rng.random() < 0.5 else rng.randint(1, torn_off)

    # ------------------------------------------------------------------ helpers

    def _is_follower(self, host: Host) -> bool:
        node = self._cluster.node_of(host)
        return node is None or node._replica.role is Role.FOLLOWER

    def _is_leader(self, host: Host) -> bool:
        node = self._cluster.node_of(host)
        return node is not None and node.is_leader


# With "pause", the share of elections where the candidate or the new leader
# is frozen at once (``_strike_at_transition``).
_TRANSITION_PAUSE = 0.15
# Share of role changes to candidate or leader that draw a forged reply at once.
_TRANSITION_FORGE = 0.5
# With "crash", up to this many times in the fault phase, a node's power fails
# inside its next multi-step disk operation (``SimDisk``), 0 to _CUT_OPS_MAX - 1
# calls into it.
_POWER_CUTS_MAX = 5
# At this share of crashes in the fault phase, the power fails again inside
# the repairs the restart makes (cut a torn tail, drop a segment, remove *.tmp).
_CUT_IN_RECOVERY = 0.4
_CUT_OPS_MAX = 12
# At this share of plain crashes, the directory's unsynced names reach the disk
# anyway (``SimDisk.commit_directory``), as a file system's journal may.
_JOURNAL_COMMIT = 0.3
# Storage faults strike from a time drawn up to this share of the fault phase.
_DISK_WARM_UP = 0.6
# Of the storage faults struck, this share is aimed at a rare target
# (``strike_rare``) when the disk holds one.
_RARE_AIM = 0.25
# At a rare moment (see ``_crash_disk``) a storage fault strikes at these odds,
# whatever the drawn rate and warm-up, aimed at a rare target when there is one.
_RARE_MOMENT = 0.3
# With "crash" and "disk", this share of seeds crashes a node whose disk holds
# a rare target once, at a time drawn in this span of the fault phase.
_RARE_CRASH = 0.5
_RARE_CRASH_AT = (0.5, 0.95)
# At this share of the torn writes of a plain crash, the file keeps its new
# size with zeros where the lost bytes were (all of them or a prefix).
_ZERO_FILL = 0.3
# Of the crashes injected, this share is a graceful stop and restart instead.
_GRACEFUL_STOP = 0.15
# At a crash point right after a roll-over made durable (``ROLLED_OVER``), with
# the "dirent" kind, this share loses the roll-over's directory fsync: the new
# segment's name is gone, the old one's seal names it; recovery must refuse.
_SUCCESSOR_LOST = 0.3
# Of the crashes injected, this share is an I/O error on a node's next log
# fsync instead: the node must stop (it cannot trust its page cache), and
# comes back as after a crash.
_IO_ERROR = 0.1
# With "crash", each node's power fails at these odds while it first sets its
# data directory up, 0 to _CREATION_OPS - 1 calls in (the directories, IDENTITY,
# the first segment: 11 calls).
_CUT_IN_CREATION = 0.15
_CREATION_OPS = 11
# Of the nodes with no such cut, the share whose power fails at the fsync of
# the first segment's header (op 9 of those 11, counted from the mkdir; a
# test pins it: ``tests/sim/test_first_header_cut.py``).
_CUT_AT_FIRST_HEADER = 0.05
_FIRST_HEADER_FSYNC_OP = 9
# Crash points at storage events (a roll-over made durable, a snapshot file
# written: hundreds a run) strike at this multiple of ``crashpoint_rate``, at
# most at _STORAGE_POINT_RATE_MAX; the rarest (a SnapshotRecord or a no-op's
# accept made durable: 60 swarm seeds had 13 and 5, 1 and 0 of them in a fault
# phase with crash points on) at _RARE_POINT_RATE.
_STORAGE_POINT_BOOST = 20
_STORAGE_POINT_RATE_MAX = 0.3
_RARE_POINT_RATE = 0.5
# Occurrences of a rare storage event in one run struck at the full rare rate;
# past them the rate falls as 1/occurrences.
_RARE_EXPECTED = 2
_REACCEPT_EVENTS = frozenset({REACCEPT_DURABLE, SNAPSHOT_OVER_REACCEPT})
_RARE_STORAGE_EVENTS = frozenset(
    {SNAPSHOT_RECORD_DURABLE, NOOP_DURABLE, REACCEPT_DURABLE, SNAPSHOT_OVER_REACCEPT}
)
# Share of the Prepares to an acceptor ahead of the candidate that are lost
# (with "drop"): a few a run, each a re-proposal of slots known chosen there.
_PREPARE_LOSS = 0.5


def _bound(configuration: Configuration, host: Host) -> bool:
    """Whether ``configuration`` binds ``host`` to its data directory."""
    member = configuration.member(host.node_id)
    return member is not None and member.incarnation == host.data_incarnation


# "wipe": when in the fault phase the wipe strikes (shares of it), and how
# soon it tries again while no voter may be wiped (none bound yet, another
# refused, or too few left).
_WIPE_AT = (0.15, 0.7)
_WIPE_RETRY_S = 0.1
# Messages held at once by the "hold" fault; beyond, the oldest are lost.
_HELD_MAX = 256
