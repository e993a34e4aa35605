"""Process settings for a server or a load generator (not for library users,
whose process is theirs to tune)."""

from __future__ import annotations

import gc
import logging
import sys
import time


def tune_for_throughput() -> None:
    # A helper thread (the WAL sync thread) must get the GIL back quickly when
    # its fsync returns, or every commit waits out the default 5 ms interval.
    sys.setswitchinterval(0.0005)
    # Each command makes many short-lived objects: collect the young
    # generation less often, and freeze what start-up made so the collector
    # does not walk it again and again.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def log_long_gc_pauses(logger: logging.Logger, threshold_s: float = 0.1) -> None:
    """Log every garbage collection that takes longer than ``threshold_s`` of wall
    clock (on a busy machine that includes time the process waited for a CPU);
    a latency outlier next to such a line has its explanation."""
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        pause_s = time.perf_counter() - started[0]
        if pause_s >= threshold_s:
            logger.warning(
                "garbage collection of generation %d took %.0f ms (%d objects collected)",
                info.get("generation", -1),
                pause_s * 1000,
                info.get("collected", 0),
            )

    gc.callbacks.append(callback)
