"""The core bounds what it believes: each trust bound, driven as if by a buggy member.

Every test sends the replica something out of bounds and checks four things:
``step`` does not raise, the right counter moves, nothing durable or visible
changes (no record, no reply, same status), and the log stays within the window.
The harness runs ``check_invariants`` (which bounds the slots held) after every
call.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from tests.protocol.harness import Env
from tests.protocol.test_replica import command, elect

from paxon.protocol import (
    BALLOT_ZERO,
    ROUND_END,
    ROUND_JUMP_MAX,
    Accept,
    Accepted,
    Ballot,
    BallotRun,
    ChosenPrefix,
    Command,
    DurableState,
    Entry,
    Heartbeat,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Message,
    Nack,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
    Replica,
    ReplicaConfig,
    ReplicaCounters,
    ReplicaStatus,
    Role,
    Value,
)

CONFIG = ReplicaConfig()
WINDOW = CONFIG.slots_ahead_max
FORGED = Value((Command(666, 1, b"forged"),))
NOOP_VALUE = Value()


def status_without_counters(replica: Replica) -> ReplicaStatus:
    return replace(replica.status(), counters=ReplicaCounters())


def assert_ignored(env: Env, node_id: int, message: Message, counter: str) -> None:
    """Deliver ``message`` to ``node_id``: nothing may happen but one count."""
    replica = env.replica(node_id)
    before = status_without_counters(replica)
    counted = getattr(replica.counters, counter)
    log_before = env.log(node_id)
    lines = env.inject(message, to=node_id)
    assert lines == [lines[0]], f"the replica reacted: {lines[1:]}"
    assert status_without_counters(replica) == before
    assert env.log(node_id) == log_before
    assert getattr(replica.counters, counter) == counted + 1, replica.counters


def chosen_cluster(slots: int = 3) -> Env:
    """Three nodes, node 1 leading, ``slots`` slots chosen and known everywhere."""
    env = Env(3)
    elect(env, 1)
    for seq in range(1, slots + 1):
        env.propose(1, command(seq))
    env.stabilize()
    env.tick(1, env.node(1).now + CONFIG.heartbeat_interval_s)
    env.stabilize()
    assert all(env.replica(n).slot_chosen == slots for n in env.members)
    return env


# ------------------------------------------------------------------ who speaks


def test_a_learn_from_an_outsider_is_ignored() -> None:
    env = chosen_cluster()
    forged = Learn(9, 2, (Entry(3, Ballot(1, 1), FORGED),))
    assert_ignored(env, 2, forged, "ignored_non_member")


def test_a_prepare_from_an_outsider_is_ignored() -> None:
    env = chosen_cluster()
    assert_ignored(env, 2, Prepare(9, 2, Ballot(50, 9), 0), "ignored_non_member")
    assert_ignored(env, 2, Promise(9, 2, Ballot(50, 9), 0, (), 0, 0), "ignored_non_member")


def test_a_message_for_another_node_is_ignored() -> None:
    env = chosen_cluster()
    assert_ignored(env, 2, Prepare(3, 1, Ballot(50, 3), 0), "ignored_misaddressed")


def test_a_learn_nobody_asked_for_is_ignored_even_from_the_leader() -> None:
    env = chosen_cluster()
    forged = Learn(1, 2, (Entry(3, Ballot(1, 1), FORGED),))
    assert_ignored(env, 2, forged, "ignored_unsolicited")


def test_a_learn_that_was_asked_for_is_taken() -> None:
    env = chosen_cluster(slots=0)
    env.partition([[1, 2], [3]])
    env.propose(1, command(1))
    env.stabilize()
    env.heal()
    env.tick(1, env.node(1).now + CONFIG.heartbeat_interval_s)
    env.deliver(1, 3, "Heartbeat")
    assert env.deliverable(3, 1, "LearnRequest")
    env.stabilize()
    assert env.replica(3).slot_chosen == 1
    assert env.replica(3).counters == ReplicaCounters()


# ------------------------------------------------------------------- ballots


@pytest.mark.parametrize("round_", [ROUND_END - 1, ROUND_END, 2**64])
def test_a_prepare_with_a_round_beyond_the_wire_is_never_promised(round_: int) -> None:
    env = chosen_cluster()
    assert_ignored(env, 2, Prepare(3, 2, Ballot(round_, 3), 0), "ignored_bad_ballot")
    assert env.replica(2).ballot_promised == Ballot(1, 1)


def test_a_round_jump_is_refused_just_past_the_limit() -> None:
    env = chosen_cluster()
    known = env.replica(2).ballot_promised.round
    too_far = Prepare(3, 2, Ballot(known + ROUND_JUMP_MAX + 1, 3), 3)
    assert_ignored(env, 2, too_far, "ignored_bad_ballot")
    lines = env.inject(Prepare(3, 2, Ballot(known + ROUND_JUMP_MAX, 3), 3))
    assert any("write PromiseRecord" in line for line in lines)


def test_a_ballot_used_by_another_node_is_refused() -> None:
    env = chosen_cluster()
    # Node 3 sending Accepts under node 1's ballot could choose two values at a slot.
    stolen = Accept(3, 2, Ballot(1, 1), 3, FORGED, ChosenPrefix(3))
    assert_ignored(env, 2, stolen, "ignored_bad_ballot")
    not_ours = Promise(3, 2, Ballot(7, 1), 0, (), 3, 0)
    assert_ignored(env, 2, not_ours, "ignored_bad_ballot")


def test_a_nack_with_a_huge_round_cannot_push_the_next_ballot_past_the_wire() -> None:
    env = chosen_cluster()
    nack = Nack(3, 1, Ballot(1, 1), Ballot(ROUND_END - 1, 3))
    assert_ignored(env, 1, nack, "ignored_bad_ballot")
    assert env.replica(1).role is Role.LEADER


def test_learned_entries_and_runs_with_absurd_ballots_are_refused() -> None:
    env = chosen_cluster()
    run = ChosenPrefix(4, (BallotRun(3, 4, Ballot(ROUND_END, 1)),))
    assert_ignored(env, 2, Heartbeat(1, 2, Ballot(1, 1), run, 0), "ignored_bad_ballot")
    entry = Entry(3, Ballot(ROUND_END - 1, 1), FORGED)
    assert_ignored(env, 2, Learn(1, 2, (entry,)), "ignored_bad_ballot")


def test_a_replica_at_the_end_of_the_rounds_does_not_stand() -> None:
    durable = DurableState(ballot_promised=Ballot(ROUND_END - 1, 2))
    replica = Replica(1, (1, 2, 3), rng=random.Random(1), durable=durable)
    for step in range(1, 200):
        ready = replica.tick(step * 0.01)
        assert not ready.messages, "a replica stood with a round the wire cannot carry"
        replica.check_invariants()
    assert replica.role is Role.FOLLOWER
    assert replica.counters.elections_blocked_round_end >= 1


# --------------------------------------------------------------------- slots


def test_an_accept_beyond_the_window_is_refused_and_the_edge_is_taken() -> None:
    env = chosen_cluster()
    slot_chosen = env.replica(2).slot_chosen
    beyond = Accept(1, 2, Ballot(1, 1), slot_chosen + WINDOW, FORGED, ChosenPrefix(3))
    assert_ignored(env, 2, beyond, "ignored_out_of_bounds")
    assert_ignored(env, 2, replace(beyond, slot=2**62), "ignored_out_of_bounds")
    lines = env.inject(replace(beyond, slot=slot_chosen + WINDOW - 1))
    assert any("write AcceptRecord" in line for line in lines)


def test_learn_entries_beyond_the_window_are_dropped_and_the_rest_kept() -> None:
    env = chosen_cluster(slots=0)
    env.partition([[1, 2], [3]])
    env.propose(1, command(1))
    env.stabilize()
    env.heal()
    env.tick(1, env.node(1).now + CONFIG.heartbeat_interval_s)
    env.deliver(1, 3, "Heartbeat")
    env.drop(3, 1, "LearnRequest")  # node 3 asked; a buggy node 1 answers
    kept = Entry(0, Ballot(1, 1), Value((command(1),)))
    env.inject(Learn(1, 3, (kept, Entry(2**62, Ballot(1, 1), FORGED))))
    replica = env.replica(3)
    assert replica.slot_chosen == 1
    assert replica.entry(2**62) is None
    assert replica.counters.ignored_out_of_bounds == 1


def test_a_learn_request_from_absurd_slots_is_refused() -> None:
    env = chosen_cluster()
    assert_ignored(env, 1, LearnRequest(2, 1, 2**62), "ignored_out_of_bounds")


def test_a_learn_request_from_zero_is_answered_one_bounded_page() -> None:
    env = Env(3, config=ReplicaConfig(learn_max_entries=4))
    elect(env, 1)
    for seq in range(1, 11):
        env.propose(1, command(seq))
        env.stabilize()
    lines = env.inject(LearnRequest(2, 1, 0))
    learns = [message for message in env.deliverable(1, 2) if isinstance(message, Learn)]
    assert len(learns) == 1 and len(learns[0].entries) == 4, lines


def test_a_read_round_never_sent_cannot_confirm_a_read() -> None:
    env = chosen_cluster()
    env.read_index(1, 7)
    env.drop(1, None, "Heartbeat")
    lie = HeartbeatReply(2, 1, Ballot(1, 1), 3, 1_000)
    assert_ignored(env, 1, lie, "ignored_out_of_bounds")
    assert env.node(1).reads == []


# ---------------------------------------------------------- a new leader's fill


def campaigning(env: Env, node_id: int) -> None:
    """Run ``node_id``'s election up to the Prepares it sent (delivered, not answered)."""
    env.campaign(node_id)
    env.deliver(node_id, None, "Probe")
    env.deliver(None, node_id, "ProbeReply")
    env.persist(node_id)
    assert env.replica(node_id).role is Role.PREPARING


