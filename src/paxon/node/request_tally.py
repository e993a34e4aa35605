"""The per-request series, counted in plain dicts and exported when scraped.

``paxon_requests_total{api, op}``, ``paxon_request_errors_total{api, op,
code}`` and ``paxon_request_seconds{api, op}`` are updated once for every
client request, on the event loop. Through ``prometheus_client``'s ``Counter``
and ``Histogram`` that took a lock per value and a bucket search in Python:
about a tenth of the leader's CPU per write (docs/benchmarks.md, "Where the
CPU goes"). ``RequestTally.observe`` only adds to a list of numbers; the
families are built from them by ``collect``, which a ``CollectorRegistry``
calls on each scrape.

Rules:
- The rendered text is the one the library's own metrics gave: the same
  families, label sets in first-seen order, cumulative buckets with their
  ``le`` spelled as the library spells it, and each series' ``_created``
  (the time of its first observation).
- Updates and ``collect`` run on one thread (the node's event loop: ``GET
  /metrics`` and the activity sampler both render there). ``collect`` copies
  each dict before walking it, so a scrape from another thread would not fail,
  but it could see one series a request ahead of its neighbours.
- Bounded: one entry per label set seen, and the labels are bounded where
  they are made (``op`` and ``code`` come from closed sets; the HTTP route is
  its pattern).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

REQUESTS_HELP = "Client requests this node answered, by API (native, http) and operation."
ERRORS_HELP = (
    "Client requests this node answered with an error, by API, operation and "
    "error code ('redirect': sent to the leader)."
)
SECONDS_HELP = (
    "Seconds from a client request's arrival to its answer on this node, by API "
    "and operation (docs/metrics.md says where each API samples)."
)


class _Series:
    """One ``(api, op)``: its count, sum of seconds and per-bucket counts."""

    __slots__ = ("buckets", "count", "created", "sum_s")

    def __init__(self, bucket_count: int) -> None:
        self.count = 0
        self.sum_s = 0.0
        self.buckets = [0] * bucket_count  # not cumulative; the last is +Inf
        self.created = time.time()


class RequestTally(Collector):
    """Counts every client request; a registered collector of its three families."""

    def __init__(self, buckets_s: Sequence[float]) -> None:
        bounds = [float(bound) for bound in buckets_s]
        if bounds != sorted(set(bounds)) or not bounds:
            raise ValueError("buckets must be increasing")
        if bounds[-1] != float("inf"):
            bounds.append(float("inf"))
        self._bounds = tuple(bounds)
        # The library's own spelling of a bound ("+Inf", "0.0001"); it has no hints.
        self._le = tuple(floatToGoString(bound) for bound in bounds)  # type: ignore[no-untyped-call]
        self._series: dict[tuple[str, str], _Series] = {}
        self._errors: dict[tuple[str, str, str], list[float]] = {}  # [count, created]

    def observe(self, api: str, op: str, seconds: float, code: str | None) -> None:
        """One request answered: ``code`` is None for a success."""
        series = self._series.get((api, op))
        if series is None:
            series = self._series[(api, op)] = _Series(len(self._bounds))
        series.count += 1
        series.sum_s += seconds
        # A value on a bound counts in that bucket (``le``), as the library does.
        series.buckets[bisect_left(self._bounds, seconds)] += 1
        if code is not None:
            error = self._errors.get((api, op, code))
            if error is None:
                self._errors[(api, op, code)] = [1.0, time.time()]
            else:
                error[0] += 1

    def seconds(self) -> HistogramMetricFamily:
        """``paxon_request_seconds`` alone (``node.activity`` reads it each second)."""
        family = HistogramMetricFamily("paxon_request_seconds", SECONDS_HELP, labels=("api", "op"))
        for (api, op), series in list(self._series.items()):
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for le, count in zip(self._le, series.buckets, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric((api, op), buckets, series.sum_s)
            family.add_sample(
                "paxon_request_seconds_created", {"api": api, "op": op}, series.created
            )
        return family

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("paxon_requests", REQUESTS_HELP, labels=("api", "op"))
        for (api, op), series in list(self._series.items()):
            requests.add_metric((api, op), float(series.count), created=series.created)
        yield requests
        errors = CounterMetricFamily(
            "paxon_request_errors", ERRORS_HELP, labels=("api", "op", "code")
        )
        for labels, (count, created) in list(self._errors.items()):
            errors.add_metric(labels, count, created=created)
        yield errors
        yield self.seconds()

    def describe(self) -> Iterator[Metric]:
        """The families without samples, so the registry checks names at once."""
        yield CounterMetricFamily("paxon_requests", REQUESTS_HELP, labels=("api", "op"))
        yield CounterMetricFamily("paxon_request_errors", ERRORS_HELP, labels=("api", "op", "code"))
        yield HistogramMetricFamily("paxon_request_seconds", SECONDS_HELP, labels=("api", "op"))
