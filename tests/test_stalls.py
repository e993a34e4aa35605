"""``paxon.stalls``: a held loop and a collection are measured, and the watches end."""

from __future__ import annotations

import asyncio
import gc
import itertools
import time

import pytest

from paxon.stalls import StallSummary, watch_gc_pauses, watch_loop_lag


def test_a_wake_up_is_measured_by_how_late_it_came() -> None:
    # The injected clock says each wake-up came 30 ms after it was asked for,
    # 10 ms of which were asked: 20 ms late. The first of each pair is the ask.
    times = itertools.chain.from_iterable((step, step + 0.03) for step in itertools.count())
    lags: list[float] = []

    async def main() -> None:
        watch = asyncio.create_task(watch_loop_lag(lags.append, 0.01, clock=lambda: next(times)))
        while len(lags) < 3:
            await asyncio.sleep(0.001)
        watch.cancel()

    asyncio.run(main())
    assert lags[:3] == pytest.approx([0.02, 0.02, 0.02])


def test_a_wake_up_on_time_is_no_lag() -> None:
    # A clock that says the sleep was shorter than asked (it can be, by a tick).
    times = itertools.chain.from_iterable((step, step + 0.009) for step in itertools.count())
    lags: list[float] = []

    async def main() -> None:
        watch = asyncio.create_task(watch_loop_lag(lags.append, 0.01, clock=lambda: next(times)))
        while not lags:
            await asyncio.sleep(0.001)
        watch.cancel()

    asyncio.run(main())
    assert lags[0] == 0.0


def test_a_held_loop_shows_as_lag() -> None:
    lags: list[float] = []

    async def main() -> None:
        watch = asyncio.create_task(watch_loop_lag(lags.append, 0.001))
        await asyncio.sleep(0.01)
        time.sleep(0.05)  # a callback holding the loop for 50 ms
        await asyncio.sleep(0.01)
        watch.cancel()

    asyncio.run(main())
    assert max(lags) >= 0.04  # never less than the hold; more on a busy machine


def test_every_collection_is_observed_until_the_watch_stops() -> None:
    seen: list[tuple[int, float]] = []
    stop = watch_gc_pauses(lambda generation, seconds: seen.append((generation, seconds)))
    try:
        gc.collect()
    finally:
        stop()
    assert 2 in [generation for generation, _ in seen]
    assert all(seconds >= 0.0 for _, seconds in seen)
    count = len(seen)
    gc.collect()
    assert len(seen) == count  # stopped: no callback left behind
    stop()  # twice is harmless


def test_a_summary_reports_quantile_maximum_and_slow_counts() -> None:
    summary = StallSummary(
        loop_lags_s=[0.0001] * 98 + [0.006, 0.030], gc_pauses_s=[0.001, 0.007, 0.002]
    )
    assert summary.to_json() == {
        "loop_lag_ms": {"p99": 6.0, "max": 30.0, "over_5ms": 2},
        "gc_pause_ms": {"max": 7.0, "over_5ms": 1, "collections": 3},
    }
    assert StallSummary().to_json()["loop_lag_ms"] == {"p99": 0.0, "max": 0.0, "over_5ms": 0}
