"""Seeds that once found a bug. Each stays here, pinned, with what it found."""

from __future__ import annotations

import pytest

from paxon.sim import SimConfig, replay_command, run_seed

PINNED = [
    # seed, nodes, what it found
    (
        1307,
        3,
        "a Learn requested as a follower arrived after the node became leader; the "
        "learned slots stayed in its proposals and broke check_invariants",
    ),
]


@pytest.mark.sim
@pytest.mark.parametrize(("seed", "nodes", "found"), PINNED, ids=[str(p[0]) for p in PINNED])
def test_pinned_seed_passes(seed: int, nodes: int, found: str) -> None:
    config = SimConfig(nodes=nodes)
    result = run_seed(seed, config)
    assert result.ok, f"{found}\n{result.violations[:3]}\nreplay: {replay_command(seed, config)}"
