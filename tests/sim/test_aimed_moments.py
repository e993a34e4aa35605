"""Faults aimed at moments of ``protocol/`` and ``storage/`` that the swarm's
random faults never built (issue 9, point 4; docs/testing.md, "Coverage").

Each test replays the swarm seed of 0-299 that first builds its moment, and
checks the moment happened (a counter the fault keeps, or what the core was
asked) and that the run stayed safe and live.
"""

from __future__ import annotations

from typing import Any

from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica
from paxon.protocol.types import NodeId
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
