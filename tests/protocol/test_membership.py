"""Membership in the core: configurations in the log, effect after alpha slots,
quorums counted in the configuration that decides each slot, learners, removal,
and Phase 1 across a configuration boundary (docs/protocol.md, "Membership")."""

from __future__ import annotations

import contextlib

import pytest
from tests.protocol.harness import Env
from tests.protocol.test_replica import command, elect

import paxon.protocol.membership as membership_module
from paxon.errors import Busy, NotLeader
from paxon.protocol import (
    Accept,
    Ballot,
    DurableState,
    Message,
    Prepare,
    RemovedNotice,
    Replica,
    Role,
    TimeoutNow,
)
from paxon.protocol.membership import (
    CONFIG_MAGIC,
    SYSTEM_CLIENT_ID,
    ConfigHistory,
    Configuration,
    InvalidConfiguration,
    Member,
    RemovedMember,
    change_in,
)
from paxon.protocol.records import SnapshotRecord
from paxon.protocol.removal_notices import RemovalNotices
from paxon.protocol.types import Command, Value

ALPHA = 4


def members(voters: list[int], learners: list[int] = ()) -> list[Member]:  # type: ignore[assignment]
    return [Member(n, f"h{n}:1", True) for n in voters] + [
        Member(n, f"h{n}:1", False) for n in learners
    ]


def change(env: Env, leader: int, voters: list[int], learners: list[int] = ()) -> Configuration:  # type: ignore[assignment]
    """Propose the next configuration and run until it is chosen."""
    replica = env.replica(leader)
    new = replica.configuration_newest.successor(members(voters, learners))
    env._perform(leader, lambda: replica.propose_configuration(new))
    env.stabilize()
    assert replica.configuration_newest == new
    return new


def change_slot(replica: Replica, epoch: int) -> int:
    """The slot where the change to ``epoch`` was chosen."""
    for slot in range(replica.slot_chosen):
        entry = replica.entry(slot)
        found = None if entry is None else change_in(entry.value)
        if found is not None and found.epoch == epoch:
            return slot
    raise AssertionError(f"no change to epoch {epoch} in the log")


def fill(env: Env, leader: int, count: int, seq_start: int = 100) -> None:
    for seq in range(seq_start, seq_start + count):
        env.propose(leader, command(seq))
        env.stabilize()
    settle(env, leader)


def offer(env: Env, leader: int, entry: Command) -> None:
    """Propose, taking Busy (a removed leader's answer) as a fine answer."""
    with contextlib.suppress(Busy):
        env.propose(leader, entry)


def settle(env: Env, leader: int) -> None:
    """A heartbeat interval passes at the leader: retries and chosen prefixes go out."""
    env.tick(leader, env.replica(leader).now + 0.11)
    env.stabilize()


def elect_again(env: Env, candidate: int, voters: list[int]) -> None:
    """The old leader is gone: the voters stop hearing it, and ``candidate`` stands."""
    for voter in voters:
        if voter != candidate:
            env.tick(voter, env.replica(voter).now + 0.31)
    env.campaign(candidate)
    env.stabilize()


# ------------------------------------------------------------- the command


def test_a_configuration_survives_its_command() -> None:
    config = Configuration(3, tuple(members([1, 2], [7])), alpha=9)
    assert change_in(Value((command(1), config.command()))) == config
    assert config.voters == {1, 2} and config.learners == {7} and config.quorum == 2


@pytest.mark.parametrize(
    "payload",
    [b"", b"[", b"[1, 2]", b'[1, 4, [[0, "a", true]]]', b'[1, 4, [[1, "a", 1]]]', b"x" * 40_000],
)
def test_a_payload_that_is_not_a_configuration_is_no_change(payload: bytes) -> None:
    assert change_in(Value((Command(SYSTEM_CLIENT_ID, 1, CONFIG_MAGIC + payload),))) is None


def test_a_clients_command_carrying_a_configuration_is_no_change() -> None:
    """Only the system session changes members: a client whose payload is a
    well-formed configuration change (mutation sample s13, #7) changes nothing."""
    config = Configuration(3, tuple(members([9], [])), alpha=ALPHA)
    forged = Command(5, 1, config.command().payload)
    assert forged.payload.startswith(CONFIG_MAGIC)
    assert change_in(Value((forged,))) is None
    assert change_in(Value((command(1), forged))) is None
    history = ConfigHistory([(0, Configuration.initial([1, 2, 3], alpha=ALPHA))])
    assert history.chosen(7, Value((Command(5, 1, _successor_payload(history)),))) is None


def _successor_payload(history: ConfigHistory) -> bytes:
    newest = history.newest
    return newest.successor(members([1, 2], [3])).command().payload


def test_a_configuration_without_voters_is_refused() -> None:
    with pytest.raises(InvalidConfiguration):
        Configuration(1, (Member(1, "", False),))


def test_the_history_takes_a_change_only_as_the_next_epoch() -> None:
    first = Configuration.initial([1, 2, 3], alpha=ALPHA)
    history = ConfigHistory(((0, first),))
    second = first.successor(members([1, 2, 3], [4]))
    skipped = second.successor(members([1, 2]))
    assert history.chosen(10, Value((skipped.command(),))) is None
    assert history.chosen(10, Value((second.command(),))) == second
    assert history.chosen(11, Value((second.command(),))) is None  # twice: once only
    assert history.at(10 + ALPHA - 1) == first and history.at(10 + ALPHA) == second
    assert history.state(12) == ((0, first), (10 + ALPHA, second))
    history.forget_before(10 + ALPHA)
    assert history.state(10 + ALPHA) == ((10 + ALPHA, second),)


def test_a_joiners_history_chains_the_older_changes_from_the_first() -> None:
    """A history that starts at a later configuration (``--join``) replays
    the log's older changes as a chain from epoch 1, by the rule ``chosen``
    keeps (the next epoch, the same alpha), and says whom each removed; a
    history that started at the first configuration replays nothing."""
    first = Configuration.initial([1, 2, 3, 4], alpha=ALPHA)
    bound = first.successor(members([1, 2, 3]))  # epoch 1
    shrunk = bound.successor(members([1, 2]))  # epoch 2: node 3 removed
    stray = bound.successor(members([2, 3]))  # epoch 2 again: does not count
    joined = shrunk.successor(members([1, 2], [5]))  # epoch 3
    history = ConfigHistory(((0, joined),))
    for slot, change in ((0, shrunk), (1, bound), (5, shrunk), (6, stray), (8, joined)):
        assert history.chosen(slot, Value((change.command(),))) is None
        if slot == 1:  # before epoch 1 the chain had not begun: nothing from slot 0
            assert history.replayed() == []
    removed_3 = RemovedMember(3, "h3:1", 5 + ALPHA, 2)
    assert history.replayed() == [(shrunk, (removed_3,)), (joined, ())]
    assert history.replayed() == []  # taken once
    founder = ConfigHistory(((0, first),))
    for slot, change in ((1, bound), (5, shrunk), (7, bound)):
        founder.chosen(slot, Value((change.command(),)))
    assert founder.replayed() == []


