"""Seeded simulation runs: the default suite runs 300 swarm seeds of the real
runtime, each drawing its own cluster size (3 to 7), fault mix and rates, and
protocol knobs (``paxon.sim.swarm``), plus 60 fixed-config seeds of the core
engine (the pure core with the simulator's glue, every core fault at once,
membership changes among the 3 or 5 nodes included), and 30 core seeds of 3
voters and 2 spare nodes whose configuration changes every few tenths of a
second (``reconfig``, alpha 16), and 10 runtime seeds of 3 voters and 2
spares with every fault, whose members change through ``ChangeMembers``
(about a third of the swarm seeds change them too).

A failure names the seed and the command that replays it with a trace.
"""

from __future__ import annotations

import pytest

from paxon.sim import SimConfig, replay_command, run_seed

SEEDS_PER_CHUNK = 15
SWARM_CHUNKS = 20  # 300 swarm seeds
CORE_CHUNKS = 2  # 30 seeds of 3 nodes and 30 of 5 on the core engine
RECONFIG_CHUNKS = 2  # 30 seeds of 3 voters and 2 spares, reconfig on
RUNTIME_RECONFIG_SEEDS = 10  # runtime engine, 3 voters and 2 spares, every fault


def _run(config: SimConfig, seeds: range) -> int:
    """Run the seeds, fail on any violation; the configuration changes chosen."""
    failures = []
    configs_chosen = 0
    for seed in seeds:
        result = run_seed(seed, config)
        configs_chosen += result.configs_chosen
        assert result.commands_chosen > 0, f"seed {seed} chose nothing"
        assert result.leader_changes >= 1
        if not result.ok:
            failures.append(
                f"seed {seed}: {result.violations[:3]}\n  replay: {replay_command(seed, config)}"
            )
    assert not failures, "\n".join(failures)
    return configs_chosen


@pytest.mark.sim
@pytest.mark.parametrize("chunk", range(SWARM_CHUNKS))
def test_swarm_seeds_are_safe_live_and_linearizable(chunk: int) -> None:
    _run(
        SimConfig(nodes=0, swarm=True),
        range(chunk * SEEDS_PER_CHUNK, (chunk + 1) * SEEDS_PER_CHUNK),
    )


@pytest.mark.sim
@pytest.mark.parametrize("nodes", [3, 5])
@pytest.mark.parametrize("chunk", range(CORE_CHUNKS))
def test_core_engine_seeds_are_safe_live_and_linearizable(nodes: int, chunk: int) -> None:
    _run(
        SimConfig(nodes=nodes, engine="core"),
        range(chunk * SEEDS_PER_CHUNK, (chunk + 1) * SEEDS_PER_CHUNK),
    )


@pytest.mark.sim
@pytest.mark.parametrize("chunk", range(RECONFIG_CHUNKS))
def test_core_engine_reconfig_seeds_are_safe_live_and_linearizable(chunk: int) -> None:
    config = SimConfig(nodes=3, spares=2, alpha=16, engine="core")
    seeds = range(chunk * SEEDS_PER_CHUNK, (chunk + 1) * SEEDS_PER_CHUNK)
    assert _run(config, seeds) >= len(seeds)  # about two changes chosen per seed


@pytest.mark.sim
def test_runtime_engine_reconfig_seeds_are_safe_live_and_linearizable() -> None:
    config = SimConfig(nodes=3, spares=2)
    seeds = range(RUNTIME_RECONFIG_SEEDS)
    assert _run(config, seeds) >= len(seeds) // 2  # changes chosen through the node
