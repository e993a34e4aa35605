"""Process settings for a server or a load generator (not for library users,
whose process is theirs to tune)."""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import sys
import time


def tune_for_throughput() -> None:
    # A helper thread (the WAL sync thread) must get the GIL back quickly when
    # its fsync returns, or every commit waits out the default 5 ms interval.
    sys.setswitchinterval(0.0005)
    # Each command makes many short-lived objects: collect the young
    # generations less often than the default (700, 10, 10). Their
    # collections walk every survivor since the last one; that stays small
    # only because ``freeze_survivors`` moves survivors out of the collector's
    # reach every second (without it, these thresholds gave 250-370 ms
    # collections under load). Freeze what start-up made, too.
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


async def freeze_survivors(interval_s: float = 1.0) -> None:
    """Every ``interval_s``, move every object alive into the permanent generation.

    A server keeps a large, slowly replaced population (the log kept in memory,
    the store): a full collection walks all of it, and under load took 0.4 to
    0.5 s here, long enough to cost a leadership. Frozen objects are still
    freed by reference counting when they are dropped; only reference cycles
    that are alive at a freeze and die later are never reclaimed, and the
    runtime's long-lived data holds none. ``gc.freeze`` itself is O(1).
    """
    while True:
        await asyncio.sleep(interval_s)
        gc.freeze()


def raise_file_limit() -> None:
    """Lift the soft limit on open files to the hard one: the transport bounds its
    connections itself (``NetConfig``), and a soft limit of 1,024 would run out
    first, taking the HTTP port and the data directory down with it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
