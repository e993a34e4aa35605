"""``paxon dev --chaos``'s dashboard server (``paxon.server.dev_dashboard``): its page
carries the run's token; a POST runs a command only with that token, from its own
Host and Origin, as JSON; reads are proxied to the first node that answers."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from paxon.server.dev import run_dev
from paxon.server.dev_dashboard import CONNECTIONS_MAX, TOKEN_HEADER, ChaosDashboard
from paxon.server.dev_plan import ports_in_use

JSON = {"Content-Type": "application/json"}
EVIL_HOST = {"Host": "evil.example", "TOKEN": "", **JSON}
EVIL_ORIGIN = {"Origin": "http://evil.example", "TOKEN": "", **JSON}


class FakeNode(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "host": self.headers["Host"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def node_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeNode)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def dashboard(node_url: str) -> Iterator[ChaosDashboard]:
    dead = "http://127.0.0.1:1"  # nothing listens on port 1
    server = ChaosDashboard(
        "127.0.0.1", 0, node_urls=lambda: [dead, node_url], states=lambda: {1: "paused"}
    )
    server.start()
    yield server
    server.close()


def request(
    server: ChaosDashboard, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any] | str]:
    host, port = server.address
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request(
            method, path, body=b"{}" if method == "POST" else None, headers=headers or {}
        )
        answer = connection.getresponse()
        text = answer.read().decode()
        is_json = answer.getheader("Content-Type", "").startswith("application/json")
        return answer.status, json.loads(text) if is_json else text
    finally:
        connection.close()


def run_one(server: ChaosDashboard, method: str, path: str, headers: dict[str, str]) -> Any:
    """Send a POST that waits for dev's main thread, and be that main thread for it."""
    answers: list[Any] = []
    sender = threading.Thread(target=lambda: answers.append(request(server, method, path, headers)))
    sender.start()
    job = server.pending.get(timeout=30)  # the HTTP thread queued it
    server.pending.put(job)
    ran: list[str] = []

    def run_line(line: str) -> tuple[list[str], list[str]]:
        ran.append(line)
        return ([f"did {line}"], []) if line != "restart 3" else ([], ["node 3 is running"])

    server.run_pending(run_line)
    sender.join(30)
    return ran, answers[0]


def test_the_page_carries_the_token_and_chaos_on(dashboard: ChaosDashboard) -> None:
    status, page = request(dashboard, "GET", "/")
    assert status == 200 and isinstance(page, str)
    assert f'"token": "{dashboard.token}"' in page and '"chaos": true' in page
    assert len(dashboard.token) == 64
    other = ChaosDashboard("127.0.0.1", 0, node_urls=list, states=dict)
    try:
        assert other.token != dashboard.token  # new each run
    finally:
        other.close()


def test_a_post_with_the_token_runs_the_command_on_the_main_thread(
    dashboard: ChaosDashboard,
) -> None:
    headers = {TOKEN_HEADER: dashboard.token, **JSON}
    ran, (status, body) = run_one(dashboard, "POST", "/dev/nodes/2/kill", headers)
    assert ran == ["kill 2"] and status == 200 and body == {"done": ["did kill 2"]}
    ran, (status, body) = run_one(dashboard, "POST", "/dev/nodes/3/restart", headers)
    assert status == 409 and body["error"] == "node 3 is running"


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("/dev/nodes/2/kill", JSON, 403, "bad_token"),
        ("/dev/nodes/2/kill", {TOKEN_HEADER: "0" * 64, **JSON}, 403, "bad_token"),
        (
            "/dev/nodes/2/kill",
            {"Host": "evil.example", "TOKEN": "", **JSON},
            403,
            "host_not_allowed",
        ),
        (
            "/dev/nodes/2/kill",
            {"Origin": "http://evil.example", "TOKEN": "", **JSON},
            403,
            "origin_not_allowed",
        ),
        ("/dev/nodes/2/kill", {"TOKEN": "", "Content-Type": "text/plain"}, 415, "bad_content_type"),
        ("/dev/nodes/2/remove", {"TOKEN": "", **JSON}, 404, "not_found"),
    ],
)
def test_a_post_is_refused_without_token_host_origin_or_json(
    dashboard: ChaosDashboard, path: str, headers: dict[str, str], status: int, code: str
) -> None:
    headers = dict(headers)
    if headers.pop("TOKEN", None) is not None:
        headers[TOKEN_HEADER] = dashboard.token
    answer_status, body = request(dashboard, "POST", path, headers)
    assert (answer_status, body["code"]) == (status, code)  # type: ignore[index]
    assert dashboard.pending.empty()  # nothing reached dev


