"""Direct scenario tests for ``Replica``: given these inputs, expect these outputs.

The golden scripts in testdata/ tell the long stories; these cover edge cases
that read better as plain code: errors raised at the API, single messages and
the exact Ready they produce, and recovery from records.
"""

from __future__ import annotations

import random

import pytest
from tests.protocol.harness import Env

from paxon.errors import Busy, NotLeader
from paxon.protocol import (
    BALLOT_ZERO,
    NOOP,
    Accept,
    Accepted,
    AcceptRecord,
    Ballot,
    ChosenPrefix,
    Command,
    Entry,
    Heartbeat,
    LearnRequest,
    Nack,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
    PromiseRecord,
    Replica,
    ReplicaConfig,
    Role,
    SnapshotRecord,
    Value,
    recover,
)

MEMBERS = (1, 2, 3)


def fresh(node_id: int = 1, config: ReplicaConfig | None = None) -> Replica:
    return Replica(node_id, MEMBERS, rng=random.Random(node_id), now=0.0, config=config)


def command(seq: int, client: int = 1) -> Command:
    return Command(client, seq, f"op{seq}".encode())


def elect(env: Env, node_id: int = 1) -> None:
    """Make ``node_id`` the leader: only its clock moves, so nobody else stands."""
    env.campaign(node_id)
    env.stabilize()
    assert env.replica(node_id).role is Role.LEADER


# ------------------------------------------------------------------ API errors


def test_propose_on_a_follower_raises_not_leader_with_the_leader_hint() -> None:
    env = Env(3)
    elect(env, 1)
    with pytest.raises(NotLeader) as raised:
        env.replica(2).propose(command(1))
    assert raised.value.leader_hint == 1
    with pytest.raises(NotLeader) as raised:
        env.replica(3).read_index(7)
    assert raised.value.leader_hint == 1


def test_propose_before_any_election_raises_not_leader_without_a_hint() -> None:
    replica = fresh()
    with pytest.raises(NotLeader) as raised:
        replica.propose(command(1))
    assert raised.value.leader_hint is None


def test_a_message_for_another_node_is_ignored_and_counted() -> None:
    replica = fresh(1)
    ready = replica.step(Probe(3, 2, Ballot(1, 3)))
    assert ready.is_empty()
    assert replica.counters.ignored_misaddressed == 1
    replica.check_invariants()


def test_a_message_from_a_stranger_is_ignored_and_counted() -> None:
    replica = fresh(1)
    ready = replica.step(Probe(9, 1, Ballot(1, 9)))
    # Nothing goes to the stranger and nothing changes here. Following no live
    # leader, the replica may be the one behind (the stranger may be a member
    # added by changes it has not learned), so it asks a member it knows.
    assert not ready.records and not ready.messages_after_persist
    assert [(type(m), m.dst in {2, 3}) for m in ready.messages] == [(LearnRequest, True)]
    assert replica.ballot_promised == BALLOT_ZERO and replica.role is Role.FOLLOWER
    assert replica.counters.ignored_non_member == 1
    assert replica.status().counters.ignored_non_member == 1
    replica.check_invariants()


def test_a_stranger_probe_to_a_follower_of_a_live_leader_sends_nothing() -> None:
    env = Env(3)
    elect(env, 1)
    follower = env.replica(2)
    ready = follower.step(Probe(9, 2, Ballot(5, 9)))
    assert ready.is_empty() and follower.counters.ignored_non_member == 1


def test_the_queue_limit_raises_busy_and_queues_nothing_of_the_batch() -> None:
    config = ReplicaConfig(pipeline_window_slots=1, batch_max_commands=1, queue_max_commands=2)
    env = Env(3, config=config)
    elect(env, 1)
    leader = env.replica(1)
    leader.propose(command(1))  # takes the only slot of the window
    leader.propose(command(2))  # queued
    with pytest.raises(Busy):
        leader.propose_many([command(3), command(4)])  # would make 3 queued
    leader.propose(command(3))  # queued: the failed batch left no trace
    with pytest.raises(Busy):
        leader.propose(command(4))
    leader.check_invariants()


# ------------------------------------------------------------ single messages


def test_a_promise_waits_for_its_record() -> None:
    replica = fresh(2)
    ready = replica.step(Prepare(1, 2, Ballot(1, 1), 0))
    assert ready.records == [PromiseRecord(Ballot(1, 1))]
    assert ready.messages == []
    assert ready.messages_after_persist == [Promise(2, 1, Ballot(1, 1), 0, (), 0, 0)]
    assert replica.ballot_promised == Ballot(1, 1)


def test_a_lower_prepare_is_nacked_at_once_and_changes_nothing() -> None:
    replica = fresh(2)
    replica.step(Prepare(3, 2, Ballot(2, 3), 0))
    ready = replica.step(Prepare(1, 2, Ballot(1, 1), 0))
    assert ready.records == []
    assert ready.messages == [Nack(2, 1, Ballot(1, 1), Ballot(2, 3))]
    assert ready.messages_after_persist == []
    assert replica.ballot_promised == Ballot(2, 3)


