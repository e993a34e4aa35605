"""The peer benchmark's pure parts (benchmarks/peers/): no etcd, no cluster, no load.

The check-perf parser reads output captured from a real ``etcdctl check perf
--load xl`` (etcd 3.4.23 from Debian, 3 members on 127.0.0.1), progress bar and all.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest
from benchmarks.peers.etcd import parse_check_perf
from benchmarks.peers.load import etcd_put_body, etcd_range_body
from benchmarks.peers.phases import METRICS, Durations, Load, measure
from benchmarks.peers.procs import parse_proc_stat
from benchmarks.peers.report import build, render
from benchmarks.peers.stats import latency_ms, per_thousand, spread

TESTDATA = Path(__file__).with_name("testdata")


# ------------------------------------------------------------------ numbers


def test_latency_percentiles_in_ms_are_nearest_rank_samples() -> None:
    samples_s = [n / 1000 for n in range(1000, 0, -1)]  # 1..1000 ms, unsorted
    assert latency_ms(samples_s) == {"p50": 500.0, "p99": 990.0, "p99.9": 999.0}
    assert latency_ms([0.0021]) == {"p50": 2.1, "p99": 2.1, "p99.9": 2.1}
    assert latency_ms([]) == {"p50": None, "p99": None, "p99.9": None}


def test_spread_is_median_min_max_of_what_was_measured() -> None:
    found = spread([10.0, None, 1.0, 2.0])
    assert found is not None
    assert (found.median, found.low, found.high) == (2.0, 1.0, 10.0)
    assert found.to_json() == {"median": 2.0, "min": 1.0, "max": 10.0, "runs": [10.0, 1.0, 2.0]}
    assert spread([None, None]) is None


def test_cpu_per_thousand_writes() -> None:
    assert per_thousand(1.5, 3000) == pytest.approx(0.5)
    assert per_thousand(1.5, 0) is None


def test_proc_stat_counts_fields_after_the_command_name() -> None:
    # comm may hold spaces and parentheses; utime=250 stime=50 ticks
    line = "4242 (etcd (a) b) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 1"
    assert parse_proc_stat(line, ticks_per_s=100) == pytest.approx(3.0)


# ------------------------------------------------------------------ etcd


def test_check_perf_parser_reads_a_real_failing_report() -> None:
    text = (TESTDATA / "check_perf_xl_etcd_3.4.23.txt").read_text()
    report = parse_check_perf(text)
    assert report.writes_per_s == 2423
    assert report.slowest_s == pytest.approx(1.336335)
    assert report.stddev_s == pytest.approx(0.191848)
    assert report.passed is False
    assert report.errors == {}


def test_check_perf_parser_reads_a_passing_report_with_errors() -> None:
    # The lines etcdctl 3.4 prints (etcdctl/ctlv3/command/check.go), PASS forms.
    text = (
        " 60 / 60 100.00% 1m0s\r"
        "FAIL: too many errors\n"
        "FAIL: ERROR(context deadline exceeded) -> 3\n"
        "PASS: Throughput is 151 writes/s\n"
        "PASS: Slowest request took 0.020340s\n"
        "PASS: Stddev is 0.001873s\n"
        "PASS\n"
    )
    report = parse_check_perf(text)
    assert (report.writes_per_s, report.passed) == (151, True)
    assert report.slowest_s == pytest.approx(0.02034)
    assert report.errors == {"context deadline exceeded": 3}


def test_check_perf_parser_refuses_what_is_not_a_report() -> None:
    with pytest.raises(ValueError, match="not an etcdctl check perf report"):
        parse_check_perf("Error: context deadline exceeded\n")


def test_etcd_gateway_bodies_are_base64() -> None:
    body = etcd_put_body("bench/000001", b"\x00\xff")
    assert base64.b64decode(body["key"]) == b"bench/000001"
    assert base64.b64decode(body["value"]) == b"\x00\xff"
    assert etcd_range_body("k") == {"key": base64.b64encode(b"k").decode()}


# ------------------------------------------------------------------ phases


class FakeDriver:
    """Answers each phase with a fixed Load; records the rates it was paced at."""

    def __init__(self, name: str, phases: tuple[str, ...]) -> None:
        self.name = name
        self.phases = phases
        self.rates: list[float] = []

    def saturation(self, seconds: float) -> Load:
        # the "servers" work: 0.2 s of CPU inside the phase measure() times, so the
        # 10 ms ticks of /proc/PID/stat cannot round it below 0.18 s
        burn_until = time.process_time() + 0.2
        while time.process_time() < burn_until:
            pass
        return Load(ops=8000, seconds=2.0, latency_ms={}, loadgen_cpu_s=2.0)

    def paced(self, rate: float, seconds: float) -> Load:
        self.rates.append(rate)
        latency = {"p50": rate / 1000, "p99": rate / 100, "p99.9": rate / 10}
        return Load(ops=int(rate), seconds=seconds, latency_ms=latency, errors=1, error_first="x")

    def reads(self, seconds: float) -> Load:
        return Load(ops=9000, seconds=3.0, latency_ms={})


def test_measure_paces_at_1000_and_at_half_of_the_saturation_it_measured() -> None:
    driver = FakeDriver("fake", ("saturation", "paced", "reads"))
    wall: dict[str, float] = {}
    errors: list[str] = []
    sample = measure(driver, [os.getpid()], Durations(1.0, 1.0, 1.0), wall, errors)
    assert driver.rates == [1000.0, 2000.0]  # saturation 8000 ops / 2 s = 4000/s
    assert sample["writes_per_s"] == 4000.0
    assert sample["p50_at_1000_ms"] == 1.0 and sample["p99.9_at_half_ms"] == 200.0
    assert sample["reads_per_s"] == 3000.0
    assert sample["loadgen_cpu_s_per_1000_writes"] == pytest.approx(0.25)
    # this process stands in for the one server, the leader: 0.2 s over 8,000 writes
    assert sample["server_cpu_s_per_1000_writes"] == sample["leader_cpu_s_per_1000_writes"]
    assert sample["leader_cpu_s_per_1000_writes"] is not None
    assert sample["leader_cpu_s_per_1000_writes"] >= 0.18 * 1000 / 8000
    assert set(wall) == {"saturation", "paced_1000", "paced_half", "reads"}
    assert len(errors) == 2 and "paced 1000: 1 errors" in errors[0]


def test_measure_leaves_out_what_a_client_cannot_do() -> None:
    sample = measure(FakeDriver("writes only", ("saturation",)), [], Durations(1, 1, 1), {}, [])
    assert sample["writes_per_s"] == 4000.0
    assert all(sample[metric] is None for metric in METRICS if "_at_" in metric)
    assert sample["reads_per_s"] is None


# ------------------------------------------------------------------ report


def _samples() -> dict[str, list[dict[str, float | None]]]:
    def sample(writes: float, reads: float | None, p99: float | None) -> dict[str, float | None]:
        base: dict[str, float | None] = dict.fromkeys(METRICS)
        base.update(writes_per_s=writes, reads_per_s=reads, p99_at_1000_ms=p99)
        return base

    return {
        "paxon-native": [
            sample(12000, 21000, 7.0),  # no run is the median of both, so that a
            sample(14000, 20000, 5.0),  # ratio of medians differs from one of a run
            sample(15000, 19000, 6.0),
        ],
        "etcd-go": [sample(2500, None, None), sample(2400, None, None), sample(2000, None, None)],
    }


def test_report_has_medians_with_min_and_max_and_ratios_of_medians() -> None:
    wall = [{"paxon": {"start": 1.0, "saturation": 10.0}, "etcd": {"start": 2.0}}] * 3
    built = build(
        _samples(),
        {"paxon-native": "paxon native", "etcd-go": "etcd Go"},
        wall_s=wall,
        meta={"runs": 3},
        notes=["etcd: durable"],
    )
    assert json.loads(json.dumps(built)) == built  # one JSON line
    writes = built["clients"]["paxon-native"]["writes_per_s"]
    assert (writes["median"], writes["min"], writes["max"]) == (14000, 12000, 15000)
    assert built["clients"]["etcd-go"]["reads_per_s"] is None
    assert built["ratios"]["paxon native / etcd Go, writes/s"] == 5.83  # 14000 / 2400
    assert built["ratios"]["paxon native / etcd HTTP, writes/s"] is None  # not run
    assert built["wall_s"]["total"] == 39.0 and built["wall_s"]["round_median"] == 13.0

    table = render(built)
    lines = table.splitlines()
    assert "paxon native" in lines[0] and "etcd Go" in lines[0]
    writes_row = next(line for line in lines if line.startswith("writes/s at saturation"))
    assert "14,000 [12,000-15,000]" in writes_row and "2,400 [2,000-2,500]" in writes_row
    reads_row = next(line for line in lines if line.startswith("linearizable reads/s"))
    assert reads_row.rstrip().endswith("-")
    assert "paxon native / etcd Go, writes/s: 5.83" in table
    assert "note: etcd: durable" in table


def test_report_of_one_run_shows_plain_values() -> None:
    samples = {client: runs[:1] for client, runs in _samples().items()}
    built = build(samples, {"paxon-native": "p", "etcd-go": "e"}, wall_s=[{}], meta={"runs": 1})
    writes_row = next(line for line in render(built).splitlines() if line.startswith("writes/s"))
    assert writes_row.split()[-2:] == ["12,000", "2,500"]


def test_a_missing_etcd_without_root_says_what_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.peers import etcd

    ran: list[object] = []
    monkeypatch.setattr(etcd.shutil, "which", lambda name: None)
    monkeypatch.setattr(etcd.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(etcd.subprocess, "run", lambda *args, **kwargs: ran.append(args))
    with pytest.raises(etcd.NotInstalled, match="sudo apt-get install -y etcd-server etcd-client"):
        etcd.ensure_installed()
    assert ran == []  # no apt-get tried without root
