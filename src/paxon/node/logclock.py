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
- **A new leader's first stamp says so.** Its payload is ``LEADER_MAGIC``;
  applying it runs ``StateMachine.on_leader_change`` before log time moves,
  so a machine with leases extends every lease to a whole TTL from the new
  leader's time before that time can expire any (a leader change never
  shortens a lease, whatever the new leader's clock says). An older release
  reads it as a plain clock entry.
- **Within a tenure, stamps move with the monotonic clock.** At its first
  stamp a leader reads its wall clock once; later stamps add the monotonic
  time elapsed since (``elapsed_s``). A step of the wall clock (an operator,
  NTP at boot) during a tenure moves no stamp, so it cannot expire a lease
  early; only the rate of the clock counts, and the renewal above makes the
  offsets between members' clocks not count for leases at all.
- **Idle, the leader still stamps when the machine asks** (``LeaderClock``):
  when its clock reaches ``StateMachine.next_deadline_ms()`` (a lease's
  expiry), and every ``IDLE_STAMP_INTERVAL_S`` while there is a deadline,
  so a lease expires on time and its remaining TTL reads true on an idle
  cluster.
- **Clients can never stamp.** A command from a client with client id 0 is
  refused at the edge (``check_client_id``), before it is proposed. Any clock
  entry in the log is taken as one, whatever its payload (a payload is ignored).

Assumptions, written down: the members' wall clocks agree within a minute or
so (NTP). A leader whose clock is far ahead moves log time ahead for good
(sessions then expire early, which refuses commands but never applies one
twice); one far behind only stalls log time until real time catches up.

Limits: at most one clock entry per ``interval_s`` (``STAMP_INTERVAL_S`` =
0.1 s) per leader (a leader's first stamp aside), 0 payload bytes each (13
for a leader's first); a clock entry's ``seq`` is a non-negative wire integer
like any seq.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from paxon.errors import BadRequest
from paxon.protocol import Role
from paxon.protocol.types import Command

if TYPE_CHECKING:
    from paxon.node.node import Node

CLOCK_CLIENT_ID = 0
"""The client id of clock entries; no client may use it."""

STAMP_INTERVAL_S = 0.1
"""A leader stamps the log at most this often (so log time lags by about this
much plus the pipeline delay; expiry works in minutes)."""


IDLE_STAMP_INTERVAL_S = 0.5
"""While the machine has a deadline, an idle leader stamps at least this often."""

LEADER_MAGIC: Final = b"paxon-leader\x00"
"""The payload of a new leader's first clock entry."""


def clock_command(stamp_ms: int, *, first_of_leader: bool = False) -> Command:
    """The clock entry for ``stamp_ms`` (milliseconds since the Unix epoch)."""
    return Command(CLOCK_CLIENT_ID, stamp_ms, LEADER_MAGIC if first_of_leader else b"")


def is_stamp(command: Command) -> bool:
    """Whether ``command`` is a clock entry a stamper made (plain or a leader's first)."""
    return command.client_id == CLOCK_CLIENT_ID and command.payload in (b"", LEADER_MAGIC)


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
    """The leader's side: when to stamp, and with what (both clocks are injectable:
    ``wall_time_s`` read once per tenure, ``elapsed_s`` monotonic)."""

    def __init__(
        self,
        wall_time_s: Callable[[], float] = time.time,
        *,
        elapsed_s: Callable[[], float] = time.monotonic,
        interval_s: float = STAMP_INTERVAL_S,
    ) -> None:
        if interval_s < 0:
            raise ValueError("interval_s must be >= 0")
        self.wall_time_s = wall_time_s
        self.elapsed_s = elapsed_s
        self.interval_s = interval_s
        self._stamped_at_s: float | None = None  # on the elapsed clock
        self._tenure: tuple[float, float] | None = None  # (wall, elapsed) at the first stamp
        # As they were before the last stamp, for ``refused``.
        self._before_stamp: tuple[float | None, tuple[float, float] | None] = (None, None)

    def lead(self) -> None:
        """This node now leads: the next stamp is a leader's first, at once."""
        self._tenure = None
        self._stamped_at_s = None

    @property
    def first_pending(self) -> bool:
        """Whether the next stamp will be this tenure's first."""
        return self._tenure is None

    def idle_for_s(self) -> float:
        """Seconds since the last stamp (infinite before the first)."""
        if self._stamped_at_s is None:
            return float("inf")
        return self.elapsed_s() - self._stamped_at_s

    def now_ms(self) -> int:
        """This leader's time, as its next stamp would say (milliseconds)."""
        elapsed = self.elapsed_s()
        if self._tenure is None:
            return max(0, int(self.wall_time_s() * 1000))
        wall, since = self._tenure
        return max(0, int((wall + elapsed - since) * 1000))

    def stamp(self) -> Command | None:
        """A clock entry to put at the head of the next batch, or None if one is recent."""
        elapsed = self.elapsed_s()
        if self._stamped_at_s is not None and 0 <= elapsed - self._stamped_at_s < self.interval_s:
            return None
        self._before_stamp = (self._stamped_at_s, self._tenure)
        self._stamped_at_s = elapsed
        first = self._tenure is None
        if first:
            self._tenure = (self.wall_time_s(), elapsed)
        return clock_command(self.now_ms(), first_of_leader=first)

    def refused(self) -> None:
        """The last stamp never reached the log (its batch was refused, ``Busy``):
        forget it, so the next batch carries one (the tenure's first again, if
        it was). A stamp counted but lost would let the batches of the next
        ``interval_s`` go without one, under a log time as old as the last
        stamp that did get in (sim swarm seed 5: 0.43 s old, a lease expired
        that much early)."""
        self._stamped_at_s, self._tenure = self._before_stamp


class LeaderClock:
    """One node's duty: as leader, stamp the log when the machine has a deadline.

    Checked every tick: a new leader whose machine has a deadline proposes its
    first stamp at once (leases are renewed without waiting for a command);
    then a stamp when the leader's time reaches the deadline, and at least
    every ``IDLE_STAMP_INTERVAL_S`` while there is one. Batches of commands
    carry stamps of their own (``ClockStamper.stamp`` in the node's flush)."""

    def __init__(self, node: Node, stamper: ClockStamper) -> None:
        self._node = node
        self._stamper = stamper

    def on_tick(self) -> None:
        node = self._node
        if node._replica.role is not Role.LEADER:
            return
        deadline_ms = node.machine.machine.next_deadline_ms()
        if deadline_ms is None:
            return
        stamper = self._stamper
        due = (
            stamper.first_pending
            or stamper.now_ms() >= deadline_ms
            or stamper.idle_for_s() >= IDLE_STAMP_INTERVAL_S
        )
        if not due:
            return
        stamp = stamper.stamp()
        if stamp is not None:
            node._propose_system(stamp)
