"""Availability under partial failures: ok ops/s during a fault over before it (issue 12).

As root, each of 3 ``paxon serve`` processes runs in a network namespace of
its own (``paxav-TAG-N``), joined by a veth pair to a bridge in the root
namespace (``pxb-TAG``, 10.77.0.254/24; node N is 10.77.0.N, native port 7001,
HTTP 8001). Everything made is removed at the end, however the run ends
(Ctrl-C, an error). Needs ``ip`` (iproute2) and ``iptables``.

Clients (``--clients``, 6) run in this process, in the root namespace: each
repeats a register operation (write 40%, linearizable read 35%, compare-and-set
by value through ``POST /v1/txn`` 25%) on one of three keys, over HTTP to a
node drawn at random for every operation, with a ``--op-timeout-s`` (2 s)
client timeout, as a user behind a load balancer would. The balancer
(``--balancer``, shared by all clients; see ``Balancer``): ``random`` draws
from every node; ``skip`` adds passive health checks: a node that did not
answer (timeout, refused connection) or answered that it cannot serve (503
``no_quorum`` or ``leader_unreachable``) is left out of the draw for 1 s,
doubling to 8 s (``paxon.client_health``, as ``paxon.Client`` does);
``least`` (the default) adds to ``skip`` the power of two random choices by
fewest operations in flight, as Envoy's and nginx's least-request balancing.
No server can answer from a stopped process, so under ``pause-leader`` a
``random`` client waits out its timeout on every draw of the paused node, and
a ``skip`` client on its first one. An answer is "ok"
(200, or 404 for a read of an absent key); after any other outcome the client
waits ``--failure-pause-s`` (0: at once, as a load balancer that retries on the
next node) and goes on. Each operation is recorded with its invocation and
answer times; a 503 that says "nothing was done" is left out (known not
applied), every other failure (timeout, 5xx, a lost connection) has an
unknown outcome. Each fault's history is checked with the simulator's
linearizability checker (``paxon.sim.linearizability``).

For each fault kind (``--faults``, all by default), on one cluster, in turn:
``--baseline-s`` (3) seconds of load, then the fault for ``--fault-s`` (4),
then healed, and load goes on until a leader serves again plus a second. A cut
drops packets silently with ``iptables -j DROP`` inside a namespace:

- ``isolate-leader`` / ``isolate-follower``: every packet between that node
  and its peers, both ways (clients still reach it);
- ``cut-leader-to-follower`` / ``cut-follower-to-leader``: the packets of one
  direction of one link, dropped at the receiver's INPUT (TCP then stalls both
  ways on that connection, as in the field);
- ``kill-leader``: SIGKILL, restarted when the fault ends;
- ``pause-leader``: SIGSTOP, SIGCONT when the fault ends.

``ratio`` = ok ops/s during the fault over ok ops/s in the baseline just
before it; also the ops that failed fast (answered, not ok) and those that got
no answer (timed out, or the connection refused).
Prints a table on stderr and, last, one JSON line on stdout. The issue's goal
is a ratio of at least 0.6 for every fault, median of 3 runs; numbers from a
busy machine are not figures.

    sudo PYTHONPATH=src .venv/bin/python benchmarks/availability_bench.py [--runs 1] \\
        [--faults isolate-leader,pause-leader] [--fault-s 4] [--baseline-s 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.cluster.workload

from tests.cluster.workload import History, recent_value

from paxon.client_health import EndpointHealth
from paxon.sim.linearizability import check_history

FAULTS = (
    "isolate-leader",
    "isolate-follower",
    "cut-leader-to-follower",
    "cut-follower-to-leader",
    "kill-leader",
    "pause-leader",
)
NODES = 3
SUBNET = "10.77.0"
BRIDGE_IP = f"{SUBNET}.254"
NATIVE_PORT = 7001
HTTP_PORT = 8001
READY_TIMEOUT_S = 60.0
POLL_S = 0.05
GOAL_RATIO = 0.6
KEYS = ("a", "b", "c")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


# ------------------------------------------------------------------ network


class Network:
    """A bridge in the root namespace and one namespace per node, each with a veth."""

    def __init__(self, nodes: int) -> None:
        self.tag = secrets.token_hex(2)
        self.nodes = nodes
        self.bridge = f"pxb-{self.tag}"

    def namespace(self, node: int) -> str:
        return f"paxav-{self.tag}-{node}"

    @staticmethod
    def ip(node: int) -> str:
        return f"{SUBNET}.{node}"

    def up(self) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for node in range(1, self.nodes + 1):
            ns, outside, inside = self.namespace(node), self._veth(node), f"pxn{node}-{self.tag}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            sh("ip", "link", "set", inside, "netns", ns)
            sh("ip", "link", "set", outside, "master", self.bridge, "up")
            self.run_in(node, "ip", "link", "set", "lo", "up")
            self.run_in(node, "ip", "addr", "add", f"{self.ip(node)}/24", "dev", inside)
            self.run_in(node, "ip", "link", "set", inside, "up")

    def down(self) -> None:
        """Remove everything ``up`` made (whatever of it exists)."""
        for node in range(1, self.nodes + 1):
            sh("ip", "netns", "del", self.namespace(node), check=False)
            sh("ip", "link", "del", self._veth(node), check=False)
        sh("ip", "link", "del", self.bridge, check=False)

    def run_in(self, node: int, *argv: str) -> None:
        sh("ip", "netns", "exec", self.namespace(node), *argv)

    def drop_from(self, receiver: int, sender: int) -> None:
        """Packets from ``sender`` to ``receiver`` are lost (at the receiver's INPUT)."""
        self.run_in(receiver, "iptables", "-A", "INPUT", "-s", self.ip(sender), "-j", "DROP")

    def isolate(self, node: int) -> None:
        for peer in range(1, self.nodes + 1):
            if peer != node:
                self.drop_from(node, peer)
                self.drop_from(peer, node)

    def heal(self) -> None:
        for node in range(1, self.nodes + 1):
            self.run_in(node, "iptables", "-F", "INPUT")

    def _veth(self, node: int) -> str:
        return f"pxr{node}-{self.tag}"


# ------------------------------------------------------------------ cluster


@dataclass
class Cluster:
    network: Network
    root: Path
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def http(self, node: int) -> str:
        return f"http://{Network.ip(node)}:{HTTP_PORT}"

    def start(self, node: int) -> None:
        peers = ",".join(
            f"{n}={Network.ip(n)}:{NATIVE_PORT}" for n in range(1, self.network.nodes + 1)
        )
        argv = [
            "ip",
            "netns",
            "exec",
            self.network.namespace(node),
            sys.executable,
            "-m",
            "paxon",
            "serve",
            "--id",
            str(node),
            "--data-dir",
            str(self.root / f"node{node}"),
            "--listen",
            f"{Network.ip(node)}:{NATIVE_PORT}",
            "--http",
            f"{Network.ip(node)}:{HTTP_PORT}",
            "--peers",
            peers,
        ]
        log = (self.root / f"node{node}.log").open("ab")
        self.processes[node] = subprocess.Popen(argv, stdout=log, stderr=log)

    def signal(self, node: int, signum: int) -> None:
        self.processes[node].send_signal(signum)

    def kill(self, node: int) -> None:
        process = self.processes[node]
        process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait()

    def stop_all(self) -> None:
        for node in list(self.processes):
            if self.processes[node].poll() is None:
                self.kill(node)

    async def leader(self, session: aiohttp.ClientSession) -> int | None:
        """The leader every reachable node names, if they agree and one does."""
        named: set[int | None] = set()
        for node in self.processes:
            try:
                async with session.get(
                    f"{self.http(node)}/v1/status", timeout=aiohttp.ClientTimeout(total=0.5)
                ) as answer:
                    named.add((await answer.json())["leader"])
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                continue
        return next(iter(named)) if len(named) == 1 else None

    async def wait_leader(self, session: aiohttp.ClientSession) -> int:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            leader = await self.leader(session)
            if leader is not None:
                return leader
            await asyncio.sleep(POLL_S)
        raise RuntimeError(f"no leader within {READY_TIMEOUT_S} s; logs in {self.root}")


# ------------------------------------------------------------------ clients


@dataclass
class Load:
    """The clients' record: every ok answer's time, and the history per fault."""

    ok_at: list[float] = field(default_factory=list)
    failed_fast_at: list[float] = field(default_factory=list)  # an HTTP answer, not ok
    failed_fast_codes: list[tuple[float, str]] = field(default_factory=list)  # (time, status code)
    unanswered_at: list[float] = field(default_factory=list)  # timeout, connection refused
    history: History = field(default_factory=History)
    prefix: str = ""


CANNOT_SERVE = frozenset({"no_quorum", "leader_unreachable"})
"""Error codes of a node that cannot serve anyone now (``paxon.client``'s)."""


class Balancer:
    """The load balancer all clients share: which node gets the next operation.

    ``random``: any node. ``skip``: any node not skipped by the passive health
    checks of ``paxon.client_health`` (a node that timed out or could not be
    reached is left out for 1 s, doubling to 8 s). ``least``: the same
    skipping, then the power of two random choices by fewest operations in
    flight (Envoy's ``LEAST_REQUEST``, nginx's ``least_conn``): two distinct
    nodes not skipped are drawn and the one with fewer operations waiting on it
    gets this one, so a node that stopped answering, holding the operations
    already sent to it, gets few new ones long before any of them times out.
    When fewer than two nodes are not skipped, the two are drawn from all.
    """

    def __init__(self, mode: str, nodes: Sequence[int]) -> None:
        self.mode = mode
        self.nodes = list(nodes)
        self.health = EndpointHealth([str(node) for node in nodes])
        self.in_flight = dict.fromkeys(self.nodes, 0)

    def choose(self, rng: random.Random) -> int:
        node = self._choose(rng)
        self.in_flight[node] += 1
        return node

    def done(self, node: int) -> None:
        self.in_flight[node] -= 1

    def _choose(self, rng: random.Random) -> int:
        if self.mode == "random":
            return rng.choice(self.nodes)
        live = [node for node in self.nodes if not self.health.skipped(str(node))]
        if self.mode == "skip":
            if not live:
                return int(self.health.pick(rng.randrange(len(self.nodes))))
            return rng.choice(live)
        # With fewer than two nodes left to draw from, every node is drawn from:
        # while a paused leader holds what was sent to it, the followers that
        # said they cannot reach it are skipped too, and drawing only from
        # what is left would send everything to the paused one.
        first, second = rng.sample(live if len(live) >= 2 else self.nodes, 2)
        return first if self.in_flight[first] <= self.in_flight[second] else second


async def client(
    index: int,
    cluster: Cluster,
    load: Load,
    stop: asyncio.Event,
    timeout_s: float,
    seed: int,
    failure_pause_s: float,
    balancer: Balancer,
) -> None:
    rng = random.Random(seed * 100 + index)
    count = 0
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            node = balancer.choose(rng)
            try:
                ok = await _one_operation(index, count, node, cluster, session, load, rng, balancer)
            finally:
                balancer.done(node)
            count += 1
            if not ok:
                await asyncio.sleep(failure_pause_s)


async def _one_operation(
    index: int,
    count: int,
    node: int,
    cluster: Cluster,
    session: aiohttp.ClientSession,
    load: Load,
    rng: random.Random,
    balancer: Balancer,
) -> bool:
    """One register operation on ``node``, recorded in ``load``; whether it was ok."""
    health = balancer.health
    base = cluster.http(node)
    key = f"{load.prefix}{rng.choice(KEYS)}"
    history = load.history
    roll = rng.random()
    invoked = time.monotonic()
    kind: str
    args: tuple[Hashable, ...]
    result: Hashable = None
    try:
        if roll < 0.4:
            kind, args = "write", (f"{index}:{count}",)
            async with session.put(f"{base}/v1/kv/{key}", data=args[0]) as answer:
                status, body = answer.status, await answer.text()
        elif roll < 0.75:
            kind, args = "read", ()
            async with session.get(f"{base}/v1/kv/{key}") as answer:
                status, body = answer.status, await answer.text()
            if status == 200:
                result = json.loads(body)["value"]
        else:
            expect = recent_value(history, key) if rng.random() < 0.7 else None
            kind, args = "cas", (expect, f"{index}:{count}")
            async with session.post(f"{base}/v1/txn", json=_cas(key, *args)) as answer:
                status, body = answer.status, await answer.text()
            if status == 200:
                result = bool(json.loads(body)["succeeded"])
    except (aiohttp.ClientError, TimeoutError, OSError):
        load.unanswered_at.append(time.monotonic())
        health.failed(str(node))
        history.record(key, kind, args, invoked, None, None)
        return False
    now = time.monotonic()
    if status == 503 and _error_code(body) in CANNOT_SERVE:
        health.failed(str(node))  # as paxon.Client does: ask another node for a while
    else:
        health.answered(str(node))
    if status == 200 or (status == 404 and kind == "read"):
        load.ok_at.append(now)
        history.record(key, kind, args, invoked, now, result)
        return True
    load.failed_fast_at.append(now)
    load.failed_fast_codes.append((now, f"{status} {_error_code(body)}"))
    if not (status == 503 and "nothing was done" in body) and not 400 <= status < 500:
        history.record(key, kind, args, invoked, None, None)  # outcome unknown
    return False


def _error_code(body: str) -> str:
    """The ``code`` of an error answer, or ``?`` when it has none."""
    try:
        return str(json.loads(body).get("code", "?"))
    except (ValueError, AttributeError):
        return "?"


def _cas(key: str, expect: Hashable, new: Hashable) -> dict[str, Any]:
    compare = (
        {"key": key, "target": "version", "op": "==", "operand": 0}
        if expect is None
        else {"key": key, "target": "value", "op": "==", "operand": expect}
    )
    return {"compare": [compare], "success": [{"put": {"key": key, "value": new}}], "failure": []}


# ------------------------------------------------------------------ one fault


async def run_fault(
    kind: str, cluster: Cluster, args: argparse.Namespace, run: int
) -> dict[str, Any]:
    network = cluster.network
    load = Load(prefix=f"{kind}-{run}-")
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        leader = await cluster.wait_leader(session)
        balancer = Balancer(args.balancer, list(cluster.processes))
        clients = [
            asyncio.create_task(
                client(
                    i,
                    cluster,
                    load,
                    stop,
                    args.op_timeout_s,
                    args.seed + run,
                    args.failure_pause_s,
                    balancer,
                )
            )
            for i in range(args.clients)
        ]
        await asyncio.sleep(args.baseline_s)
        leader = await cluster.leader(session) or leader
        follower = next(n for n in cluster.processes if n != leader)
        victim = follower if kind == "isolate-follower" else leader
        fault_at = time.monotonic()
        await asyncio.to_thread(_strike, kind, cluster, network, leader, follower)
        await asyncio.sleep(args.fault_s)
        healed_at = time.monotonic()
        await asyncio.to_thread(_heal, kind, cluster, network, leader)
        await cluster.wait_leader(session)
        served_at = time.monotonic()
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*clients)

    def between(times: Sequence[float], start: float, end: float) -> int:
        return sum(1 for t in times if start <= t < end)

    before = between(load.ok_at, fault_at - args.baseline_s, fault_at) / args.baseline_s
    during = between(load.ok_at, fault_at, healed_at) / (healed_at - fault_at)
    verdict = check_history(load.history.operations)
    return {
        "fault": kind,
        "run": run,
        "victim": victim,
        "ok_per_s_before": round(before, 1),
        "ok_per_s_during": round(during, 1),
        "ratio": round(during / before, 3) if before else None,
        "failed_fast_before": between(load.failed_fast_at, fault_at - args.baseline_s, fault_at),
        "failed_fast_during": between(load.failed_fast_at, fault_at, healed_at),
        "failed_fast_codes_during": dict(
            Counter(code for at, code in load.failed_fast_codes if fault_at <= at < healed_at)
        ),
        "unanswered_during": between(load.unanswered_at, fault_at, healed_at),
        # ok answers per quarter second from the fault to the heal: where the time went
        "ok_per_quarter_s_during": [
            between(load.ok_at, fault_at + q / 4, fault_at + (q + 1) / 4)
            for q in range(int((healed_at - fault_at) * 4))
        ],
        "served_again_after_heal_s": round(served_at - healed_at, 2),
        "operations": len(load.history.operations),
        "linearizable": verdict.ok,
        "linearizability": verdict.explanation,
    }


