"""Limits and timings of one replica, in one place ("a limit on everything").

Times are seconds of the replica's own clock, which the runtime passes to
``tick(now)``; the core never reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    heartbeat_interval_s: float = 0.05
    election_timeout_min_s: float = 0.3
    election_timeout_max_s: float = 0.6
    # After being preempted, the next election timeout is multiplied by this
    # factor, up to ``backoff_max_factor``; hearing from a leader resets it.
    backoff_factor: float = 2.0
    backoff_max_factor: float = 8.0
    # Accepts that have no quorum after this long are sent again.
    accept_retry_s: float = 0.1
    # A follower asks for missing chosen values at most this often.
    learn_retry_s: float = 0.1
    pipeline_window_slots: int = 64
    # Commands per slot. Large batches are what make one fsync and one round
    # trip carry many commands under load (measured: 512 gives ~20% more
    # writes/s than 128 with 256 clients on 2 cores; see docs/benchmarks.md).
    batch_max_commands: int = 512
    # Payload bytes per slot (a single larger command still gets its own slot)
    # and per Learn answer, so a message stays far below the frame limit.
    batch_max_bytes: int = 1_048_576
    learn_max_bytes: int = 4_194_304
    queue_max_commands: int = 100_000
    learn_max_entries: int = 256
    runs_max: int = 64

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_interval_s < self.election_timeout_min_s:
            raise ValueError("need 0 < heartbeat_interval_s < election_timeout_min_s")
        if self.election_timeout_max_s < self.election_timeout_min_s:
            raise ValueError("election_timeout_max_s must be >= election_timeout_min_s")
        if self.backoff_factor < 1 or self.backoff_max_factor < 1:
            raise ValueError("backoff factors must be >= 1")
        for name in (
            "pipeline_window_slots",
            "batch_max_commands",
            "batch_max_bytes",
            "learn_max_bytes",
            "queue_max_commands",
            "learn_max_entries",
            "runs_max",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
