"""paxon: three ``paxon serve`` processes on 127.0.0.1, driven by ``paxon bench`` (native).

Each node fsyncs every write on a majority before it is acknowledged (the
default); no TLS (etcd runs without it too). The HTTP API is driven by the
shared load generator (``http_driver.py``) at the leader's HTTP port.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

from benchmarks.peers.phases import KEYS, VALUE_SIZE, Load
from benchmarks.peers.procs import HOST, Processes, free_ports

READY_TIMEOUT_S = 60.0
CLIENTS = 512  # paxon bench tasks at saturation and for reads (docs/benchmarks.md)
PACED_CLIENTS = 256
# paxon bench counts ops, not seconds: a phase of S seconds is S x these ops.
SATURATION_OPS_PER_S = 12_000
READ_OPS_PER_S = 15_000
TIMEOUT_MARGIN_S = 120.0
NOTE = (
    "paxon: durable (each write fsynced by a majority before its answer); no TLS. "
    "Native: paxon bench (asyncio, the native protocol). HTTP: the shared aiohttp load "
    "generator on PUT/GET /v1/kv/KEY at the leader; reads are linearizable (read index)."
)


@dataclass
class PaxonCluster:
    root: Path  # its temp dir: data and logs
    nodes: list[Popen[bytes]]
    native: list[str]  # host:port
    http: list[str]  # http://host:port
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
        views = [_status(url) for url in self.http]
        now = {None if view is None else view.get("leader") for view in views}
        if now != {self.leader + 1}:
            return f"paxon: the leader was node {self.leader + 1}, now the nodes name {now}"
        return None


def _status(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"{url}/v1/status", timeout=1.0) as answer:
            view: dict[str, object] = json.loads(answer.read())
            return view
    except (OSError, urllib.error.URLError, ValueError):
        return None


VARIANT_FLAGS = {
    "paxon-lease": ("--lease-reads", "on"),
    "paxon-nofsync": ("--unsafe-no-fsync", "on"),
}
"""``paxon serve`` flags of the variants measured beside the default (native client only)."""
VARIANT_NOTE = (
    "paxon-lease: --lease-reads on (linearizable reads under a leader lease resting on a "
    "5% clock-rate bound; docs/protocol.md). paxon-nofsync: --unsafe-no-fsync on, "
    "benchmarks only: NOT durable, as PySyncObj's default."
)


def start_cluster(procs: Processes, flags: tuple[str, ...] = ()) -> PaxonCluster:
    root = procs.temp_dir("paxon")
    ports = free_ports(6)
    native = [f"{HOST}:{port}" for port in ports[:3]]
    http = [f"http://{HOST}:{port}" for port in ports[3:]]
    peers = ",".join(f"{index + 1}={address}" for index, address in enumerate(native))
    nodes = [
        procs.start(
            [
                sys.executable,
                "-m",
                "paxon",
                "serve",
                "--id",
                str(index + 1),
                "--data-dir",
                str(root / f"node{index + 1}"),
                "--listen",
                native[index],
                "--http",
                http[index].removeprefix("http://"),
                "--peers",
                peers,
                *flags,
            ],
            root / f"node{index + 1}.log",
        )
        for index in range(3)
    ]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for node in nodes:
            if node.poll() is not None:
                log = (root / f"node{nodes.index(node) + 1}.log").read_text(errors="replace")
                raise RuntimeError(f"paxon serve exited {node.returncode}:\n{log[-2000:]}")
        views = [_status(url) for url in http]
        leaders = {None if view is None else view.get("leader") for view in views}
        if len(leaders) == 1 and None not in leaders:
            leader_id = leaders.pop()
            assert isinstance(leader_id, int)
            return PaxonCluster(root, nodes, native, http, leader=leader_id - 1)
        time.sleep(0.1)
    raise RuntimeError(f"paxon elected no leader in {READY_TIMEOUT_S:.0f} s")


class NativeDriver:
    """``paxon bench`` in a process of its own, the leader's endpoint first."""

    name = "paxon · paxon bench (native)"
    phases = ("saturation", "paced", "reads")

    def __init__(self, procs: Processes, cluster: PaxonCluster) -> None:
        self.procs = procs
        leader = cluster.native[cluster.leader]
        self.endpoints = ",".join([leader, *(a for a in cluster.native if a != leader)])

    def _bench(self, ops: int, clients: int, *flags: str, seconds: float) -> Load:
        argv = [
            sys.executable, "-m", "paxon", "bench", "--json", "--timeout", "30",
            "--endpoints", self.endpoints, "--clients", str(clients), "--ops", str(ops),
            "--value-size", str(VALUE_SIZE), "--keys", str(KEYS), *flags,
        ]  # fmt: skip
        done = self.procs.run(argv, timeout_s=seconds + TIMEOUT_MARGIN_S)
        if done.returncode not in (0, 1):  # 1: some ops failed, the report says how many
            raise RuntimeError(f"paxon bench exited {done.returncode}:\n{done.stderr}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        ok = report["ops"] - report["errors"]
        return Load(
            ops=ok,
            seconds=report["seconds"],
            latency_ms={name: report["latency_ms"][name] for name in ("p50", "p99", "p99.9")},
            errors=report["errors"],
            loadgen_cpu_s=done.cpu_s,
            error_first=None if not report["errors"] else "see paxon bench",
        )

    def saturation(self, seconds: float) -> Load:
        return self._bench(int(seconds * SATURATION_OPS_PER_S), CLIENTS, seconds=seconds)

    def paced(self, rate: float, seconds: float) -> Load:
        ops = max(1, int(rate * seconds))
        return self._bench(ops, PACED_CLIENTS, "--rate", f"{rate:.1f}", seconds=seconds)

    def reads(self, seconds: float) -> Load:
        ops = int(seconds * READ_OPS_PER_S)
        return self._bench(ops, CLIENTS, "--read-ratio", "1", seconds=seconds)
