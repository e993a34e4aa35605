"""Where paxon's latency tail comes from (issue 13, point 4), with evidence per run.

    .venv/bin/python benchmarks/tail_bench.py [--runs 3] [--seconds 10]
        [--variants default,nofsync] [--rate OPS_PER_S] [--json]

For each run, each variant in turn (interleaved, so machine noise hits all
alike) gets a fresh 3-node cluster on 127.0.0.1 (``benchmarks/peers``'s
``start_cluster``: the same flags, values and keys as the peer benchmark). A
closed-loop ``paxon bench`` finds its saturation (unless ``--rate`` gives the
paced rate), then ``paxon bench --rate`` runs at half of it for ``--seconds``
at the leader, as the peer benchmark's "half of saturation" phase does. Around
that paced phase it reads, for every process:

- each node's ``/metrics``: its fsyncs (``paxon_fsync_seconds``) of 5 ms and
  over (the nodes' own loop lag and collections were exported for a while and
  no longer are: docs/benchmarks.md, "The tail");
- ``/proc/PID/task/*/schedstat`` of every process, the load generator's
  sampled while it runs: CPU time, and time spent runnable but waiting for a
  CPU (the run queue), the cost of four busy processes on two cores;
- the load generator's own loop lag and collections (``paxon bench --json``,
  ``loadgen``).

A tail with no stall anywhere points at the protocol's own waits (batching,
a round trip behind a full pipeline); one that comes with run-queue waits
points at the machine. ``nofsync`` is ``--unsafe-no-fsync on``: what the disk
adds. Variants: ``default``, ``nofsync``, ``lease`` (``--lease-reads on``).
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peers.paxon_peer import VARIANT_FLAGS, PaxonCluster, start_cluster
from benchmarks.peers.phases import KEYS, VALUE_SIZE
from benchmarks.peers.procs import Processes
from prometheus_client.parser import text_string_to_metric_families

VARIANTS: dict[str, tuple[str, ...]] = {
    "default": (),
    "nofsync": VARIANT_FLAGS["paxon-nofsync"],
    "lease": VARIANT_FLAGS["paxon-lease"],
}
SLOW_LE = "0.005"
"""Stalls are counted above this histogram bucket (5 ms): the p99 goals are in ms."""
SATURATION_CLIENTS = 512
PACED_CLIENTS = 256  # as the peer benchmark (benchmarks/peers/paxon_peer.py)
SATURATION_S = 6.0
SATURATION_OPS_PER_S = 12_000
SAMPLE_EVERY_S = 0.2
STALL_SERIES = {"fsync": "paxon_fsync_seconds"}


@dataclass
class Schedstat:
    """CPU and run-queue wait of a process, summed over its threads, in seconds."""

    cpu_s: float = 0.0
    wait_s: float = 0.0

    @staticmethod
    def of(pid: int) -> Schedstat:
        total = Schedstat()
        for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
            try:
                with open(path) as stat:
                    on_cpu_ns, waiting_ns, _slices = stat.read().split()
            except (OSError, ValueError):
                continue  # a thread that ended between the glob and the read
            total.cpu_s += int(on_cpu_ns) / 1e9
            total.wait_s += int(waiting_ns) / 1e9
        return total

    def minus(self, before: Schedstat) -> Schedstat:
        return Schedstat(self.cpu_s - before.cpu_s, self.wait_s - before.wait_s)


@dataclass
class ProcessStalls:
    name: str
    sched: Schedstat = field(default_factory=Schedstat)
    over_5ms: dict[str, float | None] = field(default_factory=dict)  # None: not measured


def stall_counts(metrics_text: str) -> dict[str, float]:
    """Per series of ``STALL_SERIES``: how many samples were over 5 ms (all labels summed)."""
    counts = dict.fromkeys(STALL_SERIES, 0.0)
    names = {f"{series}_bucket": key for key, series in STALL_SERIES.items()}
    totals = {f"{series}_count": key for key, series in STALL_SERIES.items()}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name in totals:
                counts[totals[sample.name]] += sample.value
            elif sample.name in names and sample.labels.get("le") == SLOW_LE:
                counts[names[sample.name]] -= sample.value
    return counts


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5.0) as answer:
        return stall_counts(answer.read().decode())


def bench(cluster: PaxonCluster, *flags: str, ops: int, clients: int) -> tuple[dict, Schedstat]:
    """``paxon bench --json`` at the leader first; its report and its own schedstat."""
    leader = cluster.native[cluster.leader]
    endpoints = ",".join([leader, *(a for a in cluster.native if a != leader)])
    argv = [
        sys.executable, "-m", "paxon", "bench", "--json", "--timeout", "30",
        "--endpoints", endpoints, "--clients", str(clients), "--ops", str(ops),
        "--value-size", str(VALUE_SIZE), "--keys", str(KEYS), *flags,
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sched = Schedstat()
    while process.poll() is None:
        sched = Schedstat.of(process.pid) if Path(f"/proc/{process.pid}").exists() else sched
        time.sleep(SAMPLE_EVERY_S)
    out, err = process.communicate()
    if process.returncode not in (0, 1):
        raise RuntimeError(f"paxon bench exited {process.returncode}:\n{err.decode()[-2000:]}")
    report: dict = json.loads(out.decode().strip().splitlines()[-1])
    return report, sched


def one_run(variant: str, rate: float | None, seconds: float) -> dict[str, object]:
    procs = Processes()
    try:
        cluster = start_cluster(procs, VARIANTS[variant])
        if rate is None:
            saturation, _ = bench(
                cluster,
                ops=int(SATURATION_S * SATURATION_OPS_PER_S),
                clients=SATURATION_CLIENTS,
            )
            rate = float(saturation["throughput"]) / 2
        pids = cluster.pids  # the leader's first
        names = ["leader", "follower", "follower"]
        urls = [cluster.http[cluster.leader]] + [
            url for index, url in enumerate(cluster.http) if index != cluster.leader
        ]
        before = [(Schedstat.of(pid), scrape(url)) for pid, url in zip(pids, urls, strict=True)]
        report, loadgen_sched = bench(
            cluster,
            "--rate",
            f"{rate:.1f}",
            ops=max(1, int(rate * seconds)),
            clients=PACED_CLIENTS,
        )
        after = [(Schedstat.of(pid), scrape(url)) for pid, url in zip(pids, urls, strict=True)]
        changed = cluster.leader_changed()
        processes = [
            ProcessStalls(
                name,
                sched_after.minus(sched_before),
                {
                    "loop_lag": None,
                    "gc": None,
                    **{key: stalls_after[key] - stalls_before[key] for key in STALL_SERIES},
                },
            )
            for name, (sched_before, stalls_before), (sched_after, stalls_after) in zip(
                names, before, after, strict=True
            )
        ]
        loadgen = report.get("loadgen") or {}
        processes.append(
            ProcessStalls(
                "load gen",
                loadgen_sched,
                {
                    "loop_lag": loadgen.get("loop_lag_ms", {}).get("over_5ms", 0),
                    "gc": loadgen.get("gc_pause_ms", {}).get("over_5ms", 0),
                    "fsync": 0,
                },
            )
        )
        return {
            "variant": variant,
            "rate": round(rate, 1),
            "seconds": report["seconds"],
            "throughput": report["throughput"],
            "latency_ms": report["latency_ms"],
            "worst_second": report["worst_second"],
            "errors": report["errors"],
            "leader_changed": changed,
            "processes": [
                {
                    "name": process.name,
                    "cpu_s": round(process.sched.cpu_s, 3),
                    "runqueue_wait_s": round(process.sched.wait_s, 3),
                    "over_5ms": process.over_5ms,
                }
                for process in processes
            ],
            "loadgen_loop_lag_ms": loadgen.get("loop_lag_ms"),
        }
    finally:
        procs.close()


def render(run: dict) -> str:
    latency = run["latency_ms"]
    worst = run["worst_second"] or {}
    lines = [
        f"{run['variant']:8} at {run['rate']:,.0f}/s: p50 {latency['p50']} p99 {latency['p99']} "
        f"p99.9 {latency['p99.9']} ms; worst second #{worst.get('second')} max "
        f"{worst.get('max_ms')} ms; errors {run['errors']}"
        + (f"; {run['leader_changed']}" if run["leader_changed"] else "")
    ]
    seconds = float(run["seconds"]) or 1.0
    for process in run["processes"]:
        over = process["over_5ms"]
        lines.append(
            f"  {process['name']:9} cpu {process['cpu_s'] / seconds:5.2f} cores, run-queue wait "
            f"{1000 * process['runqueue_wait_s'] / seconds:6.1f} ms/s; >5 ms: loop lag "
            f"{_count(over['loop_lag'])}, gc {_count(over['gc'])}, fsync {_count(over['fsync'])}"
        )
    return "\n".join(lines)


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def summary(runs: list[dict]) -> str:
    lines = ["", "medians over runs (min-max):"]
    for variant in dict.fromkeys(run["variant"] for run in runs):
        mine = [run for run in runs if run["variant"] == variant]
        for quantile in ("p50", "p99", "p99.9"):
            values = [run["latency_ms"][quantile] for run in mine]
            lines.append(
                f"  {variant:8} {quantile:6} {statistics.median(values):7.2f} ms "
                f"({min(values):.2f}-{max(values):.2f})"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="the paced phase")
    parser.add_argument("--rate", type=float, help="paced ops/s (default: half of saturation)")
    parser.add_argument("--variants", default="default,nofsync")
    parser.add_argument("--json", action="store_true", help="one JSON line only")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [variant for variant in variants if variant not in VARIANTS]
    if unknown or args.runs < 1 or args.seconds <= 0:
        parser.error(f"variants are {', '.join(VARIANTS)}; runs >= 1, seconds > 0")
    runs = []
    for number in range(args.runs):
        for variant in variants:
            print(f"run {number + 1}/{args.runs}: {variant}", file=sys.stderr)
            run = one_run(variant, args.rate, args.seconds)
            runs.append(run)
            if not args.json:
                print(render(run), flush=True)
    if not args.json:
        print(summary(runs))
    print(json.dumps({"runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
