"""The serving bound: a leader that hears no majority refuses at once, and a
follower says whether it hears its leader (``Replica.serving``,
``Replica.leader_live``; docs/architecture.md "Failing fast").

Time is the replica's own (``tick(now)``); nothing here reads a clock.
"""

from __future__ import annotations

import pytest
from tests.protocol.harness import Env
from tests.protocol.test_replica import command, elect

from paxon.errors import NoQuorum
from paxon.protocol import ReplicaConfig, Role

CONFIG = ReplicaConfig(election_timeout_min_s=0.3, election_timeout_max_s=0.6)


def test_a_leader_cut_off_from_every_peer_refuses_at_once_after_the_bound_then_steps_down() -> None:
    env = Env(3, config=CONFIG)
    elect(env, 1)
    leader = env.replica(1)
    start = leader.now
    env.partition([[1], [2, 3]])
    env.tick(1, start + 0.2)
    assert leader.serving  # within the bound: still takes commands
    env.propose(1, command(1))
    env.stabilize()  # its Accepts and heartbeats are dropped: nobody answers

    env.tick(1, start + 0.31)
    assert leader.role is Role.LEADER and not leader.serving
    with pytest.raises(NoQuorum, match=r"no majority within 0\.3 s"):
        leader.propose(command(2))
    with pytest.raises(NoQuorum):
        leader.read_index(1)

    env.tick(1, start + 0.61)  # check quorum's second half, as before
    assert leader.role is Role.FOLLOWER and not leader.serving


def test_a_leader_hearing_one_peer_of_two_keeps_serving() -> None:
    env = Env(3, config=CONFIG)
    elect(env, 1)
    leader = env.replica(1)
    start = leader.now
    env.partition([[1], [3]])  # only the link to node 3 is cut
    for step in range(1, 11):
        env.tick(1, start + 0.1 * step)
        env.stabilize()
        assert leader.serving, f"refused at {0.1 * step:.1f} s with node 2 answering"
    env.propose(1, command(1))
    env.stabilize()
    assert leader.role is Role.LEADER


def test_a_leader_heard_again_serves_again() -> None:
    env = Env(3, config=CONFIG)
    elect(env, 1)
    leader = env.replica(1)
    start = leader.now
    env.partition([[1], [2, 3]])
    env.tick(1, start + 0.1)
    env.stabilize()
    env.tick(1, start + 0.35)
    assert not leader.serving
    env.heal()
    env.tick(1, start + 0.45)  # a heartbeat goes out; the answers come back
    env.stabilize()
    assert leader.role is Role.LEADER and leader.serving
    env.propose(1, command(1))


def test_a_follower_says_whether_it_hears_its_leader() -> None:
    env = Env(3, config=CONFIG)
    elect(env, 1)
    follower = env.replica(2)
    start = follower.now  # each replica's own clock
    assert follower.leader_hint == 1 and follower.leader_live
    assert not follower.serving  # only a leader serves
    env.tick(2, start + 0.2)
    assert follower.leader_live
    env.tick(2, start + 0.31)  # nothing from the leader for longer than the bound
    assert not follower.leader_live
    env.tick(1, env.replica(1).now + 0.1)  # the leader's heartbeat reaches it: live again
    env.deliver(1, 2, "Heartbeat")
    assert follower.leader_live and follower.leader_hint == 1
