"""Three nodes on loopback: a write through any node is read back through every node.

Writes go through each node in turn, natively (a client that knows only that
node, so it must follow the redirect to the leader) and over HTTP (the node
forwards). After each one, a linearizable read through every node, natively
and over HTTP, must return the value just written.
"""

from __future__ import annotations

import contextlib

import pytest
from tests.cluster.harness import Cluster, http_request

pytestmark = pytest.mark.cluster


def test_writes_through_each_node_are_read_back_through_every_node(cluster: Cluster) -> None:
    with contextlib.ExitStack() as stack:
        clients = {node.node_id: stack.enter_context(node.client()) for node in cluster.nodes}
        revisions: list[int] = []
        for origin in cluster.nodes:
            for how in ("native", "http"):
                value = f"{how} write #{len(revisions) + 1} via node {origin.node_id}"
                if how == "native":
                    revisions.append(clients[origin.node_id].put("shared", value))
                    clients[origin.node_id].put(f"own-{origin.node_id}-{how}", value)
                else:
                    answer = http_request(origin.http, "PUT", "/v1/kv/shared", value.encode())
                    assert answer.status == 200, answer
                    revisions.append(answer.json()["revision"])
                    answer = http_request(
                        origin.http, "PUT", f"/v1/kv/own-{origin.node_id}-{how}", value.encode()
                    )
                    assert answer.status == 200, answer
                for reader in cluster.nodes:
                    item = clients[reader.node_id].get("shared")
                    assert item is not None, f"node {reader.node_id} lost 'shared'"
                    assert item.value == value.encode(), f"read via node {reader.node_id}"
                    assert item.mod_revision == revisions[-1]
                    answer = http_request(reader.http, "GET", "/v1/kv/shared")
                    assert answer.status == 200, answer
                    assert answer.json()["value"] == value, f"HTTP read via node {reader.node_id}"
                    assert answer.json()["mod_revision"] == revisions[-1]
        assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
        for reader in cluster.nodes:
            items = clients[reader.node_id].get_prefix("own-")
            assert [item.key for item in items] == sorted(
                f"own-{node.node_id}-{how}" for node in cluster.nodes for how in ("native", "http")
            )
            shared = clients[reader.node_id].get("shared")
            assert shared is not None and shared.version == len(revisions)
