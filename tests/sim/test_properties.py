"""Each property of ``PropertyChecker`` passes a correct history and fires on a planted break.

The histories are written by hand, event by event, as a runtime would report
them: records made durable, messages sent, crashes, reads.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from paxon.protocol.messages import (
    Accept,
    Accepted,
    ChosenPrefix,
    Heartbeat,
    HeartbeatReply,
    Learn,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
)
from paxon.protocol.records import (
    AcceptRecord,
    ChosenRecord,
    DurableState,
    PromiseRecord,
    SnapshotRecord,
)
from paxon.protocol.types import NOOP, Ballot, BallotRun, Command, Entry, Value
from paxon.sim.checkers import Violation
from paxon.sim.properties import PropertyChecker

MEMBERS = (1, 2, 3)
B1 = Ballot(1, 1)  # n1's
B2 = Ballot(2, 2)  # n2's
B3 = Ballot(3, 1)  # n1's, later
V = Value((Command(1000, 1, b"x"),))
W = Value((Command(1000, 2, b"y"),))


def rules(checker: PropertyChecker) -> list[str]:
    return [violation.rule for violation in checker.violations]


def probe(checker: PropertyChecker, ballot: Ballot, granters: Iterable[int]) -> None:
    leader = ballot.node_id
    for peer in MEMBERS:
        if peer != leader:
            checker.on_send(leader, Probe(leader, peer, ballot), 0.0)
    for granter in granters:
        checker.on_send(granter, ProbeReply(granter, leader, ballot, True), 0.0)


def promise(checker: PropertyChecker, ballot: Ballot, acceptor: int, *entries: Entry) -> None:
    """``acceptor`` persists its promise of ``ballot``, then answers the Prepare."""
    checker.on_records_durable(acceptor, [PromiseRecord(ballot)], 0.0)
    checker.on_send(acceptor, Promise(acceptor, ballot.node_id, ballot, 0, entries, 0, 0), 0.0)


def elect(checker: PropertyChecker, ballot: Ballot, acceptors: Iterable[int]) -> None:
    """The whole of Phase 1, done right: probe, persist, Prepare, promises."""
    leader = ballot.node_id
    probe(checker, ballot, [peer for peer in acceptors if peer != leader])
    checker.on_records_durable(leader, [PromiseRecord(ballot)], 0.0)
    for peer in MEMBERS:
        if peer != leader:
            checker.on_send(leader, Prepare(leader, peer, ballot, 0), 0.0)
    checker.on_send(leader, Promise(leader, leader, ballot, 0, (), 0, 0), 0.0)
    for acceptor in acceptors:
        if acceptor != leader:
            promise(checker, ballot, acceptor)


def propose(checker: PropertyChecker, ballot: Ballot, slot: int, value: Value) -> None:
    leader = ballot.node_id
    for peer in MEMBERS:
        if peer != leader:
            checker.on_send(leader, Accept(leader, peer, ballot, slot, value, ChosenPrefix(0)), 0.0)


def vote(checker: PropertyChecker, ballot: Ballot, slot: int, value: Value, voter: int) -> None:
    """``voter`` persists the accepted entry, then votes."""
    checker.on_records_durable(voter, [AcceptRecord(Entry(slot, ballot, value))], 0.0)
    checker.on_send(voter, Accepted(voter, ballot.node_id, ballot, slot, 0), 0.0)


def choose(checker: PropertyChecker, ballot: Ballot, slot: int, value: Value) -> None:
    propose(checker, ballot, slot, value)
    for voter in (ballot.node_id, 3):
        vote(checker, ballot, slot, value, voter)


def leader_elected() -> PropertyChecker:
    checker = PropertyChecker(MEMBERS)
    elect(checker, B1, MEMBERS)
    return checker


def heartbeat(leader: int, ballot: Ballot, slot_chosen: int, *runs: BallotRun) -> Heartbeat:
    return Heartbeat(leader, 3, ballot, ChosenPrefix(slot_chosen, runs), 0)


# ----------------------------------------------------------- a correct history


def test_a_correct_history_breaks_no_property() -> None:
    checker = leader_elected()
    choose(checker, B1, 0, V)
    choose(checker, B1, 1, W)
    checker.on_records_durable(1, [ChosenRecord(2)], 0.0)
    checker.on_send(1, heartbeat(1, B1, 2, BallotRun(0, 2, B1)), 0.0)
    checker.on_send(1, Accept(1, 2, B1, 2, V, ChosenPrefix(2, (BallotRun(1, 2, B1),))), 0.0)
    checker.on_send(3, HeartbeatReply(3, 1, B1, 2, 0), 0.0)
    checker.on_send(1, Learn(1, 2, (Entry(0, B1, V), Entry(1, B1, W))), 0.0)
    checker.on_read_requested(1, 7, 0.0)
    checker.on_read_confirmed(1, 7, 2, 0.0)
    checker.on_read_answered(1, 2, 2, 0.0)
    # A new leader: its promises report what they hold, its ballot is higher.
    elect(checker, B2, [2, 3])
    choose(checker, B2, 2, V)
    assert checker.violations == []


def test_violations_go_to_a_shared_list() -> None:
    shared: list[Violation] = []
    checker = PropertyChecker(MEMBERS, shared)
    checker.on_send(1, Prepare(1, 2, B1, 0), 0.0)
    assert shared is checker.violations
    assert "prepare-durable" in rules(checker)


# ------------------------------------------------------------- P1: Prepare


def test_prepare_before_its_ballot_is_durable() -> None:
    checker = PropertyChecker(MEMBERS)
    probe(checker, B1, [2])
    checker.on_records_durable(1, [PromiseRecord(Ballot(0, 0))], 0.0)
    checker.on_send(1, Prepare(1, 2, B1, 0), 0.0)
    assert rules(checker) == ["prepare-durable"]
    checker.on_records_durable(1, [PromiseRecord(B1)], 0.0)
    checker.on_send(1, Prepare(1, 3, B1, 0), 0.0)  # now durable: fine
    assert rules(checker) == ["prepare-durable"]


def test_an_accept_record_is_a_durable_promise_too() -> None:
    checker = PropertyChecker(MEMBERS)
    probe(checker, B1, [2])
    checker.on_records_durable(1, [AcceptRecord(Entry(0, B1, V))], 0.0)
    checker.on_send(1, Prepare(1, 2, B1, 0), 0.0)
    assert checker.violations == []


# ------------------------------------------------------------- P2: Promise


def test_promise_before_it_is_durable() -> None:
    checker = PropertyChecker(MEMBERS)
    checker.on_send(2, Promise(2, 1, B1, 0, (), 0, 0), 0.0)
    assert rules(checker) == ["promise-durable"]


def test_a_candidate_counting_its_own_promise_before_it_is_durable() -> None:
    checker = PropertyChecker(MEMBERS)
    probe(checker, B1, [2])
    checker.on_send(1, Promise(1, 1, B1, 0, (), 0, 0), 0.0)  # to itself, not yet durable
    assert rules(checker) == ["promise-durable"]


def test_promise_reporting_an_entry_not_yet_durable() -> None:
    checker = leader_elected()
    propose(checker, B1, 0, V)
    checker.on_records_durable(3, [PromiseRecord(B2)], 0.0)
    checker.on_send(3, Promise(3, 2, B2, 0, (Entry(0, B1, V),), 0, 0), 0.0)
    assert rules(checker) == ["promise-durable"]
    checker.on_records_durable(3, [AcceptRecord(Entry(0, B1, V))], 0.0)
    checker.on_send(3, Promise(3, 2, B2, 0, (Entry(0, B1, V),), 0, 0), 0.0)
    assert rules(checker) == ["promise-durable"]


# ------------------------------------------------------------ P3: Accepted


def test_vote_before_its_entry_is_durable() -> None:
    checker = leader_elected()
    propose(checker, B1, 0, V)
    checker.on_send(3, Accepted(3, 1, B1, 0, 0), 0.0)  # B1 promised, entry not on disk
    assert rules(checker) == ["vote-durable"]


def test_vote_on_a_chosen_slot_before_the_raised_promise_is_durable() -> None:
    checker = leader_elected()
    choose(checker, B1, 0, V)
    elect(checker, B2, [1, 2])
    propose(checker, B2, 0, V)
    checker.on_send(3, Accepted(3, 2, B2, 0, 0), 0.0)  # n3 holds (0, B1, V): promise B1
    assert rules(checker) == ["vote-durable"]
    assert "only 1.1 promised" in checker.violations[0].detail


def test_vote_on_a_chosen_slot_needs_no_new_record() -> None:
    """The acceptor votes for a chosen slot under a new ballot without rewriting it."""
    checker = leader_elected()
    choose(checker, B1, 0, V)  # n1 and n3 hold (0, B1, V)
    elect(checker, B2, [1, 2])
    promise(checker, B2, 3, Entry(0, B1, V))
    propose(checker, B2, 0, V)
    checker.on_send(3, Accepted(3, 2, B2, 0, 0), 0.0)  # the held entry is the chosen value
    assert checker.violations == []


def test_vote_without_a_record_holding_another_value() -> None:
    """n2 votes as if slot 0 were chosen with what it holds, but it holds a loser."""
    checker = leader_elected()
    propose(checker, B1, 0, W)
    vote(checker, B1, 0, W, 2)  # W under B1: n2's vote only
    n3_ballot = Ballot(2, 3)
    elect(checker, n3_ballot, [1, 3])
    propose(checker, n3_ballot, 0, V)
    vote(checker, n3_ballot, 0, V, 3)
    vote(checker, n3_ballot, 0, V, 1)  # V chosen
    elect(checker, B3, [1, 2])
    propose(checker, B3, 0, V)
    checker.on_send(2, Accepted(2, 1, B3, 0, 0), 0.0)  # no new record: W stays on disk
    assert rules(checker) == ["vote-durable"]
    assert "not the chosen value" in checker.violations[0].detail


def test_vote_below_the_durable_chosen_mark() -> None:
    checker = leader_elected()
    choose(checker, B1, 0, V)
    checker.on_records_durable(2, [ChosenRecord(1), PromiseRecord(B2)], 0.0)
    checker.on_send(2, Accepted(2, 2, B2, 0, 1), 0.0)
    checker.on_records_durable(3, [SnapshotRecord(1), PromiseRecord(B2)], 0.0)
    checker.on_send(3, Accepted(3, 2, B2, 0, 1), 0.0)
    assert checker.violations == []


# ------------------------------------------------------ P4: claims of chosen


def test_votes_counted_across_ballots_are_caught_at_the_claim() -> None:
    """A leader counted n3's vote under B1 and its own under B3 as one quorum."""
    checker = leader_elected()
    propose(checker, B1, 0, V)
    vote(checker, B1, 0, V, 3)
    elect(checker, B3, MEMBERS)
    propose(checker, B3, 0, W)
    vote(checker, B3, 0, W, 1)  # one vote under B3, one under B1: no majority for either
    checker.on_records_durable(1, [ChosenRecord(1)], 0.0)
    checker.on_send(1, heartbeat(1, B3, 1, BallotRun(0, 1, B3)), 0.0)
    assert rules(checker) == ["chosen-claim", "chosen-claim", "chosen-claim"]


