"""The faults aimed at membership changes (``paxon.sim.membership_faults``)
build the states mutation sample s13 found unbuilt, and a run through them
stays safe and live.

Mutants this kills on the simulator (docs/mutation/s13-gaps-closed.md):
#32 (a leader preparing a configuration with a voter that has not promised
crashes) and #41 (a learner whose election timeout fires crashes).
"""

from __future__ import annotations

from paxon.sim import SimConfig
from paxon.sim.membership_faults import MembershipFaults
from paxon.sim.runtime import RuntimeCluster

# 3 voters and a spare to add, membership changes and lost messages: seed 1
# runs a bare election, a change of voters prepared by the leader, and a
# learner cut off past its election timeout (about 1.5 s on one core).
CONFIG = SimConfig(nodes=3, spares=1, faults=frozenset({"reconfig", "drop"}))
SEED = 1


def test_a_reconfig_seed_builds_bare_elections_and_cut_off_learners_safely() -> None:
    cluster = RuntimeCluster(SEED, CONFIG)
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    built = cluster.membership_faults
    assert built.bare_elections >= 1
    assert built.leader_prepares >= 1  # a change of voters the promises did not prepare
    assert built.learners_cut >= 1 and built.learners_timed_out >= 1


def test_nothing_is_drawn_unless_the_operator_runs() -> None:
    """Seeds without membership changes run exactly as before."""
    quiet = SimConfig(nodes=3, faults=frozenset({"drop"}))
    cluster = RuntimeCluster(SEED, quiet)
    faults = cluster.membership_faults
    assert isinstance(faults, MembershipFaults) and not faults.active
    cluster.run()
    assert (faults.bare_elections, faults.learners_cut) == (0, 0)
