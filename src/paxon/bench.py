"""``paxon bench``: load a running cluster and measure throughput and latency.

How it measures:
- ``clients`` asyncio tasks in one process share one ``Client`` (it is safe
  for concurrent use; on a local 3-node cluster one shared client was as fast
  as one per task, or faster). Each task runs its own sequential stream: take
  the next op number, run it, record it.
- An op is a put of a ``value_size``-byte value to a key drawn among ``keys``,
  or, with probability ``read_ratio``, a linearizable get of such a key.
- Closed loop (no ``rate``): a task starts its next op when the last one is
  answered, and an op's latency runs from its start to its answer.
- Open loop (``rate``): op ``i`` is due ``i / rate`` seconds after the start,
  whichever task gets to it, and its latency runs from that due time. A
  stalled cluster then shows as latency rather than as ops that were quietly
  never sent (coordinated omission).
- An op that fails with a ``PaxonError`` counts as an error and adds no
  latency sample; throughput counts the ops answered without error, over the
  whole run.
- The worst second: the ops answered in each whole second since the start
  are grouped by the second they were answered in, and the second whose
  slowest answer was slowest is reported with its op count, p99 and maximum,
  so a stall of a fraction of a second shows even where the percentiles of
  the whole run hide it (and ``seconds_under_half``: how many whole seconds
  answered fewer than half the run's mean ops/s).
- Before the clock starts, one put checks that the cluster answers, so an
  unreachable cluster fails at once with its exit code (3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import random
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from paxon.errors import PaxonError
from paxon.security.client_tls import ClientTls
from paxon.stalls import StallSummary, watch_gc_pauses, watch_loop_lag
from paxon.tuning import tune_for_throughput

QUANTILES: tuple[tuple[str, float], ...] = (
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99.9", 0.999),
)
KEY_PREFIX = "bench/"
PROGRESS_INTERVAL_S = 0.1


@dataclass(frozen=True, slots=True)
class BenchOptions:
    endpoints: tuple[str, ...] = ()
    timeout_s: float = 10.0
    clients: int = 16
    ops: int = 10_000
    value_size: int = 100
    read_ratio: float = 0.0
    rate: float | None = None  # total ops/s, open loop; None is closed loop
    keys: int = 1000
    seed: int = 0
    tls: ClientTls | None = None  # TLS to the cluster; None is plain TCP
    user: str | None = None  # log in as this user (auth enabled)
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        assert self.clients >= 1 and self.ops >= 1 and self.keys >= 1
        assert self.value_size >= 0 and 0.0 <= self.read_ratio <= 1.0
        assert self.rate is None or self.rate > 0


@dataclass(frozen=True, slots=True)
class BenchReport:
    options: BenchOptions
    seconds: float
    # Not in the repr: asyncio.run formats the main task's result at exit
    # (restoring its SIGINT handler), and 60,000 floats cost ~0.05 s each time.
    latencies_s: tuple[float, ...] = field(repr=False)
    errors: int
    error_first: str | None = None
    # When each latency sample's op was answered, in seconds since the start.
    answered_at_s: tuple[float, ...] = field(default=(), repr=False)
    # The load generator's own loop lag and collections (None: not watched).
    loadgen: StallSummary | None = None

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.seconds if self.seconds > 0 else 0.0

    def latency_ms(self) -> dict[str, float | None]:
        return {
            name: None if value is None else round(value * 1000, 3)
            for name, value in percentiles(self.latencies_s).items()
        }

    def to_json(self) -> dict[str, object]:
        options = self.options
        return {
            "ops": options.ops,
            "clients": options.clients,
            "value_size": options.value_size,
            "read_ratio": options.read_ratio,
            "rate": options.rate,
            "seconds": round(self.seconds, 3),
            "throughput": round(self.throughput, 1),
            "latency_ms": self.latency_ms(),
            "worst_second": self.worst_second(),
            "errors": self.errors,
            "loadgen": None if self.loadgen is None else self.loadgen.to_json(),
        }

    def worst_second(self) -> dict[str, object] | None:
        """The whole second (counted from the start) whose slowest answer was the
        slowest: its number, ops, p99 and max in ms; and how many whole seconds
        answered fewer than half the mean ops/s. None without a whole second."""
        whole = int(self.seconds)
        if whole < 1 or len(self.answered_at_s) != len(self.latencies_s):
            return None
        by_second: list[list[float]] = [[] for _ in range(whole)]
        for answered_at, latency in zip(self.answered_at_s, self.latencies_s, strict=True):
            second = int(answered_at)
            if 0 <= second < whole:
                by_second[second].append(latency)
        worst = max(range(whole), key=lambda second: max(by_second[second], default=0.0))
        samples = by_second[worst]
        p99 = percentiles(samples)["p99"]
        return {
            "second": worst,
            "ops": len(samples),
            "p99_ms": None if p99 is None else round(p99 * 1000, 3),
            "max_ms": round(max(samples) * 1000, 3) if samples else None,
            "seconds_under_half": sum(1 for ops in by_second if len(ops) < self.throughput / 2),
        }

    def render(self) -> str:
        options = self.options
        loop = f"open loop at {options.rate:,g} ops/s" if options.rate else "closed loop"
        latency = "  ".join(
            f"{name} {'-' if value is None else f'{value:.2f}'}"
            for name, value in self.latency_ms().items()
        )
        lines = [
            f"ops         {options.ops:,} ({options.clients} clients, {loop})",
            f"mix         {options.read_ratio:.0%} linearizable gets, "
            f"puts of {options.value_size:,} bytes over {options.keys:,} keys",
            f"seconds     {self.seconds:.2f}",
            f"throughput  {self.throughput:,.0f} ops/s",
            f"latency ms  {latency}",
        ]
        worst = self.worst_second()
        if worst is not None:
            lines.append(
                f"worst sec   #{worst['second']}: {worst['ops']:,} ops, p99 "
                f"{_ms(worst['p99_ms'])}, max {_ms(worst['max_ms'])} ms; "
                f"{worst['seconds_under_half']} s under half the mean rate"
            )
        if self.loadgen is not None:
            stalls = self.loadgen
            lines.append(
                f"load gen    loop lag p99 {stalls.loop_lag_p99_s * 1000:.2f}, max "
                f"{stalls.loop_lag_max_s * 1000:.2f} ms; gc max "
                f"{stalls.gc_pause_max_s * 1000:.2f} ms"
            )
        lines.append(f"errors      {self.errors:,}")
        if self.error_first is not None:
            lines.append(f"first error {self.error_first}")
        return "\n".join(lines)


class KeyValueClient(Protocol):
    """What the benchmark needs of a client (``paxon.Client`` has it)."""

    async def put(self, key: str, value: bytes) -> int: ...

    async def get(self, key: str) -> object: ...


def main(options: BenchOptions, *, json_output: bool) -> int:
    """Run the benchmark against ``options.endpoints`` and print the report.

    Exit status: 0 every op answered, 1 some failed (the report says how many).
    A cluster that does not answer the first put raises its ``PaxonError``.
    """
    show_progress = not json_output and sys.stderr.isatty()
    report = _run_loop(_bench_cluster(options, show_progress=show_progress))
    print(json.dumps(report.to_json()) if json_output else report.render())
    return 0 if report.errors == 0 else 1


async def run_bench(
    clients: Sequence[KeyValueClient],
    options: BenchOptions,
    *,
    clock: Callable[[], float] = time.perf_counter,
    on_progress: Callable[[int], None] | None = None,
) -> BenchReport:
    """Run ``options.ops`` ops over ``options.clients`` tasks; see the module doc.

    Task ``i`` sends its ops through ``clients[i % len(clients)]``.
    """
    assert clients
    run = _Run(options, clock)
    ticker = asyncio.create_task(_report_progress(run, on_progress)) if on_progress else None
    try:
        workers = (run.worker(clients[index % len(clients)]) for index in range(options.clients))
        await asyncio.gather(*workers)
    finally:
        if ticker is not None:
            ticker.cancel()
            await asyncio.wait([ticker])
    if on_progress is not None:
        on_progress(run.done)
    return BenchReport(
        options=options,
        seconds=clock() - run.start,
        latencies_s=tuple(run.latencies_s),
        errors=run.errors,
        error_first=run.error_first,
        answered_at_s=tuple(run.answered_at_s),
    )


def _ms(value: object) -> str:
    return "-" if value is None else f"{value:.2f}"


def percentiles(
    samples: Sequence[float], quantiles: Sequence[tuple[str, float]] = QUANTILES
) -> dict[str, float | None]:
    """Nearest-rank percentiles: the smallest sample with at least ``q`` of all at or below it.

    Every answer is one of the samples (no interpolation); None when there are none.
    """
    ordered = sorted(samples)
    result: dict[str, float | None] = {}
    for name, quantile in quantiles:
        assert 0.0 < quantile <= 1.0, quantile
        if not ordered:
            result[name] = None
            continue
        rank = math.ceil(quantile * len(ordered))
        result[name] = ordered[max(rank, 1) - 1]
    return result


def due_offset_s(index: int, rate: float) -> float:
    """When op ``index`` (from 0) is due in an open-loop run at ``rate`` ops/s, from the start."""
    return index / rate


def bench_key(number: int) -> str:
    return f"{KEY_PREFIX}{number:06d}"


# ------------------------------------------------------------------- helpers


@dataclass(slots=True)
class _Run:
    options: BenchOptions
    clock: Callable[[], float]
    start: float = 0.0
    taken: int = 0
    done: int = 0
    errors: int = 0
    error_first: str | None = None
    latencies_s: list[float] = field(default_factory=list)
    answered_at_s: list[float] = field(default_factory=list)
    rng: random.Random = field(init=False)
    value: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.options.seed)
        self.value = self.rng.randbytes(self.options.value_size)
        self.start = self.clock()

    async def worker(self, client: KeyValueClient) -> None:
        options = self.options
        while self.taken < options.ops:
            index = self.taken
            self.taken += 1
            key = bench_key(self.rng.randrange(options.keys))
            is_read = self.rng.random() < options.read_ratio
            if options.rate is None:
                due = self.clock()
            else:
                due = self.start + due_offset_s(index, options.rate)
                delay = due - self.clock()
                if delay > 0:
                    await asyncio.sleep(delay)
            try:
                if is_read:
                    await client.get(key)
                else:
                    await client.put(key, self.value)
            except PaxonError as error:
                self.errors += 1
                if self.error_first is None:
                    self.error_first = f"{type(error).__name__}: {error}"
            else:
                answered = self.clock()
                self.latencies_s.append(answered - due)
                self.answered_at_s.append(answered - self.start)
            self.done += 1


async def _report_progress(run: _Run, on_progress: Callable[[int], None]) -> None:
    while True:
        on_progress(run.done)
        await asyncio.sleep(PROGRESS_INTERVAL_S)


async def _bench_cluster(options: BenchOptions, *, show_progress: bool) -> BenchReport:
    from paxon.client import Client

    endpoints = list(options.endpoints)
    client = Client(
        endpoints,
        timeout=options.timeout_s,
        tls=options.tls,
        user=options.user,
        password=options.password,
    )
    async with client:
        await client.put(bench_key(0), b"")
        if not show_progress:
            return await _watching_stalls(run_bench([client], options))
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        console = Console(stderr=True)
        with Progress("bench", *columns, console=console, transient=True) as progress:
            task = progress.add_task("ops", total=options.ops)
            return await _watching_stalls(
                run_bench(
                    [client],
                    options,
                    on_progress=lambda done: progress.update(task, completed=done),
                )
            )


async def _watching_stalls(run: Coroutine[Any, Any, BenchReport]) -> BenchReport:
    """Run the benchmark while watching this process's own loop lag and
    collections: an op is timed here, so a stall here is in its latency."""
    stalls = StallSummary()
    unhook = watch_gc_pauses(lambda _generation, seconds: stalls.gc_pauses_s.append(seconds))
    lag = asyncio.create_task(watch_loop_lag(stalls.loop_lags_s.append))
    try:
        report = await run
    finally:
        unhook()
        lag.cancel()
    return dataclasses.replace(report, loadgen=stalls)


def _run_loop(coroutine: Coroutine[Any, Any, BenchReport]) -> BenchReport:
    """Run on uvloop where it is installed: the benchmark's own loop should not be the limit."""
    tune_for_throughput()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)
