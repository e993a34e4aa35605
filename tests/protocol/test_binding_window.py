"""The window after a binding is chosen (docs/binding-window.md): two scripts
in which a voter wiped after its binding was chosen helps choose a second value
for a slot, though every step keeps the two rules docs/membership.md proposed
("The window before binding"):

(1) a configuration change that binds X counts as chosen only with accepts
    from a majority of the voters other than X;
(2) a candidate does not count a promise from X's new incarnation if any
    promise it counts, or its own log, holds an accepted configuration binding
    X to another one; and a node refuses the links its accepted
    configurations name.

Each script asserts, step by step, that the rules did not apply (who accepted
the binding, which promises were counted, whose log holds it), then that the
harness's agreement check fires. They pin counterexamples, not behaviour to
keep: a fix that closes the window must turn each ``pytest.raises`` into a
refusal, and say which step it refused.

The core knows no incarnations; a wipe here is what it is to the core: the
node's disk is gone and its replica starts again, empty, from the first
configuration (the runtime restarts a wiped node with the same ``--peers``).
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from tests.protocol.harness import Env, Node
from tests.protocol.test_membership import ALPHA, change, change_slot, fill
from tests.protocol.test_replica import command, elect

from paxon.protocol import Replica, Role
from paxon.protocol.membership import Configuration, change_in

INCARNATION_OLD = 0x1111
"""The data directory the binding names (X's disk before the wipe)."""


def wipe(env: Env, node_id: int) -> None:
    """``node_id``'s disk is lost; its process starts again on an empty one,
    from the first configuration, as a wiped node restarted with its flags."""
    old = env.node(node_id)
    rng = random.Random(f"wiped {node_id}")
    replica = Replica(node_id, env.initial, rng=rng, now=old.now, config=env.config)
    env.nodes[node_id] = Node(replica, rng, now=old.now)


def bind(env: Env, leader: int, node_id: int) -> Configuration:
    """Have ``leader`` propose the next configuration binding ``node_id`` (same
    members, same roles) and hand it its Accepts; the caller delivers them."""
    replica = env.replica(leader)
    newest = replica.configuration_newest
    bound = newest.successor(
        dataclasses.replace(m, incarnation=INCARNATION_OLD) if m.node_id == node_id else m
        for m in newest.members
    )
    env._perform(leader, lambda: replica.propose_configuration(bound))
    return bound


def forget_leader(env: Env, node_id: int) -> None:
    """Let ``node_id``'s clock run until its leader is no longer live to it,
    and no further: before its own election timeout (reset no earlier)."""
    replica = env.replica(node_id)
    unseen_at = replica._leader_seen_at + replica.config.election_timeout_min_s
    env.tick(node_id, max(replica.now, unseen_at))
    assert replica.role is Role.FOLLOWER


def holds_binding(env: Env, node_id: int, bound: int) -> bool:
    """Whether ``node_id``'s log holds, chosen or not, a configuration binding ``bound``."""
    replica = env.replica(node_id)
    for slot in range(replica.log_start, replica.slot_next + 2 * replica.config.slots_ahead_max):
        entry = replica.entry(slot)
        change = None if entry is None else change_in(entry.value)
        member = None if change is None else change.member(bound)
        if member is not None and member.incarnation is not None:
            return True
    return False


def test_a_stale_leader_counts_the_accept_of_a_voter_wiped_after_its_binding() -> None:
    """Five voters; 5 is X. Leader 1 sends v for slot 1; only 2 accepts. Cut
    off from 1, voter 3 is elected by {3, 4, 5}, none of which saw v, and
    chooses the binding of 5 at slot 1 with accepts from 2, 3 and 4 (rule 1:
    three of the four voters other than 5). 5 is wiped. Leader 1, within its
    lease (check quorum: it heard a majority 0.5 s ago), sends v again; the
    empty 5 accepts it, and 1 counts {1, 2, 5}: a second value for slot 1.

    Rule (2) never applies: no promise of 5's new self is counted by anyone,
    and 1 never accepted the binding, so neither side refuses the link. The
    quorum {1, 2, 5} does contain a voter that accepted the binding (2, as
    rule 1 promises), but 2 accepted v before it accepted the binding."""
    env = Env(5, alpha=ALPHA)
    elect(env, 1)
    fill(env, 1, 1)  # slot 0 chosen everywhere
    leader = env.replica(1)
    slot = leader.slot_chosen
    heard_at = leader.now  # 1 last heard from every voter here

    env.propose(1, command(7))  # v
    env.persist(1)
    env.deliver(1, 1, "Accepted")  # its own vote
    env.deliver(1, 2, "Accept")
    env.persist(2)
    env.deliver(2, 1, "Accepted")
    env.drop(1)  # v reaches neither 3, 4 nor 5
    assert leader.role is Role.LEADER and leader.slot_chosen == slot  # {1, 2}: no majority

    env.partition([[1], [2, 3, 4, 5]])
    for voter in (2, 4, 5):
        forget_leader(env, voter)
    env.campaign(3)
    for _ in range(4):  # probes, grants, then Phase 1 without 2
        for node_id in (2, 3, 4, 5):
            env.persist(node_id)
        env.drop(3, 2, "Prepare")
        env.deliver()
    new_leader = env.replica(3)
    assert new_leader.role is Role.LEADER
    assert set(new_leader._promises) == {3, 4, 5}  # none of them saw v

    bound = bind(env, 3, 5)
    env.stabilize()  # 2, 3, 4 and 5 accept the binding at slot 1
    assert change_slot(new_leader, bound.epoch) == slot
    assert all(holds_binding(env, voter, 5) for voter in (2, 3, 4))  # rule (1) holds
    assert not holds_binding(env, 1, 5)  # 1 would not refuse 5's new link (rule 2)

    wipe(env, 5)
    env.partition([[1], [2, 3, 4]])  # 1 reaches the empty 5 only
    env.tick(1, heard_at + 0.5)  # within its lease: it resends v where unanswered
    assert leader.role is Role.LEADER
    env.persist(1)
    env.deliver(1, 5, "Accept")
    env.persist(5)
    with pytest.raises(AssertionError, match="another applied") as raised:
        env.deliver(5, 1, "Accepted")  # 1 counts {1, 2, 5} and applies v at slot 1
    assert str(raised.value).startswith(f"node 1 applied [c1#7] at slot {slot}; another applied")


def test_a_member_behind_a_change_of_voters_forms_an_old_quorum_with_the_wiped_voter() -> None:
    """Voters {1, 2, 3}, 3 is X; 2 lags, cut off from slot 1 on. v is chosen
    at slot 1 by {1, 3}. Node 4 joins as a learner and is promoted: the
    voters are {1, 2, 3, 4}. Then 3 is bound with accepts from 1, 3 and 4
    (rule 1: two of the three voters other than 3). 3 was not bound before:
    the leader binds only a member whose link is up, and a change on its way
    holds bindings back. 3 is wiped. 2 and the empty 3 are a majority of
    {1, 2, 3}, the only configuration 2 knows: 2 is elected and chooses w at
    slot 1.

    Rule (2) never applies: 2 counts only its own promise and the empty 3's,
    and neither holds the binding; 2 never accepted it, so it keeps the link.
    Rule 1's intersection holds only for quorums of the voters that decide the
    binding's slot, {1, 2, 3, 4}; 2 used a quorum of the voters before them."""
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    fill(env, 1, 1)  # slot 0 chosen at 1, 2 and 3
    leader = env.replica(1)
    slot = leader.slot_chosen
    env.partition([[2], [1, 3, 4]])
    fill(env, 1, 1, seq_start=7)  # v at slot 1, chosen by {1, 3}
    lagging = env.replica(2)
    assert lagging.slot_chosen == slot and lagging.entry(slot) is None

    change(env, 1, [1, 2, 3], [4])  # 4 joins as a learner,
    fill(env, 1, ALPHA, seq_start=100)
    change(env, 1, [1, 2, 3, 4])  # then is promoted (its binding changes nothing here)
    fill(env, 1, ALPHA, seq_start=200)
    assert leader.configuration.voters == {1, 2, 3, 4}
    bound = bind(env, 1, 3)
    env.stabilize()
    assert leader.configuration_newest == bound  # chosen
    assert all(holds_binding(env, voter, 3) for voter in (1, 4))  # rule (1): 2 of {1, 2, 4}
    assert lagging.slot_chosen == slot and lagging.configuration_newest.epoch == 0

    wipe(env, 3)
    env.partition([[2, 3], [1, 4]])
    forget_leader(env, 3)
    env.campaign(2)
    env.stabilize()
    assert lagging.role is Role.LEADER
    assert set(lagging._promises) == {2, 3}  # a majority of {1, 2, 3}, the voters 2 knows
    assert not holds_binding(env, 2, 3) and not holds_binding(env, 3, 3)  # rule (2): nothing
    env.propose(2, command(9))  # w: 2's first free slot is slot 1
    with pytest.raises(AssertionError, match="another applied") as raised:
        env.stabilize()
    assert str(raised.value).startswith(f"node 2 applied [c1#9] at slot {slot}; another applied")
