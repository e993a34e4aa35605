"""Process settings for a server or a load generator (not for library users,
whose process is theirs to tune)."""

from __future__ import annotations

import gc
import sys


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
