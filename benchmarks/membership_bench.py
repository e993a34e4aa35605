"""Membership changes under load, and a learner catching up (issue 10, "Speed").

Two benchmarks, each on fresh 3-node clusters of real ``paxon serve``
processes on 127.0.0.1 (the cluster tests' harness, ``tests/cluster/harness.py``;
fsync on, no TLS, default timings: election timeout 0.3-0.6 s), data dirs
under a temp dir:

``changes`` (issue goal: throughput during a change >= 80% of steady state,
no write waits more than one election timeout). ``--clients`` asyncio tasks
(64) in this process put 100-byte values over 1,000 keys through one
``paxon.Client`` that knows every node, without pause, from a thread of their
own. Every ok write is kept as (start, end); ok writes/s are also bucketed by
0.5 s. After a steady stretch the orchestrator (the main thread) makes four
changes, ``--gap-s`` seconds apart, in this order, so the leader removal and
the transfer happen among 3 voters:

- ``add``: ``members add 4=... --learner``, start node 4 with ``--join``, wait
  until its applied index reaches the leader's commit index as it was when the
  node answered, then ``members promote 4``; the window ends when promote is
  chosen;
- ``remove-leader``: ``members remove LEADER``; the window ends when every
  remaining voter names one new leader;
- ``transfer``: ``members transfer-leader F``; ends when every voter names F;
- ``remove-follower``: ``members remove F``; ends when the change is chosen.

For each change: ``ratio`` = ok writes/s in the window (request to effect;
counted over at least one 0.5 s bucket, since a removal is chosen in 10-30 ms)
over the ``--baseline-s`` seconds just before the request; ``after_ratio`` the
same for the window plus the second after it (a stall that starts once the
change is in effect shows here); ``max_latency_s`` = the longest write that
was in flight at any time during the window or that second after, against the
election timeout; ``longest_gap_s`` = the longest time without an ok write
from the request to 3 s past the window, ending ``writes_resumed_s`` after the
request; errors. A removed node is stopped (SIGTERM) after its change's
measured second (a removed leader: ``--retire-after-s`` after its successor
leads).

``catchup`` (issue goal: snapshot transfer at disk or network speed). Puts of
100-byte values to every key of 100,000 (``--keys``) by 128 clients, then
overwrites until the leader has compacted its log (its ``log_start`` > 0: two
snapshots taken, each due every 32 MiB of commands or 20,000 slots, so a new
node must take a snapshot rather than the log). Load stops; a learner is added
and started with ``--join``; the time to catch up runs from its process start
to its applied index reaching the leader's commit index; the snapshot's bytes
and the transfer time come from the leader's log line (``sending node 4 the
snapshot at slot S (B bytes)``) and the learner's (``installed the snapshot at
slot S``): MB/s = B / (installed - sending), which includes decoding it and
writing it durably on the learner. The learner's line also says where that time
went (``received in R s, decoded in D s, written durably in W s``): ``wire``
MB/s = B / R (first chunk to last on the learner), ``disk`` MB/s = B / W, and
the decode on its own.

``steady`` (why the add's ratio is bounded on one machine): the same write
load on a fresh 3-node cluster, ``--steady-s`` seconds (5) each: three voters;
then a learner added, caught up and given a second to settle; then that
learner promoted (four voters). Ratios are each stretch's writes/s over the
three voters'. On one machine the fourth process shares the cores, so the
cluster after an add is slower than before it whatever the change costs.

``--new-node-args`` passes flags to node 4's ``paxon serve`` and
``--new-node-nice`` lowers its CPU priority (its main thread's nice value):
both to ask whether node 4's own CPU or disk is what an add costs.

Each figure is the median over ``--runs`` runs (3), each on a fresh cluster.
Prints a table on stderr and, last, one JSON line with the medians and every run.

    .venv/bin/python benchmarks/membership_bench.py [changes|catchup|steady|all] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import compileall
import contextlib
import dataclasses
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.cluster.harness

from tests.cluster.harness import (
    Cluster,
    JoiningNode,
    ServerNode,
    own_row,
)

import paxon
from paxon.tuning import tune_for_throughput

VALUE = b"v" * 100
BUCKET_S = 0.5
ELECTION_TIMEOUT_S = (0.3, 0.6)  # paxon serve's defaults (--election-timeout-min/max-s)
AFTER_S = 1.0
GAP_HORIZON_S = 3.0  # how far past a window a stall that began in it is followed
POLL_S = 0.02
CHANGE_TIMEOUT_S = 60.0
CLIENT_TIMEOUT_S = 30.0
GOAL_RATIO = 0.8
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
CHANGES = ("add", "remove-follower", "remove-leader", "transfer")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "bench", nargs="?", choices=("changes", "catchup", "steady", "all"), default="all"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--gap-s", type=float, default=4.0, help="steady seconds between changes")
    parser.add_argument("--baseline-s", type=float, default=3.0)
    parser.add_argument("--keys", type=int, default=100_000, help="keys held for catchup")
    parser.add_argument(
        "--backoff-max-s", type=float, help="cap the load client's retry backoff (default 0.5)"
    )
    parser.add_argument(
        "--retire-after-s",
        type=float,
        default=AFTER_S,
        help="stop a removed leader this long after its successor leads (1)",
    )
    parser.add_argument("--steady-s", type=float, default=5.0, help="each steady stretch (5)")
    parser.add_argument("--new-node-args", default="", help="flags for node 4's paxon serve")
    parser.add_argument(
        "--new-node-nice", type=int, help="node 4's nice value (its main thread; diagnosis)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    args = parser.parse_args()
    tune_for_throughput()
    # An installed paxon has its bytecode compiled (pip does it at install);
    # a checkout run with PYTHONDONTWRITEBYTECODE (as this machine's shell is)
    # would compile every module at each node's start, about 0.2 s of CPU
    # that no user pays, counted against the add.
    compileall.compile_dir(Path(paxon.__file__).parent, quiet=1)
    result: dict[str, Any] = {"load_average": os.getloadavg()}
    if args.bench in ("changes", "all"):
        runs = [_changes_run(args, run) for run in range(args.runs)]
        result["changes"] = {"medians": _changes_medians(runs), "runs": runs}
        _print_changes(result["changes"])
    if args.bench in ("steady", "all"):
        steadies = [_steady_run(args, run) for run in range(args.runs)]
        result["steady"] = {"medians": _steady_medians(steadies), "runs": steadies}
        _print_steady(result["steady"])
    if args.bench in ("catchup", "all"):
        catchups = [_catchup_run(args, run) for run in range(args.runs)]
        result["catchup"] = {"medians": _catchup_medians(catchups), "runs": catchups}
        _print_catchup(result["catchup"])
    result["load_average_end"] = os.getloadavg()
    print(json.dumps(result))
    return 0


# ------------------------------------------------------------------ the write load


@dataclass
class WriteLoad:
    """``clients`` tasks putting without pause from a thread of their own, until ``stop``.

    ``keys``: keys are drawn in turn (``key_order`` None) or by ``key_order(i)``.
    """

    endpoints: list[str]
    clients: int
    keys: int = 1000
    backoff_max_s: float | None = None  # the client's retry backoff cap (None: its default)
    done: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of ok writes
    errors: list[tuple[float, str]] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _taken: int = 0

    def start(self) -> WriteLoad:
        self._thread = threading.Thread(target=self._main, name="write-load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        assert self._thread is not None
        self._thread.join(timeout=2 * CLIENT_TIMEOUT_S)

    def _main(self) -> None:
        try:
            import uvloop
        except ImportError:
            asyncio.run(self._run())
        else:
            uvloop.run(self._run())

    async def _run(self) -> None:
        async with paxon.Client(self.endpoints, timeout=CLIENT_TIMEOUT_S) as kv:
            if self.backoff_max_s is not None:
                kv.options = dataclasses.replace(kv.options, backoff_max_s=self.backoff_max_s)
            await asyncio.gather(*(self._worker(kv) for _ in range(self.clients)))

    async def _worker(self, kv: paxon.Client) -> None:
        while not self._stopping.is_set():
            number = self._taken
            self._taken += 1
            start = time.monotonic()
            try:
                await kv.put(f"bench/{number % self.keys:06d}", VALUE)
            except paxon.PaxonError as error:
                self.errors.append((time.monotonic(), f"{type(error).__name__}: {error}"))
            else:
                self.done.append((start, time.monotonic()))

    @property
    def written(self) -> int:
        return len(self.done)


# ------------------------------------------------------------------ changes under load


@contextlib.contextmanager
def fresh_bench(args: argparse.Namespace, prefix: str = "paxon-membench-") -> Iterator[Bench]:
    """A ``Bench`` on a temp dir, its nodes killed and the dir removed after (unless --keep)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    bench = Bench(root, args)
    try:
        yield bench
    finally:
        bench.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


