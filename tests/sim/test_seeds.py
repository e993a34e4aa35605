"""Seeded simulation runs under every fault kind: the default suite runs 300 seeds.

A failure names the seed and the command that replays it with a trace.
"""

from __future__ import annotations

import pytest

from paxon.sim import SimConfig, replay_command, run_seed

SEEDS_PER_CHUNK = 15
CHUNKS = 10  # per cluster size: 150 seeds of 3 nodes and 150 of 5 nodes


@pytest.mark.sim
@pytest.mark.parametrize("nodes", [3, 5])
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_seeds_are_safe_live_and_linearizable(nodes: int, chunk: int) -> None:
    config = SimConfig(nodes=nodes)
    failures = []
    for seed in range(chunk * SEEDS_PER_CHUNK, (chunk + 1) * SEEDS_PER_CHUNK):
        result = run_seed(seed, config)
        assert result.commands_chosen > 0, f"seed {seed} chose nothing"
        assert result.leader_changes >= 1
        if not result.ok:
            failures.append(
                f"seed {seed}: {result.violations[:3]}\n  replay: {replay_command(seed, config)}"
            )
    assert not failures, "\n".join(failures)