def test_a_voter_counts_from_where_it_votes_in_every_configuration_after() -> None:
    # What a lease rests on (Replica.lease_holds): the first slot from which a
    # node votes in every configuration held.
    first = Configuration.initial([1, 2, 3], alpha=ALPHA)
    history = ConfigHistory(((0, first),))
    second = first.successor(members([1, 2, 3, 4]))
    assert history.chosen(10, Value((second.command(),))) == second
    assert history.voter_since(1) == 0
    assert history.voter_since(4) == 10 + ALPHA  # not a voter of the first
    third = second.successor(members([2, 3, 4], [1]))
    assert history.chosen(20, Value((third.command(),))) == third
    assert history.voter_since(1) is None  # demoted in the newest
    assert history.voter_since(4) == 10 + ALPHA


# ------------------------------------------------------------- in the cluster


def test_a_learner_gets_the_log_and_is_never_counted() -> None:
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2, 3], [4])
    fill(env, 1, ALPHA)
    leader = env.replica(1)
    assert leader.configuration.learners == {4}
    assert env.replica(4).slot_chosen == leader.slot_chosen  # it learned the log
    # With 2 and 3 cut off, the leader and the learner are not a majority.
    env.partition([[1, 4], [2, 3]])
    chosen = leader.slot_chosen
    env.propose(1, command(500))
    env.stabilize()
    assert leader.slot_chosen == chosen
    assert env.replica(4).entry(chosen) is not None  # it voted; the vote did not count
    env.heal()
    settle(env, 1)
    assert leader.slot_chosen == chosen + 1


def test_a_learner_never_stands_and_its_probes_are_ignored() -> None:
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2, 3], [4])
    fill(env, 1, ALPHA)
    learner = env.replica(4)
    env.tick(4, learner.now + 30.0)
    assert learner.role is Role.FOLLOWER
    assert not env.deliverable(4, None, "Probe")


def test_a_promoted_learner_counts_toward_a_majority_of_four() -> None:
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2, 3], [4])
    fill(env, 1, ALPHA)
    change(env, 1, [1, 2, 3, 4])
    fill(env, 1, ALPHA)
    leader = env.replica(1)
    assert leader.configuration.voters == {1, 2, 3, 4} and leader.quorum == 3
    env.partition([[1, 2], [3, 4]])
    chosen = leader.slot_chosen
    env.propose(1, command(600))
    env.stabilize()
    assert leader.slot_chosen == chosen  # 2 of 4 is no majority
    env.partition([[1, 2, 4], [3]])
    settle(env, 1)
    assert leader.slot_chosen == chosen + 1


def test_a_change_takes_effect_alpha_slots_after_it_is_chosen() -> None:
    """With nothing else to propose, the leader carries the log to the effect
    slot with no-ops, so an idle cluster's change takes effect at once."""
    env = Env(3, alpha=ALPHA)
    elect(env, 1)
    leader = env.replica(1)
    new = change(env, 1, [1, 2])
    chosen_at = change_slot(leader, new.epoch)
    assert leader.slot_chosen == chosen_at + ALPHA
    for slot in range(chosen_at + 1, chosen_at + ALPHA):
        entry = leader.entry(slot)
        assert entry is not None and entry.value.is_noop
    history = ConfigHistory(leader.configs_at(leader.log_start))
    assert history.at(chosen_at + ALPHA - 1).voters == {1, 2, 3}
    assert history.at(chosen_at + ALPHA) == new == leader.configuration
    settle(env, 1)
    for node_id in (1, 2, 3):
        assert env.replica(node_id).configuration_newest == new


def test_one_change_at_a_time() -> None:
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    leader = env.replica(1)
    first = leader.configuration_newest.successor(members([1, 2, 3], [4]))
    env._perform(1, lambda: leader.propose_configuration(first))
    second = first.successor(members([1, 2, 3]))
    with pytest.raises(Busy):  # the first is on its way
        leader.propose_configuration(second)
    env.stabilize()
    assert leader.configuration == first  # chosen, and in effect after the no-ops
    with pytest.raises(InvalidConfiguration):
        leader.propose_configuration(Configuration(9, tuple(members([1, 2]))))
    change(env, 1, [1, 2, 3])


def test_a_removed_voter_stops_standing_and_is_ignored_once_removed() -> None:
    env = Env(3, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2])
    fill(env, 1, ALPHA)
    removed = env.replica(3)
    assert removed.configuration_newest.voters == {1, 2}  # it knows it was removed
    env.tick(3, removed.now + 30.0)
    assert removed.role is Role.FOLLOWER and not env.deliverable(3, None, "Probe")
    leader = env.replica(1)
    assert 3 not in leader.members
    ballot = leader.ballot_own
    env.inject(Prepare(3, 2, type(ballot)(ballot.round + 1, 3), 0))
    assert env.replica(2).counters.ignored_non_member == 1
    assert env.replica(2).ballot_promised == ballot


def test_a_removed_leader_stops_where_its_removal_takes_effect() -> None:
    env = Env(3, alpha=ALPHA)
    elect(env, 1)
    new = change(env, 1, [2, 3])
    leader = env.replica(1)
    effect = change_slot(leader, new.epoch) + ALPHA
    for seq in range(800, 800 + 2 * ALPHA):
        if leader.role is not Role.LEADER:
            break
        offer(env, 1, command(seq))
        env.stabilize()
        env.tick(1, leader.now + 0.06)
        env.stabilize()
    assert leader.role is Role.FOLLOWER
    assert leader.slot_chosen == effect
    assert all(
        message.slot < effect
        for message in env.deliverable(1, None, "Accept")
        if isinstance(message, Accept)
    )
    env.stabilize()  # it handed leadership over (TimeoutNow) as it stepped down
    (new_leader,) = [n for n in (2, 3) if env.replica(n).role is Role.LEADER]
    assert env.replica(new_leader).configuration.voters == {2, 3}
    assert leader.role is Role.FOLLOWER  # and it never stands again
    env.tick(1, leader.now + 30.0)
    assert leader.role is Role.FOLLOWER and not env.deliverable(1, None, "Probe")


def test_a_new_leader_reproposes_a_change_it_found_accepted() -> None:
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    leader = env.replica(1)
    new = leader.configuration_newest.successor(members([1, 2, 3], [4]))
    env._perform(1, lambda: leader.propose_configuration(new))
    env.persist(1)
    env.deliver(1, 2, "Accept")
    env.persist(2)
    env.drop(None, None, None)  # node 1's other messages and node 2's vote are lost
    env.partition([[1], [2, 3]])
    elect_again(env, 2, [2, 3])
    follower = env.replica(2)
    assert follower.role is Role.LEADER
    settle(env, 2)
    assert follower.configuration_newest == new
    assert env.replica(3).configuration_newest == new


