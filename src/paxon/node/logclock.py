"""Time agreed through the log: the leader stamps its clock, replicas read the log.

Replicas must agree on time for anything time-based in the replicated state
(session expiry here; leases later). A replica's own clock would make them
disagree, so no replica reads one when it applies. Instead:

- **The leader stamps.** ``ClockStamper.stamp()`` (called where the leader
  hands a batch of commands to the core) returns a *clock entry* to put at the
  head of the batch, at most once per ``interval_s``: a ``Command`` with the
  reserved client id ``CLOCK_CLIENT_ID`` (0), ``seq`` = the leader's wall clock
  in milliseconds since the Unix epoch, and an empty payload. Wall-clock time,
  not the loop's monotonic clock, so stamps from successive leaders (other
  machines) are comparable.
- **Replicas read the log.** ``LogClock.observe(stamp_ms)`` runs for every
  clock entry in log order and keeps ``log_time_ms = max(log_time_ms,
  stamp_ms)``: it never goes back, even when a new leader's clock is behind
  the old one's or an old leader's stamp is re-proposed. Every replica applies
  the same entries in the same order, so every replica has the same log time
  at every command. The log time is replicated state: it is in snapshots.
- **Clients can never stamp.** A command from a client with client id 0 is
  refused at the edge (``check_client_id``), before it is proposed. Any clock
  entry in the log is taken as one, whatever its payload (a payload is ignored).

Assumptions, written down: the members' wall clocks agree within a minute or
so (NTP). A leader whose clock is far ahead moves log time ahead for good
(sessions then expire early, which refuses commands but never applies one
twice); one far behind only stalls log time until real time catches up.

Limits: at most one clock entry per ``interval_s`` (``STAMP_INTERVAL_S`` =
0.1 s) per leader, 0 payload bytes each; a clock entry's ``seq`` is a
non-negative wire integer like any seq.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from paxon.errors import BadRequest
from paxon.protocol.types import Command

CLOCK_CLIENT_ID = 0
"""The client id of clock entries; no client may use it."""

STAMP_INTERVAL_S = 0.1
"""A leader stamps the log at most this often (so log time lags by about this
much plus the pipeline delay; expiry works in minutes)."""


def clock_command(stamp_ms: int) -> Command:
    """The clock entry for ``stamp_ms`` (milliseconds since the Unix epoch)."""
    return Command(CLOCK_CLIENT_ID, stamp_ms, b"")


def check_client_id(client_id: int) -> None:
    """Refuse a client's command that claims the clock's client id."""
    if client_id == CLOCK_CLIENT_ID:
        raise BadRequest(f"client id {CLOCK_CLIENT_ID} is reserved for the log clock")


class LogClock:
    """The replicated side: log time, moved only by clock entries, never back."""

    __slots__ = ("log_time_ms",)

    def __init__(self, log_time_ms: int = 0) -> None:
        self.log_time_ms = log_time_ms

    def observe(self, stamp_ms: int) -> bool:
        """A clock entry was applied; whether log time moved forward."""
        if stamp_ms <= self.log_time_ms:
            return False
        self.log_time_ms = stamp_ms
        return True


class ClockStamper:
    """The leader's side: when to stamp, and with what (``wall_time_s`` is injectable)."""

    def __init__(
        self,
        wall_time_s: Callable[[], float] = time.time,
        *,
        interval_s: float = STAMP_INTERVAL_S,
    ) -> None:
        if interval_s < 0:
            raise ValueError("interval_s must be >= 0")
        self.wall_time_s = wall_time_s
        self.interval_s = interval_s
        self._stamped_at_s: float | None = None

    def stamp(self) -> Command | None:
        """A clock entry to put at the head of the next batch, or None if one is recent."""
        now_s = self.wall_time_s()
        if self._stamped_at_s is not None and 0 <= now_s - self._stamped_at_s < self.interval_s:
            return None
        self._stamped_at_s = now_s
        return clock_command(max(0, int(now_s * 1000)))