def test_an_accept_is_voted_only_after_its_record() -> None:
    replica = fresh(2)
    value = Value((command(1),))
    ready = replica.step(Accept(1, 2, Ballot(1, 1), 0, value, ChosenPrefix(0)))
    assert ready.records == [AcceptRecord(Entry(0, Ballot(1, 1), value))]
    assert ready.messages == []
    assert ready.messages_after_persist == [Accepted(2, 1, Ballot(1, 1), 0, 0)]
    assert replica.entry(0) == Entry(0, Ballot(1, 1), value)


def test_a_stale_heartbeat_is_nacked() -> None:
    replica = fresh(2)
    replica.step(Prepare(3, 2, Ballot(2, 3), 0))
    ready = replica.step(Heartbeat(1, 2, Ballot(1, 1), ChosenPrefix(0), 0))
    assert ready.messages == [Nack(2, 1, Ballot(1, 1), Ballot(2, 3))]
    assert replica.leader_hint is None


def test_a_promise_reports_accepted_entries_from_slot_from_only() -> None:
    replica = fresh(2)
    for slot in range(3):
        value = Value((command(slot),))
        replica.step(Accept(1, 2, Ballot(1, 1), slot, value, ChosenPrefix(0)))
    ready = replica.step(Prepare(3, 2, Ballot(2, 3), 1))
    (promise,) = ready.messages_after_persist
    assert isinstance(promise, Promise)
    assert [entry.slot for entry in promise.entries] == [1, 2]
    assert all(entry.ballot == Ballot(1, 1) for entry in promise.entries)


def test_phase_one_takes_the_highest_ballot_per_slot_and_fills_holes() -> None:
    """Node 1 holds 0@2.2 and 1@1.3; node 2 promises 0@1.3, 1@2.2 and 3@1.3."""
    replica = fresh(1)
    low, high = Ballot(1, 3), Ballot(2, 2)
    mine = {0: Value((command(10),)), 1: Value((command(11),))}
    theirs = {0: Value((command(20),)), 1: Value((command(21),)), 3: Value((command(23),))}
    replica.step(Accept(3, 1, low, 1, mine[1], ChosenPrefix(0)))
    replica.step(Accept(2, 1, high, 0, mine[0], ChosenPrefix(0)))
    replica.tick(10.0)
    assert replica.role is Role.PROBING
    ready = replica.step(ProbeReply(2, 1, replica.ballot_own, True))
    assert replica.role is Role.PREPARING
    ballot = replica.ballot_own
    assert ballot > high
    (own,) = [m for m in ready.messages_after_persist if isinstance(m, Promise)]
    replica.step(own)
    entries = (Entry(0, low, theirs[0]), Entry(1, high, theirs[1]), Entry(3, low, theirs[3]))
    ready = replica.step(Promise(2, 1, ballot, 0, entries, 0, 0))
    assert replica.role is Role.LEADER
    proposed = {m.slot: m.value for m in ready.messages if isinstance(m, Accept) and m.dst == 2}
    assert proposed == {0: mine[0], 1: theirs[1], 2: NOOP, 3: theirs[3]}
    assert replica.slot_next == 4


def test_a_probe_is_refused_while_a_leader_is_live_and_granted_after() -> None:
    config = ReplicaConfig()
    replica = fresh(2, config)
    replica.step(Heartbeat(1, 2, Ballot(1, 1), ChosenPrefix(0), 0))
    ready = replica.step(Probe(3, 2, Ballot(2, 3)))
    assert ready.messages == [ProbeReply(2, 3, Ballot(2, 3), False)]
    # Not live any more at election_timeout_min_s, and not yet standing itself.
    replica.tick(config.election_timeout_min_s)
    assert replica.role is Role.FOLLOWER
    ready = replica.step(Probe(3, 2, Ballot(2, 3)))
    assert ready.messages == [ProbeReply(2, 3, Ballot(2, 3), True)]
    # A probe changes no durable state.
    assert ready.records == []
    assert replica.ballot_promised == BALLOT_ZERO


def test_a_duplicate_accepted_is_not_a_second_vote() -> None:
    env = Env(3)
    elect(env, 1)
    env.propose(1, command(1))
    env.deliver(1, 2, "Accept")
    env.persist(2)
    (vote,) = env.deliverable(2, 1, "Accepted")
    leader = env.replica(1)
    leader.step(vote)
    ready = leader.step(vote)  # the network duplicated it
    assert ready.apply == []
    assert leader.slot_chosen == 0
    leader.check_invariants()


# ------------------------------------------------------------------ recovery


