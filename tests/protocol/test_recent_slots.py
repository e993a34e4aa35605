"""``Replica.recent_slots``: the dashboard's read-only view of the last slots held."""

from __future__ import annotations

from tests.protocol.harness import Env

from paxon.protocol import RECENT_SLOTS_MAX, Accept, Command, Role, SlotView


def command(seq: int) -> Command:
    return Command(7, seq, f"op{seq}".encode())


def elected(count: int = 3) -> Env:
    env = Env(count)
    env.campaign(1)
    env.stabilize()
    assert env.replica(1).role is Role.LEADER
    return env


def test_chosen_slots_carry_the_ballot_that_chose_them() -> None:
    env = elected()
    for seq in range(3):
        env.propose(1, command(seq))
    env.stabilize()
    leader = env.replica(1)
    ballot = leader.ballot_own
    expected = tuple(SlotView(slot, ballot, True, False, 1) for slot in range(3))
    assert leader.recent_slots(10) == expected
    env.tick(1, leader.now + leader.config.heartbeat_interval_s)
    env.stabilize()  # a heartbeat tells the followers the prefix is chosen
    assert env.replica(2).recent_slots(10) == expected
    assert leader.recent_slots(2) == expected[1:]  # the last ones, oldest first
    assert leader.recent_slots(0) == ()


def test_at_most_recent_slots_max_are_shown() -> None:
    env = elected()
    total = RECENT_SLOTS_MAX + 6
    for seq in range(total):
        env.propose(1, command(seq))
        env.stabilize()
    views = env.replica(1).recent_slots(10 * RECENT_SLOTS_MAX)
    assert len(views) == RECENT_SLOTS_MAX
    assert [view.slot for view in views] == list(range(total - RECENT_SLOTS_MAX, total))


def test_a_slot_accepted_but_not_chosen_is_in_flight() -> None:
    env = elected()
    env.propose(1, command(0))
    env.stabilize()
    env.partition([[1], [2, 3]])
    env.propose(1, command(1))  # only the leader's own vote: not chosen
    env.stabilize()
    leader = env.replica(1)
    views = leader.recent_slots(RECENT_SLOTS_MAX)
    assert [(view.slot, view.chosen) for view in views] == [(0, True), (1, False)]
    assert views[1].ballot == leader.ballot_own and views[1].commands == 1
    assert [view.slot for view in env.replica(2).recent_slots(RECENT_SLOTS_MAX)] == [0]


def test_a_new_leader_fills_a_hole_with_a_noop() -> None:
    env = elected()
    env.propose(1, command(0))
    env.propose(1, command(1))
    env.persist(1)
    # Only node 2 hears the second slot; the first reaches nobody, and node 1 goes.
    accepts = [m for m in env.deliverable(1, 2, "Accept") if isinstance(m, Accept)]
    second = next(m for m in accepts if m.slot == 1)
    env.drop(1)
    env.inject(second)
    env.partition([[1], [2, 3]])
    env.stabilize()
    follower = env.replica(2)
    voter = env.replica(3)  # it stops hearing node 1, short of its own election timeout
    env.tick(3, max(voter.now, voter._leader_seen_at + voter.config.election_timeout_min_s))
    env.campaign(2)
    env.stabilize()
    assert follower.role is Role.LEADER
    views = follower.recent_slots(8)
    assert [(v.slot, v.chosen, v.is_noop, v.commands) for v in views] == [
        (0, True, True, 0),  # the hole: a no-op under the new ballot
        (1, True, False, 1),  # the value node 2 had accepted, proposed again
    ]
    assert {v.ballot for v in views} == {follower.ballot_own}


def test_a_hole_below_an_accepted_slot_shows_as_a_hole() -> None:
    env = elected()
    env.propose(1, command(0))
    env.propose(1, command(1))
    env.persist(1)
    accepts = [m for m in env.deliverable(1, 2, "Accept") if isinstance(m, Accept)]
    env.drop(1)
    env.inject(next(m for m in accepts if m.slot == 1))
    views = env.replica(2).recent_slots(8)
    shown = [(v.slot, v.ballot is None, v.chosen) for v in views]
    assert shown == [(0, True, False), (1, False, False)]


def test_reading_the_view_changes_nothing() -> None:
    env = elected()
    env.propose(1, command(0))
    env.stabilize()
    leader = env.replica(1)
    before = (leader.status(), env.log(1))
    leader.recent_slots(RECENT_SLOTS_MAX)
    assert (leader.status(), env.log(1)) == before
    assert not env.deliverable() and not env.node(1).unpersisted
