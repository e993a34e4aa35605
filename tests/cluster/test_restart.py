"""SIGKILL all three nodes at once and start them again: the whole state comes back.

A fixed data set (overwrites, a delete, a CAS, a transaction) is read in full
before the crash and must read back identical afterwards, revisions included.
Writers keep going across the outage (their clients retry); every write they
had acknowledged must be there, once.
"""

from __future__ import annotations

import pytest
from tests.cluster.harness import Cluster, WriteLoad, check_acknowledged, kill_at_once

from paxon.kv.model import Compare, PutOp, Txn

pytestmark = pytest.mark.cluster


def _write_data_set(cluster: Cluster) -> int:
    """Writes the fixed data set; its last revision."""
    with cluster.client() as kv:
        for i in range(60):
            kv.put(f"key-{i % 20:02d}", f"value-{i}")
        assert kv.delete("key-19").deleted == 1
        assert kv.cas("key-00", "cas", expect_version=3).succeeded
        result = kv.txn(
            Txn(
                compare=(Compare("key-01", "version", "==", 3),),
                success=(PutOp("key-01", b"txn-1"), PutOp("key-20", b"txn-20")),
                failure=(),
            )
        )
        assert result.succeeded
        return result.revision


def test_all_nodes_sigkilled_and_restarted_lose_nothing(cluster: Cluster) -> None:
    revision_last = _write_data_set(cluster)
    with cluster.client() as kv:
        before = kv.get_prefix("key-")
    assert len(before) == 20 and max(item.mod_revision for item in before) == revision_last

    with WriteLoad(cluster.endpoints, writers=4) as load:
        load.wait_progress(cluster, 10, 60.0, "before the crash")
        kill_at_once(cluster.nodes)
        cluster.restart_all()
        cluster.wait_for_leader()
        load.wait_progress(cluster, 10, 60.0, "after the restart")
        logs = load.stop()

    for node in cluster.nodes:
        with node.client() as kv:
            assert kv.get_prefix("key-") == before, f"data set read via node {node.node_id}"
            check_acknowledged(kv, logs, serializable=False)
    with cluster.client() as kv:
        assert kv.put("after", "restart") > revision_last + sum(len(log.puts_acked) for log in logs)