def test_a_run_under_a_ballot_that_proposed_another_value() -> None:
    checker = leader_elected()
    propose(checker, B1, 0, W)
    elect(checker, B2, [2, 3])
    choose(checker, B2, 0, V)
    checker.on_send(2, heartbeat(2, B2, 1, BallotRun(0, 1, B1)), 0.0)
    assert rules(checker) == ["chosen-claim"]
    assert "proposed" in checker.violations[0].detail


def test_a_run_may_name_the_ballot_a_learner_kept() -> None:
    """A learner that learns the value it holds keeps its ballot, and announces it."""
    checker = leader_elected()
    propose(checker, B1, 0, V)  # only n1's vote: B1 has no majority at slot 0
    vote(checker, B1, 0, V, 1)
    elect(checker, B2, [2, 3])
    choose(checker, B2, 0, V)  # the same value, chosen under B2
    checker.on_send(1, Accept(1, 2, B3, 1, W, ChosenPrefix(1, (BallotRun(0, 1, B1),))), 0.0)
    assert rules(checker) == ["lead-quorum"]  # the run itself is true


def test_a_prefix_past_the_chosen_slots() -> None:
    checker = leader_elected()
    choose(checker, B1, 0, V)
    propose(checker, B1, 1, W)
    checker.on_send(1, heartbeat(1, B1, 2), 0.0)
    checker.on_send(3, Accepted(3, 1, B1, 0, 2), 0.0)
    checker.on_send(3, HeartbeatReply(3, 1, B1, 2, 0), 0.0)
    checker.on_records_durable(3, [ChosenRecord(2)], 0.0)
    checker.on_send(3, Promise(3, 2, B2, 0, (), 2, 0), 0.0)
    checker.on_records_durable(2, [SnapshotRecord(2)], 0.0)
    assert rules(checker) == ["chosen-claim"] * 4 + ["promise-durable"] + ["chosen-claim"] * 2


