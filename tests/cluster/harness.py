"""Real paxon clusters for the cluster tests: ``paxon serve`` processes on loopback.

Rules:
- Ports are picked by binding port 0; a cluster holds all its sockets at once
  while picking, so its ports differ. Should another process take one of them
  before a node binds it (the node exits 2, "cannot listen"), the whole start
  is retried on fresh ports; a restarted node retries on its own port.
- Each node keeps its data dir (``node<i>/``) and its stderr and stdout
  (``node<i>.log``, appended across restarts) under the test's directory, so
  parallel tests (``pytest -n 2``) share nothing.
- Nothing waits a fixed time: ``wait_until`` polls a condition until a
  deadline and then fails with the tail of every node's log.
- ``Cluster.close()`` SIGKILLs every process still running (a stopped one
  too) and reaps it; the ``cluster`` fixture calls it even when a test fails.
- A node's view comes from its HTTP ``/v1/status``; its "own row" is the
  member row with its own id, the only row holding its role and indexes.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import paxon
from paxon.kv.model import PutResult

HOST = "127.0.0.1"
POLL_S = 0.05
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
STATUS_TIMEOUT_S = 1.0
START_ATTEMPTS = 3
LOG_TAIL_LINES = 30
CLIENT_TIMEOUT_S = 20.0
_PORT_TAKEN = "cannot listen"

T = TypeVar("T")


class NodeExited(AssertionError):
    """A node process ended while it was expected to run."""

    def __init__(self, node: ServerNode, returncode: int) -> None:
        self.returncode = returncode
        self.log_tail = node.log_tail()
        super().__init__(f"node {node.node_id} exited with {returncode}:\n{self.log_tail}")


# ------------------------------------------------------------------ plumbing


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago (bound to port 0 together)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    address: tuple[str, int],
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    timeout_s: float = CLIENT_TIMEOUT_S,
    tls: ssl.SSLContext | None = None,
) -> HttpAnswer:
    """One HTTP(S) request on a fresh connection; OSError / HTTPException when it fails."""
    connection = (
        http.client.HTTPConnection(address[0], address[1], timeout=timeout_s)
        if tls is None
        else http.client.HTTPSConnection(address[0], address[1], timeout=timeout_s, context=tls)
    )
    try:
        headers = {"Content-Type": "application/json"} if method == "POST" else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return HttpAnswer(response.status, response.read())
    finally:
        connection.close()


def own_row(view: dict[str, Any]) -> dict[str, Any]:
    """The member row a node's status view holds about the node itself."""
    rows = [row for row in view["members"] if row["id"] == view["node_id"]]
    assert len(rows) == 1, f"no single own row in {view}"
    row: dict[str, Any] = rows[0]
    return row


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def serve_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "paxon", "serve", *args]


