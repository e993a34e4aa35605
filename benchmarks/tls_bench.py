"""What TLS costs: ``paxon bench`` against ``paxon dev`` with TLS off and on, interleaved.

Three set-ups, each a fresh ``paxon dev`` on 127.0.0.1 (3 nodes, fsync on):

- ``insecure``: ``paxon dev --insecure`` (no TLS; peers share the native port);
- ``peer-tls``: ``paxon dev`` (the default: mutual TLS between the nodes);
- ``all-tls``: ``paxon dev --client-tls`` (mutual TLS between the nodes, and the
  load generator speaks TLS to the native ports too).

Runs go insecure, peer-tls, all-tls, insecure, ... (``--rounds`` times), so that
machine noise hits all three alike; each round measures saturation
(``--clients 512 --ops 150000``) and an open-loop 1,000 writes/s
(``--clients 64 --ops 20000 --rate 1000``). Prints one table and one JSON line
with the medians and every run.

    .venv/bin/python benchmarks/tls_bench.py [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

SETUPS = {
    "insecure": ["--insecure"],
    "peer-tls": [],
    "all-tls": ["--client-tls"],
}
LOADS = {
    "saturation": ["--clients", "512", "--ops", "150000"],
    "1000/s": ["--clients", "64", "--ops", "20000", "--rate", "1000"],
}
BASE_PORT, HTTP_BASE_PORT, PEER_BASE_PORT = 27001, 28001, 27101
ENDPOINTS = ",".join(f"127.0.0.1:{BASE_PORT + i}" for i in range(3))
READY_TIMEOUT_S = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        setup: {load: [] for load in LOADS} for setup in SETUPS
    }
    for round_ in range(args.rounds):
        for setup, flags in SETUPS.items():
            for load, result in _one_round(flags).items():
                runs[setup][load].append(result)
                if not args.json:
                    print(
                        f"round {round_ + 1} {setup:9} {load:10} "
                        f"{result['throughput']:9,.0f}/s  "
                        f"p50 {result['latency_ms']['p50']:6.2f} ms  "
                        f"p99 {result['latency_ms']['p99']:6.2f} ms",
                        file=sys.stderr,
                    )
    summary = _summary(runs)
    if not args.json:
        _print_table(summary)
    print(json.dumps({"medians": summary, "runs": runs}))
    return 0


def _one_round(flags: list[str]) -> dict[str, dict[str, Any]]:
    data_dir = tempfile.mkdtemp(prefix="paxon-tls-bench-")
    dev = subprocess.Popen(
        [
            sys.executable, "-m", "paxon", "dev", "--data-dir", data_dir,
            "--base-port", str(BASE_PORT), "--http-base-port", str(HTTP_BASE_PORT),
            "--peer-base-port", str(PEER_BASE_PORT), *flags,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_ready()
        tls = (
            ["--cacert", os.path.join(data_dir, "certs", "ca.pem")]
            if "--client-tls" in flags
            else []
        )
        results = {}
        for load, load_flags in LOADS.items():
            command = [
                sys.executable, "-m", "paxon", "bench", "--json", "--timeout", "30",
                "--endpoints", ENDPOINTS, *tls, *load_flags,
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results[load] = json.loads(done.stdout.strip().splitlines()[-1])
        return results
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)


def _wait_ready() -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    ports = [BASE_PORT + i for i in range(3)] + [HTTP_BASE_PORT + i for i in range(3)]
    while ports:
        try:
            with socket.create_connection(("127.0.0.1", ports[0]), timeout=0.2):
                ports.pop(0)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("paxon dev did not come up") from None
            time.sleep(0.1)
    time.sleep(2.0)  # a leader is elected and the peer links are up


def _summary(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for setup, loads in runs.items():
        summary[setup] = {
            load: {
                "throughput": statistics.median(r["throughput"] for r in results),
                "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in results),
                "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in results),
            }
            for load, results in loads.items()
        }
    base = summary["insecure"]["saturation"]["throughput"]
    for setup in summary:
        ratio = summary[setup]["saturation"]["throughput"] / base
        summary[setup]["saturation"]["ratio_to_insecure"] = round(ratio, 3)
    return summary


def _print_table(summary: dict[str, Any]) -> None:
    print(f"{'set-up':10} {'saturation':>12} {'ratio':>6} {'p50@1000/s':>11} {'p99@1000/s':>11}")
    for setup, loads in summary.items():
        saturation, paced = loads["saturation"], loads["1000/s"]
        print(
            f"{setup:10} {saturation['throughput']:10,.0f}/s "
            f"{saturation['ratio_to_insecure']:6.2f} {paced['p50_ms']:8.2f} ms "
            f"{paced['p99_ms']:8.2f} ms"
        )


if __name__ == "__main__":
    sys.exit(main())
