"""A leader stopped gracefully asks its core to hand over again when the
first transfer was dropped (``Node._hand_over``).

Swarm seed 8184 with ``--sync-here`` (found by `paxon sim --seeds 600 --seed
7800 --sync-here`; 8165 until session 26's refused prober, which asks for the
log, moved the schedules, and 7809, where it was first seen, before session
23's client change): the leader n1 is stopped as on SIGTERM; the core's
transfer does not complete within its transfer time (an election timeout),
and the core drops it and serves on. The node used to wait out
``HANDOVER_MAX_S`` without asking again, then stop leading by stopping: the
cluster settled past the ``heal-settles`` bound. Now it asks again, and hands
to n5.
"""

from __future__ import annotations

from tests.sim.test_aimed_moments import _CountsTransfers

from paxon.sim import SimConfig
from paxon.sim.runtime import RuntimeCluster
from paxon.sim.swarm import draw

SEED = 8184


def test_a_dropped_transfer_is_asked_again_until_another_node_leads() -> None:
    _CountsTransfers.untargeted = []
    config = draw(SEED, SimConfig(nodes=0, swarm=True, sync_here=True))
    cluster = RuntimeCluster(SEED, config, trace=True, replica_factory=_CountsTransfers)
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    untargeted = _CountsTransfers.untargeted
    assert untargeted == [1, 1], untargeted  # asked, then asked again
    stops = [line for line in cluster.trace if "log n1: [1] stopping: leadership" in line]
    assert len(stops) == 1 and "handed to node 5" in stops[0], stops
