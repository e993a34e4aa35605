"""Seeded simulation runs: the default suite runs 300 swarm seeds of the real
runtime, each drawing its own cluster size (3 to 7), fault mix and rates, and
protocol knobs (``paxon.sim.swarm``), plus 60 fixed-config seeds of the core
engine (the pure core with the simulator's glue, every core fault at once).

A failure names the seed and the command that replays it with a trace.
"""

from __future__ import annotations

import pytest

from paxon.sim import SimConfig, replay_command, run_seed

SEEDS_PER_CHUNK = 15
SWARM_CHUNKS = 20  # 300 swarm seeds
CORE_CHUNKS = 2  # 30 seeds of 3 nodes and 30 of 5 on the core engine


def _run(config: SimConfig, seeds: range) -> None:
    failures = []
    for seed in seeds:
        result = run_seed(seed, config)
        assert result.commands_chosen > 0, f"seed {seed} chose nothing"
        assert result.leader_changes >= 1
        if not result.ok:
            failures.append(
                f"seed {seed}: {result.violations[:3]}\n  replay: {replay_command(seed, config)}"
            )
    assert not failures, "\n".join(failures)


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
