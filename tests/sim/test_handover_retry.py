"""A leader stopped gracefully asks its core to hand over again when the
first transfer was dropped (``Node._hand_over``).

Swarm seed 7809 with ``--sync-here`` (found by `paxon sim --seeds 100 --seed
7800 --sync-here`): the leader, just elected and still filling slot 94, is
stopped as on SIGTERM; its Accept of slot 94 to the only other voter is lost,
so the target is not caught up within the core's transfer time (an election
timeout) and the core drops the transfer and serves on. The node used to wait
out ``HANDOVER_MAX_S`` without asking again, then stop leading by stopping:
the cluster settled 2.05 s after healing, past the ``heal-settles`` bound.
"""

from __future__ import annotations

from paxon.sim import SimConfig
from paxon.sim.runtime import RuntimeCluster
from paxon.sim.swarm import draw

SEED = 7809


def test_a_dropped_transfer_is_asked_again_until_another_node_leads() -> None:
    config = draw(SEED, SimConfig(nodes=0, swarm=True, sync_here=True))
    cluster = RuntimeCluster(SEED, config, trace=True)
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    stops = [line for line in cluster.trace if "log n2: [2] stopping: leadership" in line]
    assert len(stops) == 1 and "handed to node 3" in stops[0], stops