class Bench:
    """One fresh cluster and the bookkeeping every measurement shares."""

    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.root = root
        self.new_node_args = args.new_node_args.split()
        self.new_node_nice: int | None = args.new_node_nice
        self.cluster = Cluster(root, 3).start()
        self.members: dict[int, ServerNode] = {node.node_id: node for node in self.cluster.nodes}
        self.removed: set[int] = set()
        self.admin = paxon.SyncClient(self.cluster.endpoints, timeout=CHANGE_TIMEOUT_S)

    def close(self) -> None:
        self.admin.close()
        for node in self.members.values():
            node.kill()

    def voters_views(self) -> dict[int, dict[str, Any]]:
        views = {}
        for node_id, node in self.members.items():
            if node_id in self.removed:
                continue
            view = node.status()
            if view is not None:
                views[node_id] = view
        return views

    def agreed_leader(self) -> int | None:
        """The leader every running member names (and that says it leads), if any."""
        views = self.voters_views()
        named = {view.get("leader") for view in views.values()}
        if len(named) != 1 or len(views) < len(self.members) - len(self.removed):
            return None
        leader = named.pop()
        if leader not in views or own_row(views[leader])["role"] != "leader":
            return None
        return int(leader)

    def wait(self, condition: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + CHANGE_TIMEOUT_S
        while True:
            value = condition()
            if value is not None and value is not False:
                return value
            if time.monotonic() > deadline:
                raise RuntimeError(f"waited {CHANGE_TIMEOUT_S} s for {what}\n{self.describe()}")
            time.sleep(POLL_S)

    def describe(self) -> str:
        return "\n".join(node.describe() for node in self.members.values())

    def add_learner(self, node_id: int) -> JoiningNode:
        join = [n.endpoint for i, n in self.members.items() if i not in self.removed]
        node = JoiningNode(node_id, self.root, join, extra_args=self.new_node_args)
        self.admin.change_members("add-learner", node_id, node.endpoint)
        self.members[node_id] = node
        node.start()
        if self.new_node_nice is not None:
            assert node.process is not None
            os.setpriority(os.PRIO_PROCESS, node.process.pid, self.new_node_nice)
        node.wait_ready(time.monotonic() + CHANGE_TIMEOUT_S)
        return node

    def leader_commit_index(self) -> int:
        leader = self.wait(self.agreed_leader, "a leader")
        view = self.members[leader].status()
        assert view is not None
        return int(own_row(view)["commit_index"])

    def wait_applied(self, node: ServerNode, slot: int) -> None:
        def applied() -> bool:
            view = node.status()
            return view is not None and own_row(view)["applied_index"] >= slot

        self.wait(applied, f"node {node.node_id} to apply slot {slot}")

    def retire(self, node_id: int) -> None:
        """After a removal: stop the node in the background (it exits 0 on SIGTERM)."""
        self.removed.add(node_id)
        process = self.members[node_id].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)


