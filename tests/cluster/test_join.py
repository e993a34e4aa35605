"""``paxon serve --join`` on real processes: a new member asks the cluster for the
members instead of taking ``--peers``; the refusals an operator can meet.

Cost: about 15 s (one 3-node cluster, one node joining, four refused starts).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.harness import (
    HOST,
    Cluster,
    JoiningNode,
    free_ports,
    http_request,
    own_row,
    run_serve,
    serve_argv,
)

pytestmark = pytest.mark.cluster


def paxon(cluster: Cluster, *args: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "paxon", *args, "--endpoints", ",".join(cluster.endpoints)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{args}: {result.stderr}\n{cluster.describe()}"
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_a_node_added_as_a_learner_joins_catches_up_and_is_promoted(
    cluster: Cluster, tmp_path: Path
) -> None:
    client = cluster.client()
    for i in range(30):
        client.put(f"k{i}", f"v{i}")
    newcomer = JoiningNode(4, tmp_path, cluster.endpoints[:2])
    not_yet = run_serve(*newcomer.argv()[4:])
    assert not_yet.returncode == 2, not_yet.stderr
    assert "paxon members add 4=PEER_HOST:PORT --learner" in not_yet.stderr
    assert not newcomer.data_dir.exists()  # refused before it made its data dir

    paxon(cluster, "members", "add", f"4={newcomer.endpoint}", "--learner", "--json")
    newcomer.start()
    cluster.nodes.append(newcomer)
    newcomer.wait_ready(deadline=time.monotonic() + 30)
    assert (newcomer.data_dir / "FIRST-CONFIG").exists()
    client.put("during", "learner")
    cluster.wait_caught_up(4)
    assert own_row(newcomer.status() or {})["role"] == "learner"
    paxon(cluster, "members", "promote", "4", "--json")
    client.put("after", "promote")
    reader = newcomer.client()
    for i in range(30):
        assert reader.get(f"k{i}").value == f"v{i}".encode()
    assert reader.get("after").value == b"promote"

    # Restarted with the same flags, --join included: it ignores --join and
    # recovers its members from its data directory.
    newcomer.stop()
    newcomer.restart()
    client.put("after", "rejoin")
    cluster.wait_caught_up(4)
    assert newcomer.client().get("after").value == b"rejoin"
    assert "--join ignored" in newcomer.log_tail(200)
    # With --peers naming only itself: ignored too, the data dir knows the members.
    newcomer.stop()
    newcomer.join = []
    own = (
        *("--id", "4", "--data-dir", str(newcomer.data_dir), "--listen", newcomer.endpoint),
        *("--http", f"{HOST}:{newcomer.http[1]}"),
    )
    # only itself: ignored, the data dir knows the members
    newcomer.argv = lambda: serve_argv(*own, "--peers", f"4={newcomer.endpoint}")  # type: ignore[method-assign]
    newcomer.restart()
    client.put("after", "restart")
    cluster.wait_caught_up(4)
    assert newcomer.client().get("after").value == b"restart"
    assert "--peers is read only at a cluster's first start" in newcomer.log_tail(200)
    # With neither --peers nor --join: a restart needs no members named at all.
    newcomer.stop()
    newcomer.argv = lambda: serve_argv(*own)  # type: ignore[method-assign]
    newcomer.restart()
    client.put("after", "bare restart")
    cluster.wait_caught_up(4)
    assert newcomer.client().get("after").value == b"bare restart"


def test_a_join_stopped_before_it_kept_its_configuration_joins_again(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The first ``--join`` start killed after it made its identity and before
    it kept FIRST-CONFIG leaves an IDENTITY and an empty log. Restarted with
    the same flags it must join again: taking that IDENTITY for state, it
    ignored ``--join`` and started from ``--peers`` naming only itself, a
    cluster of one that elected itself and answered clients on its own."""
    client = cluster.client()
    client.put("before", "join")
    newcomer = JoiningNode(4, tmp_path, cluster.endpoints[:2])
    paxon(cluster, "members", "add", f"4={newcomer.endpoint}", "--learner", "--json")
    made = (
        "import sys; from paxon.storage import Storage; "
        "Storage.open(sys.argv[1], node_id=4, cluster_id='paxon').close()"
    )
    subprocess.run([sys.executable, "-c", made, str(newcomer.data_dir)], check=True, timeout=60)
    assert not (newcomer.data_dir / "FIRST-CONFIG").exists()
    newcomer.start()
    cluster.nodes.append(newcomer)
    newcomer.wait_ready(deadline=time.monotonic() + 30)
    assert "--join ignored" not in newcomer.log_tail(200)
    cluster.wait_caught_up(4)
    view = newcomer.status() or {}
    assert own_row(view)["role"] == "learner", view
    assert sorted(row["id"] for row in view["members"]) == [1, 2, 3, 4]
    assert newcomer.client().get("before").value == b"join"