def test_a_leader_prepares_new_voters_before_it_proposes_where_they_decide() -> None:
    """{1, 2, 3} becomes {1, 4, 5}: node 1 alone is no majority of the new
    voters, so it asks 4 and 5 to promise before any slot from the effect on."""
    env = Env(3, nodes=5, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2, 3], [4, 5])
    env.partition([[1, 2, 3], [4, 5]])
    new = change(env, 1, [1, 4, 5])
    leader = env.replica(1)
    effect = change_slot(leader, new.epoch) + ALPHA
    fill(env, 1, ALPHA + 2, seq_start=900)
    assert leader.slot_chosen == effect  # the queue waits at the boundary
    assert [m.dst for m in env.deliverable(1, None, "Prepare")] == []  # cut off: dropped
    assert all(
        message.slot < effect
        for message in env.deliverable(1, None, "Accept")
        if isinstance(message, Accept)
    )
    env.heal()
    settle(env, 1)
    settle(env, 1)
    assert leader.slot_chosen == effect + 1  # the commands that waited, in one slot
    entry = leader.entry(effect)
    assert entry is not None and entry.value.commands[-1].seq == 905
    assert leader.configuration.voters == {1, 4, 5}


def test_a_snapshot_carries_the_configurations() -> None:
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2, 3], [4])
    leader = env.replica(1)
    state = leader.configs_at(leader.slot_chosen)
    assert [config.learners for _, config in state][-1] == {4}
    restored = Replica(
        2,
        env.initial,
        rng=env.node(2).rng,
        durable=DurableState(
            slot_chosen=leader.slot_chosen, log_start=leader.slot_chosen, configs=state
        ),
    )
    assert restored.configuration_newest == leader.configuration_newest
    assert 4 in restored.members


# ------------------------------------------------------------- leadership transfer


def test_a_transfer_makes_the_target_leader_without_an_election_timeout() -> None:
    env = Env(3)
    elect(env, 1)
    fill(env, 1, 3)
    leader = env.replica(1)
    clock_of_3 = env.replica(3).now
    env._perform(1, lambda: leader.transfer_leadership(3))
    assert leader.transferring_to == 3
    with pytest.raises(Busy):
        leader.propose(command(999))
    assert env.deliverable(1, 3, "TimeoutNow")  # node 3 holds every chosen slot
    env.stabilize()
    assert env.replica(3).role is Role.LEADER
    assert leader.role is Role.FOLLOWER and leader.transferring_to is None
    assert env.replica(3).now == clock_of_3  # its clock never moved: no timeout waited out
    fill(env, 3, 2, seq_start=300)


def test_a_transfer_reaches_a_follower_that_missed_its_leaders_prepare() -> None:
    """Node 2 leads on a bare majority: node 3 never saw its Prepare and, with
    no write since, follows its heartbeats under a ballot above its own
    promise. A transfer to node 3 must still make it lead at once; refusing
    every TimeoutNow above the promise left the operator's transfer-leader
    answered and undone (session 33, a cluster with only readers)."""
    env = Env(3)
    elect(env, 1)
    fill(env, 1, 2)
    env.tick(1, env.replica(1).now + 0.7)  # node 1 hears nobody and steps down
    env.tick(3, env.replica(3).now + 0.31)  # node 3 no longer hears it lead
    assert env.replica(1).role is Role.FOLLOWER
    env.campaign(2)
    for _ in range(20):
        for node in (1, 2, 3):
            env.persist(node)
        env.drop(src=2, dst=3, kind="Prepare")
        if not env.deliverable():
            break
        env.deliver()
    leader, target = env.replica(2), env.replica(3)
    assert leader.role is Role.LEADER
    settle(env, 2)
    assert target.leader_id == 2 and target.ballot_promised < leader.ballot_own
    env._perform(2, lambda: leader.transfer_leadership(3))
    env.stabilize()
    assert target.role is Role.LEADER
    assert leader.role is Role.FOLLOWER


def test_a_transfer_waits_for_the_target_to_catch_up() -> None:
    env = Env(3)
    elect(env, 1)
    env.partition([[1, 2], [3]])
    fill(env, 1, 3)
    leader = env.replica(1)
    env._perform(1, lambda: leader.transfer_leadership(3))
    assert not env.deliverable(1, 3, "TimeoutNow")  # node 3 is behind
    env.heal()
    settle(env, 1)
    settle(env, 1)
    assert env.replica(3).role is Role.LEADER


def test_a_transfer_that_cannot_finish_is_dropped_in_time() -> None:
    env = Env(3)
    elect(env, 1)
    env.partition([[1, 2], [3]])
    leader = env.replica(1)
    env._perform(1, lambda: leader.transfer_leadership(3))
    for _ in range(8):
        settle(env, 1)
    assert leader.role is Role.LEADER and leader.transferring_to is None
    fill(env, 1, 1)  # it serves again


def test_only_another_voter_can_be_given_leadership() -> None:
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2, 3], [4])
    leader = env.replica(1)
    for target in (1, 4, 9):
        with pytest.raises(ValueError):
            leader.transfer_leadership(target)


def test_a_transfer_with_no_other_voter_is_refused() -> None:
    # As on a graceful stop of the only voter (Node._hand_over then stops at once).
    env = Env(1, nodes=2, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1], [2])
    leader = env.replica(1)
    with pytest.raises(ValueError, match="no other voter"):
        leader.transfer_leadership()
    assert leader.role is Role.LEADER and leader.transferring_to is None


def test_a_timeout_now_from_anyone_but_the_leader_is_ignored() -> None:
    env = Env(3)
    elect(env, 1)
    follower = env.replica(2)
    env.inject(TimeoutNow(3, 2, Ballot(1, 3)))
    assert follower.role is Role.FOLLOWER


def test_a_removed_leader_hands_over_at_once() -> None:
    env = Env(3, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [2, 3])
    leader = env.replica(1)
    settle(env, 1)  # its heartbeat tells 2 and 3 the removal is in effect
    settle(env, 1)  # they said so: it hands over
    assert leader.role is Role.FOLLOWER
    assert any(env.replica(n).role is Role.LEADER for n in (2, 3))


