"""SIGKILL the leader while four clients write: a new leader, nothing lost, nothing twice.

Each writer puts new keys and runs a CAS chain on its own counter (see
``WriteLoad``): a write retried after the kill and applied twice would either
push the counter's version past the acknowledged count or make an acknowledged
CAS come back refused, and a put applied twice would leave its key at version 2.
The killed node is then restarted from its data dir and must catch up.
"""

from __future__ import annotations

import time

import pytest
from tests.cluster.harness import Cluster, WriteLoad, check_acknowledged

pytestmark = pytest.mark.cluster

TAKEOVER_MAX_S = 10.0


def test_leader_sigkilled_during_concurrent_writes(cluster: Cluster) -> None:
    old_leader = cluster.wait_for_leader()
    with WriteLoad(cluster.endpoints, writers=4) as load:
        load.wait_progress(cluster, 20, 60.0, "before the kill")
        cluster.node(old_leader).kill()
        killed_at = time.monotonic()
        new_leader = cluster.wait_for_leader(TAKEOVER_MAX_S, not_in=[old_leader])
        takeover_s = time.monotonic() - killed_at
        load.wait_progress(cluster, 20, 60.0, "after the kill")
        logs = load.stop()
    assert new_leader != old_leader and takeover_s < TAKEOVER_MAX_S

    survivors = [node for node in cluster.nodes if node.node_id != old_leader]
    for node in survivors:
        with node.client() as kv:
            check_acknowledged(kv, logs, serializable=False)

    restarted = cluster.node(old_leader)
    restarted.restart()
    cluster.wait_caught_up(old_leader)
    with restarted.client() as kv, cluster.node(new_leader).client() as reference:
        check_acknowledged(kv, logs, serializable=True)
        assert kv.get_prefix("", serializable=True) == reference.get_prefix("")
        check_acknowledged(kv, logs, serializable=False)
