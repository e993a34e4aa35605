"""Auth end to end on three ``paxon serve`` processes, driven through the ``paxon`` CLI and HTTP.

Users and roles are made with the CLI while auth is off, auth is turned on,
then every kind of caller is tried: no user, a wrong password, a read-only
user, root; over the native port (exit codes 0 / 1) and HTTP (200 / 401 /
403). A restart of every node keeps it all.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.harness import CLIENT_TIMEOUT_S, Cluster

pytestmark = pytest.mark.cluster

ROOT_PASSWORD = "root-secret-9"
ALICE_PASSWORD = "alice-secret-7"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "cluster", size=3)
    try:
        cluster.start()
        cluster.wait_for_leader()
        yield cluster
    finally:
        cluster.close()


def paxon(
    cluster: Cluster, *args: str, user: str | None = None, password: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PAXON_USER", "PAXON_PASSWORD", "PAXON_NEW_PASSWORD")
    }
    environment["PAXON_ENDPOINTS"] = ",".join(cluster.endpoints)
    if user is not None:
        environment["PAXON_USER"] = user
        environment["PAXON_PASSWORD"] = password or ""
    environment.update(env)
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


def http_call(
    address: tuple[str, int], method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection(*address, timeout=CLIENT_TIMEOUT_S)
    try:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_auth_end_to_end_through_the_cli_and_http(cluster: Cluster) -> None:
    ok(paxon(cluster, "user", "add", "root", PAXON_NEW_PASSWORD=ROOT_PASSWORD))
    ok(paxon(cluster, "user", "add", "alice", PAXON_NEW_PASSWORD=ALICE_PASSWORD))
    ok(paxon(cluster, "role", "add", "app-read"))
    ok(paxon(cluster, "role", "grant", "app-read", "app/", "read"))
    ok(paxon(cluster, "user", "grant-role", "alice", "app-read"))
    ok(paxon(cluster, "put", "app/x", "1"))
    ok(paxon(cluster, "auth", "enable"))

    refused = paxon(cluster, "put", "app/x", "2")
    assert refused.returncode == 1 and "log in" in refused.stderr
    wrong = paxon(cluster, "get", "app/x", user="alice", password="nope")
    assert wrong.returncode == 1 and "authentication failed" in wrong.stderr
    assert ok(paxon(cluster, "get", "app/x", user="alice", password=ALICE_PASSWORD)).strip() == "1"
    denied = paxon(cluster, "put", "app/x", "2", user="alice", password=ALICE_PASSWORD)
    assert denied.returncode == 1 and "may not write" in denied.stderr
    denied = paxon(cluster, "role", "add", "x", "--user", "alice", PAXON_PASSWORD=ALICE_PASSWORD)
    assert denied.returncode == 1 and "administer" in denied.stderr
    ok(paxon(cluster, "put", "app/x", "3", "--user", "root", PAXON_PASSWORD=ROOT_PASSWORD))

    users = json.loads(
        ok(paxon(cluster, "user", "list", "--json", user="root", password=ROOT_PASSWORD))
    )
    assert users == {
        "enabled": True,
        "users": [{"name": "alice", "roles": ["app-read"]}, {"name": "root", "roles": ["root"]}],
    }
    roles = json.loads(
        ok(paxon(cluster, "role", "list", "--json", user="root", password=ROOT_PASSWORD))
    )
    assert {"name": "app-read", "permissions": [{"prefix": "app/", "mode": "read"}]} in (
        roles["roles"]
    )
    usage = paxon(cluster, "role", "grant", "app-read", "app/", "everything")
    assert usage.returncode == 2

    # HTTP, on a node that may be a follower: a token from one node works on another.
    node_a, node_b = cluster.nodes[0].http, cluster.nodes[1].http
    status, body = http_call(
        node_a, "POST", "/v1/auth/authenticate", {"user": "alice", "password": ALICE_PASSWORD}
    )
    assert status == 200
    token = body["token"]
    assert http_call(node_b, "GET", "/v1/kv/app/x", token=token)[0] == 200
    assert http_call(node_b, "GET", "/v1/kv/app/x")[0] == 401
    status, body = http_call(node_b, "PUT", "/v1/kv/app/x", b"4", token=token)
    assert (status, body["code"]) == (403, "permission_denied")

    for node in cluster.nodes:
        node.stop()
    cluster.restart_all()
    cluster.wait_for_leader()
    assert ok(paxon(cluster, "get", "app/x", user="alice", password=ALICE_PASSWORD)).strip() == "3"
    assert paxon(cluster, "get", "app/x").returncode == 1
    assert http_call(node_b, "GET", "/v1/kv/app/x", token=token)[0] == 200

    bench = ("bench", "--ops", "20", "--clients", "2", "--json")
    assert paxon(cluster, *bench).returncode == 1
    ok(paxon(cluster, *bench, user="root", password=ROOT_PASSWORD))

    ok(paxon(cluster, "auth", "disable", user="root", password=ROOT_PASSWORD))
    ok(paxon(cluster, "put", "app/x", "5"))
    assert http_call(node_b, "GET", "/v1/kv/app/x", token=token)[0] == 200  # a token is ignored
