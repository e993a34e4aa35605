"""Stalls of a process, measured so that a latency outlier has an explanation.

Two things can hold every request of a Python process at once, and neither
shows in a request's own timing:

- **A garbage collection.** ``gc.callbacks`` time each one by the wall clock,
  so a pause includes any time the process waited for a CPU meanwhile.
- **A held event loop.** A task asks to wake every ``LOOP_LAG_INTERVAL_S`` and
  records how late it woke: the time other callbacks held the loop (a long
  decode, a snapshot written on the loop, a collection) plus any time the
  operating system ran something else instead of this process. On 2 cores
  shared by three nodes and a load generator, the second is not rare.

``paxon bench`` reports its own (``loadgen`` in ``--json``): an op is timed
there, so a stall there is in its latency. ``paxon serve`` exported the same
for a while and no longer does: with the watch running, a leader's handover
under load stalled about 0.3 s in most runs of the membership benchmark and
never without it (``docs/benchmarks.md``, "The tail"; the cause is not found).
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

LOOP_LAG_INTERVAL_S = 0.01
"""How often the loop-lag task asks to wake: 100 wake-ups a second, each a few
microseconds of CPU; a hold shorter than this may fall between two and be missed."""

SLOW_S = 0.005
"""A stall at least this long is counted apart: the p99 goals are in milliseconds."""


def watch_gc_pauses(observe: Callable[[int, float], None]) -> Callable[[], None]:
    """Call ``observe(generation, seconds)`` after every garbage collection of
    this process; returns the function that stops watching."""
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            observe(info.get("generation", -1), time.perf_counter() - started[0])

    gc.callbacks.append(callback)

    def stop() -> None:
        if callback in gc.callbacks:
            gc.callbacks.remove(callback)

    return stop


async def watch_loop_lag(
    observe: Callable[[float], None],
    interval_s: float = LOOP_LAG_INTERVAL_S,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Until cancelled: wake every ``interval_s`` and ``observe`` how late each wake-up was."""
    while True:
        asked = clock()
        await asyncio.sleep(interval_s)
        observe(max(clock() - asked - interval_s, 0.0))


@dataclass(slots=True)
class StallSummary:
    """A process's stalls over a run: what ``paxon bench`` reports of its own."""

    loop_lags_s: list[float] = field(default_factory=list)
    gc_pauses_s: list[float] = field(default_factory=list)

    @property
    def loop_lag_p99_s(self) -> float:
        return _quantile(self.loop_lags_s, 0.99)

    @property
    def loop_lag_max_s(self) -> float:
        return max(self.loop_lags_s, default=0.0)

    @property
    def gc_pause_max_s(self) -> float:
        return max(self.gc_pauses_s, default=0.0)

    def to_json(self) -> dict[str, object]:
        return {
            "loop_lag_ms": {
                "p99": _ms(self.loop_lag_p99_s),
                "max": _ms(self.loop_lag_max_s),
                "over_5ms": sum(1 for lag in self.loop_lags_s if lag >= SLOW_S),
            },
            "gc_pause_ms": {
                "max": _ms(self.gc_pause_max_s),
                "over_5ms": sum(1 for pause in self.gc_pauses_s if pause >= SLOW_S),
                "collections": len(self.gc_pauses_s),
            },
        }


def _quantile(samples: list[float], quantile: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[max(math.ceil(quantile * len(ordered)), 1) - 1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
