"""Two message sequences a review found that broke the replica's invariants.

Neither lost safety, but each left a leader in a state its own invariants
forbid. The harness runs ``check_invariants`` after every call, so each
sequence below fails loudly if the fix is undone.
"""

from __future__ import annotations

import pytest
from tests.protocol.harness import Env
from tests.protocol.test_replica import command, elect

from paxon.errors import NoQuorum
from paxon.protocol import ReplicaConfig, Role


def test_a_stale_leader_learning_a_newer_leaders_slot_steps_down() -> None:
    """n3 leads a stale ballot (2.3) while n1 leads 3.1; a late Learn from n1 reaches n3.

    The learned slot matches what n3 holds, so n3 keeps its entry, but the
    entry's ballot 3.1 is above n3's promise: n3 must raise its promise (and
    step down) instead of staying leader with slot_chosen past slot_next.
    """
    config = ReplicaConfig(election_timeout_min_s=0.3, election_timeout_max_s=5.0)
    env = Env(5, config=config, seed=3)
    replica = env.replica

    def quiet(node_id: int) -> None:
        node = replica(node_id)
        env.tick(node_id, max(node.now, node._leader_seen_at + 0.31))

    elect(env, 1)
    # Slot 0 is chosen at 1.1 by {1, 2, 4}.
    env.propose(1, command(1))
    env.persist(1)
    env.deliver(1, 2, "Accept")
    env.deliver(1, 4, "Accept")
    env.drop(1, None, "Accept")
    env.persist(2)
    env.persist(4)
    env.deliver(None, 1, "Accepted")
    assert replica(1).slot_chosen == 1
    # Slot 1 reaches node 3 only; node 3 asks node 1 to learn slot 0, late.
    env.propose(1, command(2))
    env.persist(1)
    env.deliver(1, 3, "Accept")
    env.drop(1, None, "Accept")
    env.persist(3)
    late_learn_request = env.deliverable(3, 1, "LearnRequest")
    assert late_learn_request
    env.drop(3, 1, "Accepted")
    env.deliver(1, 1, "Accepted")
    # Node 1 goes quiet; node 3 wins 2.3 with {2, 4, 5}.
    for node_id in (2, 4, 5):
        quiet(node_id)
    env.campaign(3)
    env.deliver(3, None, "Probe")
    env.deliver(None, 3, "ProbeReply")
    env.persist(3)
    for node_id in (2, 4, 5):
        env.deliver(3, node_id, "Prepare")
    env.drop(3, 1, "Prepare")
    for node_id in (2, 4, 5):
        env.persist(node_id)
        env.deliver(node_id, 3, "Promise")
    assert replica(3).role is Role.LEADER
    env.drop(3, None, None)
    env.drop(None, 3, None)
    # Node 1 steps down by check-quorum and wins 3.1 with {1, 2, 4}, choosing slot 1.
    env.tick(1, replica(1).now + 5.1)
    env.drop(1, None, None)
    env.campaign(1)
    env.deliver(1, 2, "Probe")
    env.deliver(1, 4, "Probe")
    env.drop(1, None, "Probe")
    env.deliver(None, 1, "ProbeReply")
    env.persist(1)
    env.deliver(1, 2, "Prepare")
    env.deliver(1, 4, "Prepare")
    env.drop(1, None, "Prepare")
    env.persist(2)
    env.persist(4)
    env.deliver(1, 1, "Promise")
    env.deliver(None, 1, "Promise")
    env.persist(1)
    env.deliver(1, 2, "Accept")
    env.deliver(1, 4, "Accept")
    env.drop(1, None, "Accept")
    env.persist(2)
    env.persist(4)
    env.deliver(None, 1, "Accepted")
    assert replica(1).role is Role.LEADER and replica(1).slot_chosen == 2
    env.drop(None, None, "Heartbeat")
    # The old LearnRequest arrives at node 1; its answer reaches node 3.
    env.nodes[3].outbox.extend(late_learn_request)
    env.deliver(3, 1, "LearnRequest")
    env.deliver(1, 3, "Learn")
    stale = replica(3)
    assert stale.slot_chosen == 2
    assert stale.role is Role.FOLLOWER
    assert stale.ballot_promised == replica(1).ballot_own


def test_installing_a_snapshot_makes_a_leader_step_down() -> None:
    """A new leader re-proposing slots that a snapshot then covers must not keep them."""
    env = Env(3)
    elect(env, 1)
    env.partition([[1, 2], [3]])
    env.propose(1, command(1))
    env.propose(1, command(2))
    env.stabilize()
    env.heal()
    env.replica(1).compact(2)
    env.tick(1, env.node(1).now + 0.1)
    env.deliver(1, 3, "Heartbeat")
    env.deliver(3, 1, "LearnRequest")
    assert env.node(1).snapshot_requests
    env.tick(2, env.node(2).now + 0.35)
    env.campaign(3)
    env.deliver(3, 2, "Probe")
    env.deliver(2, 3, "ProbeReply")
    env.persist(3)
    env.deliver(3, 3, "Promise")
    env.deliver(3, 2, "Prepare")
    env.persist(2)
    env.deliver(2, 3, "Promise")
    leader = env.replica(3)
    assert leader.role is Role.LEADER
    leader.install_snapshot(2)
    leader.check_invariants()
    assert leader.role is Role.FOLLOWER
    assert leader.slot_chosen == leader.log_start == 2


def test_a_leader_hearing_from_one_peer_of_four_steps_down() -> None:
    """Check quorum counts the leader once (swarm seed 3, found by ``leader-lease``).

    A 5-node leader that proposes keeps voting for itself; its own Accepted
    must not count as a peer heard, or it and one peer make a "majority" of 3
    and it leads on while it cannot commit.
    """
    config = ReplicaConfig(election_timeout_min_s=0.3, election_timeout_max_s=0.6)
    env = Env(5, config=config, seed=3)
    elect(env, 1)
    leader = env.replica(1)
    start = leader.now
    for step in range(1, 16):
        now = start + 0.1 * step
        env.tick(1, now)
        if leader.role is not Role.LEADER:
            break
        if leader.serving:
            env.propose(1, command(step))
        else:  # no majority heard within election_timeout_min_s: refused at once
            with pytest.raises(NoQuorum):
                env.propose(1, command(step))
        env.persist(1)
        env.deliver(1, 1, "Accepted")  # its own vote
        env.deliver(1, 2, None)  # only node 2 hears it and answers
        env.persist(2)
        env.deliver(2, 1, None)
        env.drop(1, None, None)
    assert leader.role is Role.FOLLOWER
    assert leader.now - start <= config.election_timeout_max_s + 0.2
