"""``paxon dev --chaos``: dev's own dashboard, whose buttons kill, pause, resume and
restart the nodes. Off unless ``--chaos``.

Dev serves it on 127.0.0.1, one port below the first node's HTTP port (8000 by
default), from a thread of its own (stdlib ``ThreadingHTTPServer``):

| route                               | answer                                              |
|-------------------------------------|-----------------------------------------------------|
| ``GET /``                           | the dashboard (``paxon.server.dashboard``) with     |
|                                     | ``{"chaos": true, "token": T}``                     |
| ``GET /v1/cluster``, ``/v1/activity``, | the same route of the node the last read came   |
| ``/v1/slots``                       | from, else of the first running node that answers  |
|                                     | within ``PROXY_TIMEOUT_S`` (so the page keeps to   |
|                                     | one node's samples, and outlives it)               |
| ``GET /dev/nodes``                  | ``{"states": {id: "running" / "paused" / ...}}``   |
| ``POST /dev/nodes/{id}/{action}``   | ``kill``, ``pause``, ``resume`` or ``restart``, as  |
|                                     | typed at dev's terminal; ``{"done": [lines]}`` or  |
|                                     | 409 ``{"error"}``                                  |

Who may press the buttons: a page on another site can make a browser send
requests to 127.0.0.1 (a cross-site ``POST``, or DNS rebinding), so every
request passes ``guard.RequestGuard`` (``Host`` must be this server's:
``localhost``, ``127.0.0.1``, ``::1`` with its port; ``Origin``, if sent, its
own), and a ``POST`` must carry ``X-Paxon-Dev-Token`` equal to the random token
(32 bytes, new each run) written only into the page dev serves, plus
``Content-Type: application/json``. Another origin cannot read that page (no
CORS header is ever sent), and a custom header cannot be sent cross-site
without a CORS preflight that this server never grants. Refusals are 403
(``host_not_allowed``, ``origin_not_allowed``, ``bad_token``).

The commands run on dev's main thread, which drains ``pending`` between console
lines (``run_pending``); the HTTP thread waits at most ``COMMAND_WAIT_S`` for
one. At most ``PENDING_MAX`` (8) commands wait at once (more: 503). At most
``CONNECTIONS_MAX`` (16) connections are served at once (more are closed at
once), each idle for at most ``IDLE_TIMEOUT_S`` (10 s). Bodies are read up to
``BODY_MAX_BYTES`` (1 KiB); a proxied answer up to ``PROXY_MAX_BYTES`` (4 MiB),
each node tried for ``PROXY_TIMEOUT_S`` (5 s); a command waited for up to
``COMMAND_WAIT_S`` (20 s).
"""

from __future__ import annotations

import hmac
import json
import queue
import re
import secrets
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from paxon.server.dashboard import dashboard_page
from paxon.server.guard import RequestGuard

ACTIONS: Final = ("kill", "pause", "resume", "restart")
PROXIED: Final = ("/v1/cluster", "/v1/activity", "/v1/slots")
TOKEN_HEADER: Final = "X-Paxon-Dev-Token"
PROXY_TIMEOUT_S: Final = 5.0  # /v1/cluster itself waits 2 s for a paused member
PROXY_MAX_BYTES: Final = 4 * 1024 * 1024
COMMAND_WAIT_S: Final = 20.0
PENDING_MAX: Final = 8
BODY_MAX_BYTES: Final = 1024
CONNECTIONS_MAX: Final = 16
IDLE_TIMEOUT_S: Final = 10.0
SHUTDOWN_POLL_S: Final = 0.1  # how soon the server thread sees close()
_COMMAND_PATH = re.compile(r"/dev/nodes/([0-9]{1,3})/([a-z]{1,10})")


