"""The membership properties pass a correct reconfiguration and fire on a planted break.

Each mutant (``mutants.py``, ``MEMBERSHIP_MUTANTS``) breaks one rule of
docs/protocol.md, "Membership: configurations in the log"; a scripted schedule
(``property_env.py``, the golden scripts' environment feeding a
``PropertyChecker``) plays the same changes with the correct core and with the
mutant, and the property stating the rule must name it. The ``mutation`` tests
at the end find the same mutants in random reconfig seeds of the core engine.

Cost (default suite, unmarked tests): about 1 s in all.
"""

from __future__ import annotations

import pytest
from tests.protocol.test_membership import ALPHA, change, elect_again, fill, settle
from tests.protocol.test_replica import command, elect
from tests.sim.mutants import (
    CountsLearners,
    CountsRemovedVoters,
    IgnoresNonVoters,
    SkipsPhaseOnePerConfiguration,
    TakesEffectAtOnce,
)
from tests.sim.property_env import PropertyEnv
from tests.sim.test_mutations import property_rules

from paxon.protocol.membership import Configuration
from paxon.protocol.messages import Accept, ChosenPrefix, Prepare
from paxon.protocol.replica import Replica
from paxon.protocol.types import Ballot, Command, Value
from paxon.sim import SimConfig
from paxon.sim.properties import PropertyChecker


def rules(env: PropertyEnv) -> list[str]:
    return [violation.rule for violation in env.checker.violations]


# ------------------------------------------------------------ scripted schedules


def add_learners_then_replace(env: PropertyEnv) -> None:
    """{1, 2, 3} takes 4 and 5 as learners, then becomes {1, 4, 5} in one change;
    then 1 steps aside and 4 leads {1, 4, 5}."""
    elect(env, 1)
    change(env, 1, [1, 2, 3], [4, 5])
    fill(env, 1, ALPHA)
    change(env, 1, [1, 4, 5])
    fill(env, 1, ALPHA + 2, seq_start=900)
    env.partition([[1], [2, 3, 4, 5]])
    elect_again(env, 4, [4, 5])
    env.heal()
    fill(env, 4, 2, seq_start=950)


def test_a_correct_reconfiguration_breaks_no_property() -> None:
    env = PropertyEnv(3, nodes=5, alpha=ALPHA)
    add_learners_then_replace(env)
    assert env.replica(4).configuration.voters == {1, 4, 5}
    assert env.checker.configs.changes_chosen == 2
    assert env.checker.violations == []


def test_a_change_taking_effect_at_once_breaks_config_effect() -> None:
    env = PropertyEnv(3, TakesEffectAtOnce, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2])  # chosen at slot i: the mutant has it in effect at i + 1
    assert "config-effect" in rules(env), rules(env)


def learner_with_a_minority(env: PropertyEnv) -> None:
    """{1, 2, 3} with learner 4; 2 and 3 are cut off while 1 proposes."""
    elect(env, 1)
    change(env, 1, [1, 2, 3], [4])
    fill(env, 1, ALPHA)
    env.partition([[1, 4], [2, 3]])
    env.propose(1, command(500))
    env.stabilize()
    settle(env, 1)


def test_a_learner_counted_breaks_learner_vote() -> None:
    correct = PropertyEnv(3, nodes=4, alpha=ALPHA)
    learner_with_a_minority(correct)
    assert correct.checker.violations == []

    broken = PropertyEnv(3, CountsLearners, nodes=4, alpha=ALPHA)
    learner_with_a_minority(broken)
    assert {"chosen-claim", "learner-vote"} <= set(rules(broken)), rules(broken)


def learner_stands_and_prepares(env: PropertyEnv) -> None:
    """Learner 4 waits out an election timeout, and a Prepare of its reaches 2."""
    elect(env, 1)
    change(env, 1, [1, 2, 3], [4])
    fill(env, 1, ALPHA)
    learner = env.replica(4)
    env.tick(4, learner.now + 30.0)
    promised = env.replica(2).ballot_promised
    env.inject(Prepare(4, 2, Ballot(promised.round + 1, 4), env.replica(2).slot_chosen))
    env.persist(2)


def test_a_non_voter_standing_breaks_stand_and_promise_non_voter() -> None:
    correct = PropertyEnv(3, nodes=4, alpha=ALPHA)
    learner_stands_and_prepares(correct)
    assert correct.checker.violations == []
    assert correct.replica(2).counters.ignored_non_member == 1

    broken = PropertyEnv(3, IgnoresNonVoters, nodes=4, alpha=ALPHA)
    learner_stands_and_prepares(broken)
    assert {"stand-non-voter", "promise-non-voter"} <= set(rules(broken)), rules(broken)


def test_skipping_phase_one_per_configuration_breaks_prepared_config() -> None:
    broken = PropertyEnv(3, SkipsPhaseOnePerConfiguration, nodes=5, alpha=ALPHA)
    add_learners_then_replace(broken)
    assert "prepared-config" in rules(broken), rules(broken)


# --------------------------------------------------------- fed event by event


def test_an_accept_past_the_known_configurations_breaks_config_known() -> None:
    checker = PropertyChecker((1, 2, 3), configuration=Configuration.initial([1, 2, 3], alpha=4))
    ballot = Ballot(1, 1)
    value = Value((Command(1000, 1, b"x"),))
    checker.on_send(1, Accept(1, 2, ballot, 4, value, ChosenPrefix(0)), 0.0)
    assert "config-known" in [violation.rule for violation in checker.violations]


# ------------------------------------------------ random seeds of the core engine

MAX_SEEDS = 12
RECONFIG = SimConfig(
    nodes=3, spares=2, alpha=8, engine="core", faults=frozenset({"reconfig", "drop"})
)


@pytest.mark.mutation
@pytest.mark.parametrize(
    ("mutant", "rule"),
    [
        (TakesEffectAtOnce, "config-effect"),
        (CountsLearners, "learner-vote"),
        (CountsRemovedVoters, "learner-vote"),  # a chosen slot lacks a quorum of C(s)
        (IgnoresNonVoters, "stand-non-voter"),
        (SkipsPhaseOnePerConfiguration, "prepared-config"),
    ],
)
def test_reconfig_seeds_name_the_broken_rule(mutant: type[Replica], rule: str) -> None:
    for seed in range(MAX_SEEDS):
        found = property_rules(seed, RECONFIG, mutant)
        if rule in found:
            return
    pytest.fail(f"{mutant.__name__} ran {MAX_SEEDS} reconfig seeds without {rule}")


@pytest.mark.mutation
def test_the_correct_core_passes_the_same_reconfig_seeds() -> None:
    for seed in range(3):
        assert property_rules(seed, RECONFIG, Replica) == []