def _changes_run(args: argparse.Namespace, run: int) -> dict[str, Any]:
    with fresh_bench(args) as bench:
        leader = bench.wait(bench.agreed_leader, "a first leader")
        # Node 4's port is not known yet: the client reaches it through redirects.
        endpoints = [n.endpoint for n in bench.cluster.nodes]
        load = WriteLoad(endpoints, args.clients, backoff_max_s=args.backoff_max_s).start()
        time.sleep(args.warmup_s + args.gap_s)
        windows: dict[str, tuple[float, float, dict[str, float]]] = {}

        # add: learner, --join, caught up, promote
        started = time.monotonic()
        node4 = bench.add_learner(4)
        ready = time.monotonic()
        bench.wait_applied(node4, bench.leader_commit_index())
        caught_up = time.monotonic()
        node4_cpu_s = _cpu_s(node4)
        bench.admin.change_members("promote", 4)
        ended = time.monotonic()
        windows["add"] = (
            started,
            ended,
            {
                "node_ready_s": ready - started,
                "caught_up_s": caught_up - started,
                "node4_cpu_s": node4_cpu_s,
            },
        )
        time.sleep(AFTER_S + args.gap_s)

        # remove the leader: until the others agree on a new one
        leader = bench.wait(bench.agreed_leader, "a leader")
        started = time.monotonic()
        bench.admin.change_members("remove", leader)
        chosen = time.monotonic()
        bench.removed.add(leader)
        new_leader = bench.wait(
            lambda: (lambda lead: lead if lead not in (None, leader) else None)(
                bench.agreed_leader()
            ),
            "a new leader",
        )
        windows["remove-leader"] = (started, time.monotonic(), {"chosen_s": chosen - started})
        time.sleep(AFTER_S)
        # What the removed node says of itself a second after its successor leads.
        old_view = bench.members[leader].status()
        old_role = own_row(old_view)["role"] if old_view is not None else "no answer"
        time.sleep(max(0.0, args.retire_after_s - AFTER_S))
        bench.retire(leader)
        time.sleep(args.gap_s)

        # transfer-leader to a follower
        follower = min(i for i in bench.members if i not in bench.removed and i != new_leader)
        started = time.monotonic()
        bench.admin.change_members("transfer-leader", follower)
        asked = time.monotonic()
        bench.wait(lambda: bench.agreed_leader() == follower, f"node {follower} to lead")
        windows["transfer"] = (started, time.monotonic(), {"answered_s": asked - started})
        time.sleep(AFTER_S + args.gap_s)

        # remove a follower: until the change is chosen
        leader = bench.wait(bench.agreed_leader, "a leader")
        follower = min(i for i in bench.members if i not in bench.removed and i != leader)
        started = time.monotonic()
        bench.admin.change_members("remove", follower)
        windows["remove-follower"] = (started, time.monotonic(), {})
        time.sleep(AFTER_S)
        bench.retire(follower)
        time.sleep(GAP_HORIZON_S)  # the load outlasts the last window's horizon
        load.stop()
        result = _measure(load, windows, args.baseline_s)
        result["changes"]["remove-leader"]["removed_node_role_after_s"] = old_role
        result["run"] = run + 1
        _print_run(result)
        return result


