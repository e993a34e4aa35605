"""Proof that the checks can fail: each broken core is caught within a few seeds.

Each mutant (``mutants.py``) breaks one rule of the protocol. For each, the
simulator must report a violation of the expected kind within ``MAX_SEEDS``
seeds, for 3 and for 5 nodes. The fault kinds listed are the ones that expose
the broken rule; the rest stay off so the search is short.
"""

from __future__ import annotations

import pytest
from tests.sim.mutants import (
    AcceptsLowerBallot,
    AppliesBeforeChosen,
    IgnoresSlotWindow,
    SkipsReproposal,
    SpeaksBeforePersist,
    TrustsAnyRound,
    TrustsStrangers,
)

from paxon.protocol.replica import Replica
from paxon.sim import FAULT_KINDS, SimConfig, run_seed

MAX_SEEDS = 20

CASES = [
    # mutant, faults that expose it, rules the checker should name
    (AcceptsLowerBallot, {"pause", "delay"}, {"agreement", "linearizability"}),
    (SkipsReproposal, set(FAULT_KINDS), {"agreement", "linearizability"}),
    (SpeaksBeforePersist, {"crash", "drop"}, {"agreement", "linearizability"}),
    (AppliesBeforeChosen, set(FAULT_KINDS), {"apply-unchosen"}),
    # The trust bounds: the buggy member's messages get through.
    (TrustsStrangers, {"buggy"}, {"non-member"}),
    (TrustsAnyRound, {"buggy"}, {"wire-bound", "invariant", "exception"}),
    (IgnoresSlotWindow, {"buggy"}, {"invariant"}),
]


def first_violation(mutant: type[Replica], nodes: int, faults: set[str]) -> tuple[int, str]:
    config = SimConfig(nodes=nodes, faults=frozenset(faults))
    for seed in range(MAX_SEEDS):
        result = run_seed(seed, config, replica_factory=mutant)
        if result.violations:
            return seed, result.violations[0]
    pytest.fail(f"{mutant.__name__} ran {MAX_SEEDS} seeds on {nodes} nodes undetected")


@pytest.mark.mutation
@pytest.mark.parametrize("nodes", [3, 5])
@pytest.mark.parametrize(
    ("mutant", "faults", "rules"), CASES, ids=[case[0].__name__ for case in CASES]
)
def test_broken_rule_is_caught(
    mutant: type[Replica], faults: set[str], rules: set[str], nodes: int
) -> None:
    _, violation = first_violation(mutant, nodes, faults)
    rule = violation.split(":")[0] if violation.startswith("lin") else violation.split()[1]
    assert rule.rstrip(":") in rules, violation


@pytest.mark.mutation
def test_correct_core_passes_the_same_seeds() -> None:
    """The same seeds and faults that catch the mutants pass with the real core."""
    for _, faults, _ in CASES:
        config = SimConfig(nodes=3, faults=frozenset(faults))
        for seed in range(3):
            assert run_seed(seed, config).ok
