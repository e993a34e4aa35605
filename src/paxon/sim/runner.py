"""Run seeds, check each one, and say how to replay a failure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from paxon.node.node import Node
from paxon.protocol.membership import ALPHA_DEFAULT
from paxon.protocol.replica import Replica
from paxon.sim.cluster import SimCluster
from paxon.sim.config import DRIFT_RATE_MAX, FAULT_KINDS, HistoryOp, ReplicaFactory, SimConfig
from paxon.sim.linearizability import LinearizabilityBudgetExceeded, Operation, check_history
from paxon.sim.runtime import RuntimeCluster, StoreFactory
from paxon.sim.swarm import resolve


@dataclass(slots=True)
class SeedResult:
    seed: int
    nodes: int
    steps: int
    sim_time_s: float
    slots_chosen: int
    commands_chosen: int
    leader_changes: int
    ops_completed: int
    ops_total: int
    faults: dict[str, int]
    violations: list[str]
    heal_progress_s: float | None
    trace: list[str] = field(default_factory=list)
    # Messages the replicas refused (ReplicaCounters, summed): the buggy fault's mark.
    refused: dict[str, int] = field(default_factory=dict)
    # The configuration the seed ran (drawn, for a swarm seed).
    config: SimConfig | None = None
    snapshots_installed: int = 0
    # Core engine, "reconfig": configuration changes chosen.
    configs_chosen: int = 0
    # Runtime engine: the lease clients' leases (``SimStats.leases``).
    leases: dict[str, int] = field(default_factory=dict)
    # Runtime engine: the lock contenders' and watchers' (``SimStats.coordination``).
    coordination: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations


def run_seed(
    seed: int,
    config: SimConfig,
    *,
    replica_factory: ReplicaFactory = Replica,
    node_class: type[Node] = Node,
    store_factory: StoreFactory | None = None,
    trace: bool = False,
) -> SeedResult:
    """Run one seed on ``config``'s engine (its own drawn config if ``config.swarm``)."""
    config = resolve(seed, config)
    cluster: SimCluster | RuntimeCluster
    if config.engine == "runtime":
        cluster = RuntimeCluster(
            seed,
            config,
            replica_factory=replica_factory,
            node_class=node_class,
            store_factory=store_factory,
            trace=trace,
        )
    else:
        cluster = SimCluster(seed, config, replica_factory=replica_factory, trace=trace)
    stats = cluster.run()
    violations = [str(violation) for violation in cluster.checker.violations]
    violations.extend(check_linearizable(cluster.history))
    head = [f"{'':10} config: {line}" for line in config.describe().splitlines()] if trace else []
    return SeedResult(
        seed=seed,
        nodes=config.nodes,
        steps=stats.steps,
        sim_time_s=cluster.time,
        slots_chosen=stats.slots_chosen,
        commands_chosen=stats.commands_chosen,
        leader_changes=stats.leader_changes,
        ops_completed=stats.ops_completed,
        ops_total=len(cluster.history),
        faults=dict(stats.faults),
        violations=violations,
        heal_progress_s=stats.heal_progress_s,
        trace=head + cluster.trace,
        refused=dict(stats.refused),
        config=config,
        snapshots_installed=stats.snapshots_installed,
        configs_chosen=stats.configs_chosen,
        leases=dict(stats.leases),
        coordination=dict(stats.coordination),
    )


def run_seeds(
    seeds: Iterable[int],
    config: SimConfig,
    *,
    replica_factory: ReplicaFactory = Replica,
) -> Iterator[SeedResult]:
    for seed in seeds:
        yield run_seed(seed, config, replica_factory=replica_factory)


def check_linearizable(history: list[HistoryOp]) -> list[str]:
    operations = [
        Operation(
            op_id=op.op_id,
            key=op.key,
            kind=op.kind,  # type: ignore[arg-type]
            args=op.args,
            invoked_at=op.invoked_at,
            returned_at=op.returned_at,
            result=op.result,
        )
        for op in history
    ]
    try:
        result = check_history(operations)
    except LinearizabilityBudgetExceeded as error:
        return [f"linearizability-inconclusive: {error}"]
    if result.ok:
        return []
    return [f"linearizability: key {result.key}: {result.explanation}"]


def replay_command(seed: int, config: SimConfig) -> str:
    """The ``paxon sim`` command that replays ``seed`` with a trace."""
    faults = ",".join(kind for kind in FAULT_KINDS if kind in config.faults) or "none"
    words = ["paxon sim", f"--seed {seed}"]
    if config.swarm:
        words.append("--swarm")
        if config.nodes:
            words.append(f"--nodes {config.nodes}")
    else:
        words.append(f"--no-swarm --nodes {config.nodes}")  # swarm is the default
        if config.spares:
            words.append(f"--spares {config.spares}")
        if config.alpha != ALPHA_DEFAULT:
            words.append(f"--alpha {config.alpha}")
        if config.wipe_rate:
            words.append(f"--wipe-rate {config.wipe_rate}")
        if config.removed_cut_share:
            words.append(f"--removed-cut {config.removed_cut_share}")
        if config.change_restart_share:
            words.append(f"--change-restart {config.change_restart_share}")
    if config.spares_join:
        words.append("--spares-join")
    if config.history_revisions is not None:
        words.append(f"--history-revisions {config.history_revisions}")
    if config.wipe_window:
        words.append("--wipe-window")
    if config.lease_reads:
        words.append("--lease-reads")
    if config.sync_here:
        words.append("--sync-here")
    if config.split_slot:
        words.append("--split-slot")
    if config.lagging_candidate:
        words.append("--lagging-candidate")
    if config.drift_rate_max != DRIFT_RATE_MAX:
        words.append(f"--drift-max {config.drift_rate_max}")
    words.append(f"--faults {faults}")
    if config.engine != "runtime":
        words.append(f"--engine {config.engine}")
    if config.storage != "wal":
        words.append(f"--storage {config.storage}")
    words.append("--trace")
    return " ".join(words)