def test_a_node_joining_learns_from_a_leader_newer_than_what_it_was_started_with() -> None:
    """Node 5 starts with the first configuration {1, 2, 3}; by the time it is
    added, 4 (added after it) leads. Every Accept and Heartbeat from 4 is
    refused as from a node in no configuration held (``ignored_non_member``),
    and nobody else sends 5 anything, so 5 never catches up: a learner that
    never learns, and once promoted a voter that never votes."""
    env = Env(3, nodes=5, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2, 3], [4])
    fill(env, 1, ALPHA)
    change(env, 1, [1, 2, 3, 4])
    fill(env, 1, ALPHA)
    change(env, 1, [2, 3, 4])  # node 1 removed: it hands over to one of 2, 3, 4
    settle(env, 1)
    settle(env, 1)
    (handed_to,) = [n for n in (2, 3, 4) if env.replica(n).role is Role.LEADER]
    if handed_to != 4:  # node 4, which node 5 has never heard of, must lead
        successor = env.replica(handed_to)
        env._perform(handed_to, lambda: successor.transfer_leadership(4))
        env.stabilize()
        settle(env, handed_to)
    leader = env.replica(4)
    assert leader.role is Role.LEADER
    new = leader.configuration_newest.successor(members([2, 3, 4], [5]))
    env._perform(4, lambda: leader.propose_configuration(new))
    env.stabilize()
    fill(env, 4, ALPHA)
    joiner = env.replica(5)
    for _ in range(10):  # time passes at both: heartbeats go out, Learns may be asked again
        env.tick(5, joiner.now + 0.11)
        settle(env, 4)
    # It took nothing from the stranger, learned the log from a member it knew,
    # and with it the configurations that name node 4: now it follows 4.
    assert joiner.counters.ignored_non_member > 0
    assert joiner.configuration_newest == new
    assert joiner.slot_chosen == leader.slot_chosen
    assert joiner.leader_hint == 4


def test_the_only_voter_replaced_hands_over_to_its_successor() -> None:
    """{1} with learner 2 becomes {2}. Leader 1 chooses the last slot before the
    effect slot on its own vote and steps down at its next tick, before any
    Heartbeat or Accept tells 2 that slot is chosen. 2 still holds {1} in
    effect at its chosen prefix, so it is no voter there and never stands; 1
    never stands again: no leader, ever."""
    env = Env(1, nodes=2, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1], [2])
    fill(env, 1, ALPHA)
    change(env, 1, [2])
    leader, successor = env.replica(1), env.replica(2)
    for seq in range(800, 800 + 2 * ALPHA):
        if leader.role is not Role.LEADER:
            break
        offer(env, 1, command(seq))
        env.stabilize()
        env.tick(1, leader.now + 0.06)
        env.stabilize()
    assert leader.role is Role.FOLLOWER
    for _ in range(100):  # 10 s: dozens of election timeouts
        env.tick(2, successor.now + 0.1)
        env.tick(1, leader.now + 0.1)
        env.stabilize()
    assert successor.role is Role.LEADER


def test_a_removed_leader_cut_off_from_its_successor_waits_past_its_lease() -> None:
    """Core reconfig seed 17: {1} (learner 2) becomes {2} while 2 is cut off.
    Stepping down at the lease would leave nobody able to tell 2 it is the
    voter now; the removed leader waits, proposing nothing, and hands over
    once 2 is back."""
    env = Env(1, nodes=2, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1], [2])
    settle(env, 1)
    env.partition([[1], [2]])
    new = change(env, 1, [2])
    leader = env.replica(1)
    assert leader.slot_chosen == change_slot(leader, new.epoch) + ALPHA  # in effect
    for _ in range(30):  # 3 s: many leases
        settle(env, 1)
    assert leader.role is Role.LEADER
    with pytest.raises(Busy):  # it proposes nothing more: clients hear so at once
        leader.propose(command(999))
    entries_before = leader.slot_chosen
    env.heal()
    for _ in range(3):
        env.tick(2, env.replica(2).now + 0.11)
        settle(env, 1)
    assert leader.role is Role.FOLLOWER
    assert env.replica(2).role is Role.LEADER
    assert leader.slot_chosen == entries_before  # it never proposed past its removal


def test_a_voter_added_before_it_heard_so_learns_when_a_stranger_needs_its_vote() -> None:
    """Core engine reconfig seed 19: {1, 2, 3} became {4, 5} while 5 was cut
    off, so 5 still holds {1, 2, 3}. 4 can lead only with 5's vote, but a Probe
    carries no chosen prefix and 5 refuses a stranger's Probe: before the fix 5
    learned only from a stranger's Accept or Heartbeat, which a candidate never
    sends, and no leader stood again. Now a stranger's Probe, to a node that
    follows no live leader, makes it learn from a member it knows."""
    env = Env(3, nodes=5, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2, 3, 4])
    fill(env, 1, ALPHA)
    env.partition([[1, 2, 3, 4], [5]])
    change(env, 1, [4, 5])
    for _ in range(3):
        settle(env, 1)  # the change takes effect; 1 cannot hand over without 5
    assert env.replica(1).slot_chosen >= change_slot(env.replica(1), 2) + ALPHA
    env.partition([[1], [2, 3, 4, 5]])  # 1 is gone; 2 and 3 know the log
    candidate, joiner = env.replica(4), env.replica(5)
    assert 4 not in joiner.configuration_newest.voters
    for _ in range(20):  # election timeouts pass: 4 stands, 5 hears its Probe
        env.tick(5, joiner.now + 0.31)
        env.tick(4, candidate.now + 0.31)
        env.stabilize()
        if Role.LEADER in (candidate.role, joiner.role):
            break
    assert joiner.configuration_newest.voters == {4, 5}
    # 5 learned the log (asked on the stranger's Probe, or on its own timeout,
    # since it may not stand while behind), so one of them leads.
    assert Role.LEADER in (candidate.role, joiner.role)


def test_a_transfer_with_no_target_skips_a_voter_not_heard_from() -> None:
    """Found by the rolling-restart cluster test: with node 2 down for
    maintenance, a SIGTERM'd leader picked 2 (as far along, lower id) and the
    cluster waited out an election. A voter heard from lately goes first."""
    env = Env(3, alpha=ALPHA)
    elect(env, 1)
    fill(env, 1, 3)
    leader = env.replica(1)
    assert leader.peer_slot_chosen(2) == leader.peer_slot_chosen(3) == leader.slot_chosen
    env.partition([[1, 3], [2]])
    for _ in range(4):
        settle(env, 1)  # 0.44 s: 3 answers every heartbeat, 2 none
    env._perform(1, lambda: leader.transfer_leadership())
    assert leader.transferring_to == 3


def test_a_voter_that_knows_its_leader_was_removed_grants_another_voters_probe() -> None:
    """Runtime swarm seed 85: {1, 2, 3} becomes {2, 3} while 3 is cut off; 3
    then installs a snapshot taken past the removal, whose configurations no
    longer name 1. 3 ignores the removed leader (``ignored_non_member``), so 1
    never hears that 3 knows and waits on to hand over; 2, still hearing 1,
    refused 3's probes as from under a live leader: nobody led again. A
    leader that is no voter from the acceptor's chosen prefix on proposes
    nothing more, and does not keep another voter from standing."""
    env = Env(1, nodes=3, alpha=ALPHA)
    elect(env, 1)
    env.partition([[1, 2], [3]])
    new = change(env, 1, [2, 3])
    leader = env.replica(1)
    effect = change_slot(leader, new.epoch) + ALPHA
    for _ in range(3):
        settle(env, 1)
    assert leader.slot_chosen == effect and leader.role is Role.LEADER
    assert env.replica(2).slot_chosen == effect  # 2 knows 1 is removed
    cut_off = env.replica(3)
    env.node(3).slot_apply_next = effect
    env._perform(3, lambda: cut_off.install_snapshot(effect, leader.configs_at(effect)))
    assert 1 not in cut_off.members
    env.heal()
    for _ in range(40):  # 4 s: many election timeouts
        env.tick(3, cut_off.now + 0.1)
        env.tick(2, env.replica(2).now + 0.1)
        settle(env, 1)
    assert cut_off.counters.ignored_non_member > 0
    assert any(env.replica(n).role is Role.LEADER for n in (2, 3))
    assert leader.role is Role.FOLLOWER