def test_a_promise_naming_slots_past_the_fill_window_does_not_count() -> None:
    env = Env(3)
    campaigning(env, 1)
    ballot = env.replica(1).ballot_own
    far = Entry(2 * WINDOW, Ballot(1, 1), FORGED)
    lines = env.inject(Promise(2, 1, ballot, 0, (far,), 0, 0))
    assert env.replica(1).counters.ignored_out_of_bounds == 1
    assert not any("LEADER" in line for line in lines)
    env.deliver(1, 1, "Promise")  # its own promise: still one short of a quorum
    assert env.replica(1).role is Role.PREPARING
    env.stabilize()
    leader = env.replica(1)
    assert leader.role is Role.LEADER
    assert leader.slot_next == 0 and leader.entry(2 * WINDOW) is None


def test_a_promise_for_another_slot_from_does_not_count() -> None:
    env = Env(3)
    campaigning(env, 1)
    ballot = env.replica(1).ballot_own
    env.inject(Promise(2, 1, ballot, 5, (Entry(5, Ballot(1, 1), FORGED),), 5, 0))
    env.deliver(1, 1, "Promise")
    assert env.replica(1).role is Role.PREPARING
    assert env.replica(1).counters.ignored_out_of_bounds == 1


def test_a_candidate_far_behind_learns_instead_of_filling() -> None:
    """Node 3 is more than a window behind the acceptors: it must not lead."""
    chosen = WINDOW + 10
    ballot = Ballot(1, 1)
    entries = {slot: Entry(slot, ballot, NOOP_VALUE) for slot in range(chosen)}
    ahead = DurableState(ballot, entries, chosen, 0)
    env = Env(3)
    for node_id in (1, 2):
        node = env.node(node_id)
        node.replica = Replica(node_id, env.members, rng=node.rng, durable=ahead)
        node.replica.tick(0.0)
    campaigning(env, 3)
    env.deliver(3, 1, "Prepare")
    env.persist(1)
    promise = env.deliverable(1, 3, "Promise")[0]
    assert isinstance(promise, Promise)
    assert promise.log_start == chosen and promise.entries == ()
    env.deliver(3, 3, "Promise")
    env.deliver(1, 3, "Promise")
    # The promise does not count; node 3 keeps preparing and asks to learn.
    assert env.replica(3).role is Role.PREPARING
    assert env.deliverable(3, 1, "LearnRequest")
    assert env.replica(3).slot_next == 0
    # Caught up page by page, it prepares again from where it now stands.
    for _ in range(chosen):
        if env.replica(3).slot_chosen == chosen:
            break
        env.deliver(3, 1, "LearnRequest")
        env.persist(1)
        env.deliver(1, 3, "Learn")
    assert env.replica(3).slot_chosen == chosen
    assert env.replica(3).role is Role.PREPARING
    env.persist(3)  # its promise of the new ballot, then the Prepares leave
    prepares = [m for m in env.deliverable(3, None, "Prepare") if isinstance(m, Prepare)]
    assert prepares and prepares[-1].slot_from == chosen


