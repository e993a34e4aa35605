"""Lease reads (``ReplicaConfig.lease_reads``; docs/protocol.md "Lease reads").

A leader answers a linearizable read without a round of heartbeats while a
majority acknowledged a heartbeat round it sent less than ``lease_s`` ago; the
acceptors keep the promise that makes this safe: none promises another
candidate while it hears its leader, unless that leader handed over, nor for
``election_timeout_min_s`` after it starts. Time is each replica's own clock.
"""

from __future__ import annotations

import pytest
from tests.protocol.harness import Env
from tests.protocol.test_membership import ALPHA, change
from tests.protocol.test_replica import command, elect

from paxon.protocol import ReplicaConfig, Role
from paxon.protocol.messages import Heartbeat, Prepare
from paxon.protocol.types import Ballot

LEASE = ReplicaConfig(
    election_timeout_min_s=0.3,
    election_timeout_max_s=0.6,
    lease_reads=True,
    clock_drift_max=0.05,
)


def _cluster(config: ReplicaConfig = LEASE) -> Env:
    """Three replicas past their quiet start, node 1 leading, its first round of
    heartbeats acknowledged by both followers."""
    env = Env(3, config=config)
    for node_id in (2, 3):
        env.tick(node_id, config.election_timeout_min_s)  # a fresh acceptor's quiet start
    elect(env, 1)
    env.stabilize()
    return env


def _heartbeats_pending(env: Env) -> int:
    return sum(isinstance(message, Heartbeat) for message in env.deliverable(src=1))


def test_the_lease_is_shorter_than_the_election_timeout_by_the_drift_bound() -> None:
    assert LEASE.lease_s == pytest.approx(0.3 * 0.95 / 1.05)
    assert ReplicaConfig(lease_reads=True, clock_drift_max=0.0).lease_s == pytest.approx(0.3)


def test_a_leader_holding_its_lease_answers_a_read_without_a_round() -> None:
    env = _cluster()
    leader = env.replica(1)
    assert leader.lease_holds
    lines = env.read_index(1, 7, now=leader.now)
    assert lines == [f"1: read 7 slot={leader.slot_next}"]
    assert _heartbeats_pending(env) == 0


def test_without_lease_reads_every_read_takes_a_round() -> None:
    env = _cluster(ReplicaConfig(election_timeout_min_s=0.3, election_timeout_max_s=0.6))
    leader = env.replica(1)
    assert not leader.lease_holds
    lines = env.read_index(1, 7, now=leader.now)
    assert not any("read 7" in line for line in lines)
    assert _heartbeats_pending(env) == 2
    env.stabilize()
    assert env.node(1).reads[-1].read_id == 7


def test_a_read_taken_without_the_clock_of_the_moment_takes_a_round() -> None:
    # A replica paused since its last tick must not judge its lease by that tick.
    env = _cluster()
    lines = env.read_index(1, 7)
    assert not any("read 7" in line for line in lines)
    assert _heartbeats_pending(env) == 2


def test_the_lease_ends_lease_s_after_the_acknowledged_round_went_out() -> None:
    env = _cluster()
    leader = env.replica(1)
    sent_at = leader.now  # the round the followers acknowledged went out at election
    env.partition([[1], [2, 3]])
    env.tick(1, sent_at + LEASE.lease_s - 0.001)
    env.stabilize()  # its new heartbeats are lost: nothing renews the lease
    assert leader.lease_holds
    lines = env.read_index(1, 1, now=sent_at + LEASE.lease_s)
    assert not leader.lease_holds and leader.role is Role.LEADER
    assert not any("read 1 slot" in line for line in lines)  # a round, which nobody answers


def test_a_read_judged_at_a_later_clock_than_the_last_tick_sees_the_lease_gone() -> None:
    env = _cluster()
    leader = env.replica(1)
    env.partition([[1], [2, 3]])
    late = leader.now + 0.29  # paused: no tick since, but the read comes with the clock
    lines = env.read_index(1, 1, now=late)
    assert not any("read 1 slot" in line for line in lines)