def test_a_follower_asked_to_change_the_members_or_hand_over_raises_not_leader() -> None:
    # Argument checks the node never reaches (it asks its leader only).
    env = Env(3, alpha=ALPHA)
    elect(env, 1)
    follower = env.replica(2)
    new = follower.configuration_newest.successor(members([1, 2]))
    with pytest.raises(NotLeader) as raised:
        follower.propose_configuration(new)
    assert raised.value.leader_hint == 1
    with pytest.raises(NotLeader):
        follower.transfer_leadership(3)


def test_a_successor_behind_its_own_promotion_asks_to_be_caught_up() -> None:
    """Core reconfig seed 17, second form: {1} (learner 2) becomes {2} while 2
    is cut off, and then every node restarts. The removed leader is a follower
    now and never stands; 2 holds {1} in effect at its chosen prefix, so it may
    not stand either, and nobody sends it anything: no leader, ever. A node
    that may not stand and hears no leader for a timeout now asks a member it
    knows to catch it up."""
    env = Env(1, nodes=2, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1], [2])
    settle(env, 1)
    env.partition([[1], [2]])
    new = change(env, 1, [2])
    removed, successor = env.replica(1), env.replica(2)
    assert removed.slot_chosen == change_slot(removed, new.epoch) + ALPHA  # in effect at 1
    env.crash(1)
    env.crash(2)
    env.heal()
    removed, successor = env.replica(1), env.replica(2)
    assert 2 not in successor.configuration.voters  # behind: no voter at its prefix
    for _ in range(30):  # 3 s: many election timeouts
        env.tick(2, successor.now + 0.1)
        env.tick(1, removed.now + 0.1)
        env.stabilize()
    assert successor.role is Role.LEADER


def test_a_member_removed_and_added_back_must_promise_again() -> None:
    """Removed, a member comes back only as a new entry, perhaps on a new disk
    (the replace procedure): the promise its old self gave this leader binds
    nothing any more. The leader forgot it, so the configuration that has it
    vote again is prepared by promises given since (here, 1's and 2's)."""
    env = Env(3, nodes=3, alpha=ALPHA)
    elect(env, 1)
    leader = env.replica(1)
    assert 3 in leader._promises
    removal = change(env, 1, [1, 2])
    assert 3 not in leader._promises
    fill(env, 1, ALPHA + 1)
    change(env, 1, [1, 2], [3])
    fill(env, 1, ALPHA + 1, seq_start=200)
    back = change(env, 1, [1, 2, 3])
    fill(env, 1, ALPHA + 1, seq_start=300)
    assert leader.configuration.voters == {1, 2, 3}
    assert leader.role is Role.LEADER
    promise = leader._promises.get(3)
    assert promise is None or promise.slot_from >= change_slot(leader, removal.epoch), promise
    assert change_slot(leader, back.epoch) > change_slot(leader, removal.epoch)


def test_a_removed_leader_that_missed_its_successor_is_nacked_down() -> None:
    """Membership-faults seed 9: {1, 2, 3} becomes {2, 3}; 2 and 3 elect 2
    before they tell 1 they know the removal. 1, removed, proposes nothing and
    waits to hear that a majority knows it, but 2 and 3, past snapshots taken
    after the removal, hold no configuration naming 1 and ignored every
    message from it: 1 led on, refusing
    its clients as Busy, for the rest of the run. Its Heartbeat, under a ballot
    below their promise, now gets the Nack a member would get, and 1 steps
    down for good."""
    env = Env(3, alpha=ALPHA)
    elect(env, 1)
    new = change(env, 1, [2, 3])
    leader = env.replica(1)
    effect = change_slot(leader, new.epoch) + ALPHA
    for _ in range(6):
        if leader.slot_chosen >= effect:
            break
        settle(env, 1)
    assert leader.slot_chosen == effect and leader.role is Role.LEADER
    for _ in range(4):  # 2 and 3 learn the removal; their answers are lost
        env.tick(1, leader.now + 0.11)
        env.persist(1)
        env.deliver(1, None)
        for voter in (2, 3):
            env.persist(voter)
            env.drop(voter, 1)
    assert all(env.replica(n).slot_chosen >= effect for n in (2, 3))
    assert leader.role is Role.LEADER
    env.partition([[1], [2, 3]])
    elect_again(env, 2, [2, 3])
    successor = env.replica(2)
    assert successor.role is Role.LEADER and successor.slot_applied >= effect
    # Snapshots past the removal: neither holds a configuration naming 1.
    for voter in (2, 3):
        env.replica(voter).compact(env.replica(voter).slot_applied)
        assert 1 not in env.replica(voter).members
    refused_before = successor.counters.ignored_non_member
    env.heal()
    env.tick(1, leader.now + 0.06)  # its next heartbeat
    env.stabilize()
    assert successor.counters.ignored_non_member > refused_before
    assert leader.role is Role.FOLLOWER
    env.tick(1, leader.now + 30.0)
    assert leader.role is Role.FOLLOWER and not env.deliverable(1, None, "Probe")


def test_a_learner_behind_its_own_add_asks_a_member_to_catch_it_up() -> None:
    """Runtime reconfig seed 102 of 5 nodes: a learner lost, in a power cut,
    the unsynced entries that added it, and came back at a snapshot whose
    configurations do not name it. It took itself for removed and never asked
    anyone; the leader, which it did not know, could not reach it. In none of
    the configurations it holds, it is behind, not removed: after a timeout
    without a leader it asks a member it knows to catch it up."""
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    env.partition([[1, 2, 3], [4]])
    change(env, 1, [1, 2, 3], [4])
    joiner = env.replica(4)
    assert 4 not in joiner.members and joiner.configuration_newest.epoch == 0
    env.partition([[1], [4]])  # the leader cannot reach it; 2 and 3 can
    env.drop(None, 4)
    for _ in range(6):  # 0.6 s: past its election timeout
        env.tick(4, joiner.now + 0.1)
    asked = env.deliverable(4, None, "LearnRequest")
    assert asked and all(message.dst in (2, 3) for message in asked)
    env.stabilize()
    assert 4 in joiner.configuration_newest.learners


