"""The dashboard in headless Chromium on a real 3-node cluster: it renders, it
updates (polls go on and the charts get points), the log view shows chosen slots,
and a killed node shows as down.

Chromium runs with ``--dump-dom`` and a virtual time budget: the page's timers run
on virtual time, which waits while a fetch is pending, so the polls happen without
the test sleeping. Skipped, with the reason, where no Chromium is installed
(``apt-get install chromium``). Cost: one cluster and one ``paxon dev --chaos``,
about 20 s on 2 busy cores.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.cluster.harness import HOST, Cluster, http_request
from tests.cluster.test_dev import Dev

from paxon.server.dev_dashboard import TOKEN_HEADER

CHROMIUM = next(
    (
        path
        for name in ("chromium", "chromium-browser", "google-chrome")
        if (path := shutil.which(name))
    ),
    None,
)
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium on PATH: the dashboard is tested in headless Chromium "
        "(apt-get install chromium)",
    ),
]
WAIT_S = 30.0
BUDGET_MS = 6000  # virtual: about six polls of the page


def dump_dom(url: str, profile: Path) -> str:
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # root in CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={BUDGET_MS}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def attribute(dom: str, element_id: str, name: str) -> str:
    found = re.search(rf'<[^>]*\bid="{element_id}"[^>]*>', dom)
    assert found is not None, f"no #{element_id} in the page"
    value = re.search(rf'\b{name}="([^"]*)"', found.group(0))
    assert value is not None, f"#{element_id} has no {name}"
    return value.group(1)


def member_state(dom: str, node_id: int) -> str | None:
    row = re.search(rf'<tr data-member="{node_id}" data-state="(\w+)"', dom)
    return None if row is None else row.group(1)


def test_the_dashboard_renders_updates_and_shows_a_killed_node_down(
    cluster: Cluster, tmp_path: Path
) -> None:
    with cluster.client() as client:
        for index in range(20):
            client.put(f"dash/{index}", b"v")
    leader = cluster.wait_for_leader()
    victim = next(node.node_id for node in cluster.nodes if node.node_id != leader)
    viewer = cluster.node(leader)
    base = f"http://{HOST}:{viewer.http[1]}"

    def sampled() -> bool:  # the node keeps one sample a second: two to draw a line
        return len(http_request(viewer.http, "GET", "/v1/activity").json()["samples"]) >= 2

    cluster.wait_until(sampled, WAIT_S, "two activity samples")
    cluster.node(victim).kill()

    dom = dump_dom(base + "/", tmp_path / "profile")
    assert int(re.search(r'<body data-polls="(\d+)"', dom).group(1)) >= 2  # type: ignore[union-attr]
    assert int(attribute(dom, "throughput", "data-points")) >= 2
    assert int(attribute(dom, "latency", "data-points")) >= 2
    assert int(attribute(dom, "latency", "data-measured")) >= 1  # the puts' latency
    assert "<canvas" in dom  # uPlot drew
    assert member_state(dom, leader) == "up"
    assert member_state(dom, victim) == "down"
    chosen = re.findall(
        r'class="slot (?:chosen|noop)[^"]*" data-slot="\d+" data-state="chosen"', dom
    )
    assert len(chosen) >= 20  # the puts' slots (and the first leader's no-ops)
    assert 'id="error" role="alert" class="shown"' not in dom


def post(port: int, path: str, token: str | None) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers[TOKEN_HEADER] = token
        connection.request("POST", path, body=b"{}", headers=headers)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def test_dev_chaos_buttons_kill_and_restart_a_node(tmp_path: Path) -> None:
    dev = Dev(tmp_path / "dev", nodes=3, extra=["--chaos"])
    try:
        line = dev.expect("chaos dashboard: ")
        port = dev.http - 1
        assert f"http://{HOST}:{port}/" in line
        page = http_request((HOST, port), "GET", "/").body.decode()
        found = re.search(r'"token": "([0-9a-f]{64})"', page)
        assert found is not None
        token = found.group(1)

        status, answer = post(port, "/dev/nodes/2/kill", None)  # another site's POST
        assert (status, answer["code"]) == (403, "bad_token")
        status, answer = post(port, "/dev/nodes/2/kill", token)
        assert status == 200, answer
        dev.expect("node 2 was killed by SIGKILL (kill 2); the others keep running")

        dom = dump_dom(f"http://{HOST}:{port}/", tmp_path / "profile")
        assert member_state(dom, 2) == "down" and member_state(dom, 1) == "up"
        assert 'data-action="restart" data-node="2"' in dom  # the buttons are there
        assert "(exited)" in dom  # dev's own view of the process

        status, answer = post(port, "/dev/nodes/2/restart", token)
        assert status == 200, answer
        dev.expect("node 2: started again")
        status, answer = post(port, "/dev/nodes/2/restart", token)  # running: refused
        assert status == 409 and "kill" in str(answer["error"])
    finally:
        dev.close()