def test_an_acceptor_that_hears_its_leader_refuses_another_candidate() -> None:
    env = _cluster()
    follower = env.replica(2)
    ballot = Ballot(follower.ballot_promised.round + 5, 3)
    lines = env.inject(Prepare(3, 2, ballot, follower.slot_chosen))
    assert not any("Promise" in line for line in lines)
    assert follower.counters.ignored_leader_lease == 1
    assert follower.ballot_promised < ballot and follower.leader_hint == 1


def test_without_lease_reads_an_acceptor_promises_a_higher_ballot_at_once() -> None:
    env = _cluster(ReplicaConfig(election_timeout_min_s=0.3, election_timeout_max_s=0.6))
    follower = env.replica(2)
    ballot = Ballot(follower.ballot_promised.round + 5, 3)
    lines = env.inject(Prepare(3, 2, ballot, follower.slot_chosen))
    assert any("Promise" in line for line in lines)
    assert follower.ballot_promised == ballot


def test_an_acceptor_promises_the_candidate_its_leader_handed_over_to() -> None:
    env = _cluster()
    follower = env.replica(2)
    leader_ballot = follower.ballot_promised
    ballot = Ballot(leader_ballot.round + 1, 3)
    lines = env.inject(Prepare(3, 2, ballot, follower.slot_chosen, handover_from=leader_ballot))
    assert any("Promise" in line for line in lines)
    assert follower.ballot_promised == ballot


def test_a_handover_from_another_leader_than_the_one_it_hears_is_refused() -> None:
    # A candidate's delayed Prepare from a transfer of an older reign must not
    # unseat the leader now holding its lease.
    env = _cluster()
    follower = env.replica(2)
    older = Ballot(follower.ballot_promised.round, 2)  # not the ballot it promised
    assert older != follower.ballot_promised
    ballot = Ballot(follower.ballot_promised.round + 1, 3)
    env.inject(Prepare(3, 2, ballot, follower.slot_chosen, handover_from=older))
    assert follower.counters.ignored_leader_lease == 1
    assert follower.ballot_promised < ballot


def test_a_leader_refuses_another_candidate_while_it_leads() -> None:
    env = _cluster()
    leader = env.replica(1)
    ballot = Ballot(leader.ballot_promised.round + 1, 3)
    env.inject(Prepare(3, 1, ballot, leader.slot_chosen))
    assert leader.counters.ignored_leader_lease == 1
    assert leader.role is Role.LEADER and leader.lease_holds


def test_a_leader_that_hands_over_forfeits_its_lease() -> None:
    env = _cluster()
    leader = env.replica(1)
    env._perform(1, lambda: leader.transfer_leadership(2))
    assert not leader.lease_holds  # from the moment the transfer starts
    env.stabilize()
    assert env.replica(2).role is Role.LEADER and leader.role is Role.FOLLOWER


def test_a_transfer_completes_at_once_under_lease_reads() -> None:
    env = _cluster()
    leader = env.replica(1)
    env.tick(1, leader.now + 0.01)
    env._perform(1, lambda: leader.transfer_leadership(3))
    env.stabilize()  # TimeoutNow, then the target's Prepares naming our ballot
    assert env.replica(3).role is Role.LEADER
    assert env.replica(2).counters.ignored_leader_lease == 0


def test_an_acceptor_just_started_promises_no_one_for_an_election_timeout() -> None:
    env = _cluster()
    env.crash(2)
    follower = env.replica(2)
    started = follower.now
    ballot = Ballot(follower.ballot_promised.round + 5, 3)
    env.inject(Prepare(3, 2, ballot, follower.slot_chosen))
    assert follower.counters.ignored_leader_lease == 1  # it may have acknowledged a leader
    env.tick(2, started + LEASE.election_timeout_min_s)
    lines = env.inject(Prepare(3, 2, ballot, follower.slot_chosen))
    assert any("Promise" in line for line in lines)


