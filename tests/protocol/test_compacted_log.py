"""The compacted-log rule: a candidate never leads on a promise that cannot
report every slot from its ``slot_from``, yet is not stopped by one.

Swarm seed 5090 found the old rule's cost: a candidate that met one compacted
acceptor stepped down, caught up, and waited out a whole election timeout while
the next candidate behind did the same; no leader stood for 6 s after healing.
"""

from __future__ import annotations

from tests.protocol.harness import Env
from tests.protocol.test_bounds import campaigning

from paxon.protocol import (
    Accept,
    Ballot,
    Command,
    DurableState,
    Entry,
    Prepare,
    Promise,
    Replica,
    Role,
    Value,
)
from paxon.protocol.membership import Member

OLD = Ballot(1, 1)


def value(n: int) -> Value:
    return Value((Command(7, n, f"v{n}".encode()),))


def start(env: Env, node_id: int, durable: DurableState) -> None:
    node = env.node(node_id)
    node.replica = Replica(node_id, env.members, rng=node.rng, durable=durable)
    node.replica.tick(0.0)


def chosen_log(count: int) -> dict[int, Entry]:
    return {slot: Entry(slot, OLD, value(slot)) for slot in range(count)}


def test_a_candidate_leads_on_the_promises_that_report_every_slot() -> None:
    """Node 1 compacted slots 3 and 4 away; node 2 still holds them accepted.
    Node 3 leads on {3, 2} and re-proposes node 2's values there."""
    env = Env(3)
    start(env, 1, DurableState(OLD, {}, slot_chosen=5, log_start=5))
    start(env, 2, DurableState(OLD, chosen_log(5), slot_chosen=3))
    start(env, 3, DurableState(OLD, chosen_log(3), slot_chosen=3))
    campaigning(env, 3)
    env.deliver(3, 3, "Promise")
    env.deliver(3, 1, "Prepare")
    env.persist(1)
    env.deliver(1, 3, "Promise")
    assert env.replica(3).role is Role.PREPARING  # node 1's promise does not count
    assert env.deliverable(3, 1, "LearnRequest")
    env.deliver(3, 2, "Prepare")
    env.persist(2)
    env.deliver(2, 3, "Promise")
    assert env.replica(3).role is Role.LEADER
    env.persist(3)
    reproposed = {
        message.slot: message.value
        for message in env.deliverable(3, 2, "Accept")
        if isinstance(message, Accept)
    }
    assert reproposed == {3: value(3), 4: value(4)}


def test_a_compacted_promise_never_completes_a_quorum() -> None:
    """With both peers compacted past slot_from, node 3 must not lead."""
    env = Env(3)
    for node_id in (1, 2):
        start(env, node_id, DurableState(OLD, {}, slot_chosen=5, log_start=5))
    campaigning(env, 3)
    env.deliver(3, 3, "Promise")
    for node_id in (1, 2):
        env.deliver(3, node_id, "Prepare")
        env.persist(node_id)
        env.deliver(node_id, 3, "Promise")
    assert env.replica(3).role is Role.PREPARING
    assert env.replica(3).slot_next == 0


def test_a_candidate_caught_up_by_snapshot_prepares_again_at_once() -> None:
    env = Env(3)
    for node_id in (1, 2):
        start(env, node_id, DurableState(OLD, {}, slot_chosen=5, log_start=5))
    campaigning(env, 3)
    env.deliver(3, 3, "Promise")
    env.deliver(3, 1, "Prepare")
    env.persist(1)
    env.deliver(1, 3, "Promise")
    env.deliver(3, 1, "LearnRequest")
    assert env.node(1).snapshot_requests  # below its log: the runtime sends a snapshot
    candidate = env.replica(3)
    ballot_before = candidate.ballot_own
    env.install_snapshot(3, 5)
    assert candidate.role is Role.PREPARING
    assert candidate.ballot_own > ballot_before
    env.persist(3)
    prepares = [m for m in env.deliverable(3, 2, "Prepare") if isinstance(m, Prepare)]
    assert prepares[-1].slot_from == 5 and prepares[-1].ballot == candidate.ballot_own
    env.deliver(3, 2, "Prepare")
    env.persist(2)
    promise = env.deliverable(2, 3, "Promise")[-1]
    assert isinstance(promise, Promise) and promise.log_start <= 5
    env.deliver(3, 3, "Promise")
    env.deliver(2, 3, "Promise")
    assert candidate.role is Role.LEADER


def test_a_snapshot_nobody_asked_for_still_stops_a_candidate() -> None:
    """Installing a snapshot mid-election without having met a compacted log
    means this replica was far behind: it steps down as before."""
    env = Env(3)
    campaigning(env, 3)
    env.install_snapshot(3, 5)
    assert env.replica(3).role is Role.FOLLOWER


def test_a_candidate_whose_snapshot_changes_the_voters_probes_again() -> None:
    """Runtime reconfig seed 172: the snapshot it caught up by names other
    voters than those that granted its probe; it must ask them anew."""
    env = Env(3, nodes=4)
    for node_id in (1, 2):
        start(env, node_id, DurableState(OLD, {}, slot_chosen=5, log_start=5))
    env.campaign(3)
    env.deliver(3, 1, "Probe")
    env.deliver(1, 3, "ProbeReply")  # granted by 1: a majority of {1, 2, 3}
    env.persist(3)
    env.deliver(3, 3, "Promise")
    env.deliver(3, 1, "Prepare")
    env.persist(1)
    env.deliver(1, 3, "Promise")  # compacted: node 3 must catch up first
    candidate = env.replica(3)
    assert candidate.role is Role.PREPARING
    first = env.initial
    later = first.successor([Member(2), Member(3), Member(4)])
    env.node(3).slot_apply_next = 5
    env._perform(3, lambda: candidate.install_snapshot(5, ((0, first), (5, later))))
    assert candidate.configuration.voters == {2, 3, 4}
    assert candidate.role is Role.PROBING  # 1 granted, but 1 no longer votes
    assert {m.dst for m in env.deliverable(3, None, "Probe")} >= {2, 4}


def test_installing_a_snapshot_keeps_the_votes_above_its_slot() -> None:
    """Mutation s13 #23: a follower that accepted slots 0-7 (2 known chosen)
    installs a snapshot covering slots below 5. It forgets what the snapshot
    covers and nothing else: a vote it acknowledged above the snapshot is
    still on its disk, and a new leader's Phase 1 must hear of it, or may
    choose another value in a slot that vote helped choose."""
    env = Env(3)
    accepted = {slot: Entry(slot, OLD, value(slot)) for slot in range(8)}
    start(env, 3, DurableState(OLD, accepted, slot_chosen=2))
    follower = env.replica(3)
    env.install_snapshot(3, 5)
    assert follower.log_start == 5
    assert [follower.entry(slot) for slot in range(5, 8)] == [accepted[s] for s in range(5, 8)]
    assert [follower.entry(slot) for slot in range(5)] == [None] * 5
    env.persist(3)
    env.inject(Prepare(1, 3, Ballot(2, 1), 5))
    env.persist(3)
    promise = env.deliverable(3, 1, "Promise")[-1]
    assert isinstance(promise, Promise)
    assert [entry for entry in promise.entries if entry.slot > 5] == [accepted[6], accepted[7]]