def _strike(kind: str, cluster: Cluster, network: Network, leader: int, follower: int) -> None:
    match kind:
        case "isolate-leader":
            network.isolate(leader)
        case "isolate-follower":
            network.isolate(follower)
        case "cut-leader-to-follower":
            network.drop_from(follower, leader)
        case "cut-follower-to-leader":
            network.drop_from(leader, follower)
        case "kill-leader":
            cluster.kill(leader)
        case "pause-leader":
            cluster.signal(leader, signal.SIGSTOP)
        case _:
            raise ValueError(f"unknown fault {kind}")


def _heal(kind: str, cluster: Cluster, network: Network, leader: int) -> None:
    if kind == "kill-leader":
        cluster.start(leader)
    elif kind == "pause-leader":
        cluster.signal(leader, signal.SIGCONT)
    else:
        network.heal()


# ------------------------------------------------------------------ main


@contextmanager
def cluster_in_namespaces(keep: bool) -> Iterator[Cluster]:
    network = Network(NODES)
    root = Path(tempfile.mkdtemp(prefix="paxon-availability-"))
    cluster = Cluster(network, root)
    # Ctrl-C or a kill: unwind through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        network.up()
        for node in range(1, NODES + 1):
            cluster.start(node)
        yield cluster
    finally:
        cluster.stop_all()
        network.down()
        if keep:
            print(f"data dirs and logs kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated, in order")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--baseline-s", type=float, default=3.0)
    parser.add_argument("--fault-s", type=float, default=4.0)
    parser.add_argument("--op-timeout-s", type=float, default=2.0)
    parser.add_argument("--failure-pause-s", type=float, default=0.0)
    parser.add_argument("--balancer", choices=("least", "skip", "random"), default="least")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    args = parser.parse_args()
    faults = [fault for fault in args.faults.split(",") if fault]
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {', '.join(FAULTS)}")
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces, iptables)")
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            parser.error(f"needs {tool} on PATH (apt-get install iproute2 iptables)")
    results: list[dict[str, Any]] = []
    with cluster_in_namespaces(args.keep) as cluster:
        for run in range(args.runs):
            for kind in faults:
                result = asyncio.run(run_fault(kind, cluster, args, run))
                results.append(result)
                _print_row(result)
    medians = {
        kind: statistics.median(r["ratio"] for r in results if r["fault"] == kind)
        for kind in faults
        if all(r["ratio"] is not None for r in results if r["fault"] == kind)
    }
    summary = {
        "load_average": os.getloadavg(),
        "medians": medians,
        "goal_ratio": GOAL_RATIO,
        "all_linearizable": all(r["linearizable"] for r in results),
        "runs": results,
    }
    print("median ratio per fault: " + json.dumps(medians), file=sys.stderr)
    print(json.dumps(summary))
    return 0 if summary["all_linearizable"] else 1


def _print_row(result: dict[str, Any]) -> None:
    print(
        f"{result['fault']:<24} run {result['run']}  node {result['victim']}  "
        f"ok/s {result['ok_per_s_before']:>7} -> {result['ok_per_s_during']:>7}  "
        f"ratio {result['ratio']}  failed fast {result['failed_fast_during']:>5}  "
        f"unanswered {result['unanswered_during']:>4}  "
        f"linearizable {result['linearizable']} ({result['operations']} ops)",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
