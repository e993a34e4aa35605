"""The numbers: latency percentiles of one phase, and medians with min and max over runs.

Percentiles are nearest-rank (``paxon.bench.percentiles``: every answer is one of
the samples, no interpolation), so the figures of ``paxon bench``, of the Python
HTTP load generator and of PySyncObj's in-process load are computed alike.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from paxon.bench import percentiles

LATENCY_QUANTILES: tuple[tuple[str, float], ...] = (
    ("p50", 0.50),
    ("p99", 0.99),
    ("p99.9", 0.999),
)


def latency_ms(samples_s: Sequence[float]) -> dict[str, float | None]:
    """p50, p99 and p99.9 in milliseconds (None without samples)."""
    return {
        name: None if value is None else round(value * 1000, 3)
        for name, value in percentiles(samples_s, LATENCY_QUANTILES).items()
    }


@dataclass(frozen=True, slots=True)
class Spread:
    median: float
    low: float
    high: float
    runs: tuple[float, ...]

    def to_json(self) -> dict[str, object]:
        return {"median": self.median, "min": self.low, "max": self.high, "runs": list(self.runs)}


def spread(values: Sequence[float | None]) -> Spread | None:
    """Median, min and max of the runs that measured something; None if none did."""
    measured = tuple(value for value in values if value is not None)
    if not measured:
        return None
    return Spread(statistics.median(measured), min(measured), max(measured), measured)


def per_thousand(cpu_s: float, writes: int) -> float | None:
    """CPU seconds per 1,000 writes (None when nothing was written)."""
    return None if writes <= 0 else cpu_s * 1000 / writes