def _measure(
    load: WriteLoad,
    windows: dict[str, tuple[float, float, dict[str, float]]],
    baseline_s: float,
) -> dict[str, Any]:
    done = sorted(load.done, key=lambda write: write[1])
    ends = [end for _, end in done]
    first = done[0][1]
    buckets = [0] * (int((ends[-1] - first) / BUCKET_S) + 1)
    for end in ends:
        buckets[int((end - first) / BUCKET_S)] += 1
    changes: dict[str, Any] = {}
    for name in CHANGES:
        start, end, parts = windows[name]
        baseline = _rate(ends, start - baseline_s, start)
        during = _rate(ends, start, max(end, start + BUCKET_S))
        after = _rate(ends, start, end + AFTER_S)
        in_flight = [e - s for s, e in done if s <= end + AFTER_S and e >= start]
        gap_s, gap_end = _longest_gap(ends, start, end + GAP_HORIZON_S)
        changes[name] = {
            "window_s": round(end - start, 3),
            **{key: round(value, 3) for key, value in parts.items()},
            "baseline_per_s": round(baseline),
            "during_per_s": round(during),
            # No write at all in the baseline: a stall outside every window
            # (buckets_per_s shows it); no ratio, and the goal is missed.
            "ratio": round(during / baseline, 3) if baseline else None,
            "after_ratio": round(after / baseline, 3) if baseline else None,
            "max_latency_s": round(max(in_flight, default=0.0), 3),
            "longest_gap_s": round(gap_s, 3),
            "writes_resumed_s": round(gap_end - start, 3),
            "errors": sum(1 for at, _ in load.errors if start <= at <= end + AFTER_S),
            "window_buckets": [
                round(b / BUCKET_S)
                for b in buckets[
                    int((start - first) / BUCKET_S) : int((end + GAP_HORIZON_S - first) / BUCKET_S)
                ]
            ],
        }
    return {
        "changes": changes,
        "writes": len(done),
        "errors": len(load.errors),
        "error_first": load.errors[0][1] if load.errors else None,
        "buckets_per_s": [round(b / BUCKET_S) for b in buckets],
        "load_average": os.getloadavg()[0],
    }


