"""``/metrics`` of real ``paxon serve`` processes moves with the requests they serve,
and the Grafana dashboard in docs/ charts only series and labels the nodes export
(its structure and the PromQL reading: ``tests/test_grafana_dashboard.py``).

Three nodes; a native client and HTTP requests; every node scraped before and
after. Costs about 10 s.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.cluster.harness import Cluster, http_request, running_cluster
from tests.test_grafana_dashboard import load_dashboard, queries, query_reading

import paxon

pytestmark = pytest.mark.cluster

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("metrics") / "cluster") as cluster:
        yield cluster


def scrape(cluster: Cluster, node_id: int) -> Samples:
    answer = http_request(cluster.node(node_id).http, "GET", "/metrics")
    assert answer.status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.body.decode())
        for sample in family.samples
    }


def total(samples: list[Samples], name: str, **labels: str) -> float:
    """``name`` summed over nodes and over every label not given."""
    return sum(
        value
        for node in samples
        for (sample, sample_labels), value in node.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


def test_request_series_move_when_requests_happen(cluster: Cluster) -> None:
    nodes = [node.node_id for node in cluster.nodes]
    before = [scrape(cluster, node_id) for node_id in nodes]
    with cluster.client() as client:
        for number in range(5):
            client.put(f"metrics/{number}", "v")
        assert client.get("metrics/0") is not None
    follower = next(node for node in nodes if node != cluster.leader_id())
    address = cluster.node(follower).http
    assert http_request(address, "PUT", "/v1/kv/metrics/http", b"v").status == 200
    assert http_request(address, "GET", "/v1/kv/metrics/http").status == 200
    assert http_request(address, "GET", "/v1/lease/424242").status == 404
    after = [scrape(cluster, node_id) for node_id in nodes]

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("paxon_requests_total", api="native", op="put") >= 5
    assert moved("paxon_requests_total", api="native", op="get") >= 1
    assert moved("paxon_request_seconds_count", api="native", op="put") >= 5
    # The follower's HTTP requests, each counted once by operation and by route.
    assert moved("paxon_requests_total", api="http", op="put") == 1
    assert moved("paxon_requests_total", api="http", op="get") == 1
    assert moved("paxon_request_seconds_count", api="http", op="put") == 1
    assert (
        moved("paxon_request_errors_total", api="http", op="lease_ttl", code="lease_not_found") == 1
    )
    route = "/v1/kv/{key}"
    assert moved("paxon_http_requests_total", route=route, method="PUT", status="200") == 1
    assert moved("paxon_http_request_seconds_count", route=route, method="GET") == 1
    # The follower forwarded the HTTP put: the leader counts it as a native put.
    leader = nodes.index(cluster.leader_id() or 0)
    leader_puts = [
        total([node[leader]], "paxon_requests_total", api="native", op="put")
        for node in (before, after)
    ]
    assert leader_puts[1] - leader_puts[0] >= 6
    for node in after:
        build = [labels for name, labels in node if name == "paxon_build_info"]
        assert [dict(labels)["version"] for labels in build] == [paxon.__version__]
        assert total([node], "process_resident_memory_bytes") > 0
        assert total([node], "python_gc_collections_total") > 0


TARGET_LABELS = {"instance", "job"}  # added by Prometheus to every series it scrapes


def test_the_dashboard_charts_only_series_and_labels_the_nodes_export(cluster: Cluster) -> None:
    """Every metric a query of docs/grafana-dashboard.json names is a series some node
    exports (histograms as their ``_bucket``, ``_sum``, ``_count``), every label it
    matches or groups by is one that series carries (or one Prometheus adds), and a
    legend's ``{{label}}`` is one the query keeps."""
    with cluster.client() as client:
        client.put("dashboard/k", "v")
    http_request(cluster.node(1).http, "GET", "/v1/lease/424242")  # an error series
    exported: dict[str, set[str]] = {}
    for node in cluster.nodes:
        for name, labels in scrape(cluster, node.node_id):
            exported.setdefault(name, set()).update(label for label, _ in labels)
    board = load_dashboard()
    charted = set()
    for query in queries(board):
        reading = query_reading(query)
        charted |= reading.metrics
        missing = reading.metrics - set(exported)
        assert not missing, f"{query.where}: no node exports {sorted(missing)}: {query.expr}"
        carried = TARGET_LABELS.union(*(exported[name] for name in reading.metrics))
        named = reading.matched_labels | reading.grouping_labels
        assert named <= carried, f"{query.where}: no label {sorted(named - carried)}"
        kept = reading.grouping_labels or carried
        assert query.legend_labels <= kept, (
            f"{query.where}: legend {sorted(query.legend_labels - kept)} not in the result"
        )
    assert {"paxon_requests_total", "paxon_request_seconds_bucket"} <= charted
