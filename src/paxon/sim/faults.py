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
  fsync, pauses, crash points between two steps of the runtime, and pauses
  or forged replies aimed at the moment a node stands or leads;
- **disk**: what a crash leaves on the disk, power cuts inside a disk
  operation, crash points at storage events and crashing again after an odd
  restart, all in ``disk_faults`` (``FaultInjector.disk``);
- **buggy peers**: out-of-bounds messages from ``buggy.forge``;
- **wipe**: at ``SimConfig.wipe_rate`` odds per run, once, a voter bound to
  its data directory loses its disk and comes back on an empty one with a new
  incarnation, same flags: the others must refuse it (``wipe``).

Contract: each kind draws from its own stream (``{seed}:buggy``,
``{seed}:hold``, ``{seed}:crashpoint``, ...), except those sharing the
cluster's ``rng_faults`` and ``rng_stop``; the draws for
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
from paxon.sim.disk_faults import DiskFaults
from paxon.sim.host import Host, SimTransport
from paxon.sim.network import LinkFaults, draw_partition
from paxon.sim.trace import describe

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster


class FaultInjector:
    """Every fault of one run; ``cluster`` is the world it strikes."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        config = cluster.config
        self._rng_buggy = random.Random(f"{seed}:buggy")
        # Forged removal notices draw apart: the other kinds' draws stay as they were.
        self._rng_notice = random.Random(f"{seed}:buggy-notice")
        # What a crash leaves on the disk, and the crash points at storage events.
        self.disk = DiskFaults(cluster, seed)
        # Messages held back by the "hold" fault, released at the worst moment.
        self._held: list[tuple[int, PeerMessage]] = []
        self._holding = "hold" in config.faults
        self._crash_points = "crashpoint" in config.faults
        self._rng_hold = random.Random(f"{seed}:hold")
        # Prepares lost on purpose ("drop"): to an acceptor ahead of the candidate.
        self._losing_prepares = "drop" in config.faults
        self._rng_lose_prepare = random.Random(f"{seed}:lose-prepare")
        self._rng_crash = random.Random(f"{seed}:crashpoint")
        self._rng_io = random.Random(f"{seed}:io-error")
        self._rng_wipe = random.Random(f"{seed}:wipe")

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

    def start(self) -> None:
        """Schedule the first process fault, forgery and the armed power cuts."""
        cluster = self._cluster
        config = cluster.config
        if {"partition", "crash", "pause"} & config.faults:
            cluster.push(0.5 + cluster.rng_faults.random() * 0.5, self._inject_fault)
        if "buggy" in config.faults:
            cluster.push(0.2 + self._rng_buggy.random() * 0.3, self._inject_buggy)
        self.disk.start()
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
        self.disk.end()
        self.release_held("healing")
        for host in cluster.hosts.values():
            host.crash_in_fsync = False
            host.fs.disarm_power_cut()
            if host.fs.clear_faults():
                host.io_error = False
            if host.paused_until > cluster.time:
                host.paused_until = cluster.time
                cluster.let_in_now(host)
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

    def at_transition(self, host: Host, role: Role) -> None:
        """``host``'s node just changed role: now and then strike it at once."""
        self._strike_at_transition(host, role)
        self._aim_buggy_at_transition(host, role)

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
                and host.node_id not in self.disk.disks_refused
                and not host.fs.power_is_cut
                and all(host.node_id in c.voters for c in configs)
                and _bound(configs[-1], host)
                and (widened or self._known_bound_by_all(host, configs))
                and cluster.may_lose(host.node_id, self.disk.disks_refused)
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
        if self._rng_notice.random() < _NOTICE_FORGE:
            notice = buggy.forge_notice(self._rng_notice, node._replica)
            cluster.log(
                f"fault: buggy removed-notice n{notice.src}->n{notice.dst} {describe(notice)}"
            )
            process.loop.call_soon(transport.on_peer_message, notice)

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
# Share of forged messages that a forged removal notice follows.
_NOTICE_FORGE = 0.25
# Of the crashes injected, this share is a graceful stop and restart instead.
_GRACEFUL_STOP = 0.15
# Of the crashes injected, this share is an I/O error on a node's next log
# fsync instead: the node must stop (it cannot trust its page cache), and
# comes back as after a crash.
_IO_ERROR = 0.1
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
