"""Limits and timings of one replica, in one place ("a limit on everything").

Times are seconds of the replica's own clock, which the runtime passes to
``tick(now)``; the core never reads a clock.

Bounds on what a replica believes from a peer (see "What a replica refuses" in
docs/protocol.md). Two are fixed, the rest follow from the fields below:

- ``ROUND_END = 2**63``: the wire carries ints in ``[0, 2**63)``; a ballot round
  at or above it is refused, and a replica never makes one.
- ``ROUND_JUMP_MAX = 2**32``: a round more than this above the highest round
  the replica knows is refused. Honest rounds climb by one per election
  attempt; 2**32 attempts at the fastest timeout (0.3 s) take 40 years.
- ``slots_ahead_max = slots_ahead_factor * pipeline_window_slots`` (16 * 64 =
  1,024 by default; never below ``learn_max_entries``; the factor is at least
  2): a peer's Accept or Learn entry at or beyond ``slot_chosen +
  slots_ahead_max`` is refused; a Promise from an acceptor whose
  chosen prefix is more than this ahead of ``slot_from`` sends the candidate to
  learn instead of carrying the gap; a new leader re-proposes and fills at most
  ``2 * slots_ahead_max`` slots from its ``slot_from``.
"""

from __future__ import annotations

from dataclasses import dataclass

ROUND_END = 2**63
"""Ballot rounds are in ``[0, ROUND_END)``: what the wire (and the WAL) can carry."""

ROUND_JUMP_MAX = 2**32
"""A round more than this above every round a replica knows is refused as absurd."""


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
    # Peers may name slots up to ``slots_ahead_factor * pipeline_window_slots``
    # past this replica's chosen prefix; see the module docstring.
    slots_ahead_factor: int = 16
    # Lease reads (off by default; docs/protocol.md "Lease reads"): a leader
    # answers a linearizable read without a round of heartbeats while a
    # majority acknowledged a heartbeat it sent less than ``lease_s`` ago. The
    # lease rests on a promise every acceptor keeps only with this set: no
    # Prepare from another candidate while it hears its leader, and none for
    # ``election_timeout_min_s`` after it starts. Every member must set it alike.
    lease_reads: bool = False
    # The clock bound the lease rests on: every member's clock runs at a rate
    # within 1 +- this of real time (0.05: 5%, far above what NTP-less
    # quartz drifts, about 1e-4).
    clock_drift_max: float = 0.05

    @property
    def lease_s(self) -> float:
        """How long a majority's acknowledgement of a heartbeat keeps the lease,
        from when the heartbeat went out, by the leader's clock. Each of them
        promises no other candidate until its own clock shows
        ``election_timeout_min_s`` since it heard the heartbeat: at least
        ``min / (1 + rho)`` real seconds after it went out. The leader's clock
        shows at least ``(1 - rho)`` of the real time passed, so its lease, at
        ``min * (1 - rho) / (1 + rho)`` of its clock, ends before that."""
        rho = self.clock_drift_max
        return self.election_timeout_min_s * (1 - rho) / (1 + rho)

    @property
    def slots_ahead_max(self) -> int:
        # Never below one full page of Learn, which must fit inside the window.
        return max(self.slots_ahead_factor * self.pipeline_window_slots, self.learn_max_entries)

    def __post_init__(self) -> None:
        # The raises below guard the constructor's arguments: every configuration
        # the simulator builds is legal (tests/server/test_config.py tries bad ones).
        if not 0 < self.heartbeat_interval_s < self.election_timeout_min_s:
            raise ValueError(  # sim: unreachable: argument check
                "need 0 < heartbeat_interval_s < election_timeout_min_s"
            )
        if self.election_timeout_max_s < self.election_timeout_min_s:
            raise ValueError(  # sim: unreachable: argument check
                "election_timeout_max_s must be >= election_timeout_min_s"
            )
        if self.backoff_factor < 1 or self.backoff_max_factor < 1:
            raise ValueError("backoff factors must be >= 1")  # sim: unreachable: argument check
        for name in (
            "pipeline_window_slots",
            "batch_max_commands",
            "batch_max_bytes",
            "learn_max_bytes",
            "queue_max_commands",
            "learn_max_entries",
            "runs_max",
            "slots_ahead_factor",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")  # sim: unreachable: argument check
        if self.slots_ahead_factor < 2:
            # A follower learns that slot s - 1 is chosen from the Accept of
            # slot s itself; with a bound of one window it refuses that Accept,
            # and a leader with a window of one slot then chooses each slot
            # only on its retry (swarm seed 257: 0.3 s a slot).
            raise ValueError("slots_ahead_factor must be >= 2")  # sim: unreachable: argument check
        if not 0 <= self.clock_drift_max < 1:
            raise ValueError(  # sim: unreachable: argument check
                "clock_drift_max must be in [0, 1)"
            )
