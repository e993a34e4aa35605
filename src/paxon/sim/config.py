"""What one simulated run is: its configuration, its client history, its figures.

Two engines run a ``SimConfig``:

- ``"runtime"`` (the default): ``paxon.sim.runtime.RuntimeCluster``, the real
  node runtime (``paxon.node.Node`` with the key-value store, sessions, log
  clock, snapshots and their transfer) on simulated loops, disks and networks;
- ``"core"``: ``paxon.sim.cluster.SimCluster``, the pure core with the
  simulator's own glue and a register machine. Faster, and the only one that
  can keep records as objects (``storage="memory"``); kept for the golden
  scripts and for quick runs over the core alone.

``swarm=True`` means the seed draws its own configuration (``paxon.sim.swarm``):
node count, fault mix and rates, protocol knobs. The other fields are then the
bounds it draws within (see ``swarm.draw``).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from paxon.node.history import HistoryRetention
from paxon.protocol.config import ReplicaConfig
from paxon.protocol.membership import ALPHA_DEFAULT, MEMBERS_MAX
from paxon.protocol.replica import Replica
from paxon.sim.network import LinkFaults
from paxon.sim.registers import Result

FAULT_KINDS = (
    "drop",
    "duplicate",
    "delay",
    "reorder",
    "partition",
    "crash",
    "pause",
    "drift",
    "buggy",
    "hold",
    "crashpoint",
    "disk",
    "reconfig",
    "wipe",
)
# Kinds only the runtime engine carries out (the core engine ignores them).
RUNTIME_FAULTS = frozenset({"hold", "crashpoint", "disk", "wipe"})
# Kinds only the core engine carries out (the runtime engine ignores them):
# none since the runtime changes the members too (``paxon.sim.operator``).
CORE_FAULTS: frozenset[str] = frozenset()
STORAGE_KINDS = ("wal", "memory")
ENGINES = ("runtime", "core")
# Operations one simulated client may keep in flight (its session lanes).
CLIENT_LANES_MAX = 16
# "drift": each host's clocks run at a rate in 1 +- this (the rho of
# docs/coordination.md), with an offset of 0 to 100 s.
DRIFT_RATE_MAX = 0.05
# Which of partition, crash and pause strikes next, by weight.
PROCESS_FAULTS = ("partition", "crash", "pause")

ReplicaFactory = Callable[..., Replica]


@dataclass(frozen=True, slots=True)
class SimConfig:
    # 0 with swarm: each seed draws 3 to 7. The voters of the first configuration.
    nodes: int = 3
    # Nodes started outside the configuration (ids nodes+1 on), for "reconfig"
    # to add.
    spares: int = 0
    # The configurations' alpha: a change chosen at slot i takes effect at i + alpha
    # (the runtime engine's nodes take it as ``NodeConfig.alpha``).
    alpha: int = ALPHA_DEFAULT
    # "reconfig": seconds between two attempts to change the configuration.
    reconfig_gap_s: tuple[float, float] = (0.1, 0.6)
    faults: frozenset[str] = frozenset(FAULT_KINDS)
    fault_phase_s: float = 4.0
    heal_phase_s: float = 6.0
    clients: int = 3
    # How many of the clients only read (runtime engine); the rest read 40%
    # of the time and write or compare-and-set otherwise.
    readers: int = 0
    # Runtime engine: operations each client keeps in flight, one per session
    # lane (a lane has its own client id, as ``paxon.Client``'s concurrent calls).
    client_lanes: int = 1
    # Runtime engine: clients that hold leases (``paxon.sim.lease_clients``):
    # grant, put keys with them, keep them alive, stop or revoke; judged by
    # ``paxon.sim.lease_watch``. Their keys are not the registers' keys.
    lease_clients: int = 2
    # Runtime engine: clients that take one lock in turn and write a key fenced
    # by it (``paxon.sim.lock_clients``, judged by ``paxon.sim.fencing``), and
    # clients that watch a prefix (``paxon.sim.watch_clients``, judged by
    # ``paxon.sim.watch_check``). Their keys are not the registers' keys either.
    lock_clients: int = 3
    watch_clients: int = 2
    keys: int = 3
    tick_s: float = 0.01
    client_timeout_s: float = 0.25
    # "wal": the real write-ahead log on an in-memory faulty file system;
    # "memory": records kept as objects (core engine only).
    storage: str = "wal"
    engine: str = "runtime"
    # Draw this seed's own configuration (``paxon.sim.swarm``).
    swarm: bool = False
    # Snapshots (runtime engine): taken every this many applied slots, sent to
    # a lagging peer in chunks of this size.
    snapshot_interval_slots: int = 50
    snapshot_chunk_bytes: int = 4096
    # Runtime engine: each node's log segments roll over at this size (small,
    # so roll-overs, and power cuts inside them, happen within a run).
    segment_max_bytes: int = 64 * 1024
    # Network fault rates; None: drawn per seed from the default ranges.
    link: LinkFaults | None = None
    # Seconds between two partition/crash/pause faults (uniform in the range),
    # and the weight of each of PROCESS_FAULTS among the enabled ones.
    fault_gap_s: tuple[float, float] = (0.1, 1.0)
    fault_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # "hold": this share of protocol messages is held back and released all
    # at once at the worst moment (a leader change, a restart, a snapshot
    # installed): stale promises, votes and accepts arriving late.
    hold_rate: float = 0.02
    # "crashpoint": at each point between two steps of the runtime (an fsync
    # done and the messages waiting on it; a command applied and its answer;
    # work on a thread done and the loop hearing of it), crash with this
    # probability; at the rarer storage events (a roll-over made durable, a
    # snapshot written, a SnapshotRecord or a no-op persisted) at a higher
    # one (``disk_faults._STORAGE_POINT_BOOST``).
    crashpoint_rate: float = 0.005
    # At this share of roll-overs (any fault kinds), the power fails once the
    # new segment is durable and before the old one's seal is written: a
    # roll-over cut short, which recovery must undo (``SimDisk``,
    # ``ROLL_CUT_SHORT``). 0 in a fixed configuration; swarm seeds with
    # "crash" draw it (``swarm._RUNTIME_ROLL_CUT_ON``), as does the budget's
    # roll group (``tests/mutate/budget.py``).
    roll_cut_rate: float = 0.0
    # "disk": at this share of crashes, a storage fault strikes the disk too
    # (``paxon.sim.storage_faults``: torn, bit flip, lost, misdirected write,
    # lost directory fsync); recovery must classify it right.
    disk_fault_rate: float = 0.3
    # "wipe": the odds that a run wipes one voter's disk, once (0: never, so
    # a fixed configuration runs as before the kind existed; swarm seeds draw
    # it). The node comes back empty with a new incarnation, and the others
    # must refuse it until an operator replaces it (docs/membership.md).
    wipe_rate: float = 0.0
    # "reconfig": the share of the voters the operator removes (the leader
    # aside) that are cut off from the others until their removal takes
    # effect, so that they miss it and must be told (``membership_faults``,
    # ``removed-learns``). 0 in a fixed configuration unless asked; swarm
    # seeds draw it.
    removed_cut_share: float = 0.0
    # "reconfig": the share of the changes the operator sees chosen in the
    # fault phase whose window (chosen, not yet in effect) sees a member, not
    # the leader, restart from a snapshot it took in that window
    # (``change_restart``). 0 unless asked.
    change_restart_share: float = 0.0
    # "reconfig": the spares start as ``paxon serve --join`` starts a node, not
    # from ``--peers``: each only once a member's newest configuration names it
    # (the operator added it), from that configuration; a restart on a
    # directory that holds state ignores --join (``node/join.held_state``).
    # Off in a fixed configuration unless asked; swarm seeds draw it.
    spares_join: bool = False
    # "wipe", widened: also strike a voter whose binding is chosen but not yet
    # known to every member (preferred when there is one), the window
    # docs/binding-window.md studies. Off: only a voter every member knows
    # bound, as before. The first-start window (no binding chosen) is never struck.
    wipe_window: bool = False
    # Lease reads on every node (ReplicaConfig.lease_reads), and the drift of the
    # simulated clocks ("drift" fault): rates within 1 +- this. Above the
    # replicas' clock_drift_max the lease's bound is broken on purpose.
    lease_reads: bool = False
    drift_rate_max: float = DRIFT_RATE_MAX
    # Runtime engine: each node's committer syncs a batch from the node's own
    # loop when its disk is idle (storage/commit.py, ``sync_here``), at once,
    # as the real committer does at low rates. Off: every sync is the two
    # events of ``SimCommitter``, as before.
    sync_here: bool = False
    # Runtime engine: build once, in the fault phase, two reigns' values at one
    # slot met by one Phase 1 (``paxon.sim.split_slot``). Wants a calm run: the
    # random crashes, pauses and partitions take the construction apart.
    split_slot: bool = False
    # Runtime engine: build once, in the fault phase, a candidate behind its
    # acceptor by nearly a window, so Phase 1 fills the far half of its bound
    # (``paxon.sim.lagging_candidate``; wants a calm run and that module's
    # ``REPLICA``, which ``paxon sim --lagging-candidate`` sets).
    lagging_candidate: bool = False
    # Runtime engine: the revisions of KV history the leader keeps
    # (``paxon serve --history-revisions``, ``paxon.node.history``): small, the
    # leader proposes compaction entries and watchers are refused what was cut.
    # None: the node's default (10,000), which a run never reaches; swarm
    # seeds draw it.
    history_revisions: int | None = None
    # "buggy": seconds between two forged messages (uniform in the range).
    buggy_gap_s: tuple[float, float] = (0.02, 0.1)
    replica: ReplicaConfig = field(default_factory=lambda: ReplicaConfig(backoff_max_factor=4.0))

    def __post_init__(self) -> None:
        unknown = set(self.faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {', '.join(sorted(unknown))}")
        if self.storage not in STORAGE_KINDS:
            raise ValueError(f"storage must be one of {', '.join(STORAGE_KINDS)}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
        if self.sync_here and self.engine != "runtime":
            raise ValueError("sync_here is the runtime engine's (the node's committer)")
        if self.split_slot and self.engine != "runtime":
            raise ValueError("split_slot is the runtime engine's (paxon.sim.split_slot)")
        if self.lagging_candidate and (self.engine != "runtime" or self.nodes != 3):
            raise ValueError(
                "lagging_candidate is the runtime engine's, on 3 nodes "
                "(paxon.sim.lagging_candidate)"
            )
        if self.history_revisions is not None:
            if self.engine != "runtime":
                raise ValueError("history_revisions is the runtime engine's (its KvStore)")
            HistoryRetention(revisions=self.history_revisions)  # its range, or ValueError
        if self.engine == "runtime" and self.storage != "wal":
            raise ValueError("the runtime engine runs the real storage (storage='wal')")
        if self.nodes < (0 if self.swarm else 1) or self.clients < 1 or self.keys < 1:
            raise ValueError("nodes (0: drawn, with swarm), clients and keys must be >= 1")
        if min(self.lease_clients, self.lock_clients, self.watch_clients) < 0:
            raise ValueError("lease_clients, lock_clients and watch_clients must be >= 0")
        if not 1 <= self.client_lanes <= CLIENT_LANES_MAX:
            raise ValueError(f"client_lanes must be 1 to {CLIENT_LANES_MAX}")
        low, high = self.fault_gap_s
        if not 0 < low <= high:
            raise ValueError("fault_gap_s must be a range 0 < low <= high")
        if not 0 < self.buggy_gap_s[0] <= self.buggy_gap_s[1]:
            raise ValueError("buggy_gap_s must be a range 0 < low <= high")
        if not 0 < self.reconfig_gap_s[0] <= self.reconfig_gap_s[1]:
            raise ValueError("reconfig_gap_s must be a range 0 < low <= high")
        if self.spares < 0 or self.nodes + self.spares > MEMBERS_MAX or self.alpha < 1:
            raise ValueError(f"spares must be >= 0, nodes + spares <= {MEMBERS_MAX}, alpha >= 1")
        if min(self.fault_weights) < 0 or sum(self.fault_weights) <= 0:
            raise ValueError("fault_weights must be >= 0, not all 0")
        if self.segment_max_bytes < 1024:
            raise ValueError("segment_max_bytes must be >= 1 KiB")
        if not 0 <= self.drift_rate_max < 1:
            raise ValueError("drift_rate_max must be in [0, 1)")
        rates = (
            self.hold_rate,
            self.crashpoint_rate,
            self.roll_cut_rate,
            self.disk_fault_rate,
            self.wipe_rate,
            self.removed_cut_share,
            self.change_restart_share,
        )
        if not all(0 <= rate <= 1 for rate in rates):
            raise ValueError(
                "hold_rate, crashpoint_rate, roll_cut_rate, disk_fault_rate, wipe_rate, "
                "removed_cut_share and change_restart_share must be in [0, 1]"
            )

    @property
    def replica_config(self) -> ReplicaConfig:
        """What every replica runs with: ``replica``, with ``lease_reads``."""
        if not self.lease_reads:
            return self.replica
        return dataclasses.replace(self.replica, lease_reads=True)

    @property
    def _kinds_run(self) -> frozenset[str]:
        """The kinds this engine carries out (the runtime ignores the core's own;
        the core still lists the runtime's, as it always did)."""
        return self.faults - CORE_FAULTS if self.engine == "runtime" else self.faults

    def describe(self) -> str:
        """One line per setting, for the head of a trace."""
        replica = self.replica
        link = self.link
        cut_short = (
            f"{self.roll_cut_rate:.2f} of roll-overs cut short, " if self.roll_cut_rate else ""
        )
        lines = [
            f"engine {self.engine}, {self.nodes} nodes, {self.clients} clients "
            f"({self.readers} only reading, {self.client_lanes} in flight each) on "
            f"{self.keys} keys, {self.lease_clients} holding leases, "
            f"{self.lock_clients} taking a lock, {self.watch_clients} watching, faults "
            f"{','.join(k for k in FAULT_KINDS if k in self._kinds_run)}",
            f"phases: faults {self.fault_phase_s} s, heal {self.heal_phase_s} s; fault gap "
            f"{self.fault_gap_s[0]:.3f}-{self.fault_gap_s[1]:.3f} s, weights "
            f"partition/crash/pause {'/'.join(f'{w:.2f}' for w in self.fault_weights)}",
            f"hold {self.hold_rate:.3f} of messages, crash at {self.crashpoint_rate:.4f} of "
            f"crash points, {cut_short}disk fault at {self.disk_fault_rate:.2f} of crashes, forged "
            f"message every {self.buggy_gap_s[0]:.3f}-{self.buggy_gap_s[1]:.3f} s",
            f"tick {self.tick_s * 1000:.1f} ms, client timeout {self.client_timeout_s:.3f} s, "
            f"snapshot every {self.snapshot_interval_slots} slots in "
            f"{self.snapshot_chunk_bytes}-byte chunks; segments of {self.segment_max_bytes} bytes",
            f"heartbeat {replica.heartbeat_interval_s * 1000:.1f} ms, election "
            f"{replica.election_timeout_min_s * 1000:.0f}-"
            f"{replica.election_timeout_max_s * 1000:.0f} ms, accept retry "
            f"{replica.accept_retry_s * 1000:.0f} ms, learn retry "
            f"{replica.learn_retry_s * 1000:.0f} ms",
            f"window {replica.pipeline_window_slots} slots, batch "
            f"{replica.batch_max_commands} commands, learn {replica.learn_max_entries} "
            f"entries, queue {replica.queue_max_commands}",
        ]
        if "reconfig" in self._kinds_run or self.spares:
            lines.append(
                f"reconfig: {self.spares} spare nodes, alpha {self.alpha}, a change every "
                f"{self.reconfig_gap_s[0]:.3f}-{self.reconfig_gap_s[1]:.3f} s"
                + (
                    f", {self.removed_cut_share:.2f} of the voters removed cut off through it"
                    if self.removed_cut_share
                    else ""
                )
                + (
                    f", a member restarted inside {self.change_restart_share:.2f} of the "
                    "changes' windows"
                    if self.change_restart_share
                    else ""
                )
                + (", spares start with --join once added" if self.spares_join else "")
            )
        if self.history_revisions is not None:
            lines.append(f"history: the leader keeps {self.history_revisions} revisions")
        if self.split_slot:
            lines.append("split slot: two reigns' values at one slot, met by one Phase 1")
        if self.lagging_candidate:
            lines.append("lagging candidate: behind its acceptor by nearly a window, it stands")
        if "wipe" in self._kinds_run and self.wipe_rate > 0:
            window = ", also before every member knows its binding" if self.wipe_window else ""
            lines.append(f"wipe: one voter's disk at odds {self.wipe_rate:.2f}{window}")
        if link is not None:
            lines.append(
                f"link: drop {link.drop_rate:.3f}, duplicate {link.duplicate_rate:.3f}, "
                f"reorder {link.reorder_rate:.3f} (<= {link.reorder_max_s * 1000:.0f} ms), "
                f"stall {link.stall_rate:.4f} (<= {link.stall_max_s:.2f} s)"
            )
        return "\n".join(lines)


@dataclass(slots=True)
class HistoryOp:
    """One client operation as the client saw it (input to the linearizability check)."""

    op_id: int
    key: str
    kind: str
    args: tuple[str | None, ...]
    invoked_at: float
    returned_at: float | None = None
    result: Result | str = None


@dataclass(slots=True)
class SimStats:
    steps: int = 0
    slots_chosen: int = 0
    commands_chosen: int = 0
    leader_changes: int = 0
    ops_completed: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    heal_progress_s: float | None = None
    # Core engine, "reconfig": configuration changes chosen in the run.
    configs_chosen: int = 0
    # Runtime engine only: snapshots restored from a peer's transfer, and
    # from the disk at a restart.
    snapshots_installed: int = 0
    snapshots_recovered: int = 0
    # ReplicaCounters summed over every replica and incarnation of the run.
    refused: dict[str, int] = field(default_factory=dict)
    # Runtime engine, lease clients: leases granted, kept alive (renewals
    # applied), ended by expiry and by revoke (each counted once per lease).
    leases: dict[str, int] = field(default_factory=dict)
    # Runtime engine, lock contenders and watchers: grants, fenced writes that
    # succeeded and were refused, holds, stalls, events received.
    coordination: dict[str, int] = field(default_factory=dict)


def draw_process_fault(rng: random.Random, config: SimConfig) -> str | None:
    """The next process fault of a run (one of ``PROCESS_FAULTS``), or None if none is on.

    Both engines draw through this, so a seed's fault sequence reads the same.
    """
    weights = [
        weight if kind in config.faults else 0.0
        for kind, weight in zip(PROCESS_FAULTS, config.fault_weights, strict=True)
    ]
    if not any(weights):
        return None
    return rng.choices(PROCESS_FAULTS, weights)[0]


__all__ = [
    "CLIENT_LANES_MAX",
    "CORE_FAULTS",
    "DRIFT_RATE_MAX",
    "ENGINES",
    "FAULT_KINDS",
    "PROCESS_FAULTS",
    "RUNTIME_FAULTS",
    "STORAGE_KINDS",
    "HistoryOp",
    "ReplicaFactory",
    "SimConfig",
    "SimStats",
    "draw_process_fault",
]
