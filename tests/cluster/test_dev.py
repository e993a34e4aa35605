"""``paxon dev`` as a user drives it: a real dev cluster taking commands on its
stdin (a pipe here, the terminal for a person), surviving the nodes it kills,
adding and removing a node, and leaving no process behind after Ctrl-C.

Cost: about 10-15 s on 2 busy cores (3 nodes, two killed and restarted, one added
and removed), about 10 s for one changed with auth on, stopped and started again,
plus about 3 s for a start that fails, and about 8 s for ``--chaos --client-tls``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.harness import HOST, http_request

import paxon
from paxon.server.dev_dashboard import TOKEN_HEADER
from paxon.server.dev_plan import NODES_MAX, ports_in_use

pytestmark = pytest.mark.cluster

EXPECT_TIMEOUT_S = 30.0
ROOT_PASSWORD = "dev-root-password"


def free_port_bases() -> tuple[int, int, int]:
    """Native, HTTP and peer base ports whose ``NODES_MAX`` ports each are free now
    (below the ephemeral range, so outgoing connections do not take them)."""
    for _ in range(50):
        base = random.randrange(20_000, 32_000 - 3 * NODES_MAX)
        bases = (base, base + NODES_MAX, base + 2 * NODES_MAX)
        ports = [(HOST, port) for port in range(base, base + 3 * NODES_MAX)]
        if not ports_in_use(ports):
            return bases
    raise AssertionError("no free port ranges")


class Dev:
    """A ``paxon dev`` process with its stdin on a pipe and its output collected."""

    def __init__(
        self,
        data_dir: Path,
        nodes: int,
        *,
        again: Dev | None = None,
        env: dict[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        """``again``: run dev on ``again``'s data dir without flags (its record's ports);
        ``extra``: more flags (``--chaos``)."""
        self.data_dir = data_dir
        argv = [sys.executable, "-m", "paxon", "dev", "--data-dir", str(data_dir)]
        if again is not None:
            self.native, self.http, self.peer = again.native, again.http, again.peer
        else:
            self.native, self.http, self.peer = free_port_bases()
            argv += ["--nodes", str(nodes), "--base-port", str(self.native)]
            argv += ["--http-base-port", str(self.http), "--peer-base-port", str(self.peer)]
        argv += extra
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._mark = 0
        self._changed = threading.Condition()
        self._collector = threading.Thread(target=self._collect, daemon=True)
        self._collector.start()

    def endpoint(self, node_id: int) -> str:
        return f"{HOST}:{self.native + node_id - 1}"

    def client(self, *node_ids: int, user: str | None = None) -> paxon.SyncClient:
        endpoints = [self.endpoint(node_id) for node_id in node_ids or (1, 2, 3)]
        password = None if user is None else ROOT_PASSWORD
        return paxon.SyncClient(endpoints, timeout=20.0, user=user, password=password)

    def send(self, command: str) -> None:
        """Type ``command``; ``expect`` then looks at the output from here on."""
        assert self.process.stdin is not None
        with self._changed:
            self._mark = len(self.lines)
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def expect(self, text: str) -> str:
        """The first line since the last command that holds ``text``."""
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        with self._changed:
            while True:
                for line in self.lines[self._mark :]:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                assert left > 0 and self.process.poll() is None, (
                    f"no line with {text!r}:\n" + "\n".join(self.lines[-40:])
                )
                self._changed.wait(left)

    def members(self) -> dict[int, str]:
        answer = http_request((HOST, self.http), "GET", "/v1/members", timeout_s=5.0)
        configuration: dict[str, Any] = answer.json()["configuration"]
        return {member["id"]: member["role"] for member in configuration["members"]}

    def wait_for(self, condition: Any, what: str) -> None:
        deadline = time.monotonic() + EXPECT_TIMEOUT_S
        while not condition():
            assert time.monotonic() < deadline, f"{what}:\n" + "\n".join(self.lines[-40:])
            time.sleep(0.1)

    def close(self) -> None:
        """Kill dev and its nodes if still running; collect its last output (idempotent)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in processes_naming(self.data_dir):
            os.kill(pid, signal.SIGKILL)
        self._collector.join(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()


def processes_naming(path: Path) -> list[int]:
    """Processes whose command line names ``path`` (the dev cluster's nodes)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def test_dev_survives_its_nodes_and_adds_and_removes_one(tmp_path: Path) -> None:
    dev = Dev(tmp_path / "dev", nodes=3)
    try:
        dev.expect("Ctrl-C stops the cluster.")
        assert any(line.startswith("  kill N ") for line in dev.lines)  # the banner lists them
        with dev.client() as client:
            client.put("before", "kill")

        dev.send("kill 2")
        dev.expect("node 2 was killed by SIGKILL (kill 2); the others keep running")
        with dev.client(1, 3) as client:
            client.put("during", "kill")
            assert client.get("before").value == b"kill"

        dev.send("frobnicate 2")  # a bad command is an error line, nothing more
        dev.expect("unknown command 'frobnicate'")
        dev.send("restart 2")
        dev.expect("node 2: started again")
        with dev.client(2) as client:
            assert client.get("during").value == b"kill"

        # A node dies outside dev (a crash, a kill from another terminal): said, survived.
        dev.send("status")
        os.kill(int(dev.expect("  3 ").split()[2]), signal.SIGKILL)
        line = dev.expect("node 3 was killed by SIGKILL; the others keep running")
        assert "`restart 3` starts it again" in line
        with dev.client(1, 2) as client:
            client.put("crashed", "3")
        dev.send("restart 3")
        dev.expect("node 3: started again")
        with dev.client(3) as client:
            assert client.get("crashed").value == b"3"

        dev.send("add")
        dev.expect("node 4: added as a learner")
        dev.wait_for(lambda: dev.members().get(4) == "voter", "node 4 never became a voter")
        with dev.client(4) as client:
            assert client.get("during").value == b"kill"

        dev.send("remove 4")
        dev.expect("node 4: removed from the cluster")
        dev.expect("node 4 exited with code 0 after its removal")
        assert 4 not in dev.members()

        dev.send("pause 1")
        dev.expect("node 1: paused (SIGSTOP)")
        with dev.client(2, 3) as client:
            client.put("during", "pause")
        dev.send("resume 1")
        dev.expect("node 1: resumed (SIGCONT)")
        dev.send("status")
        assert dev.expect("  1 ").split()[1] == "running"
        assert dev.expect("  4 ").split()[1] == "removed"
        assert dev.expect("  3 ").split()[-1] == "yes"  # ready, as its GET /readyz says

        assert dev.process.stdin is not None
        dev.process.stdin.close()  # end of input stops the reading, not the cluster
        with dev.client(1) as client:
            assert client.get("during").value == b"pause"
        assert dev.process.poll() is None

        dev.process.send_signal(signal.SIGINT)
        assert dev.process.wait(timeout=30) == 0
        assert processes_naming(dev.data_dir) == []
    finally:
        dev.close()


def test_dev_run_again_starts_its_members_and_changes_them_with_auth_on(tmp_path: Path) -> None:
    env = {**os.environ, "PAXON_USER": "root", "PAXON_PASSWORD": ROOT_PASSWORD}
    dev = Dev(tmp_path / "dev", nodes=1, env=env)
    try:
        dev.expect("Ctrl-C stops the cluster.")
        with dev.client(1) as client:
            client.put("before", "restart")
        asyncio.run(enable_auth([dev.endpoint(1)]))

        dev.send("add")  # as root: the cluster now refuses changes without a login
        dev.expect("node 2: added as a learner")
        dev.wait_for(lambda: dev.members().get(2) == "voter", "node 2 never became a voter")
        dev.send("remove 1")
        dev.expect("node 1 exited with code 0 after its removal")
        dev.send("quit")
        assert dev.process.wait(timeout=30) == 0
    finally:
        dev.close()

    again = Dev(dev.data_dir, nodes=0, again=dev, env=env)
    try:
        again.expect("Ctrl-C stops the cluster.")
        assert again.lines[0].endswith("dev-cluster.json: 2)")  # the members it starts
        again.send("status")
        assert again.expect("  2 ").split()[1] == "running"  # added in the first run
        assert not any(line.startswith("  1 ") for line in again.lines)  # removed there
        assert processes_naming(again.data_dir / "node1") == []
        with again.client(2, user="root") as client:
            assert client.get("before").value == b"restart"
    finally:
        again.close()


async def enable_auth(endpoints: list[str]) -> None:
    async with paxon.Client(endpoints, timeout=20.0) as client:
        await client.user_add("root", ROOT_PASSWORD)
        await client.auth_enable()


def test_a_node_that_cannot_start_stops_dev_with_its_log(tmp_path: Path) -> None:
    data_dir = tmp_path / "dev"
    (data_dir / "node2").mkdir(parents=True)
    (data_dir / "node2" / "FIRST-CONFIG").write_text("garbage\n")  # serve refuses it: exit 2
    dev = Dev(data_dir, nodes=3)
    try:
        assert dev.process.wait(timeout=60) == 1
        dev.close()
        assert dev.lines[0].startswith("paxon dev: node 2 exited with code 2; stopping the others")
        assert "restart" not in dev.lines[0]
        assert any("FIRST-CONFIG" in line for line in dev.lines[1:])
        assert processes_naming(data_dir) == []
    finally:
        dev.close()


def test_dev_chaos_with_client_tls_pauses_and_resumes_a_node(tmp_path: Path) -> None:
    """Under ``--client-tls`` the nodes serve HTTPS; dev's chaos page (plain HTTP on
    127.0.0.1) reads the cluster from them over HTTPS with dev's CA, and its buttons
    act only with the token written into this run's page."""
    dev = Dev(tmp_path / "dev", nodes=3, extra=["--chaos", "--client-tls"])
    try:
        port = dev.http - 1
        assert f"http://{HOST}:{port}/" in dev.expect("chaos dashboard: ")
        tls = paxon.ClientTls(cacert=dev.data_dir / "certs" / "ca.pem")
        page = http_request((HOST, port), "GET", "/").body.decode()
        found = re.search(r'"token": "([0-9a-f]{64})"', page)
        assert found is not None
        token = found.group(1)
        view = http_request((HOST, port), "GET", "/v1/cluster")  # proxied over HTTPS
        assert view.status == 200, view.body
        assert sorted(member["id"] for member in view.json()["members"]) == [1, 2, 3]
        (node2,) = processes_naming(dev.data_dir / "node2")

        for refused in (None, "0" * 64):  # no token (another site's POST), a wrong one
            status, answer = chaos_post(port, "/dev/nodes/2/pause", refused)
            assert (status, answer.get("code")) == (403, "bad_token"), answer
        assert chaos_states(port)["2"] == "running" and process_state(node2) != "T"

        status, answer = chaos_post(port, "/dev/nodes/2/pause", token)
        assert status == 200, answer
        dev.expect("node 2: paused (SIGSTOP)")
        assert chaos_states(port)["2"] == "paused"
        dev.wait_for(lambda: process_state(node2) == "T", "node 2 never stopped")
        with paxon.SyncClient([dev.endpoint(1), dev.endpoint(3)], tls=tls, timeout=20) as kv:
            kv.put("while", "paused")  # two of three serve, over client TLS

        status, answer = chaos_post(port, "/dev/nodes/2/resume", token)
        assert status == 200, answer
        dev.expect("node 2: resumed (SIGCONT)")
        assert chaos_states(port)["2"] == "running"
        dev.wait_for(lambda: process_state(node2) != "T", "node 2 never went on")
        read = http_request((HOST, dev.http + 1), "GET", "/v1/kv/while", tls=tls.context())
        assert read.status == 200 and read.json()["value"] == "paused"  # node 2, HTTPS
    finally:
        dev.close()


def chaos_post(port: int, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    """A ``POST`` to dev's chaos page as its buttons send one (``token``: the header)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers[TOKEN_HEADER] = token
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("POST", path, body=b"{}", headers=headers)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def chaos_states(port: int) -> dict[str, str]:
    states: dict[str, str] = http_request((HOST, port), "GET", "/dev/nodes").json()["states"]
    return states


def process_state(pid: int) -> str:
    """The state letter of ``/proc/PID/stat`` (``T``: stopped by a signal)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
