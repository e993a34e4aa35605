"""``configs-forgotten`` (``paxon.sim.config_memory``): a replica holds no
configuration older than the one in effect at its ``log_start``; the planted
bug is the s30 sample's ``membership.py:397``, a ``forget_before`` that keeps
everything."""

from __future__ import annotations

import pytest

from paxon.protocol.membership import ConfigHistory, Configuration, Member
from paxon.sim import SimConfig, run_seed
from paxon.sim.config_memory import history_problem

FIRST = Configuration(0, (Member(1, "a:1"), Member(2, "a:2"), Member(3, "a:3")))
SECOND = Configuration(1, (Member(1, "a:1"), Member(2, "a:2")))


def test_a_history_trimmed_to_its_log_start_passes_and_one_kept_whole_is_named() -> None:
    history = ConfigHistory(((0, FIRST), (70, SECOND)))
    assert history_problem(1, history, 0) is None
    assert history_problem(1, history, 69) is None  # the first still decides slot 69
    problem = history_problem(1, history, 70)
    assert problem is not None and "epoch 0 (from slot 0)" in problem
    history.forget_before(70)
    assert history_problem(1, history, 70) is None


@pytest.mark.sim
@pytest.mark.mutation
def test_a_history_that_never_forgets_is_named_by_configs_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Planted: ``forget_before`` keeps every configuration. Membership seed 0
    of the mutation budget (3 voters, a spare, changes and loss) changes
    members often and compacts past them; it passes without the plant."""
    config = SimConfig(nodes=3, spares=1, faults=frozenset({"reconfig", "drop"}))
    assert run_seed(0, config).ok
    monkeypatch.setattr(ConfigHistory, "forget_before", lambda self, slot: None)
    planted = run_seed(0, config)
    rules = {violation.split()[1].rstrip(":") for violation in planted.violations}
    assert "configs-forgotten" in rules, planted.violations[:3]
