"""The leader's history retention in the simulator: a leader that keeps few
revisions proposes compaction entries (``paxon.node.history``), every replica
cuts there, watchers are refused only what was cut (``watch-exactly-once``),
and no cut leaves fewer revisions than the leader keeps (``history-kept``)."""

from __future__ import annotations

import pytest
from tests.sim.mutants import CutsPastTheEntry

from paxon.sim import SimConfig, replay_command, run_seed

KEEPS_FOUR = SimConfig(nodes=3, history_revisions=4)


@pytest.mark.sim
def test_a_leader_keeping_few_revisions_compacts_and_watchers_lose_only_what_was_cut() -> None:
    """Each seed cuts the history many times under every fault, and the
    watchers, refused, start again past the cut (about 4 s a seed)."""
    refused = 0
    for seed in range(2):
        result = run_seed(seed, KEEPS_FOUR)
        replay = replay_command(seed, KEEPS_FOUR)
        assert result.ok, f"seed {seed}: {result.violations[:3]}\n{replay}"
        refused += result.coordination["compacted"]
    assert refused > 0


@pytest.mark.sim
@pytest.mark.mutation
def test_a_cut_past_what_the_leader_keeps_is_named_by_history_kept() -> None:
    result = run_seed(0, KEEPS_FOUR, store_factory=lambda _cluster, _node_id: CutsPastTheEntry())
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "history-kept" in rules, result.violations[:3]


def test_history_revisions_is_the_runtime_engines_and_in_range() -> None:
    with pytest.raises(ValueError, match="runtime engine"):
        SimConfig(nodes=3, engine="core", storage="memory", history_revisions=4)
    with pytest.raises(ValueError, match="history revisions"):
        SimConfig(nodes=3, history_revisions=0)
    assert "--history-revisions 4" in replay_command(0, KEEPS_FOUR)