def test_a_leader_whose_transfer_gave_up_holds_no_lease_for_the_rest_of_its_reign() -> None:
    # The target's Prepares name our ballot: delivered late, they may still be
    # promised by acceptors that hear us, so the lease never comes back.
    env = _cluster()
    leader = env.replica(1)
    start = leader.now
    env._perform(1, lambda: leader.transfer_leadership(3))
    env.deliver(src=1, dst=3, kind="TimeoutNow")
    env.drop(src=3)  # the target's Prepares are held up
    env.partition([[1, 2], [3]])
    for step in range(1, 10):  # past the transfer's time; node 2 keeps answering
        env.tick(1, start + 0.1 * step)
        env.stabilize()
    assert leader.role is Role.LEADER and leader.transferring_to is None
    assert leader.serving and not leader.lease_holds


def test_a_leader_whose_removal_is_chosen_holds_no_lease() -> None:
    # Voters may stand while they hear a leader being removed (it no longer
    # keeps them from it): its acknowledged rounds must not make a lease.
    env = Env(3, config=LEASE, alpha=ALPHA)
    for node_id in (2, 3):
        env.tick(node_id, LEASE.election_timeout_min_s)  # past the quiet start
    elect(env, 1)
    env.stabilize()
    leader = env.replica(1)
    assert leader.lease_holds
    change(env, 1, [2, 3])  # chosen, not in effect yet: it still leads
    env.tick(1, leader.now + 0.01)  # a fresh round of heartbeats, acknowledged
    env.stabilize()
    assert leader.role is Role.LEADER
    assert not leader.lease_holds
    assert not any("read 7" in line for line in env.read_index(1, 7, now=leader.now))


def _new_leader_writes_while_the_old_one_is_cut_off(
    rate_old: float, rate_others: float, real_s: float
) -> tuple[Env, int]:
    """Node 1 leads and its round is acknowledged; then it is cut off, and after
    ``real_s`` real seconds (each clock running at its rate) node 3 stands,
    wins with node 2 and chooses a write. The slot of that write."""
    env = _cluster()
    old_clock = env.replica(1).now
    env.partition([[1], [2, 3]])
    env.tick(2, env.replica(2).now + rate_others * real_s)
    env.tick(3, env.replica(3).now + rate_others * real_s)
    env.campaign(3)
    env.stabilize()
    assert env.replica(3).role is Role.LEADER
    env.propose(3, command(99))
    env.stabilize()
    written = max(slot for slot, value in env.chosen.items() if command(99) in value.commands)
    env.tick(1, old_clock + rate_old * real_s)
    return env, written


def test_clocks_outside_the_drift_bound_let_a_deposed_leader_read_stale() -> None:
    # The bound is 5%; the old leader's clock runs at half speed, the others' at
    # 1.5: its lease outlives the others' promise, and its read misses a write
    # chosen (and answered) before the read began. The lease is only as good
    # as the bound, which is why it is off by default.
    env, written = _new_leader_writes_while_the_old_one_is_cut_off(0.5, 1.5, 0.25)
    old = env.replica(1)
    assert old.role is Role.LEADER and old.lease_holds
    lines = env.read_index(1, 5, now=old.now)
    read_slot = old.slot_next
    assert lines == [f"1: read 5 slot={read_slot}"]
    assert read_slot <= written  # answered from a state without the write


def test_clocks_inside_the_drift_bound_leave_no_lease_to_read_stale_from() -> None:
    # At the bound itself (rates 0.95 and 1.05), the first moment node 2 may
    # promise another candidate is the moment the old leader's lease ends.
    free_at = LEASE.election_timeout_min_s / 1.05
    env, _ = _new_leader_writes_while_the_old_one_is_cut_off(0.95, 1.05, free_at + 1e-6)
    old = env.replica(1)
    assert not old.lease_holds
    lines = env.read_index(1, 5, now=old.now)
    assert not any("read 5 slot" in line for line in lines)  # a round, which nobody answers