def _longest_gap(ends: list[float], start: float, end: float) -> tuple[float, float]:
    """The longest time without an ok write answered in [start, end], and when it ended."""
    inside = [start, *ends[bisect.bisect_left(ends, start) : bisect.bisect_right(ends, end)], end]
    gap, until = max((b - a, b) for a, b in itertools.pairwise(inside))
    return gap, until


def _rate(ends: list[float], start: float, end: float) -> float:
    count = bisect.bisect_right(ends, end) - bisect.bisect_left(ends, start)
    return count / (end - start) if end > start else 0.0


def _changes_medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    medians: dict[str, Any] = {}
    for name in CHANGES:
        rows = [run["changes"][name] for run in runs]
        medians[name] = {
            key: statistics.median(row[key] for row in rows if row[key] is not None)
            for key in ("window_s", "baseline_per_s", "ratio", "after_ratio", "max_latency_s")
        }
        medians[name]["no_baseline_runs"] = sum(1 for row in rows if row["ratio"] is None)
        medians[name]["worst_latency_s"] = max(row["max_latency_s"] for row in rows)
    return medians


def _print_run(result: dict[str, Any]) -> None:
    print(
        f"run {result['run']}: {result['writes']:,} writes, {result['errors']} errors",
        file=sys.stderr,
    )
    for name, row in result["changes"].items():
        if row["ratio"] is None:
            print(f"  {name:16} NO WRITE in the baseline before it: a stall", file=sys.stderr)
            continue
        print(
            f"  {name:16} window {row['window_s']:6.3f} s  base {row['baseline_per_s']:6,}/s  "
            f"ratio {row['ratio']:5.2f}  +1 s {row['after_ratio']:5.2f}  "
            f"max latency {row['max_latency_s']:6.3f} s  errors {row['errors']}  "
            f"buckets {row['window_buckets']}",
            file=sys.stderr,
        )


def _print_changes(summary: dict[str, Any]) -> None:
    print(
        f"{'change':16} {'window s':>8} {'baseline/s':>10} {'ratio':>6} {'+1 s':>6} "
        f"{'max lat s':>9} {'goal met':>8}",
        file=sys.stderr,
    )
    for name, row in summary["medians"].items():
        ok = (
            row["ratio"] >= GOAL_RATIO
            and row["worst_latency_s"] <= ELECTION_TIMEOUT_S[1]
            and not row["no_baseline_runs"]
        )
        print(
            f"{name:16} {row['window_s']:8.3f} {row['baseline_per_s']:10,.0f} "
            f"{row['ratio']:6.2f} {row['after_ratio']:6.2f} {row['max_latency_s']:9.3f} "
            f"{'yes' if ok else 'MISS':>8}",
            file=sys.stderr,
        )


# ------------------------------------------------------------------ steady states


def _steady_run(args: argparse.Namespace, run: int) -> dict[str, Any]:
    with fresh_bench(args) as bench:
        bench.wait(bench.agreed_leader, "a first leader")
        endpoints = [n.endpoint for n in bench.cluster.nodes]
        load = WriteLoad(endpoints, args.clients, backoff_max_s=args.backoff_max_s).start()
        time.sleep(args.warmup_s)
        stretches: dict[str, tuple[float, float]] = {}

        def stretch(name: str) -> None:
            start = time.monotonic()
            time.sleep(args.steady_s)
            stretches[name] = (start, time.monotonic())

        stretch("three_voters")
        node4 = bench.add_learner(4)
        bench.wait_applied(node4, bench.leader_commit_index())
        time.sleep(AFTER_S)
        stretch("with_learner")
        bench.admin.change_members("promote", 4)
        time.sleep(AFTER_S)
        stretch("four_voters")
        load.stop()
        ends = sorted(end for _, end in load.done)
        rates = {name: _rate(ends, *span) for name, span in stretches.items()}
        result: dict[str, Any] = {"run": run + 1, **{k: round(v) for k, v in rates.items()}}
        for name in ("with_learner", "four_voters"):
            result[f"{name}_ratio"] = round(rates[name] / rates["three_voters"], 3)
        print(f"steady run {run + 1}: {result}", file=sys.stderr)
        return result


def _steady_medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = (
        "three_voters",
        "with_learner",
        "four_voters",
        "with_learner_ratio",
        "four_voters_ratio",
    )
    return {key: statistics.median(run[key] for run in runs) for key in keys}


def _print_steady(summary: dict[str, Any]) -> None:
    for key, value in summary["medians"].items():
        print(f"steady median {key:20} {value}", file=sys.stderr)