def test_a_learn_entry_that_was_not_chosen() -> None:
    checker = leader_elected()
    choose(checker, B1, 0, V)
    propose(checker, B1, 1, W)
    checker.on_send(1, Learn(1, 2, (Entry(0, B1, V), Entry(1, B1, W))), 0.0)
    checker.on_send(1, Learn(1, 2, (Entry(0, B1, W),)), 0.0)
    checker.on_send(1, Learn(1, 2, (Entry(0, B2, V),)), 0.0)
    assert rules(checker) == ["chosen-claim"] * 3


def test_a_minority_never_chooses() -> None:
    checker = PropertyChecker((1, 2, 3, 4, 5))
    elect(checker, B1, (1, 2, 3))
    propose(checker, B1, 0, V)
    vote(checker, B1, 0, V, 1)
    vote(checker, B1, 0, V, 2)
    checker.on_send(1, Learn(1, 4, (Entry(0, B1, V),)), 0.0)
    assert rules(checker) == ["chosen-claim"]


# --------------------------------------------------------------- P5: reads


def test_a_read_answered_before_its_index_is_applied() -> None:
    checker = PropertyChecker(MEMBERS)
    checker.on_read_answered(1, 5, 5, 0.0)
    checker.on_read_answered(1, 5, 7, 0.0)
    assert checker.violations == []
    checker.on_read_answered(1, 5, 4, 0.0)
    assert rules(checker) == ["read-applied"]


