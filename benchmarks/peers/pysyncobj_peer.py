"""PySyncObj: its venv, a 3-node cluster of ``pysyncobj_node.py`` processes, the in-process load.

PySyncObj comes from PyPI into the benchmark's own venv (``.venv-bench-peers/``
at the top of the checkout, made with the runner's Python), never into the
project's ``.venv``. See ``pysyncobj_node.py`` for what a node runs and why its
figures are NOT durable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.peers.phases import Load
from benchmarks.peers.procs import HOST, Processes, free_ports

REQUIREMENT = "pysyncobj>=0.3.17"
VENV_NAME = ".venv-bench-peers"
NODE_SCRIPT = Path(__file__).with_name("pysyncobj_node.py")
READY_TIMEOUT_S = 60.0
WINDOW = 4096  # commands in flight at saturation: its ~100 ms latency needs many
PACED_WINDOW = 4096
NOTE = (
    "PySyncObj: NOT durable. Default SyncObjConf (journalFile=None: the log is in memory; "
    "fullDumpFile=None: no snapshot on disk), so no write touches the disk, let alone fsync. "
    "The load runs in the leader's process (PySyncObj has no client protocol), so its server "
    "CPU includes the load generator's; linearizable reads go through the log (no read index)."
)


def ensure_venv(root: Path) -> Path:
    """The benchmark venv's Python, with PySyncObj installed (made on first use)."""
    venv = root / VENV_NAME
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"bench-peers: making {venv} for PySyncObj", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    has_it = subprocess.run(
        [str(python), "-c", "import pysyncobj"], capture_output=True, check=False
    )
    if has_it.returncode != 0:
        print(f"bench-peers: pip install '{REQUIREMENT}' into {venv}", file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", REQUIREMENT], check=True)
    return python


def version(python: Path) -> str:
    done = subprocess.run(
        [str(python), "-m", "pip", "show", "pysyncobj"], capture_output=True, text=True, check=True
    )
    for line in done.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


@dataclass
class SyncObjCluster:
    root: Path  # its temp dir: data and logs
    nodes: list[subprocess.Popen[bytes]]
    addresses: list[str]
    leader: int  # index into nodes

    @property
    def pids(self) -> list[int]:
        """The leader's first."""
        ordered = [
            self.nodes[self.leader],
            *(n for i, n in enumerate(self.nodes) if i != self.leader),
        ]
        return [node.pid for node in ordered]

    def leader_changed(self) -> str | None:
        """Why the figures may hold an election, or None if the leader is the one measured."""
        now = {self.ask(index, {"cmd": "status"})["leader"] for index in range(len(self.nodes))}
        if now != {self.addresses[self.leader]}:
            return f"PySyncObj: the leader was {self.addresses[self.leader]}, now {now}"
        return None

    def ask(self, index: int, command: dict[str, Any]) -> dict[str, Any]:
        node = self.nodes[index]
        assert node.stdin is not None and node.stdout is not None
        node.stdin.write((json.dumps(command) + "\n").encode())
        node.stdin.flush()
        line = node.stdout.readline()
        if not line:
            raise RuntimeError(f"PySyncObj node {self.addresses[index]} exited")
        answer: dict[str, Any] = json.loads(line)
        return answer


def start_cluster(procs: Processes, python: Path) -> SyncObjCluster:
    root = procs.temp_dir("pysyncobj")
    addresses = [f"{HOST}:{port}" for port in free_ports(3)]
    nodes = [
        procs.start(
            [str(python), str(NODE_SCRIPT), address, *(a for a in addresses if a != address)],
            root / f"node{index + 1}.log",
            pipes=True,
        )
        for index, address in enumerate(addresses)
    ]
    cluster = SyncObjCluster(root, nodes, addresses, leader=-1)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        views = [cluster.ask(index, {"cmd": "status"}) for index in range(3)]
        leaders = {view["leader"] for view in views}
        if len(leaders) == 1 and None not in leaders:
            cluster.leader = addresses.index(leaders.pop())
            return cluster
        time.sleep(0.1)
    raise RuntimeError(f"PySyncObj elected no leader in {READY_TIMEOUT_S:.0f} s")


class InProcessDriver:
    """The load in the leader's process; see ``pysyncobj_node.run_load``."""

    name = "PySyncObj · in process, NOT durable"
    phases = ("saturation", "paced", "reads")

    def __init__(self, cluster: SyncObjCluster, value_size: int, keys: int) -> None:
        self.cluster = cluster
        self.value_size = value_size
        self.keys = keys

    def _load(self, seconds: float, rate: float | None, reads: bool, window: int) -> Load:
        command = {
            "cmd": "load",
            "seconds": seconds,
            "rate": rate,
            "reads": reads,
            "window": window,
            "value_size": self.value_size,
            "keys": self.keys,
            "seed": 0,
        }
        answer = self.cluster.ask(self.cluster.leader, command)
        return Load.from_samples(
            answer["latencies_s"],
            seconds=answer["seconds"],
            errors=answer["errors"],
            loadgen_cpu_s=answer["load_thread_cpu_s"],
        )

    def saturation(self, seconds: float) -> Load:
        return self._load(seconds, None, False, WINDOW)

    def paced(self, rate: float, seconds: float) -> Load:
        return self._load(seconds, rate, False, PACED_WINDOW)

    def reads(self, seconds: float) -> Load:
        return self._load(seconds, None, True, WINDOW)
