"""The HTTP endpoint counts and times every request (``server.http_metrics``).

Against the fake service of ``test_http``: routes are labelled by their
pattern, never by the key; client operations are counted by kind; a missing
key and a failed compare are answers, a lease that does not exist an error.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from tests.server.test_http import JSON, Client, FakeKv, serve

from paxon.errors import LeaseNotFound
from paxon.node.metrics import NodeMetrics


def samples(metrics: NodeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_requests_count_by_route_pattern_and_by_operation() -> None:
    service, metrics = FakeKv(), NodeMetrics(node_id=1)

    async def scenario(client: Client) -> None:
        assert (await client.put("/v1/kv/secret-key-1", data=b"a")).status == 200
        assert (await client.put("/v1/kv/secret-key-2", data=b"b")).status == 200
        assert (await client.get("/v1/kv/secret-key-1")).status == 200
        assert (await client.get("/v1/kv/absent")).status == 404
        assert (await client.put("/v1/kv/secret-key-1?expect_version=9", data=b"c")).status == 412
        txn = b'{"success": [{"get": {"key": "secret-key-2"}}]}'
        assert (await client.post("/v1/txn", data=txn, headers=JSON)).status == 200
        service.fail_with = LeaseNotFound("lease 5 does not exist")
        assert (await client.get("/v1/lease/5")).status == 404
        assert (await client.get("/no/such/route")).status == 404
        assert (await client.get("/metrics")).status == 200

    serve(service, scenario, metrics=metrics)
    got = samples(metrics)

    def value(name: str, **labels: str) -> float:
        return got.get((name, tuple(sorted(labels.items()))), 0.0)

    route = "/v1/kv/{key}"
    assert value("paxon_http_requests_total", route=route, method="PUT", status="200") == 2
    assert value("paxon_http_requests_total", route=route, method="PUT", status="412") == 1
    assert value("paxon_http_requests_total", route=route, method="GET", status="404") == 1
    assert value("paxon_http_requests_total", route="other", method="GET", status="404") == 1
    assert value("paxon_http_requests_total", route="/metrics", method="GET", status="200") == 1
    assert value("paxon_http_request_seconds_count", route=route, method="PUT") == 3
    assert not any("secret-key" in str(labels) for _, labels in got)  # never the key itself

    assert value("paxon_requests_total", api="http", op="put") == 3
    assert value("paxon_requests_total", api="http", op="get") == 2
    assert value("paxon_requests_total", api="http", op="txn") == 1
    assert value("paxon_requests_total", api="http", op="lease_ttl") == 1
    assert value("paxon_request_seconds_count", api="http", op="put") == 3
    errors = {
        labels: count
        for (name, labels), count in got.items()
        if name.startswith("paxon_request_errors_total")
    }
    # The absent key (404) and the failed compare (412) are answers, not errors.
    assert errors == {(("api", "http"), ("code", "lease_not_found"), ("op", "lease_ttl")): 1}
    # Pages and scrapes are not client operations.
    assert not any(dict(labels).get("op") == "other" for _, labels in got)
