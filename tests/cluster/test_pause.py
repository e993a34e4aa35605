"""SIGSTOP the leader for longer than the election timeout, then SIGCONT it.

Writes continue from a client that knows every node: the other two elect a
leader and keep serving. When the old leader wakes up it must step down (its
own status says follower, and exactly one leader is reported), catch up, and
no acknowledged write may be lost or applied twice.
"""

from __future__ import annotations

import time

import pytest
from tests.cluster.harness import Cluster, WriteLoad, check_acknowledged, own_row

pytestmark = pytest.mark.cluster

PAUSE_MIN_S = 2.0
"""Several election timeouts (0.3 to 0.6 s by default)."""


def test_paused_leader_steps_down_and_catches_up(cluster: Cluster) -> None:
    old_leader = cluster.wait_for_leader()
    paused = cluster.node(old_leader)
    with WriteLoad(cluster.endpoints, writers=2) as load:
        load.wait_progress(cluster, 10, 60.0, "before the pause")
        paused.pause()
        paused_at = time.monotonic()
        cluster.wait_for_leader(15.0, not_in=[old_leader])
        load.wait_progress(cluster, 10, 60.0, "while the old leader is paused")
        cluster.wait_until(
            lambda: time.monotonic() - paused_at >= PAUSE_MIN_S or None,
            PAUSE_MIN_S + 1.0,
            "the pause to last",
        )
        paused.resume()

        def stepped_down() -> bool | None:
            view = paused.status()
            if view is None or own_row(view)["role"] != "follower":
                return None
            return True if cluster.leader_id() not in (None, old_leader) else None

        cluster.wait_until(stepped_down, 15.0, f"node {old_leader} to step down")
        load.wait_progress(cluster, 10, 60.0, "after the resume")
        logs = load.stop()

    cluster.wait_caught_up(old_leader)
    for node in cluster.nodes:
        with node.client() as kv:
            check_acknowledged(kv, logs, serializable=False)
    with paused.client() as kv, cluster.client() as reference:
        check_acknowledged(kv, logs, serializable=True)
        assert kv.get_prefix("", serializable=True) == reference.get_prefix("")