def test_a_promise_from_a_candidate_within_the_window_carries_the_gap() -> None:
    chosen = WINDOW
    ballot = Ballot(1, 1)
    entries = {slot: Entry(slot, ballot, NOOP_VALUE) for slot in range(chosen)}
    durable = DurableState(ballot, entries, chosen, 0)
    replica = Replica(1, (1, 2, 3), rng=random.Random(1), durable=durable)
    ready = replica.step(Prepare(2, 1, Ballot(2, 2), 0))
    (promise,) = ready.messages_after_persist
    assert isinstance(promise, Promise)
    assert promise.log_start == 0 and len(promise.entries) == chosen


# ------------------------------------------------------------ never a raise


def random_message(rng: random.Random, members: tuple[int, ...]) -> Message:
    """Anything a buggy member or an outsider might send, mostly out of bounds."""
    src = rng.choice([*members, 0, 9, 2**40])
    dst = rng.choice([*members, 7])
    big = [0, 1, 5, WINDOW - 1, WINDOW, 2 * WINDOW, 2**62, 2**63 - 1]
    slot = rng.choice(big)
    ballot = Ballot(rng.choice([1, 2, *big[2:], 2**70]), rng.choice([*members, 9]))
    entry = Entry(slot, ballot, FORGED)
    entries = (entry,) if rng.random() < 0.7 else ()
    prefix = ChosenPrefix(slot + 1, (BallotRun(slot, slot + 1, ballot),))
    options: list[Message] = [
        Probe(src, dst, ballot),
        ProbeReply(src, dst, ballot, rng.random() < 0.5),
        Prepare(src, dst, ballot, slot),
        Promise(src, dst, ballot, slot, entries, slot, slot),
        Nack(src, dst, BALLOT_ZERO, ballot),
        Accept(src, dst, ballot, slot, FORGED, prefix),
        Accepted(src, dst, ballot, slot, slot),
        Heartbeat(src, dst, ballot, prefix, rng.choice(big)),
        HeartbeatReply(src, dst, ballot, slot, rng.choice(big)),
        LearnRequest(src, dst, slot),
        Learn(src, dst, entries),
    ]
    return rng.choice(options)


