"""The HTTP guard on a real ``paxon serve`` process with the real ``NodeKvService``.

One single-node cluster; the settings come in as flags, as an operator gives them.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.harness import CLIENT_TIMEOUT_S, Cluster

pytestmark = pytest.mark.cluster


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[str, int]]:
    flags = ["--http-allowed-hosts", "kv.example", "--http-allowed-origins", "https://ops.example"]
    cluster = Cluster(tmp_path / "cluster", size=1, extra_args=flags)
    try:
        cluster.start()
        cluster.wait_for_leader()
        yield cluster.nodes[0].http
    finally:
        cluster.close()


def request(
    address: tuple[str, int],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    connection = http.client.HTTPConnection(*address, timeout=CLIENT_TIMEOUT_S)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        text = response.read()
        parsed = (
            json.loads(text)
            if response.getheader("Content-Type", "").startswith("application/json")
            else {}
        )
        return response.status, parsed, dict(response.getheaders())
    finally:
        connection.close()


def test_a_real_node_refuses_cross_site_rebinding_huge_integers_and_cuts_ranges(
    node: tuple[str, int],
) -> None:
    port = node[1]
    txn = json.dumps({"success": [{"put": {"key": "csrf", "value": "x"}}]}).encode()
    status, body, _ = request(node, "POST", "/v1/txn", txn, {"Content-Type": "text/plain"})
    assert (status, body["code"]) == (415, "unsupported_media_type")
    status, body, _ = request(
        node,
        "POST",
        "/v1/txn",
        txn,
        {"Content-Type": "application/json", "Origin": "http://evil.example"},
    )
    assert (status, body["code"]) == (403, "origin_not_allowed")
    status, body, _ = request(node, "GET", "/v1/kv/csrf", headers={"Host": f"evil.example:{port}"})
    assert (status, body["code"]) == (403, "host_not_allowed")
    status, body, _ = request(node, "GET", "/v1/kv/csrf")
    assert (status, body["code"]) == (404, "not_found"), "nothing was applied"

    huge = b'{"compare": [{"key": "a", "target": "version", "op": "==", "operand": '
    status, body, _ = request(
        node, "POST", "/v1/txn", huge + b"9" * 5000 + b"}]}", {"Content-Type": "application/json"}
    )
    assert (status, body["code"]) == (400, "bad_request")
    status, body, _ = request(node, "GET", "/v1/kv/k?revision=" + "9" * 5000)
    assert (status, body["code"]) == (400, "bad_request")
    status, body, _ = request(node, "GET", "/v1/kv/" + "k" * 5000)
    assert (status, body["code"]) == (413, "too_large")

    # The allowed host and origin are served; the dashboard and metrics by the node's address.
    for index in range(3):
        status, _, _ = request(
            node,
            "PUT",
            f"/v1/kv/r{index}",
            b"v",
            {"Host": "kv.example", "Origin": "https://ops.example"},
        )
        assert status == 200
    for path in ("/", "/metrics"):
        status, _, headers = request(node, "GET", path)
        assert status == 200
        assert not [name for name in headers if name.lower().startswith("access-control-")]

    status, body, _ = request(node, "GET", "/v1/kv/r?prefix=1&limit=2")
    assert [kv["key"] for kv in body["kvs"]] == ["r0", "r1"] and body["more"] is True
    status, body, _ = request(node, "GET", "/v1/kv/r?prefix=1&limit=2&after=r1")
    assert [kv["key"] for kv in body["kvs"]] == ["r2"] and "more" not in body