def test_a_read_index_below_a_slot_chosen_before_the_read() -> None:
    checker = leader_elected()
    choose(checker, B1, 0, V)
    choose(checker, B1, 3, V)
    checker.on_read_requested(2, 1, 0.0)  # a deposed leader that thinks slot_next is 1
    choose(checker, B1, 4, V)  # chosen after the request: need not be covered
    checker.on_read_confirmed(2, 1, 4, 0.0)
    assert checker.violations == []
    checker.on_read_requested(2, 2, 0.0)
    checker.on_read_confirmed(2, 2, 1, 0.0)
    assert rules(checker) == ["read-fresh"]
    checker.on_read_requested(2, 3, 0.0)
    checker.on_read_confirmed(2, 3, None, 0.0)  # leadership lost: no answer, no claim
    checker.on_read_requested(2, 4, 0.0)
    checker.on_crash(2, 0.0)
    checker.on_read_confirmed(2, 4, 0, 0.0)  # a read of an earlier life is forgotten
    assert rules(checker) == ["read-fresh"]


def test_every_read_gets_exactly_one_answer() -> None:
    """``read-answer``: no answer twice or unasked, none left when leadership ends."""
    checker = leader_elected()
    checker.on_read_requested(1, 1, 0.0)
    checker.on_read_requested(1, 2, 0.0)
    checker.on_read_confirmed(1, 1, 0, 0.0)
    assert checker.violations == []
    checker.on_read_confirmed(1, 1, 0, 0.0)
    checker.on_read_confirmed(1, 9, None, 0.0)
    assert rules(checker) == ["read-answer"] * 2
    checker.on_stopped_leading(1, 0.0)  # read 2 was never answered
    assert rules(checker) == ["read-answer"] * 3
    checker.on_read_requested(1, 3, 0.0)
    checker.on_read_confirmed(1, 3, None, 0.0)
    checker.on_stopped_leading(1, 0.0)
    assert rules(checker) == ["read-answer"] * 3


