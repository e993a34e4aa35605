"""Membership changes on real processes, as an operator runs them with the CLI:
grow 3 nodes to 4 (a learner first, then a voter), remove the leader, and keep
serving writes throughout; every acknowledged write is there afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.harness import HOST, Cluster, ServerNode, free_ports, http_request, own_row

pytestmark = pytest.mark.cluster


def paxon(cluster: Cluster, *args: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "paxon", *args, "--endpoints", ",".join(cluster.endpoints)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{args}: {result.stderr}\n{cluster.describe()}"
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def roles(configuration: dict[str, Any]) -> dict[int, str]:
    return {member["id"]: member["role"] for member in configuration["members"]}


def test_grow_to_four_then_remove_the_leader_while_serving(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path).start()
    try:
        cluster.wait_for_leader()
        client = cluster.client()
        for i in range(20):
            client.put(f"k{i}", f"v{i}")
        native, http = free_ports(2)
        peers = cluster.node(1).peers + f",4={HOST}:{native}"
        newcomer = ServerNode(4, (HOST, native), (HOST, http), peers, tmp_path)

        added = paxon(cluster, "members", "add", f"4={HOST}:{native}", "--learner", "--json")
        assert roles(added) == {1: "voter", 2: "voter", 3: "voter", 4: "learner"}
        # The same request again is answered at once: the change is made.
        assert (
            paxon(cluster, "members", "add", f"4={HOST}:{native}", "--learner", "--json")["epoch"]
            == added["epoch"]
        )
        newcomer.start()
        cluster.nodes.append(newcomer)
        newcomer.wait_ready(deadline=time.monotonic() + 30)
        client.put("during", "learner")
        cluster.wait_caught_up(4)
        assert own_row(newcomer.status() or {})["role"] == "learner"

        promoted = paxon(cluster, "members", "promote", "4", "--json")
        assert roles(promoted) == {1: "voter", 2: "voter", 3: "voter", 4: "voter"}
        client.put("after", "promote")

        leader = cluster.wait_for_leader()
        removed = paxon(cluster, "members", "remove", str(leader), "--json")
        assert leader not in roles(removed) and len(roles(removed)) == 3
        # Writes go on; once the removal is in effect a remaining voter leads.
        for i in range(80):
            client.put(f"after-remove-{i}", "x")
        remaining = [node_id for node_id in (1, 2, 3, 4) if node_id != leader]

        def new_leader() -> int | None:
            views = cluster.views()
            leaders = [
                node_id
                for node_id, view in views.items()
                if node_id in remaining and own_row(view)["role"] == "leader"
            ]
            return leaders[0] if len(leaders) == 1 else None

        cluster.wait_until(new_leader, 30, "a leader among the remaining voters")
        client.put("last", "write")
        assert client.get("k7").value == b"v7"
        assert client.get("during").value == b"learner"
        assert client.get("last").value == b"write"
        argv = [sys.executable, "-m", "paxon", "members", "list", "--json"]
        argv += ["--endpoints", ",".join(cluster.endpoints)]
        listed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert {row["id"]: row["role"] for row in rows}[leader] == "removed"
        over_http = http_request(newcomer.http, "GET", "/v1/members").json()
        assert over_http["configuration"] == removed
    finally:
        cluster.close()


def test_transfer_leader_and_a_leader_stopped_by_sigterm_hands_over(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path).start()
    try:
        leader = cluster.wait_for_leader()
        target = next(node_id for node_id in (1, 2, 3) if node_id != leader)
        client = cluster.client()
        client.put("before", "transfer")
        argv = [sys.executable, "-m", "paxon", "members", "transfer-leader", str(target)]
        argv += ["--endpoints", ",".join(cluster.endpoints)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"node {target} leads"
        assert cluster.wait_for_leader() == target
        client.put("after", "transfer")
        # SIGTERM the new leader: it hands over before it exits.
        cluster.node(target).stop()
        assert "leadership handed to node" in cluster.node(target).log_tail()
        successor = cluster.wait_for_leader(not_in=[target])
        assert successor != target
        client.put("after", "sigterm")
        assert client.get("after").value == b"sigterm"
    finally:
        cluster.close()


def _remove_stopped_n3(cluster: Cluster) -> ServerNode:
    """Stop node 3 (a leader hands over first), remove it through n1 and n2,
    and wait for the removal to take effect on both."""
    cluster.wait_for_leader()
    removed = cluster.node(3)
    removed.stop()
    cluster.wait_for_leader(not_in=[3])
    endpoints = [cluster.node(n).endpoint for n in (1, 2)]
    argv = [sys.executable, "-m", "paxon", "members", "remove", "3", "--json"]
    argv += ["--endpoints", ",".join(endpoints)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{result.stderr}\n{cluster.describe()}"
    cluster.client(1, 2).put("after", "removal")

    def in_effect() -> bool | None:
        views = [cluster.node(n).status() or {} for n in (1, 2)]
        return all(3 not in {row["id"] for row in view.get("members", [])} for view in views)

    cluster.wait_until(in_effect, 30, "the removal in effect on n1 and n2")
    return removed


def _n3_stands_no_more(cluster: Cluster, removed: ServerNode, said: str) -> None:
    """Start node 3 again well after the members dropped their 5 s link to it
    (``LEAVING_LINK_S``): it must say ``said`` in its log and status, stop
    standing, and the cluster serve on."""
    time.sleep(6.0)  # past LEAVING_LINK_S: only the memory of the removed keeps a link
    removed.restart()
    cluster.wait_until(lambda: said in removed.log_tail(400) or None, 30, "n3 to learn its removal")
    assert own_row(removed.status() or {})["role"] == "removed"
    ballot = own_row(removed.status() or {})["ballot"]
    time.sleep(2.0)  # many election timeouts: it no longer stands
    assert own_row(removed.status() or {})["ballot"] == ballot
    client = cluster.client(1, 2)
    client.put("still", "serving")
    assert client.get("after").value == b"removal"


def test_a_node_removed_while_down_learns_it_when_it_comes_back(tmp_path: Path) -> None:
    """Node 3 is stopped, removed, and started again on its data directory: it
    still holds itself a voter. The members remember its removal, keep a link
    to it, refuse its probes out loud and answer its request for the log: it
    learns the change, says so in its log and status, and stands no more."""
    cluster = Cluster(tmp_path).start()
    try:
        removed = _remove_stopped_n3(cluster)
        _n3_stands_no_more(cluster, removed, "this node was removed from the cluster")
    finally:
        cluster.close()


def test_a_node_removed_while_down_believes_its_voters_once_they_compacted(
    tmp_path: Path,
) -> None:
    """As above, but n1 and n2 write two snapshots' worth of commands (32 MiB
    each, ``snapshot_interval_bytes``) first, compact their logs past the
    removal, and restart: no log can teach n3 now, and it may get no snapshot.
    Both remember it (their snapshots carry the memory) and answer its probes
    with a ``RemovedNotice``; from a majority of the
    voters it knows, it believes it (on the wire: the peer codec, the
    transport's links to the removed)."""
    cluster = Cluster(tmp_path).start()
    try:
        removed = _remove_stopped_n3(cluster)
        client = cluster.client(1, 2)
        effect = max(own_row(cluster.node(n).status() or {})["commit_index"] for n in (1, 2))
        value = b"x" * 1_000_000
        for index in range(72):  # 72 MB: two snapshots past the removal on each
            client.put(f"bulk{index % 4}", value)

        def compacted() -> bool | None:
            views = [own_row(cluster.node(n).status() or {}) for n in (1, 2)]
            return all((row["log_start"] or 0) > effect for row in views)

        cluster.wait_until(compacted, 60, "n1 and n2 to compact past the removal")
        # Restarted, they recover from those snapshots: the log that removed n3
        # is gone, and what they remember of it is what the snapshots carry.
        for member in (1, 2):
            cluster.node(member).stop()
        for member in (1, 2):
            cluster.node(member).restart()
        cluster.wait_for_leader(not_in=[3])
        cluster.wait_until(compacted, 30, "n1 and n2 back from their snapshots")
        said = "a majority of its voters say"
        _n3_stands_no_more(cluster, removed, said)
    finally:
        cluster.close()