def readded_through_a_stranger(env: Env) -> Replica:
    """Node 3 is removed (and knows it), then cut off while node 5 joins and
    takes the lead, and added back as a learner through node 5, which its
    configurations do not name: the shape of 5-node swarm seed 108."""
    elect(env, 1)
    change(env, 1, [1, 2, 4])  # 3 removed, 4 added
    fill(env, 1, ALPHA)
    removed = env.replica(3)
    assert 3 not in removed.configuration_newest.ids  # it knows it was removed
    env.partition([[1, 2, 4, 5], [3]])  # it hears nothing more
    change(env, 1, [1, 2, 4, 5])
    fill(env, 1, ALPHA)
    env._perform(1, lambda: env.replica(1).transfer_leadership(5))
    env.stabilize()
    assert env.replica(5).role is Role.LEADER
    change(env, 5, [1, 2, 4, 5], [3])  # added back while cut off
    fill(env, 5, ALPHA, seq_start=200)
    assert 5 not in removed.members
    return removed


def test_a_removed_node_added_back_through_a_leader_it_never_knew_catches_up() -> None:
    """5-node swarm seed 108: a removed node, added back as a learner through a
    leader its configurations do not name (no link between them), asked no one
    and stayed at its removal for good. A removed node, after a timeout without
    a leader, asks the members it knows in turn; one that holds the change adding
    it back answers, and then it follows the new leader like any learner."""
    env = Env(3, nodes=5, alpha=ALPHA)
    removed = readded_through_a_stranger(env)
    env.partition([[5], [3]])  # only the link to the leader it does not know is missing
    env.drop(None, 3)
    for _ in range(20):  # 2 s: past its election timeout
        env.tick(3, removed.now + 0.1)
    asked = env.deliverable(3, None, "LearnRequest")
    asked_whom = {message.dst for message in asked}
    assert asked_whom and asked_whom <= {1, 2, 4}, asked  # the members it knows
    env.stabilize()
    assert 3 in removed.configuration_newest.learners and 5 in removed.members
    # Now in a configuration with the leader: it takes the leader's messages.
    env.heal()
    refused = removed.counters
    fill(env, 5, 2, seq_start=300)
    leader = env.replica(5)
    assert removed.counters == refused, removed.counters
    assert removed.leader_id == 5 and removed.slot_chosen == leader.slot_chosen
    assert removed.entry(leader.slot_chosen - 1) == leader.entry(leader.slot_chosen - 1)


def _removed_asks_a_compacted_member(env: Env) -> tuple[Replica, Replica]:
    """Node 3 removed, and it knows; member 2 compacted past the removal."""
    elect(env, 1)
    change(env, 1, [1, 2])
    fill(env, 1, ALPHA)
    removed = env.replica(3)
    assert 3 not in removed.configuration_newest.ids
    member = env.replica(2)
    member.compact(member.slot_applied)
    assert 3 not in member.members
    env.partition([[1], [3]])
    env.drop(None, 3)
    for _ in range(20):
        env.tick(3, removed.now + 0.1)
    assert env.deliverable(3, 2, "LearnRequest")
    return removed, member


