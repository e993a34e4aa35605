"""History under control on three ``paxon serve`` processes, through the CLI and HTTP.

The leader's ``--history-revisions`` cuts history by itself; ``paxon compact``
cuts it further on every member; ``get --revision`` below it fails (exit 1)
naming the oldest revision kept; HTTP answers the same. A bad retention flag
stops ``paxon serve`` with exit 2 and one line. Costs about 10 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster.harness import HOST, Cluster, free_ports, http_request, run_serve

pytestmark = pytest.mark.cluster

KEPT = 8


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "cluster", size=3, extra_args=["--history-revisions", str(KEPT)])
    try:
        cluster.start()
        cluster.wait_for_leader()
        yield cluster
    finally:
        cluster.close()


def paxon(
    cluster: Cluster, *args: str, endpoints: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    environment["PAXON_ENDPOINTS"] = endpoints or ",".join(cluster.endpoints)
    return subprocess.run(
        [sys.executable, "-m", "paxon", *args],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused_as_compacted(result: subprocess.CompletedProcess[str], oldest: int) -> bool:
    return result.returncode == 1 and f"the oldest kept is {oldest}" in result.stderr


def test_compact_then_get_below_it_fails_on_every_member_naming_the_oldest_kept(
    cluster: Cluster,
) -> None:
    with cluster.client() as client:
        for number in range(1, 11):
            assert client.put("k", f"v{number}") == number
    # The leader's retention (--history-revisions 8) compacted to 10 - 8 = 2 by itself.
    cluster.wait_until(
        lambda: refused_as_compacted(paxon(cluster, "get", "k", "--revision", "1"), 2) or None,
        timeout_s=20,
        what="the leader's retention to compact to revision 2",
    )
    assert ok(paxon(cluster, "get", "k", "--revision", "2")) == "v2\n"

    answer = json.loads(ok(paxon(cluster, "compact", "6", "--json")))
    assert answer == {"revision": 10, "revision_compacted": 6}
    below = paxon(cluster, "get", "k", "--revision", "5")
    assert refused_as_compacted(below, 6), below.stderr
    assert below.stderr.startswith("paxon get: revision 5 was compacted")
    item = json.loads(ok(paxon(cluster, "get", "k", "--revision", "6", "--json")))
    assert (item["value"], item["mod_revision"]) == ("v6", 6)
    again = paxon(cluster, "compact", "6")
    assert refused_as_compacted(again, 6) and "already compacted" in again.stderr
    ahead = paxon(cluster, "compact", "11")
    assert ahead.returncode == 2 and "ahead of the store (10)" in ahead.stderr

    # A replicated command: every member's own state refuses the old revision.
    for node in cluster.nodes:
        cluster.wait_until(
            lambda node=node: (
                refused_as_compacted(  # type: ignore[misc]
                    paxon(
                        cluster,
                        *("get", "k", "--revision", "5", "--serializable"),
                        endpoints=node.endpoint,
                    ),
                    6,
                )
                or None
            ),
            timeout_s=20,
            what=f"node {node.node_id} to apply the compaction",
        )

    http = cluster.nodes[0].http
    answer_http = http_request(http, "POST", "/v1/compact", json.dumps({"revision": 7}).encode())
    assert (answer_http.status, answer_http.json()) == (
        200,
        {"revision": 10, "revision_compacted": 7},
    )
    old = http_request(http, "GET", "/v1/kv/k?revision=6")
    body = old.json()
    assert (old.status, body["code"], body["revision_compacted"]) == (400, "compacted", 7)


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--history-revisions", "0", "--history-revisions: must be from 1 to 1000000"),
        ("--history-revisions", "2000000", "the store's hard cap on history"),
        ("--history-seconds", "-5", "--history-seconds: must be a number of seconds > 0"),
    ],
)
def test_a_bad_retention_flag_stops_serve_with_exit_2_and_one_line(
    tmp_path: Path, flag: str, value: str, words: str
) -> None:
    native, http = free_ports(2)
    result = run_serve(
        *("--id", "1", "--data-dir", str(tmp_path / "n1"), "--http", f"{HOST}:{http}"),
        *("--peers", f"1={HOST}:{native}", flag, value),
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("paxon serve: ") and words in line, result.stderr
    assert not (tmp_path / "n1").exists(), "refused before the data directory was made"
