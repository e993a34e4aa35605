"""``removed-learns``: a removed node that missed its removal learns it (``removed_learns``)."""

from __future__ import annotations

import pytest

from paxon.protocol.membership import Configuration, Member
from paxon.protocol.messages import Message, ProbeReply, RemovedNotice
from paxon.protocol.replica import Replica
from paxon.protocol.types import Value
from paxon.sim import SimConfig, run_seed
from paxon.sim.log_configs import LogConfigs
from paxon.sim.removed_learns import (
    NodeView,
    learn_bound,
    memory_problem,
    removed_in_time,
    unaware_removed,
)

_CONFIG = SimConfig(nodes=3)
_OLD = Configuration.initial([1, 2, 3])
_NEW = Configuration(1, _OLD.members[:2], _OLD.alpha)


def _views(**remembering: frozenset[int]) -> dict[int, NodeView]:
    """n3 missed its removal; n1 and n2 hold the new configuration."""
    return {
        1: NodeView(1, _NEW, (1, 2), remembering.get("n1", frozenset({3})), 90, 0),
        2: NodeView(2, _NEW, (1, 2), remembering.get("n2", frozenset({3})), 90, 0),
        3: NodeView(3, _OLD, (1, 2, 3), frozenset(), 10, 0),
    }


def test_a_removed_node_that_still_holds_itself_a_member_is_named() -> None:
    views = _views()
    (detail,) = unaware_removed([3], views.get)
    assert detail.startswith("n3, removed, still holds itself a member")
    assert "n1, n2" in detail and "configuration 0" in detail
    assert "hold the slots it lacks" in detail


def test_a_removed_node_that_knows_or_that_nobody_can_tell_is_not_named() -> None:
    knows = _views()
    knows[3] = NodeView(3, _NEW, (1, 2), frozenset(), 20, 0)
    assert unaware_removed([3], knows.get) == []
    # Its members forgot it (a restart after compacting past the removal).
    forgot = _views(n1=frozenset(), n2=frozenset())
    assert unaware_removed([3], forgot.get) == []
    # Its members are down; or it is down itself.
    alone = {3: _views()[3]}
    assert unaware_removed([3], alone.get) == []
    assert unaware_removed([3], {1: _views()[1], 2: _views()[2]}.get) == []
    # One member compacted past what it lacks (it may send no snapshot), and
    # the other forgot it: no log to learn, and no majority to tell it.
    compacted = _views(n2=frozenset())
    compacted[1] = NodeView(1, _NEW, (1, 2), frozenset({3}), 90, 11)
    assert unaware_removed([3], compacted.get) == []
    compacted[1] = NodeView(1, _NEW, (1, 2), frozenset({3}), 90, 10)
    assert "n1, which" in unaware_removed([3], compacted.get)[0]
    # One member that remembers and holds the log is enough.
    one = _views(n2=frozenset())
    (detail,) = unaware_removed([3], one.get)
    assert "n1, which" in detail
    # Told by a majority (its log still names it): it knows.
    told = _views()
    told[3] = NodeView(3, _OLD, (1, 2, 3), frozenset(), 10, 0, removed_by_notice=1)
    assert unaware_removed([3], told.get) == []


def test_a_removed_node_a_majority_of_its_voters_remember_is_named_past_compaction() -> None:
    """Both members compacted past the change: no log can teach it, but a
    majority of the voters it knows remember the removal and can tell it."""
    views = _views()
    views[1] = NodeView(1, _NEW, (1, 2), frozenset({3}), 90, 50)
    views[2] = NodeView(2, _NEW, (1, 2), frozenset({3}), 90, 50)
    (detail,) = unaware_removed([3], views.get)
    assert "n1, n2, a majority of its voters, remember its removal" in detail


@pytest.mark.parametrize(
    ("effect", "judged"), [(4.5, True), (3.0, True), (None, False), (9.9, False)]
)
def test_a_removal_is_judged_only_with_time_to_learn_it(effect: float | None, judged: bool) -> None:
    bound = learn_bound(_CONFIG)
    end = 4.5 + bound
    at = end - bound / 2 if effect is None else effect  # None: half the bound left
    assert (removed_in_time([(3, at)], 4.0, end, _CONFIG) == [3]) is judged
    # Before the heal, counted from the heal.
    assert removed_in_time([(3, 1.0)], 4.0, 4.0 + bound, _CONFIG) == [3]
    assert removed_in_time([(3, 1.0)], 4.0, 4.0 + bound - 0.01, _CONFIG) == []


def _cut_through_removal(snapshot_interval_slots: int) -> SimConfig:
    """5 nodes, every voter the operator removes cut off until its removal
    takes effect, a heal of 15 s."""
    return SimConfig(
        nodes=5,
        faults=frozenset({"reconfig", "drop", "crash"}),
        heal_phase_s=15.0,
        snapshot_interval_slots=snapshot_interval_slots,
        removed_cut_share=1.0,
    )


def _rules(violations: list[str]) -> set[str]:
    return {violation.split(": ")[0].split()[-1] for violation in violations}


class _SilentToTheRemoved(Replica):
    """The planted bug: a removed node's probe is ignored, as before session 27."""

    def _tell_the_removed(self, message: Message) -> None:
        return None


