"""Membership requests at the leader (node/members.py): the change each asks for,
and the promotion of a learner added with ``--auto-promote`` once caught up."""

from __future__ import annotations

import pytest
from tests.protocol.harness import Env
from tests.protocol.test_membership import change_slot, fill, settle
from tests.protocol.test_replica import elect

from paxon.errors import BadRequest
from paxon.node.members import (
    AUTO_PROMOTE_LAG_SLOTS,
    auto_promotion,
    bind_incarnations,
    next_configuration,
    refusal_bindings,
)
from paxon.protocol.membership import Configuration, InvalidConfiguration, Member

ALPHA = 4


def linked(peer: int) -> int:
    """The incarnation a leader's link to ``peer`` names (every link up)."""
    return peer * 10


def test_an_auto_promote_learner_is_added_and_survives_its_encoding() -> None:
    first = Configuration.initial({1: "h1:1", 2: "h2:1", 3: "h3:1"})
    added = next_configuration(first, "add-learner-auto-promote", 4, "h4:1")
    assert added is not None
    assert added.member(4) == Member(4, "h4:1", voter=False, auto_promote=True)
    assert Configuration.decode(added.encode()) == added
    # Without the option a member encodes as it always has: three fields.
    assert b'[1,"h1:1",true]' in added.encode()
    assert next_configuration(added, "add-learner-auto-promote", 4, "h4:1") is None  # a retry
    assert next_configuration(added, "add-learner", 4, "h4:1") is None  # a learner there
    with pytest.raises(BadRequest):  # a learner there, not a voter
        next_configuration(added, "add", 4, "h4:1")
    promoted = next_configuration(added, "promote", 4, "", incarnation=77)
    assert promoted is not None and promoted.member(4) == Member(4, "h4:1", incarnation=77)


def test_a_learner_is_promoted_bound_and_never_while_its_link_is_down() -> None:
    first = Configuration.initial({1: "h1:1", 2: "h2:1", 3: "h3:1"})
    added = next_configuration(first, "add-learner", 4, "h4:1")
    assert added is not None
    with pytest.raises(BadRequest, match="not connected to the leader"):
        next_configuration(added, "promote", 4, "")  # nobody knows its data directory
    bound = next_configuration(added, "promote", 4, "", incarnation=5)
    assert bound is not None and bound.member(4) == Member(4, "h4:1", incarnation=5)
    # Bound already (the leader's binding came first): that binding stands.
    bound_learner = bind_incarnations(added, {4: 9})
    assert bound_learner is not None
    promoted = next_configuration(bound_learner, "promote", 4, "", incarnation=5)
    assert promoted is not None and promoted.member(4) == Member(4, "h4:1", incarnation=9)
    assert next_configuration(bound_learner, "promote", 4, "") is not None


def test_only_a_learner_carries_auto_promote() -> None:
    with pytest.raises(InvalidConfiguration):
        Configuration(1, (Member(1, "h1:1", voter=True, auto_promote=True),))
    for bad in (b'[1,64,[[1,"a",true],[2,"b",false,{"x":1}]]]', b'[1,64,[[1,"a",true,[]]]]'):
        with pytest.raises(InvalidConfiguration):
            Configuration.decode(bad)


def test_the_leader_promotes_an_auto_promote_learner_once_it_has_caught_up() -> None:
    env = Env(3, nodes=4, alpha=ALPHA)
    elect(env, 1)
    leader = env.replica(1)
    env.partition([[1, 2, 3], [4]])  # the learner is cut off: it cannot catch up
    wanted = leader.configuration_newest.successor(
        [Member(n, f"h{n}:1") for n in (1, 2, 3)]
        + [Member(4, "h4:1", voter=False, auto_promote=True)]
    )
    env._perform(1, lambda: leader.propose_configuration(wanted))
    env.stabilize()
    fill(env, 1, ALPHA)
    assert leader.configuration == wanted  # in effect
    assert auto_promotion(leader, linked) is None  # 4 has said nothing yet
    env.heal()
    for _ in range(3):
        settle(env, 1)  # heartbeats bring 4 the log; its replies say how far it got
    reached = leader.peer_slot_chosen(4)
    assert reached is not None and reached >= change_slot(leader, 1) + ALPHA
    assert leader.slot_chosen - reached <= AUTO_PROMOTE_LAG_SLOTS
    # Caught up, but its link is down as this leader sees it: not promoted.
    assert auto_promotion(leader, lambda peer: None) is None
    promotion = auto_promotion(leader, linked)
    assert promotion is not None and promotion.voters == {1, 2, 3, 4}
    # The option goes with the promotion, and the new voter is bound.
    assert promotion.member(4) == Member(4, "h4:1", incarnation=40)
    # A follower, or a leader with a change on its way, proposes nothing.
    assert auto_promotion(env.replica(2), linked) is None
    env._perform(1, lambda: leader.propose_configuration(promotion))
    assert auto_promotion(leader, linked) is None


def test_a_removed_wiped_member_stays_refused_until_its_removal_takes_effect() -> None:
    """The oldest binding among the configurations held counts: a removal chosen
    but not in effect keeps the old incarnation; only after it does a newer one
    (the member added back on a new directory) count."""
    first = Configuration.initial({1: "h1:1", 2: "h2:1", 3: "h3:1"})
    bound = bind_incarnations(first, {1: 10, 2: 20, 3: 30})
    assert bound is not None
    removed = next_configuration(bound, "remove", 3, "")
    assert removed is not None
    added = next_configuration(removed, "add-learner", 3, "h3:1")
    assert added is not None
    rebound = bind_incarnations(added, {3: 99})
    assert rebound is not None
    assert refusal_bindings([bound, removed, added, rebound]) == {1: 10, 2: 20, 3: 30}
    assert refusal_bindings([removed, added, rebound]) == {1: 10, 2: 20, 3: 99}
    assert refusal_bindings([removed]) == {1: 10, 2: 20}
