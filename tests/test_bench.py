"""``paxon bench`` without a cluster: the percentile math, and the op loop on a fake client."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from paxon.bench import (
    BenchOptions,
    BenchReport,
    bench_key,
    due_offset_s,
    percentiles,
    run_bench,
)
from paxon.errors import Unavailable


def test_nearest_rank_percentiles() -> None:
    samples = [float(n) for n in range(1000, 0, -1)]  # unsorted on purpose
    assert percentiles(samples) == {"p50": 500.0, "p90": 900.0, "p99": 990.0, "p99.9": 999.0}


def test_percentiles_of_few_samples_are_samples() -> None:
    assert percentiles([7.0]) == {"p50": 7.0, "p90": 7.0, "p99": 7.0, "p99.9": 7.0}
    assert percentiles([1.0, 2.0, 3.0, 4.0]) == {"p50": 2.0, "p90": 4.0, "p99": 4.0, "p99.9": 4.0}
    assert percentiles([3.0, 1.0], [("min", 0.01), ("max", 1.0)]) == {"min": 1.0, "max": 3.0}


def test_percentiles_of_nothing_are_none() -> None:
    assert percentiles([]) == {"p50": None, "p90": None, "p99": None, "p99.9": None}


def test_open_loop_schedule() -> None:
    assert [due_offset_s(index, 4.0) for index in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeClient:
    """Answers at once, or after ``service_s`` of the fake clock; fails every ``fail_every``."""

    clock: FakeClock
    service_s: float = 0.0
    fail_every: int = 0
    calls: int = 0
    puts: list[tuple[str, bytes]] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)

    async def put(self, key: str, value: bytes) -> int:
        self._serve()
        self.puts.append((key, value))
        return len(self.puts)

    async def get(self, key: str) -> object:
        self._serve()
        self.gets.append(key)
        return None

    def _serve(self) -> None:
        self.clock.now += self.service_s
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise Unavailable("no node answered")


def _run(client: FakeClient, options: BenchOptions, clock: FakeClock) -> BenchReport:
    return asyncio.run(run_bench([client], options, clock=clock))


def test_every_op_runs_once_with_puts_of_the_value_size() -> None:
    clock = FakeClock()
    client = FakeClient(clock, service_s=0.001)
    report = _run(client, BenchOptions(clients=4, ops=200, value_size=33, keys=10), clock)
    assert len(client.puts) == 200 and not client.gets
    assert {len(value) for _, value in client.puts} == {33}
    assert {key for key, _ in client.puts} <= {bench_key(n) for n in range(10)}
    assert report.errors == 0 and len(report.latencies_s) == 200
    assert report.seconds == pytest.approx(0.2)
    assert report.throughput == pytest.approx(1000.0)


@pytest.mark.parametrize(("read_ratio", "gets_expected"), [(0.0, 0), (1.0, 100)])
def test_read_ratio_extremes(read_ratio: float, gets_expected: int) -> None:
    clock = FakeClock()
    client = FakeClient(clock)
    _run(client, BenchOptions(clients=3, ops=100, read_ratio=read_ratio), clock)
    assert len(client.gets) == gets_expected
    assert len(client.puts) == 100 - gets_expected


def test_a_mixed_ratio_mixes() -> None:
    clock = FakeClock()
    client = FakeClient(clock)
    _run(client, BenchOptions(clients=2, ops=1000, read_ratio=0.3, seed=5), clock)
    assert 200 < len(client.gets) < 400


def test_closed_loop_latency_is_the_service_time() -> None:
    clock = FakeClock()
    report = _run(FakeClient(clock, service_s=1.0), BenchOptions(clients=1, ops=4), clock)
    assert report.latencies_s == (1.0, 1.0, 1.0, 1.0)


def test_open_loop_latency_counts_from_the_due_time() -> None:
    # Ops are due every 0.5 s but take 1 s each on one client: each starts later than it
    # was due, and the wait is part of its latency (no coordinated omission).
    clock = FakeClock()
    options = BenchOptions(clients=1, ops=4, rate=2.0)
    report = _run(FakeClient(clock, service_s=1.0), options, clock)
    assert report.latencies_s == (1.0, 1.5, 2.0, 2.5)
    assert report.seconds == 4.0


def test_errors_are_counted_not_timed() -> None:
    clock = FakeClock()
    client = FakeClient(clock, service_s=0.01, fail_every=4)
    report = _run(client, BenchOptions(clients=2, ops=100), clock)
    assert report.errors == 25
    assert len(report.latencies_s) == 75
    assert report.error_first == "Unavailable: no node answered"
    assert "errors      25" in report.render()


def test_report_json_shape() -> None:
    options = BenchOptions(clients=2, ops=4, value_size=10, read_ratio=0.5, rate=100.0)
    report = BenchReport(options, seconds=2.0, latencies_s=(0.001, 0.002, 0.003), errors=1)
    assert report.to_json() == {
        "ops": 4,
        "clients": 2,
        "value_size": 10,
        "read_ratio": 0.5,
        "rate": 100.0,
        "seconds": 2.0,
        "throughput": 1.5,
        "latency_ms": {"p50": 2.0, "p90": 3.0, "p99": 3.0, "p99.9": 3.0},
        "worst_second": None,  # no answer times given
        "errors": 1,
        "loadgen": None,  # the load generator's stalls, watched by `paxon bench` only
    }
    text = report.render()
    assert "throughput  2 ops/s" in text
    assert "p50 2.00  p90 3.00  p99 3.00  p99.9 3.00" in text


def test_the_worst_second_is_the_one_with_the_slowest_answer() -> None:
    # Three whole seconds: the second one holds a 250 ms stall among fast answers.
    answered = (0.1, 0.5, 0.9, 1.1, 1.2, 1.9, 2.2, 2.4, 2.6, 2.8, 3.05)
    latencies = (0.001, 0.001, 0.002, 0.001, 0.250, 0.003, 0.001, 0.002, 0.001, 0.001, 0.4)
    options = BenchOptions(clients=2, ops=len(answered))
    report = BenchReport(
        options, seconds=3.1, latencies_s=latencies, errors=0, answered_at_s=answered
    )
    worst = report.worst_second()
    # The last answer (3.05 s) is past the last whole second: not judged.
    assert worst == {
        "second": 1,
        "ops": 3,
        "p99_ms": 250.0,
        "max_ms": 250.0,
        "seconds_under_half": 0,
    }
    assert "worst sec   #1: 3 ops, p99 250.00, max 250.00 ms; 0 s under half" in report.render()


def test_a_second_with_few_answers_counts_as_under_half_the_rate() -> None:
    answered = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.5, 2.1, 2.2, 2.3, 2.4, 2.5)
    options = BenchOptions(clients=1, ops=len(answered))
    report = BenchReport(
        options, seconds=3.0, latencies_s=(0.001,) * 12, errors=0, answered_at_s=answered
    )
    worst = report.worst_second()
    assert worst is not None and worst["seconds_under_half"] == 1  # second 1: 1 of a mean 4


def test_a_run_records_when_each_op_was_answered() -> None:
    clock = FakeClock()
    client = FakeClient(clock, service_s=0.25)
    report = _run(client, BenchOptions(clients=1, ops=8), clock)
    assert report.answered_at_s == pytest.approx((0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0))
    worst = report.worst_second()
    # Equal answers everywhere: the first second, answered at 0.25, 0.5 and 0.75.
    assert worst is not None and (worst["second"], worst["ops"]) == (0, 3)


def test_the_report_repr_leaves_out_the_samples() -> None:
    # asyncio.run formats its main task's result as it returns (restoring its
    # SIGINT handler); with every sample in the repr, that cost the load
    # generator ~0.1 s of CPU per 60,000 writes, counted as load-generator CPU.
    samples = tuple(0.001 * (n % 7) for n in range(100_000))
    report = BenchReport(
        BenchOptions(clients=2, ops=len(samples)),
        seconds=5.0,
        latencies_s=samples,
        errors=0,
        answered_at_s=samples,
    )
    assert len(repr(report)) < 1_000