def test_no_message_makes_step_raise_or_the_log_grow_past_the_window() -> None:
    """Bare replicas (no cross-node agreement check: an in-bounds message from a
    member may legitimately move state); only the bounds are asserted."""
    rng = random.Random(8)
    members = (1, 2, 3)
    replicas = [Replica(n, members, rng=random.Random(n)) for n in members]
    for step in range(5_000):
        replica = rng.choice(replicas)
        replica.tick(step * 0.001)
        replica.step(random_message(rng, members))
        replica.check_invariants()  # includes: every slot held is within the window
    for replica in replicas:
        assert replica.ballot_promised.round < ROUND_JUMP_MAX
        counters = replica.counters
        assert counters.ignored_non_member and counters.ignored_misaddressed
        assert counters.ignored_bad_ballot and counters.ignored_out_of_bounds


def test_a_slots_ahead_bound_of_one_window_is_refused() -> None:
    """With W equal to the window, a follower refuses the Accept that tells it the
    previous slot was chosen; a one-slot window then chose each slot on its retry."""
    with pytest.raises(ValueError, match="slots_ahead_factor"):
        ReplicaConfig(slots_ahead_factor=1)
    assert ReplicaConfig(slots_ahead_factor=2, pipeline_window_slots=1).slots_ahead_max == 256
