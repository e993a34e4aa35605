"""The dashboard's routes on real ``paxon serve`` processes: ``GET /v1/slots`` shows
the puts' slots chosen under the leader's ballot (``slot_next`` only on the
leader), and ``GET /v1/activity`` has counted the commands once a second.

Cost: one 3-node cluster, about 5 s on 2 busy cores.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.cluster.harness import Cluster, http_request

pytestmark = pytest.mark.cluster
WAIT_S = 30.0


def get(cluster: Cluster, node_id: int, path: str) -> Any:
    answer = http_request(cluster.node(node_id).http, "GET", path)
    assert answer.status == 200, answer.body
    return answer.json()


def bound(cluster: Cluster) -> int | None:
    """The leader, once the configuration binding the members' incarnations (epoch
    1, proposed soon after the first election) and the no-ops that carry the log to
    where it takes effect are chosen: after that the log holds only the puts."""
    leader = cluster.leader_id()
    if leader is None:
        return None
    status = get(cluster, leader, "/v1/status")
    slots = get(cluster, leader, "/v1/slots?limit=1")
    settled = status["configuration"]["epoch"] >= 1 and slots["slot_next"] == slots["commit_index"]
    return leader if settled else None


def test_slots_and_activity_on_a_real_cluster(cluster: Cluster) -> None:
    # Else the binding's no-ops can come after the puts and fill the view.
    cluster.wait_until(lambda: bound(cluster), WAIT_S, "the members' incarnations bound")
    with cluster.client() as client:
        for index in range(10):
            client.put(f"slots/{index}", b"v")
    leader = cluster.wait_for_leader()
    follower = next(node.node_id for node in cluster.nodes if node.node_id != leader)
    view = get(cluster, leader, "/v1/slots?limit=8")
    rows = get(cluster, leader, "/v1/status")["members"]
    ballot = next(row["ballot"] for row in rows if row["id"] == leader)
    assert view["node_id"] == leader and view["slots_max"] == 64
    assert len(view["slots"]) == 8 and view["slot_next"] == view["slots"][-1]["slot"] + 1
    first = view["slot_next"] - 8
    assert [s["slot"] for s in view["slots"]] == list(range(first, first + 8))
    commands = [s for s in view["slots"] if s["commands"] > 0]
    assert commands and all(s["state"] == "chosen" and s["ballot"] == ballot for s in commands)
    assert all(not s["noop"] for s in commands)
    assert get(cluster, follower, "/v1/slots")["slot_next"] is None

    def counted() -> bool:  # the sample of the second the puts were applied in
        samples = get(cluster, leader, "/v1/activity")["samples"]
        # rates per second over intervals of about 1 s: about 10 in all
        return sum(sample["commits"] for sample in samples) > 9

    cluster.wait_until(counted, WAIT_S, "the puts in the leader's samples")
    samples = get(cluster, leader, "/v1/activity")["samples"]
    assert samples[-1]["role"] == "leader" and samples[-1]["leader"] == leader
    assert any(sample["request_ms"] is not None for sample in samples)