@dataclass(slots=True)
class _Job:
    line: str
    done: threading.Event = field(default_factory=threading.Event)
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class ChaosDashboard:
    """Dev's dashboard server. ``node_urls`` gives the running nodes' HTTP base URLs
    (``http://127.0.0.1:8001``), ``states`` their dev states; both are read on the
    HTTP thread, so they must only read values the main thread swaps whole."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        node_urls: Callable[[], Sequence[str]],
        states: Callable[[], dict[int, str]],
        ssl_context: ssl.SSLContext | None = None,
        token: str | None = None,
    ) -> None:
        self.token = token or secrets.token_hex(32)
        self.pending: queue.Queue[_Job] = queue.Queue(PENDING_MAX)
        self._node_urls = node_urls
        self._states = states
        self.ssl_context = ssl_context  # how to reach nodes under --client-tls
        self._viewed = ""  # the node the last proxied read came from
        self._guard = RequestGuard.build(host)
        self._page = dashboard_page({"chaos": True, "token": self.token}).encode()
        self._server = _BoundedServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a serve_forever that never began
            self._server.shutdown()
        self._server.server_close()
        while True:  # release anyone still waiting
            try:
                job = self.pending.get_nowait()
            except queue.Empty:
                return
            job.errors.append("paxon dev is stopping")
            job.done.set()

    def run_pending(self, run_line: Callable[[str], tuple[list[str], list[str]]]) -> None:
        """On dev's main thread: run the commands the buttons asked for."""
        while True:
            try:
                job = self.pending.get_nowait()
            except queue.Empty:
                return
            try:
                job.lines, job.errors = run_line(job.line)
            finally:
                job.done.set()

    # ------------------------------------------------------- on the HTTP thread

    def refusal(self, handler: BaseHTTPRequestHandler) -> tuple[int, str, str] | None:
        local = handler.connection.getsockname()
        refused = self._guard.refusal(
            host_header=handler.headers.get("Host"),
            origin_header=handler.headers.get("Origin"),
            scheme="http",
            local_address=(str(local[0]), int(local[1])),
        )
        if refused is None:
            return None
        return 403, refused.code, refused.message.split(";")[0]  # not serve's flag hint

    def get(self, path: str) -> tuple[int, str, bytes]:
        if path == "/":
            return 200, "text/html; charset=utf-8", self._page
        if path == "/dev/nodes":
            states = {str(node_id): state for node_id, state in self._states().items()}
            return 200, "application/json", json.dumps({"states": states}).encode()
        if path in PROXIED:
            return self._proxy(path)
        return _error(404, "not_found", f"no route {path[:100]!r}")

    def post(self, path: str, token: str | None, content_type: str) -> tuple[int, str, bytes]:
        if token is None or not hmac.compare_digest(token.encode(), self.token.encode()):
            return _error(403, "bad_token", f"a POST needs the page's {TOKEN_HEADER}")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return _error(415, "bad_content_type", "a POST body must be application/json")
        match = _COMMAND_PATH.fullmatch(path)
        if match is None or match.group(2) not in ACTIONS:
            return _error(404, "not_found", "POST /dev/nodes/{id}/{kill|pause|resume|restart}")
        job = _Job(f"{match.group(2)} {int(match.group(1))}")
        try:
            self.pending.put_nowait(job)
        except queue.Full:
            return _error(503, "busy", f"{PENDING_MAX} commands already wait; try again")
        if not job.done.wait(COMMAND_WAIT_S):
            return _error(504, "timeout", "paxon dev did not run the command in time")
        if job.errors:
            return _error(409, "refused", "; ".join(job.errors))
        return 200, "application/json", json.dumps({"done": job.lines}).encode()

    def _proxy(self, path: str) -> tuple[int, str, bytes]:
        reasons = []
        urls = list(self._node_urls())
        if self._viewed in urls:  # keep to the node the page reads while it answers
            urls.remove(self._viewed)
            urls.insert(0, self._viewed)
        for base in urls:
            try:
                with urllib.request.urlopen(
                    base + path, timeout=PROXY_TIMEOUT_S, context=self.ssl_context
                ) as answer:
                    body = answer.read(PROXY_MAX_BYTES)
                self._viewed = base
                return 200, "application/json", body
            except (OSError, urllib.error.URLError) as error:
                reasons.append(f"{base}: {error}")
        return _error(502, "unavailable", "no node answered: " + "; ".join(reasons)[:500])


class _BoundedServer(ThreadingHTTPServer):
    """At most ``CONNECTIONS_MAX`` connections served at once; more are closed."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(CONNECTIONS_MAX)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _error(status: int, code: str, message: str) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"error": message, "code": code}).encode()


def _handler(server: ChaosDashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = IDLE_TIMEOUT_S

        def do_GET(self) -> None:
            self._answer(lambda: server.get(self.path.split("?")[0]))

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length", "0")
            if not length.isdigit() or int(length) > BODY_MAX_BYTES:
                self._send(*_error(413, "too_large", f"at most {BODY_MAX_BYTES} bytes"))
                return
            self.rfile.read(int(length))
            token = self.headers.get(TOKEN_HEADER)
            content_type = self.headers.get("Content-Type", "")
            self._answer(lambda: server.post(self.path.split("?")[0], token, content_type))

        def _answer(self, route: Callable[[], tuple[int, str, bytes]]) -> None:
            refused = server.refusal(self)
            if refused is not None:
                self._send(*_error(*refused))
                return
            self._send(*route())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # dev's terminal is for the cluster; the commands print there

    return Handler
