"""Run seeds, check each one, and say how to replay a failure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from paxon.protocol.replica import Replica
from paxon.sim.cluster import FAULT_KINDS, HistoryOp, ReplicaFactory, SimCluster, SimConfig
from paxon.sim.linearizability import LinearizabilityBudgetExceeded, Operation, check_history


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

    @property
    def ok(self) -> bool:
        return not self.violations


def run_seed(
    seed: int,
    config: SimConfig,
    *,
    replica_factory: ReplicaFactory = Replica,
    trace: bool = False,
) -> SeedResult:
    cluster = SimCluster(seed, config, replica_factory=replica_factory, trace=trace)
    stats = cluster.run()
    violations = [str(violation) for violation in cluster.checker.violations]
    violations.extend(check_linearizable(cluster.history))
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
        trace=cluster.trace,
        refused=dict(stats.refused),
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
    faults = ",".join(kind for kind in FAULT_KINDS if kind in config.faults) or "none"
    storage = "" if config.storage == "wal" else f" --storage {config.storage}"
    return f"paxon sim --seed {seed} --nodes {config.nodes} --faults {faults}{storage} --trace"
