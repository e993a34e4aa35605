"""Health and readiness on real processes: ``GET /health``, ``GET /readyz`` and
``paxon endpoint health`` on a healthy cluster, on a leader cut off from its
followers (both paused), on a data directory that takes no write, and on
endpoints where nothing listens.

Cost: two 3-node clusters, about 10 s on 2 busy cores; the disk test is skipped
where `chattr +i` does not work (not root, or a file system without it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest
from tests.cluster.harness import HOST, Cluster, free_ports, http_request
from tests.cluster.harness import paxon_cli as paxon

pytestmark = pytest.mark.cluster

WAIT_S = 30.0


def readyz(cluster: Cluster, node_id: int) -> tuple[int, dict[str, Any]]:
    answer = http_request(cluster.node(node_id).http, "GET", "/readyz", timeout_s=5.0)
    return answer.status, answer.json()


def readyz_once(cluster: Cluster, node_id: int, status: int, what: str) -> dict[str, Any]:
    """Node ``node_id``'s readiness report, polled until ``/readyz`` answers ``status``."""
    deadline = time.monotonic() + WAIT_S
    while True:
        answered, report = readyz(cluster, node_id)
        if answered == status:
            return report
        assert time.monotonic() < deadline, f"{what}: {report}"
        time.sleep(0.05)


def test_health_readiness_and_endpoint_health(cluster: Cluster) -> None:
    leader = cluster.wait_for_leader()
    with cluster.client() as kv:
        kv.put("k", "v")  # every node has applied something and heard the leader
    for node in cluster.nodes:
        answer = http_request(node.http, "GET", "/health", timeout_s=5.0)
        assert answer.status == 200
        assert answer.json() == {"health": "ok", "node_id": node.node_id}
        report = readyz_once(cluster, node.node_id, 200, f"node {node.node_id} never ready")
        assert report["checks"] == {"leader": "ok", "caught_up": "ok", "disk": "ok"}
        assert report["leader"] == leader

    # --cluster from one endpoint finds the other members.
    result = paxon("endpoint", "health", "--cluster", "--json", endpoints=cluster.endpoints[0])
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(row["endpoint"] for row in rows) == sorted(cluster.endpoints)
    assert all(row["healthy"] and row["error"] is None for row in rows)
    text = paxon("endpoint", "health", endpoints=",".join(cluster.endpoints))
    assert text.returncode == 0 and text.stdout.count(" is healthy: took ") == 3

    # The leader loses both followers: it steps down, and says why it is not ready.
    followers = [node for node in cluster.nodes if node.node_id != leader]
    for node in followers:
        node.pause()
    report = readyz_once(cluster, leader, 503, "a leader without its quorum stayed ready")
    assert report["code"] == "not_ready" and report["failed"] == "leader"
    assert report["error"].startswith("not ready: leader: ")
    result = paxon("endpoint", "health", "--timeout", "2", endpoints=",".join(cluster.endpoints))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "is unhealthy" in lines[cluster.node(leader).endpoint]
    assert "not ready: leader" in lines[cluster.node(leader).endpoint]
    for node in followers:
        assert "is unhealthy" in lines[node.endpoint]
        node.resume()
    readyz_once(cluster, leader, 200, "the cluster never became ready again")

    # A follower that hears from no leader is not ready either.
    leader = cluster.wait_for_leader()
    lonely = next(node for node in cluster.nodes if node.node_id != leader)
    others = [node for node in cluster.nodes if node is not lonely]
    for node in others:
        node.pause()
    report = readyz_once(cluster, lonely.node_id, 503, "a follower hearing no leader stayed ready")
    assert report["failed"] == "leader" and report["role"] != "leader"
    for node in others:
        node.resume()
    readyz_once(cluster, lonely.node_id, 200, "the follower never became ready again")


def test_endpoint_health_exits_3_when_nothing_answers() -> None:
    ports = free_ports(2)
    endpoints = ",".join(f"{HOST}:{port}" for port in ports)
    result = paxon("endpoint", "health", "--timeout", "2", endpoints=endpoints)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.count(" is unhealthy: took ") == 2


def test_a_data_dir_that_takes_no_write_makes_its_node_not_ready(cluster: Cluster) -> None:
    """``chattr +i`` on a data directory refuses new files even to root: the disk
    probe fails, so the node is not ready, and is again once the flag is gone."""
    node = cluster.node(2)
    readyz_once(cluster, 2, 200, "node 2 never ready")
    if shutil.which("chattr") is None:
        pytest.skip("no chattr here")
    flagged = subprocess.run(["chattr", "+i", str(node.data_dir)], capture_output=True, check=False)
    if flagged.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {flagged.stderr!r}")
    try:
        report = readyz_once(cluster, 2, 503, "node 2 stayed ready on a disk that takes no write")
        assert report["failed"] == "disk", report
        assert report["checks"]["disk"] == "a probe write failed: Operation not permitted"
        result = paxon("endpoint", "health", endpoints=node.endpoint)
        assert result.returncode == 1
        assert "is unhealthy" in result.stdout and "not ready: disk: a probe write failed" in (
            result.stdout
        )
    finally:
        subprocess.run(["chattr", "-i", str(node.data_dir)], check=True)
    readyz_once(cluster, 2, 200, "node 2 not ready again once its disk takes writes")
