"""A leader stopped gracefully asks its core to hand over again when the
first transfer was dropped (``Node._hand_over``).

Swarm seed 8165 with ``--sync-here`` (found by `paxon sim --seeds 600 --seed
7800 --sync-here` after session 23's client change moved the schedule of
7809, where it was first seen): the leader n5 is stopped as on SIGTERM; its
TimeoutNow to n1 goes out, n1 does not come to lead within the core's
transfer time (an election timeout), and the core drops the transfer and
serves on. The node used to wait out ``HANDOVER_MAX_S`` without asking again,
then stop leading by stopping: the cluster settled past the ``heal-settles``
bound. Now it asks again, and hands to n2.
"""

from __future__ import annotations

from tests.sim.test_aimed_moments import _CountsTransfers

from paxon.sim import SimConfig
from paxon.sim.runtime import RuntimeCluster
from paxon.sim.swarm import draw

SEED = 8165


def test_a_dropped_transfer_is_asked_again_until_another_node_leads() -> None:
    _CountsTransfers.untargeted = []
    config = draw(SEED, SimConfig(nodes=0, swarm=True, sync_here=True))
    cluster = RuntimeCluster(SEED, config, trace=True, replica_factory=_CountsTransfers)
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    untargeted = _CountsTransfers.untargeted
    assert untargeted == [5, 5], untargeted  # asked, then asked again
    stops = [line for line in cluster.trace if "log n5: [5] stopping: leadership" in line]
    assert len(stops) == 1 and "handed to node 2" in stops[0], stops