def run_serve(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``paxon serve ARGS`` to completion (for start-up refusals); killed after ``timeout_s``."""
    return subprocess.run(
        serve_argv(*args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


# ------------------------------------------------------------------ one node


class ServerNode:
    """One ``paxon serve`` process, which may be started, killed, paused and restarted."""

    def __init__(
        self,
        node_id: int,
        listen: tuple[str, int],
        http: tuple[str, int],
        peers: str,
        root: Path,
        extra_args: Sequence[str] = (),
        peer_listen: tuple[str, int] | None = None,
        http_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.node_id = node_id
        self.http_tls = http_tls
        self.peer_listen = peer_listen
        self.listen = listen
        self.http = http
        self.peers = peers
        self.data_dir = root / f"node{node_id}"
        self.log_path = root / f"node{node_id}.log"
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def endpoint(self) -> str:
        return f"{self.listen[0]}:{self.listen[1]}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def argv(self) -> list[str]:
        return serve_argv(
            "--id",
            str(self.node_id),
            "--data-dir",
            str(self.data_dir),
            "--listen",
            self.endpoint,
            "--http",
            f"{self.http[0]}:{self.http[1]}",
            "--peers",
            self.peers,
            *(("--peer-listen", f"{HOST}:{self.peer_listen[1]}") if self.peer_listen else ()),
            *self.extra_args,
        )

    def start(self) -> None:
        """Spawns the process (see ``wait_ready``)."""
        assert not self.running, f"node {self.node_id} is already running"
        argv = self.argv()
        with self.log_path.open("ab") as log:
            log.write(f"--- harness: starting {' '.join(argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.paused = False

    def wait_ready(self, deadline: float) -> None:
        """Until the node answers ``/v1/status`` (its native port is bound before HTTP)."""
        assert self.process is not None
        while True:
            returncode = self.process.poll()
            if returncode is not None:
                raise NodeExited(self, returncode)
            if self.status() is not None:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"node {self.node_id} not ready in time:\n{self.log_tail()}")
            time.sleep(POLL_S)

    def restart(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Starts the node again on its data dir and ports; retries while a port is taken."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.start()
            try:
                self.wait_ready(deadline)
                return
            except NodeExited as exited:
                if _PORT_TAKEN not in exited.log_tail or time.monotonic() >= deadline:
                    raise
            time.sleep(POLL_S * 4)

    def kill(self) -> None:
        """SIGKILL (works on a stopped process too), then reap."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)
        self.paused = False

    def stop(self) -> None:
        """SIGTERM; the node must exit 0."""
        assert self.process is not None and self.running, f"node {self.node_id} is not running"
        if self.paused:
            self.resume()
        self.process.send_signal(signal.SIGTERM)
        returncode = self.process.wait(timeout=STOP_TIMEOUT_S)
        assert returncode == 0, f"node {self.node_id} exited {returncode}:\n{self.log_tail()}"

    def pause(self) -> None:
        assert self.process is not None and self.running
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.process is not None and self.running
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def status(self) -> dict[str, Any] | None:
        """This node's own view (``GET /v1/status``), or None if it does not answer quickly."""
        if self.paused or not self.running:
            return None
        try:
            answer = http_request(
                self.http, "GET", "/v1/status", timeout_s=STATUS_TIMEOUT_S, tls=self.http_tls
            )
        except (OSError, http.client.HTTPException):
            return None
        if answer.status != 200:
            return None
        view: dict[str, Any] = answer.json()
        return view

    def client(self, timeout_s: float = CLIENT_TIMEOUT_S) -> paxon.SyncClient:
        """A client that knows only this node (it must follow redirects on its own)."""
        return paxon.SyncClient([self.endpoint], timeout=timeout_s)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail(self.log_path, lines)

    def describe(self) -> str:
        if self.process is None:
            state = "never started"
        elif self.process.poll() is not None:
            state = f"exited {self.process.returncode}"
        else:
            state = f"pid {self.process.pid}" + (", paused" if self.paused else "")
        return f"--- node {self.node_id} ({state}), {self.log_path}:\n{self.log_tail()}"


# ------------------------------------------------------------------ a cluster


class JoiningNode(ServerNode):
    """A ``paxon serve`` started with ``--join ENDPOINTS`` (members' client ports)
    instead of ``--peers`` (``tests/cluster/test_join.py``, the membership benchmark)."""

    def __init__(self, node_id: int, root: Path, join: list[str], **kwargs: Any) -> None:
        native, http = free_ports(2)
        super().__init__(node_id, (HOST, native), (HOST, http), "", root, **kwargs)
        self.join = join

    def argv(self) -> list[str]:
        return serve_argv(
            "--id",
            str(self.node_id),
            "--data-dir",
            str(self.data_dir),
            "--listen",
            self.endpoint,
            "--http",
            f"{self.http[0]}:{self.http[1]}",
            "--join",
            ",".join(self.join),
            *self.extra_args,
        )


class Cluster:
    """``size`` nodes on loopback, every node a peer of every other."""

    def __init__(
        self,
        root: Path,
        size: int = 3,
        extra_args: Sequence[str] = (),
        *,
        peer_ports: bool = False,
        node_args: Callable[[int], Sequence[str]] = lambda node_id: (),
        http_tls: ssl.SSLContext | None = None,
    ) -> None:
        """``peer_ports``: each node gets a peer port of its own (``--peer-listen``);
        ``node_args(node_id)``: flags for that node only (its certificate, say)."""
        self.root = root
        self.size = size
        self.extra_args = tuple(extra_args)
        self.peer_ports = peer_ports
        self.node_args = node_args
        self.http_tls = http_tls  # how the harness reads /v1/status when HTTP is HTTPS
        self.nodes: list[ServerNode] = []

    def start(self) -> Cluster:
        """Starts every node and waits until each answers; see the module rules on ports."""
        for attempt in range(START_ATTEMPTS):
            self._plan()
            for node in self.nodes:
                node.start()
            deadline = time.monotonic() + READY_TIMEOUT_S
            try:
                for node in self.nodes:
                    node.wait_ready(deadline)
                return self
            except NodeExited as exited:
                self.close()
                if _PORT_TAKEN not in exited.log_tail or attempt == START_ATTEMPTS - 1:
                    raise
                for node in self.nodes:
                    shutil.rmtree(node.data_dir, ignore_errors=True)
        raise AssertionError("unreachable")

    def restart_all(self) -> None:
        """Starts every stopped node at once on its data dir, then waits until each answers."""
        stopped = [node for node in self.nodes if not node.running]
        for node in stopped:
            node.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        for node in stopped:
            try:
                node.wait_ready(deadline)
            except NodeExited as exited:
                if _PORT_TAKEN not in exited.log_tail:
                    raise
                node.restart()

    def node(self, node_id: int) -> ServerNode:
        return self.nodes[node_id - 1]

    @property
    def endpoints(self) -> list[str]:
        return [node.endpoint for node in self.nodes]

    def client(self, *node_ids: int, timeout_s: float = CLIENT_TIMEOUT_S) -> paxon.SyncClient:
        """A blocking client of the given nodes (default: all)."""
        return paxon.SyncClient(self._endpoints(node_ids), timeout=timeout_s)

    def async_client(self, *node_ids: int, timeout_s: float = CLIENT_TIMEOUT_S) -> paxon.Client:
        """An asyncio client of the given nodes (default: all); create it on its loop."""
        return paxon.Client(self._endpoints(node_ids), timeout=timeout_s)

    def views(self) -> dict[int, dict[str, Any]]:
        """Each running, unpaused node's own view, for those that answer."""
        views = {}
        for node in self.nodes:
            view = node.status()
            if view is not None:
                views[node.node_id] = view
        return views

    def leader_id(self) -> int | None:
        """The leader, if exactly one node says it leads and every answering node agrees."""
        views = self.views()
        leaders = [node_id for node_id, view in views.items() if own_row(view)["role"] == "leader"]
        if len(leaders) != 1 or len(views) <= self.size // 2:
            return None
        if any(view.get("leader") != leaders[0] for view in views.values()):
            return None
        return leaders[0]

    def wait_for_leader(self, timeout_s: float = 30.0, not_in: Iterable[int] = ()) -> int:
        excluded = set(not_in)

        def settled() -> int | None:
            leader = self.leader_id()
            return leader if leader is not None and leader not in excluded else None

        what = "a leader" + (f" other than {sorted(excluded)}" if excluded else "")
        return self.wait_until(settled, timeout_s, what)

    def wait_caught_up(self, node_id: int, timeout_s: float = 30.0) -> None:
        """Until ``node_id`` has applied everything the leader had committed when asked.

        The node is asked after the leader: under load a follower learns what is
        chosen one round after its leader, so a node asked first (by id) can
        stay behind a commit index read a moment later for as long as the load
        runs, however caught up it is."""

        def caught_up() -> bool | None:
            leader = self.leader_id()
            if leader is None:
                return None
            leader_view = self.node(leader).status()
            if leader_view is None:
                return None
            commit_index = own_row(leader_view)["commit_index"]
            view = self.node(node_id).status()
            if view is None:
                return None
            return True if own_row(view)["applied_index"] >= commit_index else None

        self.wait_until(caught_up, timeout_s, f"node {node_id} to catch up with the leader")

    def wait_until(self, condition: Callable[[], T | None], timeout_s: float, what: str) -> T:
        """Polls ``condition`` until it gives something other than None or False."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = condition()
            if value is not None and value is not False:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"waited {timeout_s} s for {what}\n{self.describe()}")
            time.sleep(POLL_S)

    def describe(self) -> str:
        return "\n".join(node.describe() for node in self.nodes)

    def close(self) -> None:
        """SIGKILLs and reaps every process still running."""
        for node in self.nodes:
            node.kill()

    def _plan(self) -> None:
        size = self.size
        ports = free_ports((3 if self.peer_ports else 2) * size)
        native, http, peer = ports[:size], ports[size : 2 * size], ports[2 * size :]
        dialed = peer if self.peer_ports else native
        peers = ",".join(f"{i + 1}={HOST}:{port}" for i, port in enumerate(dialed))
        self.root.mkdir(parents=True, exist_ok=True)
        self.nodes = [
            ServerNode(
                i + 1,
                (HOST, native[i]),
                (HOST, http[i]),
                peers,
                self.root,
                (*self.extra_args, *self.node_args(i + 1)),
                peer_listen=(HOST, peer[i]) if self.peer_ports else None,
                http_tls=self.http_tls,
            )
            for i in range(size)
        ]

    def _endpoints(self, node_ids: Sequence[int]) -> list[str]:
        return [self.node(i).endpoint for i in node_ids] if node_ids else self.endpoints


# ------------------------------------------------------------------ a write load


@dataclass
class WriterLog:
    """What one writer of a ``WriteLoad`` was told.

    ``stopped_by`` is the error that ended it early; for a Timeout or
    Unavailable, the write in flight (``put_unknown`` or the next CAS) may or
    may not have been applied.
    """

    writer: int
    puts_acked: dict[str, bytes] = field(default_factory=dict)
    put_unknown: str | None = None
    cas_acked: int = 0
    cas_unknown: bool = False
    cas_refused: list[PutResult] = field(default_factory=list)
    stopped_by: str | None = None

    @property
    def counter_key(self) -> str:
        return f"counter-{self.writer}"


class WriteLoad:
    """``writers`` asyncio clients writing from a background thread until ``stop``.

    Writer ``w`` repeats: ``put("k-w-<i>", "w:i")``, then
    ``cas("counter-w", str(n + 1), expect_version=n)`` where ``n`` is its number
    of acknowledged CAS. Every put key is new, so each must end at version 1;
    every CAS must succeed, so the counter's version must equal the acknowledged
    count (plus one for a CAS whose outcome is unknown). A Timeout or
    Unavailable (outcome unknown) or a refused CAS ends that writer.
    """

    def __init__(
        self, endpoints: Sequence[str], writers: int = 4, timeout_s: float = CLIENT_TIMEOUT_S
    ) -> None:
        self.endpoints = list(endpoints)
        self.timeout_s = timeout_s
        self.logs = [WriterLog(writer) for writer in range(writers)]
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="write-load", daemon=True)

    def __enter__(self) -> WriteLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=3 * self.timeout_s)

    def counts(self) -> list[int]:
        return [log.cas_acked for log in self.logs]

    def wait_progress(self, cluster: Cluster, more: int, timeout_s: float, what: str) -> None:
        """Until every writer has ``more`` acknowledged CAS beyond its count now."""
        targets = [count + more for count in self.counts()]

        def progressed() -> bool | None:
            self._raise_if_failed()
            stopped = [log for log in self.logs if log.stopped_by is not None]
            assert not stopped, f"writers stopped ({what}): {stopped}\n{cluster.describe()}"
            return (
                True if all(c >= t for c, t in zip(self.counts(), targets, strict=True)) else None
            )

        cluster.wait_until(progressed, timeout_s, f"{more} more writes per writer {what}")

    def stop(self) -> list[WriterLog]:
        """Ends the writers (each finishes its call in flight) and gives their logs."""
        self._stopping.set()
        self._thread.join(timeout=3 * self.timeout_s)
        assert not self._thread.is_alive(), "the writers did not stop"
        self._raise_if_failed()
        return self.logs

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise AssertionError(f"a writer crashed: {self._error!r}") from self._error

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as error:  # handed to the test thread by stop()
            self._error = error

    async def _run(self) -> None:
        async with paxon.Client(self.endpoints, timeout=self.timeout_s) as kv:
            await asyncio.gather(*(self._write(kv, log) for log in self.logs))

    async def _write(self, kv: paxon.Client, log: WriterLog) -> None:
        step = 0
        while not self._stopping.is_set():
            step += 1
            key, value = f"k-{log.writer}-{step:06d}", f"{log.writer}:{step}".encode()
            try:
                await kv.put(key, value)
            except (paxon.Timeout, paxon.Unavailable) as error:
                log.put_unknown, log.stopped_by = key, repr(error)
                return
            log.puts_acked[key] = value
            try:
                result = await kv.cas(
                    log.counter_key, str(log.cas_acked + 1), expect_version=log.cas_acked
                )
            except (paxon.Timeout, paxon.Unavailable) as error:
                log.cas_unknown, log.stopped_by = True, repr(error)
                return
            if not result.succeeded:
                log.cas_refused.append(result)
                log.stopped_by = f"CAS refused: {result}"
                return
            log.cas_acked += 1


def check_acknowledged(
    kv: paxon.SyncClient, logs: Sequence[WriterLog], *, serializable: bool
) -> None:
    """Every acknowledged write of ``logs`` is there exactly once, as read through ``kv``."""
    items = {item.key: item for item in kv.get_prefix("k-", serializable=serializable)}
    for log in logs:
        assert not log.cas_refused, f"writer {log.writer}: an acknowledged-looking CAS failed"
        for key, value in log.puts_acked.items():
            item = items.get(key)
            assert item is not None, f"acknowledged put {key} is lost"
            assert item.value == value, f"{key}: {item.value!r} != {value!r}"
        counter = kv.get(log.counter_key, serializable=serializable)
        version = counter.version if counter is not None else 0
        allowed = {log.cas_acked, log.cas_acked + 1} if log.cas_unknown else {log.cas_acked}
        assert version in allowed, (
            f"writer {log.writer}: counter at version {version}, "
            f"{log.cas_acked} CAS acknowledged (unknown one in flight: {log.cas_unknown})"
        )
        if counter is not None:
            assert counter.value == str(version).encode(), f"{counter} value != version"
    twice = [item for item in items.values() if item.version != 1]
    assert not twice, f"puts of new keys applied more than once: {twice[:5]}"


def kill_at_once(nodes: Iterable[ServerNode]) -> None:
    """SIGKILLs ``nodes`` one right after another (no reaping in between), then reaps them."""
    nodes = list(nodes)
    for node in nodes:
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGKILL)
    for node in nodes:
        node.kill()


@contextmanager
def running_cluster(root: Path) -> Iterator[Cluster]:
    """A 3-node cluster under ``root`` with a leader, closed when the block ends."""
    cluster = Cluster(root)
    try:
        cluster.start()
        cluster.wait_for_leader()
        yield cluster
    finally:
        cluster.close()


def paxon_cli(*args: str, endpoints: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m paxon ARGS`` against ``endpoints`` (text out, no stdin, 60 s at most)."""
    return subprocess.run(
        [sys.executable, "-m", "paxon", *args],
        env=dict(os.environ, PAXON_ENDPOINTS=endpoints, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
