"""A leader stopped gracefully asks its core to hand over again when the
first transfer was dropped (``Node._hand_over``).

Swarm seed 7809 with ``--sync-here``, where it was first seen (found by
`paxon sim --seeds 600 --seed 7800 --sync-here`; it moved to 8165 with
session 23's client change, to 8184 with session 26's refused prober, and
back here with session 27's swarm record fit, which grew the segments of
8184's 7 nodes): the leader n3 is stopped as on SIGTERM; the core's transfer
does not complete within its transfer time (an election timeout), and the
core drops it and serves on. The node used to wait out ``HANDOVER_MAX_S``
without asking again, then stop leading by stopping: the cluster settled
past the ``heal-settles`` bound. Now it asks again, and hands to n2.
"""

from __future__ import annotations

from tests.sim.test_aimed_moments import _CountsTransfers

from paxon.sim import SimConfig
from paxon.sim.runtime import RuntimeCluster
from paxon.sim.swarm import draw

SEED = 7809


def test_a_dropped_transfer_is_asked_again_until_another_node_leads() -> None:
    _CountsTransfers.untargeted = []
    config = draw(SEED, SimConfig(nodes=0, swarm=True, sync_here=True))
    cluster = RuntimeCluster(SEED, config, trace=True, replica_factory=_CountsTransfers)
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    untargeted = _CountsTransfers.untargeted
    assert untargeted == [3, 3], untargeted  # asked, then asked again
    stops = [line for line in cluster.trace if "log n3: [3] stopping: leadership" in line]
    assert len(stops) == 1 and "handed to node 2" in stops[0], stops
