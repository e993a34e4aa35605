"""The safety checker fires on each rule it enforces, given crafted events."""

from __future__ import annotations

from paxon.protocol.config import ROUND_END
from paxon.protocol.membership import Configuration, Member
from paxon.protocol.messages import Accept, Accepted, ChosenPrefix, Nack, Promise
from paxon.protocol.types import NOOP, Ballot, Command, Value
from paxon.sim.checkers import SafetyChecker

B1 = Ballot(1, 1)
B2 = Ballot(2, 2)
PUT = Command(1000, 1, b"x")
V = Value((PUT,))


def accept(src: int, dst: int, ballot: Ballot, slot: int, value: Value) -> Accept:
    return Accept(src, dst, ballot, slot, value, ChosenPrefix(0))


def choose(checker: SafetyChecker, ballot: Ballot, slot: int, value: Value) -> None:
    checker.on_send(accept(ballot.node_id, 3, ballot, slot, value), 0.0)
    for voter in (1, 2):
        checker.on_send(Accepted(voter, ballot.node_id, ballot, slot, 0), 0.0)


def rules(checker: SafetyChecker) -> list[str]:
    return [violation.rule for violation in checker.violations]


def test_clean_history_has_no_violation() -> None:
    checker = SafetyChecker([1, 2, 3])
    checker.on_submit(PUT)
    choose(checker, B1, 0, V)
    checker.on_apply(2, 0, V, 1.0)
    checker.on_effect(2, PUT, 1.0)
    assert checker.violations == []
    assert checker.chosen == {0: V}


def test_two_values_chosen_at_one_slot() -> None:
    checker = SafetyChecker([1, 2, 3])
    choose(checker, B1, 0, V)
    choose(checker, B2, 0, NOOP)
    assert rules(checker) == ["agreement"]


def test_one_ballot_two_values() -> None:
    checker = SafetyChecker([1, 2, 3])
    checker.on_send(accept(1, 2, B1, 4, V), 0.0)
    checker.on_send(accept(1, 3, B1, 4, NOOP), 0.0)
    assert rules(checker) == ["ballot-uniqueness"]


def test_a_minority_of_votes_chooses_nothing() -> None:
    checker = SafetyChecker([1, 2, 3, 4, 5])
    checker.on_submit(PUT)
    choose(checker, B1, 0, V)  # two votes of five
    assert checker.chosen == {}
    checker.on_apply(1, 0, V, 0.0)
    assert rules(checker) == ["apply-unchosen"]


def test_applying_out_of_order_or_a_different_value() -> None:
    checker = SafetyChecker([1, 2, 3])
    choose(checker, B1, 0, NOOP)
    choose(checker, B1, 1, NOOP)
    checker.on_apply(1, 1, NOOP, 0.0)
    checker.on_apply(2, 0, V, 0.0)
    assert rules(checker) == ["apply-order", "agreement", "validity"]


def test_double_effect_and_restart() -> None:
    checker = SafetyChecker([1, 2, 3])
    checker.on_effect(1, PUT, 0.0)
    checker.on_effect(1, PUT, 0.0)
    assert rules(checker) == ["at-most-once"]
    checker.on_restart(1)
    checker.on_effect(1, PUT, 0.0)  # a restarted node rebuilds its state from the log
    assert rules(checker) == ["at-most-once"]


def test_a_ballot_round_the_wire_cannot_carry() -> None:
    checker = SafetyChecker([1, 2, 3])
    checker.on_send(Promise(2, 1, Ballot(ROUND_END - 1, 1), 0, (), 0, 0), 0.0)
    assert checker.violations == []
    checker.on_send(Promise(2, 1, Ballot(ROUND_END, 1), 0, (), 0, 0), 0.0)
    checker.on_send(Nack(2, 1, B1, Ballot(ROUND_END, 3)), 0.0)
    assert rules(checker) == ["wire-bound", "wire-bound"]


# ------------------------------------------------------------------ membership


def vote(
    checker: SafetyChecker, ballot: Ballot, slot: int, value: Value, voters: list[int]
) -> None:
    checker.on_send(accept(ballot.node_id, 2, ballot, slot, value), 0.0)
    for voter in voters:
        checker.on_send(Accepted(voter, ballot.node_id, ballot, slot, 0), 0.0)


def test_votes_count_in_the_configuration_the_log_puts_at_their_slot() -> None:
    """{1, 2, 3} with alpha 2; a change chosen at slot 0 makes 4 a voter and 5 a
    learner from slot 2 on: 2 votes choose slot 1, but not slot 2 (3 of 4 do),
    and the learner's vote never counts."""
    first = Configuration.initial([1, 2, 3], alpha=2)
    members = (Member(1), Member(2), Member(3), Member(4), Member(5, voter=False))
    checker = SafetyChecker([1, 2, 3, 4, 5], configuration=first)
    vote(checker, B1, 0, Value((first.successor(members).command(),)), [1, 2])
    assert checker.configs.changes_chosen == 1
    vote(checker, B1, 1, V, [1, 2])
    assert 1 in checker.chosen
    vote(checker, B1, 2, V, [1, 2, 5])
    assert 2 not in checker.chosen
    checker.on_send(Accepted(4, 1, B1, 2, 0), 0.0)
    assert 2 in checker.chosen and checker.violations == []


def test_votes_wait_until_their_configuration_is_known() -> None:
    """Alpha 2: C(3) is known once slot 1 is chosen; votes at 3 wait until then."""
    checker = SafetyChecker([1, 2, 3], configuration=Configuration.initial([1, 2, 3], alpha=2))
    vote(checker, B1, 3, V, [1, 2])
    assert 3 not in checker.chosen
    vote(checker, B1, 0, V, [1, 2])
    vote(checker, B1, 1, V, [1, 2])
    assert 3 in checker.chosen and checker.violations == []