def test_reads_go_to_the_first_node_that_answers(dashboard: ChaosDashboard) -> None:
    for path in ("/v1/cluster", "/v1/activity", "/v1/slots"):
        status, body = request(dashboard, "GET", path)
        assert status == 200 and body["path"] == path  # type: ignore[index]
    assert request(dashboard, "GET", "/dev/nodes") == (200, {"states": {"1": "paused"}})
    assert request(dashboard, "GET", "/v1/kv/secret")[0] == 404
    assert request(dashboard, "GET", "/v1/cluster", {"Host": "evil.example"})[0] == 403


def test_no_node_answering_is_a_502_naming_them() -> None:
    server = ChaosDashboard("127.0.0.1", 0, node_urls=lambda: ["http://127.0.0.1:1"], states=dict)
    server.start()
    try:
        status, body = request(server, "GET", "/v1/cluster")
        assert status == 502 and "127.0.0.1:1" in body["error"]  # type: ignore[index]
    finally:
        server.close()


def test_a_taken_port_raises_oserror(dashboard: ChaosDashboard) -> None:
    host, port = dashboard.address
    assert ports_in_use([(host, port)])
    with pytest.raises(OSError):
        ChaosDashboard(host, port, node_urls=list, states=dict)


def test_connections_past_the_bound_are_closed(dashboard: ChaosDashboard) -> None:
    idle = [socket.create_connection(dashboard.address, timeout=30) for _ in range(CONNECTIONS_MAX)]
    try:
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            request(dashboard, "GET", "/dev/nodes")
    finally:
        for connection in idle:
            connection.close()


def test_reads_keep_to_the_node_they_came_from(node_url: str) -> None:
    other = ThreadingHTTPServer(("127.0.0.1", 0), FakeNode)
    threading.Thread(target=other.serve_forever, args=(0.05,), daemon=True).start()
    urls = [node_url]
    server = ChaosDashboard("127.0.0.1", 0, node_urls=lambda: urls, states=dict)
    server.start()
    try:
        port = request(server, "GET", "/v1/slots")[1]["host"].rsplit(":", 1)[1]  # type: ignore[index]
        assert int(port) == int(node_url.rsplit(":", 1)[1])
        urls.insert(0, f"http://127.0.0.1:{other.server_address[1]}")  # first in order now
        body = request(server, "GET", "/v1/slots")[1]
        assert body["host"].endswith(f":{port}")  # type: ignore[index]
        urls.remove(node_url)  # gone: the next answer comes from the other
        body = request(server, "GET", "/v1/slots")[1]
        assert body["host"].endswith(f":{other.server_address[1]}")  # type: ignore[index]
    finally:
        server.close()
        other.shutdown()
        other.server_close()


def test_dev_with_a_taken_chaos_port_refuses_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        chaos_port = taken.getsockname()[1]
        base = 20_000 + chaos_port % 10_000
        data = tmp_path / "data"
        code = run_dev(1, base, chaos_port + 1, str(data), insecure=True, chaos=True)
    assert code == 2
    said = capsys.readouterr().err
    assert f"--chaos: cannot serve its dashboard on 127.0.0.1:{chaos_port}" in said
    assert not data.exists()