def test_join_refusals(tmp_path: Path) -> None:
    listen = f"{HOST}:{free_ports(1)[0]}"
    both = run_serve(
        "--id",
        "4",
        "--data-dir",
        str(tmp_path / "a"),
        "--listen",
        listen,
        "--join",
        listen,
        "--peers",
        f"4={listen}",
    )
    assert both.returncode == 2 and "--join and --peers exclude each other" in both.stderr
    nobody = run_serve(
        "--id",
        "4",
        "--data-dir",
        str(tmp_path / "b"),
        "--listen",
        listen,
        "--join",
        f"{HOST}:{free_ports(1)[0]}",
        "--request-timeout-s",
        "2",
    )
    assert nobody.returncode == 3 and "no member answered" in nobody.stderr, nobody.stderr
    # Neither --peers nor --join on a directory with no members kept: refused.
    bare = run_serve("--id", "4", "--data-dir", str(tmp_path / "c"), "--listen", listen)
    assert bare.returncode == 2 and "missing --peers" in bare.stderr, bare.stderr


def test_a_wiped_member_is_refused_then_replaced_as_a_learner_with_join(
    cluster: Cluster, tmp_path: Path
) -> None:
    client = cluster.client()
    written = {f"k{i}": f"v{i}" for i in range(20)}
    for key, value in written.items():
        client.put(key, value)

    def all_bound() -> bool | None:
        view = cluster.node(1).status() or {}
        members = view.get("configuration", {}).get("members", [])
        return (len(members) == 3 and all("incarnation" in m for m in members)) or None

    cluster.wait_until(all_bound, 30, "every member's incarnation bound")
    node3 = cluster.node(3)
    node3.kill()
    shutil.rmtree(node3.data_dir)
    node3.restart()  # same id, same flags, an empty data dir
    for i in range(20):
        key = f"while-wiped-{i}"
        client.put(key, "x")
        written[key] = "x"
    cluster.wait_until(
        lambda: "refuses this node" in node3.log_tail(400) or None, 30, "node 3 told why"
    )
    assert "new incarnation" in node3.log_tail(400)
    assert "paxon members remove 3" in node3.log_tail(400)
    own = own_row(node3.status() or {})
    assert own["role"] != "leader" and own["applied_index"] == 0

    def refused_total() -> float | None:
        total = 0.0
        for node_id in (1, 2):
            metrics = http_request(cluster.node(node_id).http, "GET", "/metrics").body.decode()
            for line in metrics.splitlines():
                if line.startswith("paxon_incarnations_refused_total"):
                    total += float(line.split()[-1])
        return total or None

    cluster.wait_until(refused_total, 10, "paxon_incarnations_refused counted")

    # The operator replaces it: stop it, remove 3, add it back as a learner (same
    # address), start it on an empty data directory with --join, promote it.
    node3.kill()
    paxon(cluster, "members", "remove", "3", "--json")
    paxon(cluster, "members", "add", f"3={node3.endpoint}", "--learner", "--json")
    shutil.rmtree(node3.data_dir)
    joining = JoiningNode(3, tmp_path, cluster.endpoints[:2])
    joining.listen, joining.http = node3.listen, node3.http
    cluster.nodes[2] = joining
    joining.restart()
    client.put("after", "replace")
    written["after"] = "replace"
    cluster.wait_caught_up(3)
    paxon(cluster, "members", "promote", "3", "--json")
    cluster.wait_until(all_bound, 30, "the new node 3 bound")
    reader = joining.client()
    for key, value in written.items():
        assert reader.get(key).value == value.encode(), key


def test_a_learner_added_with_auto_promote_is_promoted_once_it_has_caught_up(
    cluster: Cluster, tmp_path: Path
) -> None:
    client = cluster.client()
    for i in range(20):
        client.put(f"k{i}", f"v{i}")
    newcomer = JoiningNode(4, tmp_path, cluster.endpoints[:2])
    added = paxon(cluster, "members", "add", f"4={newcomer.endpoint}", "--auto-promote", "--json")
    (row,) = [m for m in added["members"] if m["id"] == 4]
    assert row["role"] == "learner" and row["auto_promote"] is True
    newcomer.start()
    cluster.nodes.append(newcomer)
    newcomer.wait_ready(deadline=time.monotonic() + 30)

    deadline = time.monotonic() + 30
    while True:  # no operator step: the leader promotes it once it has caught up
        answer = http_request(cluster.nodes[0].http, "GET", "/v1/members")
        members = json.loads(answer.body)["configuration"]["members"]
        (row,) = [m for m in members if m["id"] == 4]
        if row["role"] == "voter":
            break
        assert time.monotonic() < deadline, f"not promoted: {row}\n{cluster.describe()}"
        time.sleep(0.2)
    assert "auto_promote" not in row
    assert "promote caught-up learner [4]" in "".join(n.log_tail(400) for n in cluster.nodes)
    client.put("after", "promote")
    reader = newcomer.client()
    for i in range(20):
        assert reader.get(f"k{i}").value == f"v{i}".encode()
    assert reader.get("after").value == b"promote"