# ------------------------------------------------ the other rules of the page


def test_phase_two_before_a_majority_promised() -> None:
    checker = PropertyChecker(MEMBERS)
    probe(checker, B1, [2])
    checker.on_records_durable(1, [PromiseRecord(B1)], 0.0)
    checker.on_send(1, Prepare(1, 2, B1, 0), 0.0)
    checker.on_send(1, Promise(1, 1, B1, 0, (), 0, 0), 0.0)  # only its own promise
    propose(checker, B1, 0, V)
    checker.on_send(1, heartbeat(1, B1, 0), 0.0)
    assert rules(checker) == ["lead-quorum"]  # once per ballot


def _promised_by_a_compacted_log() -> PropertyChecker:
    """n1 prepares from slot 0; its own promise and n2's, whose log starts at 5."""
    checker = PropertyChecker(MEMBERS)
    probe(checker, B1, [2])
    checker.on_records_durable(1, [PromiseRecord(B1)], 0.0)
    checker.on_send(1, Prepare(1, 2, B1, 0), 0.0)
    checker.on_send(1, Promise(1, 1, B1, 0, (), 0, 0), 0.0)
    checker.on_records_durable(2, [PromiseRecord(B1)], 0.0)
    checker.on_send(2, Promise(2, 1, B1, 0, (), 5, 5), 0.0)
    return checker


def test_phase_two_counting_a_promise_of_a_compacted_log() -> None:
    """n2's log starts at slot 5, past the Prepare's slot_from 0: it cannot
    report slots 0..4, so its promise does not make a quorum (seed 5090's rule)."""
    checker = _promised_by_a_compacted_log()
    assert "lead-quorum" not in rules(checker)
    propose(checker, B1, 0, V)
    # (It also claims slots 0..4 chosen, which this short history never chose.)
    assert "lead-quorum" in rules(checker)


@pytest.mark.parametrize(("known_chosen", "named"), [(5, False), (4, True)])
def test_phase_two_counting_a_compacted_promise_below_the_prefix_it_knows(
    known_chosen: int, named: bool
) -> None:
    """As above, but the leader knows slots below ``known_chosen`` chosen and
    says so in its Accept: once that reaches n2's log_start, what n2 cannot
    report is chosen and known, so the promise counts (the core's
    ``_covers``; swarm seed 7000575); one slot short, it does not. Whether
    those slots are chosen is ``chosen-claim``'s to judge, not this rule's."""
    checker = _promised_by_a_compacted_log()
    accept = Accept(1, 2, B1, known_chosen, V, ChosenPrefix(known_chosen))
    checker.on_send(1, accept, 0.0)
    assert ("lead-quorum" in rules(checker)) == named


