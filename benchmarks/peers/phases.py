"""The load shape every system gets, and one run of it against one client of one system.

Phases, in this order, each against a running 3-member cluster:

1. ``saturation``: writes as fast as the client's concurrency allows, closed
   loop: durable writes/s, and the CPU seconds per 1,000 writes of the three
   servers together and of the leader alone (``/proc/PID/stat`` before and
   after; the leader's PID comes first) and of the load generator.
2. ``paced`` at 1,000 writes/s, open loop: p50, p99, p99.9.
3. ``paced`` at half of the saturation just measured (this system, this run).
4. ``reads``: linearizable reads as fast as the client allows, closed loop.

A client that cannot do a phase (``etcdctl check perf`` only writes) leaves
its figures out (None).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from benchmarks.peers.procs import cpu_seconds
from benchmarks.peers.stats import latency_ms, per_thousand

VALUE_SIZE = 64
KEYS = 1000
PACED_RATE = 1000.0

METRICS: tuple[str, ...] = (
    "writes_per_s",
    "p50_at_1000_ms",
    "p99_at_1000_ms",
    "p99.9_at_1000_ms",
    "p50_at_half_ms",
    "p99_at_half_ms",
    "p99.9_at_half_ms",
    "reads_per_s",
    "server_cpu_s_per_1000_writes",
    "leader_cpu_s_per_1000_writes",
    "loadgen_cpu_s_per_1000_writes",
)


@dataclass(frozen=True, slots=True)
class Load:
    """What one phase gave: ok ops over seconds, their latency, the generator's CPU."""

    ops: int
    seconds: float
    latency_ms: dict[str, float | None]
    errors: int = 0
    loadgen_cpu_s: float | None = None
    error_first: str | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def from_samples(
        cls,
        latencies_s: Sequence[float],
        *,
        seconds: float,
        errors: int = 0,
        loadgen_cpu_s: float | None = None,
        error_first: str | None = None,
    ) -> Load:
        return cls(
            ops=len(latencies_s),
            seconds=seconds,
            latency_ms=latency_ms(latencies_s),
            errors=errors,
            loadgen_cpu_s=loadgen_cpu_s,
            error_first=error_first,
        )


class Driver(Protocol):
    """One client of one system; ``phases`` names the phases it can run."""

    @property
    def name(self) -> str: ...

    @property
    def phases(self) -> tuple[str, ...]: ...

    def saturation(self, seconds: float) -> Load: ...

    def paced(self, rate: float, seconds: float) -> Load: ...

    def reads(self, seconds: float) -> Load: ...


@dataclass(frozen=True, slots=True)
class Durations:
    saturation_s: float
    paced_s: float
    reads_s: float


Sample = dict[str, float | None]


def measure(
    driver: Driver,
    server_pids: Sequence[int],
    durations: Durations,
    wall_s: dict[str, float],
    errors: list[str],
) -> Sample:
    """Run ``driver``'s phases; figures in the sample, each phase's wall-clock in ``wall_s``,
    a line per phase that had errors in ``errors``. ``server_pids[0]`` is the leader's."""
    sample: Sample = dict.fromkeys(METRICS)

    def timed(phase: str, run: Load) -> Load:
        if run.errors:
            errors.append(f"{driver.name}, {phase}: {run.errors} errors, first {run.error_first}")
        for name, value in run.extra.items():
            sample[name] = value
        return run

    def clock(phase: str, began: float) -> None:
        wall_s[phase] = round(time.perf_counter() - began, 3)

    saturation: float | None = None
    if "saturation" in driver.phases:
        began = time.perf_counter()
        cpu_before = [cpu_seconds(pid) for pid in server_pids]
        run = timed("saturation", driver.saturation(durations.saturation_s))
        cpu_used = [
            cpu_seconds(pid) - cpu for pid, cpu in zip(server_pids, cpu_before, strict=True)
        ]
        clock("saturation", began)
        saturation = run.throughput
        sample["writes_per_s"] = saturation
        sample["server_cpu_s_per_1000_writes"] = per_thousand(sum(cpu_used), run.ops)
        if cpu_used:
            sample["leader_cpu_s_per_1000_writes"] = per_thousand(cpu_used[0], run.ops)
        if run.loadgen_cpu_s is not None:
            sample["loadgen_cpu_s_per_1000_writes"] = per_thousand(run.loadgen_cpu_s, run.ops)
    if "paced" in driver.phases:
        rates = {"1000": PACED_RATE}
        if saturation:
            rates["half"] = saturation / 2
        for label, rate in rates.items():
            began = time.perf_counter()
            run = timed(f"paced {label}", driver.paced(rate, durations.paced_s))
            clock(f"paced_{label}", began)
            for quantile in ("p50", "p99", "p99.9"):
                sample[f"{quantile}_at_{label}_ms"] = run.latency_ms[quantile]
    if "reads" in driver.phases:
        began = time.perf_counter()
        run = timed("reads", driver.reads(durations.reads_s))
        clock("reads", began)
        sample["reads_per_s"] = run.throughput
    return sample