# ------------------------------------------------------------------ a learner catching up


def _catchup_run(args: argparse.Namespace, run: int) -> dict[str, Any]:
    with fresh_bench(args, "paxon-membench-catchup-") as bench:
        bench.wait(bench.agreed_leader, "a first leader")
        loaded = time.monotonic()
        load = WriteLoad(bench.cluster.endpoints, 128, keys=args.keys).start()

        def compacted() -> bool:
            leader = bench.agreed_leader()
            view = bench.members[leader].status() if leader is not None else None
            return load.written >= args.keys and view is not None and own_row(view)["log_start"] > 0

        deadline = time.monotonic() + 600
        while not compacted():
            if time.monotonic() > deadline:
                raise RuntimeError("the leader did not compact its log in 600 s")
            time.sleep(0.5)
        load.stop()
        load_s = time.monotonic() - loaded
        leader = bench.wait(bench.agreed_leader, "a leader")
        time.sleep(1.0)
        commit_index = bench.leader_commit_index()
        join = [n.endpoint for n in bench.cluster.nodes]
        node = JoiningNode(4, bench.root, join)
        bench.admin.change_members("add-learner", 4, node.endpoint)
        bench.members[4] = node
        started = time.monotonic()
        node.start()
        node.wait_ready(started + CHANGE_TIMEOUT_S)
        ready = time.monotonic()
        bench.wait_applied(node, commit_index)
        caught_up = time.monotonic()
        sent = _log_line(
            bench.members[leader].log_path,
            r"sending node 4 the snapshot at slot (\d+) \((\d+) bytes\)",
        )
        installed = _log_line(
            node.log_path,
            r"installed the snapshot at slot (\d+) .*received in ([\d.]+) s, "
            r"decoded in ([\d.]+) s, written durably in ([\d.]+) s",
        )
        result: dict[str, Any] = {
            "run": run + 1,
            "writes_loaded": load.written,
            "load_s": round(load_s, 1),
            "commit_index": commit_index,
            "node_ready_s": round(ready - started, 3),
            "caught_up_s": round(caught_up - started, 3),
            "load_average": os.getloadavg()[0],
        }
        if sent is not None and installed is not None:
            seconds = (installed[0] - sent[0]).total_seconds()
            size = int(sent[1].group(2))
            result |= {
                "snapshot_slot": int(sent[1].group(1)),
                "snapshot_bytes": size,
                "transfer_s": round(seconds, 3),
                "mb_per_s": round(size / seconds / 1e6, 1) if seconds > 0 else None,
                "received_s": float(installed[1].group(2)),
                "decoded_s": float(installed[1].group(3)),
                "written_s": float(installed[1].group(4)),
                "wire_mb_per_s": _rate_mb(size, float(installed[1].group(2))),
                "disk_mb_per_s": _rate_mb(size, float(installed[1].group(4))),
                "snapshot_files": sorted(p.name for p in (node.data_dir).rglob("*snap*")),
            }
        print(f"catchup run {run + 1}: {result}", file=sys.stderr)
        return result


def _cpu_s(node: ServerNode) -> float:
    """CPU seconds (user + system) the node's process has used so far."""
    assert node.process is not None
    fields = Path(f"/proc/{node.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _log_line(path: Path, pattern: str) -> tuple[datetime, re.Match[str]] | None:
    """The time and match of the first log line matching ``pattern``."""
    wanted = re.compile(pattern)
    for line in path.read_text(errors="replace").splitlines():
        found = wanted.search(line)
        stamp = LOG_TIME.match(line)
        if found and stamp:
            return datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f"), found
    return None


def _rate_mb(size: int, seconds: float) -> float | None:
    return round(size / seconds / 1e6, 1) if seconds > 0 else None


def _catchup_medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = (
        "caught_up_s",
        "node_ready_s",
        "snapshot_bytes",
        "transfer_s",
        "mb_per_s",
        "received_s",
        "wire_mb_per_s",
        "decoded_s",
        "written_s",
        "disk_mb_per_s",
    )
    return {
        key: statistics.median(run[key] for run in runs)
        for key in keys
        if all(run.get(key) is not None for run in runs)
    }


def _print_catchup(summary: dict[str, Any]) -> None:
    for key, value in summary["medians"].items():
        print(f"catchup median {key:16} {value}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
