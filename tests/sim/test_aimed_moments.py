"""Faults aimed at moments of ``protocol/`` and ``storage/`` that the swarm's
random faults never built (issue 9, point 4; docs/testing.md, "Coverage").

Each test replays the swarm seed of 0-299 that first builds its moment, and
checks the moment happened (a counter the fault keeps, or what the core was
asked) and that the run stayed safe and live.
"""

from __future__ import annotations

from typing import Any

from paxon.protocol.membership import ConfigState
from paxon.protocol.messages import TimeoutNow
from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import NodeId, Slot
from paxon.sim import SimConfig
from paxon.sim.runtime import RuntimeCluster
from paxon.sim.swarm import draw

SWARM = SimConfig(nodes=0, swarm=True)


class _CountsTransfers(Replica):
    """A replica that counts the handovers it is asked for without a target."""

    untargeted: list[NodeId] = []

    def transfer_leadership(self, target: NodeId | None = None) -> Ready:
        if target is None:
            _CountsTransfers.untargeted.append(self.node_id)
        return super().transfer_leadership(target)


def _run(seed: int, **kwargs: Any) -> RuntimeCluster:
    cluster = RuntimeCluster(seed, draw(seed, SWARM), **kwargs)
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    return cluster


def test_a_graceful_stop_aimed_at_the_leader_hands_leadership_over() -> None:
    """Swarm seed 67: the leader is stopped as on SIGTERM; it asks its core to
    hand over to a voter of its choosing (``Node._hand_over``)."""
    _CountsTransfers.untargeted = []
    cluster = _run(67, replica_factory=_CountsTransfers)
    assert _CountsTransfers.untargeted, "no leader was asked to hand over"
    assert cluster.leader_stop.stopped == 1


def test_a_roll_over_whose_directory_fsync_is_lost_leaves_a_seal_naming_nothing() -> None:
    """Swarm seed 54: a crash point right after a roll-over made durable, and the
    roll-over's directory fsync lost (``strike_successor_lost``): the old segment
    ends with a seal naming a segment that is gone. The run checks that recovery
    refuses that disk (``check_recovery``: a violation if it starts)."""
    cluster = _run(54)
    assert cluster.faults.successors_lost == 1


class _RecordsRefusals(Replica):
    """A replica that records what the aimed requests reach in its core."""

    transfers_refused: list[NodeId] = []
    timeouts_refused: list[NodeId] = []

    def transfer_leadership(self, target: NodeId | None = None) -> Ready:
        try:
            return super().transfer_leadership(target)
        except ValueError:
            if target is not None:
                _RecordsRefusals.transfers_refused.append(target)
            raise

    def _on_timeout_now(self, message: TimeoutNow) -> None:
        role = self.role
        super()._on_timeout_now(message)
        if self.role is role and role is not Role.FOLLOWER:
            _RecordsRefusals.timeouts_refused.append(self.node_id)


def test_a_transfer_to_a_node_that_is_not_a_voter_is_refused() -> None:
    """Swarm seed 113: the aimed operator asks the leader to hand over to a
    node that is not a voter (``aims``); the core refuses it (``bad_request``)
    and the run stays safe."""
    _RecordsRefusals.transfers_refused = []
    cluster = _run(113, replica_factory=_RecordsRefusals)
    assert _RecordsRefusals.transfers_refused, "no transfer to a non-voter reached a leader"
    assert cluster.aims.misdirected == 1
    assert cluster.operator.refused >= 1


def test_a_duplicate_timeout_now_is_refused_by_the_node_that_stood() -> None:
    """Swarm seed 127: every TimeoutNow of an aimed seed is delivered twice; the
    second reaches the node that already stood on the first, which refuses it."""
    _RecordsRefusals.timeouts_refused = []
    cluster = _run(127, replica_factory=_RecordsRefusals)
    assert _RecordsRefusals.timeouts_refused, "no TimeoutNow was refused"
    assert cluster.aims.timeout_now_twice >= 1


class _RecordsRemovedLeaders(Replica):
    """A replica that records a leader reaching the effect of its own removal."""

    removed: list[NodeId] = []

    def _flush_queue(self) -> None:
        super()._flush_queue()
        if self.role is Role.LEADER and self.node_id not in self._history.at(self.slot_next).voters:
            _RecordsRemovedLeaders.removed.append(self.node_id)


def test_a_leader_whose_removal_takes_effect_proposes_nothing_there() -> None:
    """Swarm seed 144 (alpha 3, drawn small): the operator removes the leader and
    the removal takes effect while it leads; it proposes nothing from there on
    and hands over (its next leader carries the log on)."""
    _RecordsRemovedLeaders.removed = []
    cluster = _run(144, replica_factory=_RecordsRemovedLeaders)
    assert _RecordsRemovedLeaders.removed, "no leader reached its removal's effect"
    assert cluster.config.alpha < 64


class _RecordsStandingInstalls(Replica):
    """A replica that records a snapshot installed while it does not follow
    (probing, a candidate not catching up, or leading): it steps down."""

    installs: list[tuple[NodeId, Role, Role]] = []  # node, role before, role after

    def install_snapshot(self, slot: Slot, configs: ConfigState = ()) -> Ready:
        role, behind = self.role, slot > self.slot_chosen
        catching_up = role is Role.PREPARING and self._catch_up_to > 0
        ready = super().install_snapshot(slot, configs)
        if behind and role is not Role.FOLLOWER and not catching_up:
            _RecordsStandingInstalls.installs.append((self.node_id, role, self.role))
        return ready


def test_a_snapshot_installed_by_a_node_that_stands_steps_it_down() -> None:
    """Swarm seed 91: a leader's last snapshot chunk to a follower stalls while
    the two are cut apart (``stalled_chunk``); the follower's election timer
    fires and it probes, then the chunk gets through and it installs the
    snapshot while probing: it steps down (``Replica.install_snapshot``)."""
    _RecordsStandingInstalls.installs = []
    cluster = _run(91, replica_factory=_RecordsStandingInstalls)
    assert cluster.stalled_chunk.let_through_standing == 1
    installs = _RecordsStandingInstalls.installs
    assert installs, "no snapshot was installed by a node that stands"
    assert all(after is Role.FOLLOWER for _, _, after in installs), installs
