"""etcd: installed from Debian's packages, three members on 127.0.0.1, and its Go load tool.

etcd and etcdctl come from the packages ``etcd-server`` and ``etcd-client``
(3.4.23 on Debian 12), installed with apt-get when either is missing (root only).
The members run with etcd's defaults: every write is fsynced (WAL) by a
majority before it is acknowledged; no TLS.

The Go client is ``etcdctl check perf`` (3.4 has no other load tool in its
packages; ``benchmark`` is not packaged). What it measures: for 60 s (fixed),
a rate limiter releases puts of random 256-byte keys with 1 KiB values (not
64 bytes: it cannot be told otherwise) to 50-1,000 gRPC clients, one
connection each; the load model ``xl`` used here allows up to 15,000 puts/s
over 1,000 clients, so below that it is a closed loop at saturation. It prints
the writes/s it got, the slowest request and the standard deviation (no
percentiles), and PASS or FAIL against its model's thresholds (90% of the
rate, 0.5 s slowest, 0.1 s deviation); ``parse_check_perf`` reads that.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

from benchmarks.peers.phases import Load
from benchmarks.peers.procs import HOST, Processes, free_ports

PACKAGES = ("etcd-server", "etcd-client")
READY_TIMEOUT_S = 60.0
LOG_LEVEL = "warn"
CHECK_PERF_LOAD = "xl"
CHECK_PERF_SECONDS = 60.0  # fixed in etcdctl
CHECK_PERF_TIMEOUT_S = 300.0
NOTE = (
    "etcd: durable (WAL fsynced by a majority before the answer), no TLS. "
    "Go: `etcdctl check perf --load xl` (60 s fixed, up to 15,000 puts/s over 1,000 gRPC "
    "clients, 256-byte keys and 1 KiB values; writes/s only, no percentiles). "
    "HTTP: the shared aiohttp load generator on the v3 gateway (POST /v3/kv/put, "
    "/v3/kv/range, linearizable) at the leader."
)


class NotInstalled(RuntimeError):
    pass


def ensure_installed() -> None:
    """apt-get install etcd-server etcd-client when etcd or etcdctl is missing."""
    if shutil.which("etcd") and shutil.which("etcdctl"):
        return
    if os.geteuid() != 0:
        raise NotInstalled(
            "etcd or etcdctl is missing and this is not root: run "
            f"`sudo apt-get install -y {' '.join(PACKAGES)}`, or this benchmark as root"
        )
    print(f"bench-peers: apt-get install -y {' '.join(PACKAGES)}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", *PACKAGES]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    if not (shutil.which("etcd") and shutil.which("etcdctl")):
        raise NotInstalled(f"apt-get install {' '.join(PACKAGES)} gave no etcd and etcdctl")


def versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown"

    return {
        "etcd": first_line(["etcd", "--version"]),
        "etcdctl": first_line(["etcdctl", "version"]),
    }


# ------------------------------------------------------------------ the cluster


@dataclass
class EtcdCluster:
    root: Path  # its temp dir: data and logs
    nodes: list[Popen[bytes]]
    client_urls: list[str]
    leader: int
    raft_term: int  # at the start; each election raises it

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
        view = _post(self.client_urls[self.leader], "/v3/maintenance/status", {})
        if view is None:
            return f"etcd: the leader measured ({self.client_urls[self.leader]}) does not answer"
        term = int(view["raftTerm"])
        if term != self.raft_term or view["leader"] != view["header"]["member_id"]:
            return f"etcd: {term - self.raft_term} election(s) during the run (raft term {term})"
        return None


def _post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2.0) as answer:
            view: dict[str, Any] = json.loads(answer.read())
            return view
    except (OSError, urllib.error.URLError, ValueError):
        return None


def revision(url: str) -> int:
    """The store's revision (one more per put), from the gateway's status call."""
    view = _post(url, "/v3/maintenance/status", {})
    if view is None:
        raise RuntimeError(f"etcd at {url} does not answer its status")
    return int(view["header"]["revision"])


def start_cluster(procs: Processes) -> EtcdCluster:
    root = procs.temp_dir("etcd")
    ports = free_ports(6)
    client_urls = [f"http://{HOST}:{port}" for port in ports[:3]]
    peer_urls = [f"http://{HOST}:{port}" for port in ports[3:]]
    initial = ",".join(f"n{index + 1}={url}" for index, url in enumerate(peer_urls))
    nodes = [
        procs.start(
            [
                "etcd",
                "--name",
                f"n{index + 1}",
                "--data-dir",
                str(root / f"n{index + 1}"),
                "--listen-client-urls",
                client_urls[index],
                "--advertise-client-urls",
                client_urls[index],
                "--listen-peer-urls",
                peer_urls[index],
                "--initial-advertise-peer-urls",
                peer_urls[index],
                "--initial-cluster",
                initial,
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "paxon-bench-peers",
                "--logger",
                "zap",
                "--log-level",
                "warn",
            ],
            root / f"n{index + 1}.log",
        )
        for index in range(3)
    ]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for index, node in enumerate(nodes):
            if node.poll() is not None:
                log = (root / f"n{index + 1}.log").read_text(errors="replace")
                raise RuntimeError(f"etcd exited {node.returncode}:\n{log[-2000:]}")
        views = [_post(url, "/v3/maintenance/status", {}) for url in client_urls]
        if all(view is not None for view in views):
            members = [view["header"]["member_id"] for view in views if view]
            leaders = {view["leader"] for view in views if view}
            if len(leaders) == 1 and (leader := leaders.pop()) in members:
                index = members.index(leader)
                term = int(views[index]["raftTerm"])  # type: ignore[index]
                return EtcdCluster(root, nodes, client_urls, leader=index, raft_term=term)
        time.sleep(0.1)
    raise RuntimeError(f"etcd elected no leader in {READY_TIMEOUT_S:.0f} s")


def put_probe(url: str) -> None:
    """One put through the gateway, so a broken gateway fails before any load."""
    key = base64.b64encode(b"bench/probe").decode()
    if _post(url, "/v3/kv/put", {"key": key, "value": key}) is None:
        raise RuntimeError(f"etcd's gateway at {url} refused a put")


# ------------------------------------------------------------- check perf


@dataclass(frozen=True, slots=True)
class CheckPerf:
    writes_per_s: int
    slowest_s: float | None
    stddev_s: float | None
    passed: bool
    errors: dict[str, int]


_THROUGHPUT = re.compile(r"Throughput (?:is|too low:) (\d+) writes/s")
_SLOWEST = re.compile(r"Slowest request took(?: too long:)? ([0-9.]+)s")
_STDDEV = re.compile(r"Stddev (?:is|too high:) ([0-9.]+)s")
_ERROR = re.compile(r"FAIL: ERROR\((.*)\) -> (\d+)")
_VERDICT = re.compile(r"^(PASS|FAIL)\s*$", re.MULTILINE)


def parse_check_perf(text: str) -> CheckPerf:
    """Read ``etcdctl check perf``'s report (3.4), progress bar and all; ValueError if absent."""
    throughput = _THROUGHPUT.search(text)
    verdicts = _VERDICT.findall(text)
    if throughput is None or not verdicts:
        raise ValueError(f"not an etcdctl check perf report: {text[-500:]!r}")
    slowest = _SLOWEST.search(text)
    stddev = _STDDEV.search(text)
    return CheckPerf(
        writes_per_s=int(throughput.group(1)),
        slowest_s=float(slowest.group(1)) if slowest else None,
        stddev_s=float(stddev.group(1)) if stddev else None,
        passed=verdicts[-1] == "PASS",
        errors={match.group(1): int(match.group(2)) for match in _ERROR.finditer(text)},
    )