def test_recover_rebuilds_the_promise_and_the_entries() -> None:
    env = Env(3)
    elect(env, 1)
    for seq in range(1, 4):
        env.propose(1, command(seq))
    env.stabilize()
    env.tick(1, env.node(1).now + 0.1)  # a heartbeat tells the followers what is chosen
    env.stabilize()
    for node_id in MEMBERS:
        node = env.node(node_id)
        assert not node.unpersisted
        before = node.replica
        rebuilt = Replica(node_id, MEMBERS, rng=random.Random(0), durable=recover(node.disk))
        rebuilt.check_invariants()
        assert rebuilt.ballot_promised == before.ballot_promised == Ballot(1, 1)
        assert rebuilt.slot_chosen == before.slot_chosen == 3
        assert rebuilt.role is Role.FOLLOWER
        for slot in range(4):
            assert rebuilt.entry(slot) == before.entry(slot)
        applied = rebuilt.tick(0.0).apply  # recovered chosen entries come back
        assert [entry.value for entry in applied] == [
            Value((command(1),)),
            Value((command(2),)),
            Value((command(3),)),
        ]


def test_recover_keeps_the_highest_ballot_of_promises_and_accepts() -> None:
    low, high = Ballot(1, 1), Ballot(3, 2)
    records = [
        PromiseRecord(low),
        AcceptRecord(Entry(0, high, NOOP)),
        PromiseRecord(Ballot(2, 3)),
    ]
    state = recover(records)
    assert state.ballot_promised == high
    assert state.entries == {0: Entry(0, high, NOOP)}
    replica = Replica(1, MEMBERS, rng=random.Random(0), durable=state)
    ready = replica.step(Prepare(3, 1, Ballot(2, 3), 0))
    assert ready.messages == [Nack(1, 3, Ballot(2, 3), high)]


def test_recover_drops_the_entries_a_later_snapshot_mark_covers() -> None:
    # A replica that installed a snapshot past what it had accepted writes the
    # mark after those entries; recovery from every record keeps only the rest.
    # (The runtime replays the log from its newest snapshot on, so the
    # simulator never folds a mark over older entries: records.py's marker.)
    ballot = Ballot(1, 1)
    records = [
        AcceptRecord(Entry(1, ballot, NOOP)),
        AcceptRecord(Entry(4, ballot, NOOP)),
        SnapshotRecord(3),
    ]
    state = recover(records)
    assert state.log_start == state.slot_chosen == 3
    assert state.entries == {4: Entry(4, ballot, NOOP)}


def test_a_restarted_candidate_never_reuses_its_ballot() -> None:
    env = Env(3)
    env.campaign(1)
    env.deliver(1, 2, "Probe")
    env.deliver(2, 1, "ProbeReply")
    used = env.replica(1).ballot_own
    env.persist(1)  # its own promise of ``used`` is durable; the Prepares leave
    env.crash(1)
    env.campaign(1)
    env.deliver(1, 2, "Probe")
    env.deliver(2, 1, "ProbeReply")
    assert env.replica(1).role is Role.PREPARING
    assert env.replica(1).ballot_own > used


def test_a_single_node_cluster_chooses_after_its_own_persist() -> None:
    env = Env(1)
    env.campaign(1)
    assert env.replica(1).role is Role.PREPARING
    env.stabilize()
    assert env.replica(1).role is Role.LEADER
    env.propose(1, command(1))
    assert env.replica(1).slot_chosen == 0  # its vote is held until persist
    env.stabilize()
    assert [entry.value for entry in env.node(1).applied] == [Value((command(1),))]


# ------------------------------------------------------------------ core bugs


def test_a_late_learn_at_a_new_leader_keeps_its_invariants() -> None:
    """A Learn a node asked for as a follower arrives after it became leader.

    Node 3 is behind and sends LearnRequest to leader 1; node 1 answers with
    Learn(slots 0-1) and then falls silent. Node 3 is elected (ballot 2.3) and
    re-proposes slots 0-1 from node 2's promise. Then the old Learn arrives. The
    learned entries are chosen values, so node 3 may mark them chosen, but then
    its proposals for those slots must go: a leader's proposals lie in
    ``[slot_chosen, slot_next)`` (``check_invariants``).
    """
    env = Env(3)
    elect(env, 1)
    env.partition([[1, 2], [3]])
    env.propose(1, command(1))
    env.propose(1, command(2))
    env.stabilize()
    env.heal()
    env.tick(1, env.node(1).now + 0.1)
    env.deliver(1, 3, "Heartbeat")  # node 3 sees slots 0-1 chosen; it holds neither
    env.deliver(3, 1, "LearnRequest")
    assert len(env.deliverable(1, 3, "Learn")) == 1  # left in flight
    # Node 1 goes silent. Node 2 stops hearing it; node 3 stands and wins.
    env.tick(2, env.node(2).now + 0.35)
    env.campaign(3)
    env.deliver(3, 2, "Probe")
    env.deliver(2, 3, "ProbeReply")
    env.persist(3)
    env.deliver(3, 3, "Promise")
    env.deliver(3, 2, "Prepare")
    env.persist(2)
    env.deliver(2, 3, "Promise")
    assert env.replica(3).role is Role.LEADER
    env.deliver(1, 3, "Learn")  # fails today: AssertionError "proposal at 0"
    env.stabilize()
    assert env.replica(3).role is Role.LEADER
    assert [entry.value for entry in env.node(3).applied] == [
        Value((command(1),)),
        Value((command(2),)),
    ]