@pytest.mark.sim
@pytest.mark.mutation
def test_a_voter_cut_off_through_its_removal_learns_it_once_back() -> None:
    """5 nodes, seed 11, every voter the operator removes cut off until its
    removal takes effect, a heal phase of 15 s, and snapshots rare enough
    that the members keep the log the removed node lacks (a removed node gets
    no snapshot): n2 misses its removal. Back, it probes members for whom it
    is a stranger; they refuse out loud, it asks for the log and learns it.
    Members that ignore its probes leave it standing for good, and
    ``removed-learns`` names it."""
    config = _cut_through_removal(100_000)
    real = run_seed(11, config, trace=True)
    assert real.ok, real.violations[:3]
    assert any("fault: n2, being removed, cut off" in line for line in real.trace)
    assert any("log n2: [2] this node was removed" in line for line in real.trace)
    silent = run_seed(11, config, replica_factory=_SilentToTheRemoved)
    assert _rules(silent.violations) == {"removed-learns"}, silent.violations[:3]


class _DeafToNotices(Replica):
    """The planted bug: removal notices are ignored, as before session 28."""

    def _on_removed_notice(self, message: RemovedNotice) -> None:
        return None


@pytest.mark.sim
@pytest.mark.mutation
def test_a_voter_cut_off_through_its_removal_believes_a_majority_past_compaction() -> None:
    """As above, seed 34, but with a snapshot every 20 slots: by the time n2
    and n5 are back, their members have compacted past the changes that
    removed them, so no log can teach them. A majority of the voters each
    knows remember the removal and send a ``RemovedNotice``; both believe it
    and stand no more. A node deaf to notices stands for good, and
    ``removed-learns`` names both."""
    config = _cut_through_removal(20)
    real = run_seed(34, config, trace=True)
    assert real.ok, real.violations[:3]
    told = [line for line in real.trace if "a majority of its voters say" in line]
    assert {line.split("log ")[1].split(":")[0] for line in told} == {"n2", "n5"}, told
    deaf = run_seed(34, config, replica_factory=_DeafToNotices)
    assert _rules(deaf.violations) == {"removed-learns"}, deaf.violations[:3]
    assert all("a majority of its voters" in v for v in deaf.violations), deaf.violations[:3]


def test_the_removed_a_prefix_knows_are_read_from_the_log() -> None:
    """Epoch 1 removes n3, epoch 2 adds n4, epoch 3 removes n1 and adds n3
    back (alpha 2: each takes effect two slots after it is chosen)."""
    first = Configuration.initial([1, 2, 3], alpha=2)
    members = {m.node_id: m for m in first.members}
    configs = LogConfigs(first)
    changes = {
        0: Configuration(1, (members[1], members[2]), 2),
        3: Configuration(2, (members[1], members[2], Member(4, "")), 2),
        6: Configuration(3, (members[2], members[3], Member(4, "")), 2),
    }
    for slot in range(10):
        change = changes.get(slot)
        configs.read(None if change is None else Value((change.command(),)))
    assert configs.removed_known_at(0) == frozenset()
    assert configs.removed_known_at(2) == {3}  # epoch 1 in effect from slot 2
    assert configs.removed_known_at(7) == frozenset()  # n3 back in epoch 3, pending
    assert configs.removed_known_at(8) == {1}
    # A node that joined with epoch 1 or later does not know what epoch 1 removed.
    assert configs.removed_known_at(2, since_epoch=1) == frozenset()


def test_a_memory_other_than_the_log_says_is_named() -> None:
    view = NodeView(2, _NEW, (1, 2), frozenset({3}), 90, 0)
    assert memory_problem(view, frozenset({3}), None) is None
    forgot = memory_problem(view, frozenset({3, 5}), None)
    assert forgot is not None and "n2 (chosen prefix 90)" in forgot and "forgot [5]" in forgot
    invented = memory_problem(view, frozenset(), None)
    assert invented is not None and "never saw [3] removed" in invented
    # A joiner must know at least what its log removed since epoch 1, and may
    # know more from a snapshot.
    assert memory_problem(view, frozenset({3, 5}), frozenset({3})) is None
    assert memory_problem(view, frozenset({3, 5}), frozenset({5})) is not None
    # Past what a member remembers, the oldest are forgotten: not judged.
    assert memory_problem(view, frozenset(range(10, 27)), None) is None


# A cluster with one client writing and no lease, lock or watch clients, under
# membership changes, loss and partitions: the idle stretches let snapshots
# outrun a learner cut off through its removal.
_QUIET = SimConfig(
    nodes=3,
    spares=1,
    faults=frozenset({"reconfig", "drop", "partition"}),
    clients=1,
    lease_clients=0,
    lock_clients=0,
    watch_clients=0,
)


class _SilentToLearnRequests(Replica):
    """The planted bug: a removed node's learn request for compacted slots gets
    no notice, as before session 32."""

    def _notify_removed(self, node_id: int) -> None:
        if not self._ready.messages or not isinstance(self._ready.messages[-1], ProbeReply):
            return None
        return super()._notify_removed(node_id)


@pytest.mark.sim
@pytest.mark.mutation
def test_a_learner_removed_while_cut_off_is_told_by_the_notices_of_a_majority() -> None:
    """Seed 1 of the quiet shape: learner n4 is cut off while its removal is
    chosen and takes effect, and its members compact past the change. A
    learner never probes, so only its learn requests can be answered: each
    member answers with a ``RemovedNotice`` and n4 believes a majority. With
    learn requests unanswered (only probes told), ``removed-learns`` names it."""
    real = run_seed(1, _QUIET, trace=True)
    assert real.ok, real.violations[:3]
    assert any("log n4: [4] this node was removed" in line for line in real.trace)
    silent = run_seed(1, _QUIET, replica_factory=_SilentToLearnRequests)
    assert _rules(silent.violations) == {"removed-learns"}, silent.violations[:3]