class CheckPerfDriver:
    """``etcdctl check perf --load xl`` at the leader: saturation only."""

    name = "etcd · etcdctl check perf (Go, gRPC)"
    phases = ("saturation",)

    def __init__(self, procs: Processes, cluster: EtcdCluster) -> None:
        self.procs = procs
        self.url = cluster.client_urls[cluster.leader]

    def saturation(self, seconds: float) -> Load:
        del seconds  # etcdctl check perf always runs 60 s
        before = revision(self.url)
        argv = [
            "etcdctl", "--endpoints", self.url.removeprefix("http://"),
            "check", "perf", "--load", CHECK_PERF_LOAD,
        ]  # fmt: skip
        done = self.procs.run(argv, timeout_s=CHECK_PERF_TIMEOUT_S)
        try:
            report = parse_check_perf(done.stdout + done.stderr)
        except ValueError as unreadable:
            failed = f"etcdctl check perf exited {done.returncode}: {unreadable}"
            raise RuntimeError(failed) from None
        puts = revision(self.url) - before - 1  # its puts, less its delete of the prefix
        return Load(
            ops=puts,
            seconds=puts / report.writes_per_s if report.writes_per_s else 0.0,
            latency_ms={"p50": None, "p99": None, "p99.9": None},
            errors=sum(report.errors.values()),
            loadgen_cpu_s=done.cpu_s,
            error_first=next(iter(report.errors), None),
            extra={
                "check_perf_slowest_ms": (report.slowest_s or 0.0) * 1000,
                "check_perf_stddev_ms": (report.stddev_s or 0.0) * 1000,
                "check_perf_passed": float(report.passed),
                "check_perf_wall_s": done.wall_s,
            },
        )

    def paced(self, rate: float, seconds: float) -> Load:
        raise NotImplementedError("etcdctl check perf runs at its model's rate only")

    def reads(self, seconds: float) -> Load:
        raise NotImplementedError("etcdctl check perf only writes")
