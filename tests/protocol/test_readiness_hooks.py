"""The two facts the core gives readiness (``paxon.node.readiness``): when it last
knew a leader to be leading, and how far the chosen prefix it heard of reaches."""

from __future__ import annotations

import random

from tests.protocol.harness import Env

from paxon.protocol import Ballot, ChosenPrefix, Heartbeat, Replica, Role


def test_a_follower_knows_its_leader_from_its_last_heartbeat() -> None:
    replica = Replica(2, (1, 2, 3), rng=random.Random(2), now=0.0)
    assert replica.leader_contact_at() is None
    replica.tick(0.1)
    replica.step(Heartbeat(1, 2, Ballot(1, 1), ChosenPrefix(0), 0))
    assert replica.leader_contact_at() == 0.1
    replica.tick(0.25)  # time passes, nothing heard: the contact stays where it was
    assert replica.leader_contact_at() == 0.1


def test_the_chosen_prefix_heard_of_runs_ahead_of_the_one_held() -> None:
    replica = Replica(2, (1, 2, 3), rng=random.Random(2), now=0.0)
    assert replica.slot_chosen_heard == 0
    # Slots 0..4 are chosen, but this follower holds none of them yet.
    replica.step(Heartbeat(1, 2, Ballot(1, 1), ChosenPrefix(5), 0))
    assert replica.slot_chosen == 0 and replica.slot_chosen_heard == 5
    replica.step(Heartbeat(1, 2, Ballot(1, 1), ChosenPrefix(3), 0))  # never goes back
    assert replica.slot_chosen_heard == 5


def test_a_leader_knows_itself_leading_while_a_majority_answers() -> None:
    env = Env(3)
    env.campaign(1)
    env.stabilize()
    leader = env.replica(1)
    assert leader.role is Role.LEADER
    elected = leader.leader_contact_at()
    assert elected is not None and elected <= leader.now
    env.partition([[1], [2, 3]])
    env.tick(1, leader.now + 0.2)  # its heartbeats go unanswered
    env.stabilize()
    assert leader.role is Role.LEADER and leader.leader_contact_at() == elected