def test_prepare_without_a_majority_of_grants() -> None:
    checker = PropertyChecker((1, 2, 3, 4, 5))
    probe(checker, B1, [2])  # itself and n2: two of five
    checker.on_records_durable(1, [PromiseRecord(B1)], 0.0)
    checker.on_send(1, Prepare(1, 2, B1, 0), 0.0)
    assert rules(checker) == ["probe-quorum"]
    probe(checker, B3, [2, 3])
    checker.on_records_durable(1, [PromiseRecord(B3)], 0.0)
    checker.on_send(1, Prepare(1, 2, B3, 0), 0.0)
    checker.on_crash(1, 0.0)  # grants die with the candidate
    checker.on_records_durable(1, [PromiseRecord(Ballot(4, 1))], 0.0)
    checker.on_send(1, Prepare(1, 2, Ballot(4, 1), 0), 0.0)
    assert rules(checker) == ["probe-quorum", "probe-quorum"]


def test_an_acceptor_going_back_to_a_lower_ballot() -> None:
    checker = leader_elected()
    promise(checker, B2, 3)
    propose(checker, B1, 0, V)
    vote(checker, B1, 0, V, 3)
    assert rules(checker) == ["acceptor-monotone"]
    checker.on_crash(3, 0.0)
    promise(checker, B1, 3)  # a restart does not excuse it
    assert rules(checker) == ["acceptor-monotone"] * 2


def test_an_accept_record_below_the_chosen_mark() -> None:
    checker = leader_elected()
    choose(checker, B1, 0, V)
    checker.on_records_durable(3, [ChosenRecord(1)], 0.0)
    checker.on_records_durable(3, [AcceptRecord(Entry(0, B2, NOOP))], 0.0)
    checker.on_records_durable(2, [SnapshotRecord(1), AcceptRecord(Entry(0, B2, NOOP))], 0.0)
    assert rules(checker) == ["chosen-stable"] * 2


def test_a_ballot_of_another_node() -> None:
    checker = PropertyChecker(MEMBERS)
    checker.on_send(1, Probe(1, 2, B2), 0.0)
    checker.on_records_durable(1, [PromiseRecord(B2)], 0.0)
    checker.on_send(1, Prepare(1, 2, B2, 0), 0.0)
    assert rules(checker)[:2] == ["ballot-owner", "ballot-owner"]


def test_a_ballot_prepared_again_after_a_crash() -> None:
    checker = PropertyChecker(MEMBERS)
    for life in range(2):
        probe(checker, B3, [2])
        checker.on_records_durable(1, [PromiseRecord(B3)], 0.0)
        checker.on_send(1, Prepare(1, 2, B3, 0), 0.0)
        checker.on_send(1, Prepare(1, 3, B3, 0), 0.0)  # the same broadcast: fine
        if life == 0:
            assert checker.violations == []
            checker.on_crash(1, 0.0)
    probe(checker, B1, [2])
    checker.on_send(1, Prepare(1, 2, B1, 0), 0.0)
    assert rules(checker) == ["ballot-fresh", "ballot-fresh"]


def test_only_votes_go_to_oneself() -> None:
    """A leader counting its own heartbeat reply confirms reads with no peer at all."""
    checker = PropertyChecker(MEMBERS)
    checker.on_records_durable(1, [PromiseRecord(B1)], 0.0)
    checker.on_send(1, Promise(1, 1, B1, 0, (), 0, 0), 0.0)
    assert rules(checker) == []
    checker.on_send(1, HeartbeatReply(1, 1, B1, 0, 1), 0.0)
    assert rules(checker) == ["self-vote"]


def test_a_recovery_that_rebuilds_the_durable_state_or_later() -> None:
    """What a restart recovers may hold records written after the last sync (they
    survived the crash), never less than the records made durable."""
    checker = leader_elected()
    choose(checker, B1, 0, V)
    checker.on_records_durable(3, [ChosenRecord(1)], 0.0)
    checker.on_crash(3, 0.0)
    later = DurableState(B2, {0: Entry(0, B1, V), 1: Entry(1, B2, W)}, slot_chosen=1)
    checker.on_recovered(3, later, 0.0)
    # A snapshot mark above a slot lets its entry go.
    checker.on_crash(3, 0.0)
    checker.on_recovered(3, DurableState(B2, {1: Entry(1, B2, W)}, 1, log_start=1), 0.0)
    assert checker.violations == []


