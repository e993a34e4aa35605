"""``status-roles`` (``paxon.sim.status_roles``): each member's role in a node's
status is what its newest configuration says; the planted bug is the s30
sample's ``membership.py:146``, ``learners`` returning the voters."""

from __future__ import annotations

from typing import Any

import pytest

from paxon.protocol.membership import Configuration, Member
from paxon.sim import SimConfig, run_seed
from paxon.sim.status_roles import role_problems

# Voters 1 and 2, learner 3.
NEWEST = Configuration(2, (Member(1, "a:1"), Member(2, "a:2"), Member(3, "a:3", voter=False)))


def status(leader: int | None, *roles: str | None) -> dict[str, Any]:
    return {
        "leader": leader,
        "members": [{"id": n, "role": role} for n, role in enumerate(roles, start=1)],
    }


def test_the_roles_a_configuration_gives_pass() -> None:
    assert (
        role_problems(2, "follower", status(1, "leader", "follower", "learner"), NEWEST, None) == []
    )
    assert role_problems(3, "follower", status(1, "leader", None, "learner"), NEWEST, None) == []
    assert role_problems(1, "leader", status(1, "leader", None, "learner"), NEWEST, None) == []
    # No leader known: nobody is shown leading.
    assert role_problems(2, "probing", status(None, None, "probing", "learner"), NEWEST, None) == []


def test_a_voter_shown_learning_and_a_learner_shown_voting_are_named() -> None:
    voter_as_learner = role_problems(
        2, "follower", status(1, "leader", "learner", "learner"), NEWEST, None
    )
    assert len(voter_as_learner) == 1 and "n2 as learner" in voter_as_learner[0]
    learner_as_nothing = role_problems(
        2, "follower", status(1, "leader", "follower", None), NEWEST, None
    )
    assert len(learner_as_nothing) == 1 and "a learner" in learner_as_nothing[0]
    wrong_leader = role_problems(
        2, "follower", status(1, None, "follower", "learner"), NEWEST, None
    )
    assert len(wrong_leader) == 1 and "expected leader" in wrong_leader[0]


def test_a_node_removed_or_told_so_shows_itself_removed() -> None:
    gone = Configuration(3, (Member(1, "a:1"), Member(3, "a:3", voter=False)))
    assert role_problems(2, "follower", status(1, "leader", "removed", "learner"), gone, None) == []
    assert role_problems(2, "follower", status(1, "leader", "follower", "learner"), gone, None)
    told = status(1, "leader", "removed", "learner")
    assert role_problems(2, "follower", told, NEWEST, 3) == []
    assert role_problems(2, "follower", told, NEWEST, None)


@pytest.mark.sim
@pytest.mark.mutation
def test_learners_that_are_the_voters_are_named_by_status_roles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Planted: ``Configuration.learners`` returns the voters (the s30 sample's
    ``membership.py:146``), so every voter not leading shows as a learner.
    No other rule reads those labels; swarm seed 0 passes without the plant."""
    config = SimConfig(nodes=0, swarm=True)
    assert run_seed(0, config).ok
    monkeypatch.setattr(
        Configuration,
        "learners",
        property(lambda self: frozenset(m.node_id for m in self.members if m.voter)),
    )
    planted = run_seed(0, config)
    rules = {violation.split()[1].rstrip(":") for violation in planted.violations}
    assert rules == {"status-roles"}, planted.violations[:3]