def test_a_member_that_holds_a_removed_node_nowhere_and_forgot_it_refuses_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A member past the removal in its snapshot, that no longer remembers the
    node among the last REMOVED_REMEMBERED_MAX removed (here: room for none),
    cannot tell the removed node from an outsider: it answers nothing, and
    counts the request apart from ``ignored_non_member`` (honest traffic: a
    removed node asks what it missed, which must not look like a
    non-member's election or agreement traffic)."""
    monkeypatch.setattr(membership_module, "REMOVED_REMEMBERED_MAX", 0)
    env = Env(3, alpha=ALPHA)
    _, member = _removed_asks_a_compacted_member(env)
    assert member.removed_addresses() == {}
    before = member.counters
    env.deliver(3, 2, "LearnRequest")
    # Nothing for it: no Learn, and no snapshot (the member compacted past it).
    assert not env.deliverable(2, 3) and not env.node(2).held
    assert not env.node(2).snapshot_requests
    assert member.counters.ignored_non_member == before.ignored_non_member
    learn_refused = member.counters.ignored_non_member_learn_request
    assert learn_refused > before.ignored_non_member_learn_request


def test_a_member_compacted_past_a_removal_sends_the_removed_node_no_snapshot() -> None:
    """The same member, remembering node 3 among the removed, sends it no log
    and no snapshot: the slots asked for are compacted, and a snapshot would
    hold the state chosen after the removal, which is not the removed node's
    to read. Counted as a refused learn request, and answered with the epoch
    that removed it, as a probe is."""
    env = Env(3, alpha=ALPHA)
    _, member = _removed_asks_a_compacted_member(env)
    assert set(member.removed_addresses()) == {3}
    before = member.counters
    env.deliver(3, 2, "LearnRequest")
    assert not env.node(2).snapshot_requests
    assert {type(m).__name__ for m in env.deliverable(2, 3)} == {"RemovedNotice"}
    learn_refused = member.counters.ignored_non_member_learn_request
    assert learn_refused > before.ignored_non_member_learn_request


def test_a_removed_learner_whose_members_compacted_past_its_removal_is_told_by_a_majority() -> None:
    """A learner cut off while its removal is chosen and takes effect never
    probes, so it is never refused out loud; it only asks for the log, which
    every member has compacted past. Each member answers that request with a
    ``RemovedNotice``, and from a majority of the voters it knows it holds
    itself removed (its status says so), though its log still names it
    (the simulator's quiet membership seed 1, ``removed-learns``). Planted:
    learn requests answered with nothing, as before session 32, and it never
    knows."""
    for planted in (False, True):
        env = Env(4, alpha=ALPHA)
        elect(env, 1)
        change(env, 1, [1, 2, 3], [4])
        fill(env, 1, ALPHA)
        env.partition([[1, 2, 3], [4]])
        change(env, 1, [1, 2, 3])
        fill(env, 1, 3 * ALPHA)
        for member in (1, 2, 3):
            replica = env.replica(member)
            replica.compact(replica.slot_applied)
            if planted:
                replica._notify_removed = lambda node_id: None  # type: ignore[method-assign]
        env.heal()
        learner = env.replica(4)
        assert 4 in learner.configuration_newest.learners  # it missed its removal
        for _ in range(50):  # 5 s of learn retries
            env.tick(4, learner.now + 0.1)
            env.stabilize()
        assert learner.removed_by_notice == (None if planted else 2)
        assert not env.deliverable(4, None, "Probe")  # a learner never stands


def test_a_removed_node_that_missed_its_removal_learns_it_and_stops_standing() -> None:
    """Node 3 is cut off while its removal is chosen and takes effect, and
    comes back: it still holds itself a voter and stands again and again,
    probing members for whom it is a stranger (swarm seed 4000160). A member
    that remembers it refuses the probe out loud; the refused prober asks for
    the log, learns the change that removed it, and stands no more. Its probe
    still counts as a non-member's, not as a vote."""
    env = Env(3, alpha=ALPHA)
    elect(env, 1)
    env.partition([[1, 2], [3]])
    change(env, 1, [1, 2])
    fill(env, 1, ALPHA)
    removed = env.replica(3)
    assert 3 in removed.configuration_newest.voters  # it missed its removal
    assert set(env.replica(1).removed_addresses()) == {3}
    leader = env.replica(1)
    removal_effect = leader.slot_chosen
    fill(env, 1, 3 * ALPHA, seq_start=500)  # chosen after the removal
    env.heal()
    before = env.replica(2).counters
    for _ in range(20):
        env.tick(3, removed.now + 0.1)
        if env.deliverable(3, 2, "Probe"):
            break
    assert env.deliverable(3, 2, "Probe")
    env.deliver(3, 2, "Probe")
    assert env.replica(2).counters.ignored_non_member > before.ignored_non_member
    refusal = env.deliverable(2, 3, "ProbeReply")
    assert refusal and not refusal[0].granted  # type: ignore[attr-defined]
    env.stabilize()
    assert 3 not in removed.configuration_newest.ids
    for _ in range(30):  # 3 s: many election timeouts
        env.tick(3, removed.now + 0.1)
        env.stabilize()
    assert not env.deliverable(3, None, "Probe")  # it asks for the log instead
    assert removed.role is Role.FOLLOWER  # it stood down at its next timeout
    # It learned the slots up to its removal, none chosen since.
    assert removed.slot_chosen <= removal_effect < leader.slot_chosen


def test_a_replica_remembers_only_the_last_removed_and_forgets_one_added_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``REMOVED_REMEMBERED_MAX`` bounds the memory, the oldest forgotten first;
    a node added back is a member again, not a removed one."""
    monkeypatch.setattr(membership_module, "REMOVED_REMEMBERED_MAX", 1)
    env = Env(4, alpha=ALPHA)
    elect(env, 1)
    leader = env.replica(1)
    change(env, 1, [1, 2, 3])
    fill(env, 1, ALPHA)
    assert set(leader.removed_addresses()) == {4}
    change(env, 1, [1, 2])
    fill(env, 1, ALPHA)
    assert set(leader.removed_addresses()) == {3}  # 4 forgotten: room for one
    change(env, 1, [1, 2], [3])
    fill(env, 1, ALPHA)
    assert leader.removed_addresses() == {}  # 3 is back, as a learner


def _removed_after_every_member_compacted(env: Env) -> Replica:
    """Node 3 is cut off while its removal is chosen and takes effect; both
    members then compact past it, and the cut heals: the log that would teach
    node 3 its removal is gone everywhere."""
    elect(env, 1)
    env.partition([[1, 2], [3]])
    change(env, 1, [1, 2])
    fill(env, 1, 3 * ALPHA)
    for member in (1, 2):
        replica = env.replica(member)
        replica.compact(replica.slot_applied)
        assert replica.log_start > change_slot_of_removal(env)
    env.heal()
    removed = env.replica(3)
    assert 3 in removed.configuration_newest.voters  # it missed its removal
    return removed


def change_slot_of_removal(env: Env) -> int:
    """Where node 3's removal took effect, by a member's memory of it."""
    effect = env.replica(1).removal_effect(3)
    assert effect is not None
    return effect


def _probe_until_refused(env: Env, removed: Replica) -> None:
    for _ in range(20):
        env.tick(3, removed.now + 0.1)
        if env.deliverable(3, None, "Probe"):
            break
    assert env.deliverable(3, None, "Probe")


def test_a_removed_node_whose_members_compacted_past_its_removal_believes_a_majority() -> None:
    """Once every member has compacted past the change, no log can teach the
    removed node (and no snapshot may: the state since is not its to read).
    Each member that remembers it answers its probe with a ``RemovedNotice``
    naming the epoch; from a majority of the voters it knows (here both
    others), the node stands no more, though its log still names it a voter."""
    env = Env(3, alpha=ALPHA)
    removed = _removed_after_every_member_compacted(env)
    _probe_until_refused(env, removed)
    env.stabilize()
    assert removed.removed_by_notice == 1  # the epoch that removed it
    assert 3 in removed.configuration_newest.voters  # learned from no log
    for _ in range(30):  # 3 s: many election timeouts
        env.tick(3, removed.now + 0.1)
        env.stabilize()
    assert not env.deliverable(3, None, "Probe")
    assert removed.role is Role.FOLLOWER


@pytest.mark.parametrize("remembered", [True, False])
def test_members_restarted_past_a_removal_tell_the_removed_node_from_their_snapshot(
    remembered: bool,
) -> None:
    """As above, but both members restart after compacting: the log that
    removed node 3 is gone from their disks too, and what they remember of it
    comes from the snapshot the runtime restores (``RemovedState``; the
    runtime's machine keeps it, ``node/machine.py``). Without it, node 3 would
    stand for good."""
    env = Env(3, alpha=ALPHA)
    removed = _removed_after_every_member_compacted(env)
    effect = change_slot_of_removal(env)
    memory = (RemovedMember(3, "", effect, 1),) if remembered else ()
    for member in (1, 2):
        replica = env.replica(member)
        env.persist(member)
        env.node(member).disk.append(SnapshotRecord(replica.log_start))  # its snapshot's mark
        env.crash(member, configs=replica.configs_at(replica.log_start), removed=memory)
        assert env.replica(member).removal_effect(3) == (effect if remembered else None)
        assert env.replica(member).log_start > effect
    elect(env, 1)
    _probe_until_refused(env, removed)
    env.stabilize()
    assert removed.removed_by_notice == (1 if remembered else None)


@pytest.mark.parametrize("planted", [False, True])
def test_a_node_that_joined_later_remembers_the_removals_in_the_log_it_learns(
    planted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node 3 is removed (epoch 2) while cut off; node 4 is then added and
    starts as ``paxon serve --join`` starts it: with the configuration that
    names it, not the first one. It learns the log from slot 0, whose older
    changes its history does not take; chained from the first, they tell it
    node 3's removal, as every member remembers it. Planted (the replayed
    changes dropped), it does not."""
    if planted:
        monkeypatch.setattr(ConfigHistory, "replayed", lambda self: [])
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    env.partition([[1, 2], [3], [4]])
    change(env, 1, [1, 2, 3])  # epoch 1: the first change, whose removals a joiner cannot know
    change(env, 1, [1, 2])  # epoch 2: node 3 removed
    fill(env, 1, ALPHA)
    joined = change(env, 1, [1, 2], [4])
    node = env.node(4)
    node.replica = Replica(4, joined, rng=node.rng, now=node.now, config=env.config)
    version = node.replica.removed_version
    env.partition([[1, 2, 4], [3]])
    fill(env, 1, 2 * ALPHA)
    joiner = env.replica(4)
    assert joiner.slot_chosen == env.replica(1).slot_chosen  # it learned the whole log
    effect = env.replica(1).removal_effect(3)
    assert effect is not None
    assert joiner.removal_effect(3) == (None if planted else effect)
    assert set(joiner.removed_addresses()) == (set() if planted else {3})
    # The runtime links to the nodes it remembers removed when this moves
    # (``Node._perform``): its members did not change here.
    assert joiner.members == (1, 2, 4)
    assert (joiner.removed_version > version) is not planted


def test_one_members_removal_notice_does_not_stop_a_voter_standing() -> None:
    """A notice from one voter of three is short of a majority: the node may
    still stand (one member's word, or one forged message, does not end it)."""
    env = Env(3, alpha=ALPHA)
    removed = _removed_after_every_member_compacted(env)
    env.partition([[1], [2, 3]])  # only member 2 hears it
    _probe_until_refused(env, removed)
    env.stabilize()
    assert env.replica(2).counters.ignored_non_member > 0
    assert removed.removed_by_notice is None
    env.drop(3, None)
    for _ in range(30):  # 3 s: many election timeouts
        env.tick(3, removed.now + 0.1)
    assert env.deliverable(3, None, "Probe")  # it still stands


def test_a_stale_or_strangers_removal_notice_counts_for_nothing() -> None:
    """A notice whose epoch the node already holds (it was added back since),
    or from a node not a voter of its newest configuration, is refused and
    counted (``ignored_unsolicited``), and the node may stand."""
    env = Env(3, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2, 3])  # epoch 1, node 3 still a voter
    fill(env, 1, ALPHA)
    replica = env.replica(3)
    before = replica.counters.ignored_unsolicited
    env.inject(RemovedNotice(1, 3, 1))  # stale: it holds epoch 1
    env.inject(RemovedNotice(2, 3, 0))
    env.inject(RemovedNotice(3, 3, 5))  # from itself
    env.stabilize()
    assert replica.counters.ignored_unsolicited == before + 3
    assert replica.removed_by_notice is None


def test_removal_notices_need_a_majority_above_the_newest_epoch() -> None:
    """The tally itself: a majority of the newest voters, above its epoch; a
    newer configuration that names the node again ends the belief; a teller
    no longer a voter is dropped."""
    newest = Configuration(3, tuple(members([1, 2, 3, 4, 5])), ALPHA)
    notices = RemovalNotices()
    assert notices.take(1, 4, newest, own=5)
    assert notices.take(2, 6, newest, own=5)
    assert not notices.take(9, 6, newest, own=5)  # not a voter
    assert not notices.take(3, 3, newest, own=5)  # not above epoch 3
    assert notices.removed_at(newest) is None  # 2 of 5
    assert notices.take(3, 4, newest, own=5)
    assert notices.removed_at(newest) == 4  # the lowest epoch a majority named
    added_back = Configuration(6, tuple(members([1, 2, 3, 5])), ALPHA)
    assert notices.removed_at(added_back) is None  # it holds epoch 6 now
    shrunk = Configuration(3, tuple(members([2, 3, 5])), ALPHA)
    assert notices.take(2, 7, shrunk, own=5)
    assert notices.removed_at(shrunk) == 4  # tellers 2 and 3 (1 dropped)


def test_a_read_waits_for_the_next_configurations_phase_1_and_is_answered_past_it() -> None:
    """Voters {1,2,3} change to {1,2,4}. Leader 1, cut off from 2 and 3, goes
    on with 4 and chooses slots under the new voters. Then 1 is cut off; 2
    stands and is elected by the old voters {2,3} for the slots they decide,
    and its Prepare to 4 is held. A read at 2 is confirmed by heartbeats from
    3 and 4 (4 follows the higher ballot), yet only 4's promise reports what
    {1,4} chose: answered then, the read was stale (at slot 4, below the 16
    chosen; core reconfig seed 21, session 27). It must wait for that
    configuration's Phase 1, and once the promise comes it is answered past
    every slot it reported, without another read to wake it (the first fix
    answered it only at the next read)."""
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    change(env, 1, [1, 2, 4])
    env.partition([[1, 4], [2, 3]])
    fill(env, 1, 3 * ALPHA)
    chosen_by_1 = env.replica(1).slot_chosen
    env.partition([[1], [2, 3, 4]])
    for voter in (3, 4):  # they stop hearing leader 1
        env.tick(voter, env.replica(voter).now + 0.31)
    env.campaign(2)
    held: list[Message] = []
    _stabilize_holding(env, 2, 4, "Prepare", held)
    reader = env.replica(2)
    assert reader.role is Role.LEADER and reader.slot_chosen < chosen_by_1
    lines = env.read_index(2, 7) + _stabilize_holding(env, 2, 4, "Prepare", held)
    assert "4->2 HeartbeatReply(ballot=2.2 chosen=16 read=1)" in lines  # confirmed
    assert not [line for line in lines if "read 7" in line]  # but it waits
    env.nodes[2].outbox += held
    answered = [line.strip() for line in env.stabilize() if "read 7" in line]
    assert answered == [f"2: read 7 slot={chosen_by_1}"]


def _stabilize_holding(env: Env, src: int, dst: int, kind: str, held: list[Message]) -> list[str]:
    """``env.stabilize()``, but the ``kind`` messages from ``src`` to ``dst``
    are taken out of the network as they are sent and kept in ``held``."""
    lines: list[str] = []
    while True:
        for node_id in env.members:
            node = env.nodes[node_id]
            if node.unpersisted or node.held:
                lines += env.persist(node_id)
        for message in env.deliverable(src, dst, kind):
            env.nodes[src].outbox.remove(message)
            held.append(message)
        pending = env.deliverable()
        if not pending:
            lines.append(f"held {len(held)}")
            return lines
        first = pending[0]
        lines += env.deliver(first.src, first.dst, type(first).__name__)


@pytest.mark.parametrize("planted", [False, True])
def test_a_member_that_learns_a_nodes_add_and_removal_at_once_remembers_it(
    planted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node 2 is cut off while node 4 is added as a learner and removed again;
    back, it learns all of it in one advance of its prefix, so its members
    are 1, 2 and 3 before and after. It must still remember node 4 removed,
    with its address, as the members that saw it come and go do: else it
    neither links to node 4 nor tells it of its removal (swarm seed
    13000390). Planted (only the members before the advance counted), it
    forgets."""
    if planted:
        real = Replica._remember_the_removed
        monkeypatch.setattr(
            Replica,
            "_remember_the_removed",
            lambda self, before, passed: real(self, before, ()),
        )
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    env.partition([[1, 3, 4], [2]])
    change(env, 1, [1, 2, 3], [4])
    fill(env, 1, ALPHA)
    change(env, 1, [1, 2, 3])
    fill(env, 1, ALPHA)
    assert env.replica(1).removed_addresses() == {4: "h4:1"}
    behind = env.replica(2)
    start = behind.slot_chosen
    env.heal()
    fill(env, 1, 1, seq_start=900)
    assert behind.slot_chosen == env.replica(1).slot_chosen > start + 2 * ALPHA
    assert 4 not in behind.members
    assert behind.removed_addresses() == ({} if planted else {4: "h4:1"})
