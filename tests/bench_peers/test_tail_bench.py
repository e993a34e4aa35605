"""The tail benchmark's pure parts (benchmarks/tail_bench.py): counting stalls
from a node's real ``/metrics`` text, and reading a process's schedstat."""

from __future__ import annotations

import os
import time

from benchmarks.tail_bench import Schedstat, render, stall_counts

from paxon.node.metrics import NodeMetrics


def test_fsyncs_over_5ms_are_counted_from_a_nodes_metrics() -> None:
    metrics = NodeMetrics(1)
    for seconds in (0.0001, 0.004, 0.005, 0.006, 0.3):  # 5 ms itself is in the 5 ms bucket
        metrics.fsync_seconds.observe(seconds)
    body, _ = metrics.render()
    assert stall_counts(body.decode()) == {"fsync": 2.0}


def test_a_process_schedstat_sums_its_threads() -> None:
    before = Schedstat.of(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # 50 ms of CPU, however long that takes
        pass
    time.sleep(0.01)  # the kernel brings a task's figures up to date when it is switched out
    used = Schedstat.of(os.getpid()).minus(before)
    assert used.cpu_s >= 0.02 and used.wait_s >= 0
    assert Schedstat.of(2**22 + 12345) == Schedstat()  # no such process: nothing


def test_a_run_renders_per_process_rows() -> None:
    run = {
        "variant": "default",
        "rate": 1000.0,
        "seconds": 2.0,
        "latency_ms": {"p50": 1.0, "p99": 4.0, "p99.9": 9.0},
        "worst_second": {"second": 1, "max_ms": 12.0},
        "errors": 0,
        "leader_changed": None,
        "processes": [
            {
                "name": "leader",
                "cpu_s": 1.0,
                "runqueue_wait_s": 0.1,
                "over_5ms": {"loop_lag": None, "gc": None, "fsync": 1},
            }
        ],
    }
    text = render(run)
    assert "default  at 1,000/s: p50 1.0 p99 4.0 p99.9 9.0 ms" in text
    assert (
        "leader    cpu  0.50 cores, run-queue wait   50.0 ms/s; >5 ms: loop lag -, gc -, fsync 1"
        in text
    )