def test_a_life_short_of_its_durable_mark_marks_its_prefix_again_up_from_its_first_hole() -> None:
    """Swarm seed 14001053: a struck installed snapshot left holes below the
    durable chosen mark 3; a later life (no fault at its own restart) holds the
    prefix only to the first hole, 1, and rightly marks 2 again on learning it.
    A mark at or below the prefix it holds is still a write for nothing."""
    checker = leader_elected()
    choose(checker, B1, 0, V)
    propose(checker, B1, 1, W)  # n3 misses slot 1: an installed snapshot held it
    for voter in (1, 2):
        vote(checker, B1, 1, W, voter)
    choose(checker, B1, 2, V)
    checker.on_records_durable(3, [ChosenRecord(3)], 0.0)
    checker.on_crash(3, 0.0)
    holes = DurableState(B1, {0: Entry(0, B1, V), 2: Entry(2, B1, V)}, slot_chosen=3)
    checker.on_recovered(3, holes, 0.0)
    checker.on_records_durable(3, [ChosenRecord(2)], 0.0)
    assert checker.violations == []
    checker.on_records_durable(3, [ChosenRecord(2)], 0.0)
    assert rules(checker) == ["chosen-advances"]


def test_a_recovery_that_loses_a_durable_record() -> None:
    """Mutant #78 of the sample: records older than the snapshot replayed over its
    checkpoint put back a slot's older accept (or a promise or mark went missing)."""
    checker = leader_elected()
    choose(checker, B1, 0, V)
    vote(checker, B1, 1, V, 3)
    promise(checker, B2, 3)
    vote(checker, B2, 1, W, 3)
    checker.on_records_durable(3, [ChosenRecord(1)], 0.0)
    checker.on_crash(3, 0.0)
    zero = Entry(0, B1, V)
    checker.on_recovered(3, DurableState(B2, {0: zero, 1: Entry(1, B1, V)}, 1), 0.0)
    assert rules(checker) == ["recovery-fold"]
    assert "(s1, " in checker.violations[0].detail
    checker.on_recovered(3, DurableState(B1, {0: zero, 1: Entry(1, B2, W)}, 0), 0.0)
    assert rules(checker) == ["recovery-fold"] * 2
    assert "promise" in checker.violations[1].detail
    assert "chosen mark" in checker.violations[1].detail
    checker.on_recovered(3, DurableState(B2, {0: zero}, 1), 0.0)
    assert rules(checker) == ["recovery-fold"] * 3


# ------------------------------------------------------------------ a wiped disk


def _promise_after_a_wipe(wipe: bool) -> list[str]:
    """n1 promises 5.2, loses its disk, and (a new acceptor) promises 2.3."""
    checker = PropertyChecker((1, 2, 3))
    high, low = Ballot(5, 2), Ballot(2, 3)
    checker.on_records_durable(1, [PromiseRecord(high)], 0.0)
    checker.on_send(1, Promise(1, 2, high, 0, (), 0, 0), 0.0)
    checker.on_crash(1, 1.0)
    if wipe:
        checker.on_wipe(1, 1.0)
    checker.on_records_durable(1, [PromiseRecord(low)], 2.0)
    checker.on_send(1, Promise(1, 3, low, 0, (), 0, 0), 2.0)
    return [violation.rule for violation in checker.violations]


def test_a_wiped_node_is_a_new_acceptor_for_its_own_rules() -> None:
    # Without the wipe the lower promise breaks acceptor-monotone (and the
    # disk still holds 5.2, so promise-durable holds); after it, nothing fires.
    assert "acceptor-monotone" in _promise_after_a_wipe(wipe=False)
    assert _promise_after_a_wipe(wipe=True) == []
