"""A node's recent activity for the dashboard: a bounded ring of per-second samples.

Every ``SAMPLE_INTERVAL_S`` (1 s) ``ActivitySampler.run`` reads the node's own
status row and its metrics (``paxon.node.metrics``) and keeps one
sample; at most ``SAMPLES_MAX`` (300, five minutes) are kept, the oldest
dropped first, so a page opened late still draws the last minutes. A sample is
about 300 bytes of JSON, so ``GET /v1/activity`` answers at most about 90 KiB.

A sample (``Sample.to_json``): ``t`` (Unix seconds at the end of the interval),
``role``, ``ballot``, ``leader``, ``commit_index``, ``applied_index``, and over
the interval: ``commits`` and ``slots`` (client commands applied, slots learned
chosen, per second), ``commit_ms`` and ``commit_p99_ms`` (``paxon_commit_seconds``:
proposal to reply on the leader; None when it answered none) and ``request_ms``
and ``request_p99_ms`` (``paxon_request_seconds``, every api and op: requests
this node answered, forwarded ones included). A p99 is the upper bound of the
histogram bucket the 99th percentile falls in (the buckets are in metrics.py);
past the last finite bucket it is None.

The arithmetic (``Reading``, ``sample_between``) is pure; only ``run`` sleeps.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import Counter, Histogram

from paxon.node.metrics import NodeMetrics

SAMPLE_INTERVAL_S: Final = 1.0
SAMPLES_MAX: Final = 300
COMMIT_HISTOGRAM: Final = "paxon_commit_seconds"
REQUEST_HISTOGRAM: Final = "paxon_request_seconds"


@dataclass(frozen=True, slots=True)
class Histo:
    """A histogram's totals at one moment, summed over its labels."""

    count: float = 0.0
    total_s: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()  # (upper bound, cumulative count)

    def minus(self, earlier: Histo) -> Histo:
        before = dict(earlier.buckets)
        return Histo(
            self.count - earlier.count,
            self.total_s - earlier.total_s,
            tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets),
        )

    def mean_ms(self) -> float | None:
        return None if self.count <= 0 else round(1000.0 * self.total_s / self.count, 3)

    def p99_ms(self) -> float | None:
        if self.count <= 0:
            return None
        need = 0.99 * self.count
        for le, n in sorted(self.buckets):
            if n >= need:
                return None if math.isinf(le) else round(1000.0 * le, 3)
        return None


@dataclass(frozen=True, slots=True)
class Reading:
    """What a sample is the difference of: the node's counters at ``at`` (monotonic)."""

    at: float
    commits: float
    slots: float
    commit: Histo = Histo()
    request: Histo = Histo()


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    row: dict[str, Any]
    commits: float
    slots: float
    commit: Histo
    request: Histo

    def to_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "role": self.row.get("role"),
            "ballot": self.row.get("ballot"),
            "leader": self.row.get("leader"),
            "commit_index": self.row.get("commit_index"),
            "applied_index": self.row.get("applied_index"),
            "commits": self.commits,
            "slots": self.slots,
            "commit_ms": self.commit.mean_ms(),
            "commit_p99_ms": self.commit.p99_ms(),
            "request_ms": self.request.mean_ms(),
            "request_p99_ms": self.request.p99_ms(),
        }


def sample_between(earlier: Reading, later: Reading, t: float, row: dict[str, Any]) -> Sample:
    """The sample of the interval from ``earlier`` to ``later``: rates per second."""
    span = later.at - earlier.at
    per_s = 1.0 / span if span > 0 else 0.0
    return Sample(
        t,
        row,
        round((later.commits - earlier.commits) * per_s, 3),
        round((later.slots - earlier.slots) * per_s, 3),
        later.commit.minus(earlier.commit),
        later.request.minus(earlier.request),
    )


@dataclass(slots=True)
class ActivityLog:
    """The last ``samples_max`` samples, oldest first."""

    samples_max: int = SAMPLES_MAX
    _samples: deque[Sample] = field(init=False)

    def __post_init__(self) -> None:
        if self.samples_max < 1:
            raise ValueError("samples_max must be >= 1")
        self._samples = deque(maxlen=self.samples_max)

    def add(self, sample: Sample) -> None:
        self._samples.append(sample)

    def to_json(self, node_id: int) -> dict[str, Any]:
        return {
            "node_id": node_id,
            "interval_s": SAMPLE_INTERVAL_S,
            "samples_max": self.samples_max,
            "samples": [sample.to_json() for sample in self._samples],
        }


def read_metrics(metrics: NodeMetrics, at: float) -> Reading:
    """The counters a ``Reading`` holds, from a node's metrics (each one collected
    alone: the process collectors of its registry are not read)."""
    return Reading(
        at,
        _total(metrics.commits),
        _total(metrics.slots_chosen),
        _histo(_samples(metrics.commit_seconds)),
        _histo(metrics.request_tally.seconds().samples),
    )


def _samples(metric: Counter | Histogram) -> list[Any]:
    return [sample for family in metric.collect() for sample in family.samples]


def _total(counter: Counter) -> float:
    return float(
        sum(sample.value for sample in _samples(counter) if sample.name.endswith("_total"))
    )


def _histo(samples: Iterable[Any]) -> Histo:
    count = total = 0.0
    buckets: dict[float, float] = {}
    for sample in samples:
        if sample.name.endswith("_count"):
            count += sample.value
        elif sample.name.endswith("_sum"):
            total += sample.value
        elif sample.name.endswith("_bucket"):
            le = float(sample.labels["le"])
            buckets[le] = buckets.get(le, 0.0) + sample.value
    return Histo(count, total, tuple(sorted(buckets.items())))


class ActivitySampler:
    """Keeps ``log`` filled from a node: ``row`` gives its own status row (with
    ``leader``), ``registry`` its metrics. Run ``run()`` as a task on its loop."""

    def __init__(
        self,
        node_id: int,
        row: Callable[[], dict[str, Any]],
        metrics: NodeMetrics,
        samples_max: int = SAMPLES_MAX,
    ) -> None:
        self.node_id = node_id
        self.log = ActivityLog(samples_max)
        self._row = row
        self._metrics = metrics

    def to_json(self) -> dict[str, Any]:
        return self.log.to_json(self.node_id)

    async def run(self) -> None:
        earlier = read_metrics(self._metrics, time.monotonic())
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            later = read_metrics(self._metrics, time.monotonic())
            self.log.add(sample_between(earlier, later, time.time(), self._row()))
            earlier = later


def own_row(status: dict[str, Any]) -> dict[str, Any]:
    """This node's row of its ``status()``, with the ``leader`` it names."""
    for member in status.get("members", []):
        if member.get("id") == status.get("node_id"):
            return {**member, "leader": status.get("leader")}
    return {"leader": status.get("leader")}
