"""CPU µs per durable write of each process: leader, followers, load generator.

Where the CPU goes (issue 13, point 3). Each run starts a fresh 3-node
``paxon serve`` cluster on 127.0.0.1 (fsync on, as benchmarks/peers does),
drives ``--ops`` writes at saturation with ``paxon bench`` (native client,
512 tasks, 64-byte values over 1,000 keys), and measures, as the peer harness
does, each server's CPU from ``/proc/PID/stat`` before and after and the load
generator's exactly from ``wait4``. CPU per write is less sensitive to a busy
machine than writes/s, but not immune: compare trees interleaved.

Give one or more source trees with ``--src``; runs alternate between them
(A B A B ...) so that machine noise hits all alike, and the medians are
printed per tree::

    PYTHONPATH=$PWD /work/main/.venv/bin/python benchmarks/cpu_per_write.py \\
        --src /work/main/src --src src --runs 3 --ops 60000
    ... --runs 3 --http 6        # the HTTP API instead, 6 s of aiohttp load per run

Every process is ended by its PID and every temp dir removed (``Processes``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import sys
import time
from pathlib import Path

from benchmarks.peers import paxon_peer
from benchmarks.peers.http_driver import HttpDriver
from benchmarks.peers.procs import CLOCK_TICKS_PER_S, Processes, cpu_seconds

CLIENTS = paxon_peer.CLIENTS
SAMPLER_START_S = 1.0


def system_seconds(pid: int) -> float:
    """The kernel's share of ``cpu_seconds`` (stime, field 15 of ``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    return int(text[text.rindex(")") + 2 :].split()[12]) / CLOCK_TICKS_PER_S


def measure_once(
    src: Path,
    ops: int,
    flags: tuple[str, ...],
    sampler: str | None = None,
    http_seconds: float | None = None,
) -> dict[str, float]:
    """One fresh cluster from ``src``: µs of CPU per write of each process.

    ``sampler``: a command run beside the leader during the load, ``{pid}``
    replaced by its PID, stopped with SIGINT (``py-spy record`` or ``perf
    record``; neither is a project dependency). Its CPU is its own, but the
    sampling slows the leader: measure without it. ``http_seconds``: drive the
    leader's HTTP API for that long instead, with the peer benchmark's aiohttp
    load generator (``HttpDriver``, 128 connections), not ``paxon bench``."""
    os.environ["PYTHONPATH"] = str(src.resolve())
    procs = Processes()
    try:
        cluster = paxon_peer.start_cluster(procs, flags)
        driver = paxon_peer.NativeDriver(procs, cluster)
        pids = cluster.pids  # the leader's first
        if sampler is not None:  # started first: its own start-up is not measured
            argv = shlex.split(sampler.format(pid=pids[0]))
            spy = procs.start(argv, Path(f"sampler-{pids[0]}.log"))
            time.sleep(SAMPLER_START_S)
        before = [cpu_seconds(pid) for pid in pids]
        system_before = system_seconds(pids[0])
        if http_seconds is None:
            load = driver._bench(ops, CLIENTS, seconds=ops / 5_000)
        else:
            url = cluster.http[cluster.leader]
            load = HttpDriver("paxon http", procs, "paxon", url).saturation(http_seconds)
        spent = [cpu_seconds(pid) - cpu for pid, cpu in zip(pids, before, strict=True)]
        leader_system = system_seconds(pids[0]) - system_before
        if sampler is not None:
            spy.send_signal(signal.SIGINT)  # py-spy and perf write their file on SIGINT
            spy.wait(timeout=30)
        changed = cluster.leader_changed()
        if changed is not None:
            print(f"  (discarded: {changed})", file=sys.stderr)
            return {}
        assert load.loadgen_cpu_s is not None
        per_write = 1e6 / max(1, load.ops)
        return {
            "writes_per_s": load.ops / load.seconds,
            "leader_us": spent[0] * per_write,
            "leader_sys_us": leader_system * per_write,
            "follower_a_us": spent[1] * per_write,
            "follower_b_us": spent[2] * per_write,
            "loadgen_us": load.loadgen_cpu_s * per_write,
            "errors": float(load.errors),
        }
    finally:
        procs.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ops", type=int, default=60_000)
    parser.add_argument("--flag", action="append", default=[], help="a paxon serve flag")
    parser.add_argument(
        "--http",
        type=float,
        metavar="SECONDS",
        help="drive the leader's HTTP API this long (aiohttp, 128 connections) instead",
    )
    parser.add_argument(
        "--sampler",
        help="a profiler to run on the leader, {pid} its PID, e.g. "
        "'py-spy record --pid {pid} --gil --format raw -o leader.txt'",
    )
    args = parser.parse_args(argv)
    flags = tuple(part for flag in args.flag for part in flag.split(" ", 1))
    samples: dict[Path, list[dict[str, float]]] = {src: [] for src in args.src}
    for run in range(args.runs):
        for src in args.src:
            sample = measure_once(src, args.ops, flags, args.sampler, args.http)
            if sample:
                samples[src].append(sample)
            shown = " ".join(f"{k}={v:,.1f}" for k, v in sample.items())
            print(f"run {run + 1} {src}: {shown}", file=sys.stderr, flush=True)
    fields = (
        "writes_per_s",
        "leader_us",
        "leader_sys_us",
        "follower_a_us",
        "follower_b_us",
        "loadgen_us",
    )
    print(f"{'tree':<30}" + "".join(f"{name:>15}" for name in fields) + "   runs")
    for src, runs in samples.items():
        if not runs:
            print(f"{src!s:<30} no valid run")
            continue
        medians = [statistics.median(run[name] for run in runs) for name in fields]
        print(f"{src!s:<30}" + "".join(f"{m:>15,.1f}" for m in medians) + f"   {len(runs)}")
    print(json.dumps({str(src): runs for src, runs in samples.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
