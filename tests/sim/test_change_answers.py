"""A node's answers to membership requests (``paxon.sim.change_answers``):
the rule is quiet on the real node, fires on a planted bug in finding a
member, and its reading of what must be refused is pinned case by case."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.mutate.budget import RECONFIG_CONFIG

from paxon.net.client_messages import ChangeMembers
from paxon.protocol.membership import ADDRESS_BYTES_MAX, Configuration, Member
from paxon.protocol.types import NodeId
from paxon.sim.change_answers import _made, _refusal_due
from paxon.sim.runtime import RuntimeCluster

MemberLookup = Callable[[Configuration, NodeId], Member | None]


def _found_never(self: Configuration, node_id: NodeId) -> Member | None:
    """s21 sample row 5: ``for member in self.members`` → ``in []``."""
    return None


def _found_below(self: Configuration, node_id: NodeId) -> Member | None:
    """s21 sample row 6: ``member.node_id == node_id`` → ``<``."""
    for member in self.members:
        if member.node_id < node_id:
            return member
    return None


def _run(seed: int) -> RuntimeCluster:
    cluster = RuntimeCluster(seed, RECONFIG_CONFIG)
    cluster.run()
    return cluster


@pytest.mark.sim
def test_the_real_node_answers_every_change_rightly() -> None:
    judged = 0
    for seed in range(3):
        cluster = _run(seed)
        assert not cluster.checker.violations, cluster.checker.violations[:3]
        judged += cluster.change_answers.judged
    assert judged >= 10  # answers were judged, not skipped


@pytest.mark.mutation
@pytest.mark.parametrize("lookup", [_found_never, _found_below], ids=["never", "below"])
def test_a_member_found_wrongly_is_named_by_change_answered(
    monkeypatch: pytest.MonkeyPatch, lookup: MemberLookup
) -> None:
    monkeypatch.setattr(Configuration, "member", lookup)
    cluster = _run(0)
    rules = {violation.rule for violation in cluster.checker.violations}
    assert rules == {"change-answered"}, cluster.checker.violations[:3]


THREE = Configuration(
    4,
    (
        Member(1, "h1:1"),
        Member(2, "h2:1"),
        Member(3, "h3:1", voter=False),
        Member(5, "h5:1", voter=False, incarnation=9),
    ),
)
ALONE = Configuration(2, (Member(1, "h1:1"), Member(2, "h2:1", voter=False)))


def _ask(action: str, node_id: int, address: str = "") -> ChangeMembers:
    return ChangeMembers(1, action, node_id, address, "")


@pytest.mark.parametrize(
    ("newest", "request_", "incarnation", "due"),
    [
        (THREE, _ask("add", 4, "h4:1"), None, False),
        (THREE, _ask("add", 0, "h4:1"), None, True),  # node id 0
        (THREE, _ask("add", 4, "h" * ADDRESS_BYTES_MAX + ":1"), None, True),  # too long
        (THREE, _ask("add", 4, "h4"), None, True),  # not HOST:PORT
        (THREE, _ask("add", 2, "h2:1"), None, False),  # already so
        (THREE, _ask("add", 2, "h9:1"), None, True),  # a voter elsewhere
        (THREE, _ask("add-learner", 2, "h2:1"), None, True),  # a voter, not a learner
        (THREE, _ask("add-learner-auto-promote", 3, "h3:1"), None, False),
        (THREE, _ask("promote", 3), 7, False),
        (THREE, _ask("promote", 3), None, True),  # unbound, no link
        (THREE, _ask("promote", 5), None, False),  # bound already
        (THREE, _ask("promote", 4), 7, True),  # no member
        (THREE, _ask("promote", 1), None, False),  # a voter already
        (THREE, _ask("remove", 4), None, False),
        (THREE, _ask("remove", 2), None, False),
        (ALONE, _ask("remove", 1), None, True),  # the last voter
        (ALONE, _ask("remove", 2), None, False),
    ],
)
def test_a_refusal_is_due_only_for_what_cannot_be(
    newest: Configuration, request_: ChangeMembers, incarnation: int | None, due: bool
) -> None:
    assert _refusal_due(newest, request_, incarnation) is due


def test_done_means_the_newest_configuration_holds_the_change() -> None:
    assert _made(THREE, _ask("add", 2, "h2:1"))
    assert not _made(THREE, _ask("add", 2, "h9:1"))
    assert not _made(THREE, _ask("add", 3, "h3:1"))  # a learner, not a voter
    assert _made(THREE, _ask("add-learner", 3, "h3:1"))
    assert _made(THREE, _ask("promote", 1))
    assert not _made(THREE, _ask("promote", 3))
    assert _made(THREE, _ask("remove", 4))
    assert not _made(THREE, _ask("remove", 3))
