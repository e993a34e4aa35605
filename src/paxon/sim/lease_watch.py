"""Leases judged from outside: none ends by expiry before the holder may count on.

``docs/coordination.md`` ("What a lease holder can count on") promises: a
holder that *sent* a keep-alive (or the grant) at real time ``t`` keeps its
lease until at least ``t + TTL*(1 - rho) - 0.1 s``, whatever the leader changes
and the offsets between the members' clocks. The simulator's global time is
real time, and every host's monotonic clock runs at ``1 +- DRIFT_RATE_MAX``
(rho = 0.05, ``paxon.sim.config``). So the rule checked here,
**lease-early-expiry**, is, for every lease that ends by expiry (not revoke),
on every replica that applies that ending::

    applied_at >= sent_at + ttl_s * (1 - DRIFT_RATE_MAX) - STAMP_INTERVAL_S - EPSILON_S

- ``sent_at``: the global time the holder *first* sent the last grant or
  keep-alive of that lease that was applied (fresh, not a duplicate) before
  the ending, in log order. A retry resends the same ``(client_id, seq)``;
  its first send is the earliest the leader can have seen it, so the bound
  is taken from there (sound: it can only be weaker).
- ``applied_at``: the global time that replica applied the clock entry that
  ended the lease. The first replica to apply it is the earliest; every
  replica is judged, so one that expires by its own clock is named.
- Why it holds (the derivation of ``docs/coordination.md`` in the
  simulator's terms): the renewal's log time ``L`` is at least the stamp of
  the leader that proposed it, taken at most ``STAMP_INTERVAL_S`` of that
  leader's monotonic time (at most 0.1 s / (1 - rho) real) before it proposed,
  which was after ``sent_at``; the lease ends when a stamp ``>= L + TTL``
  applies, and a leader's stamps advance with its monotonic clock, TTL of
  it being at least ``TTL / (1 + rho)`` real; another leader's first stamp
  renews the lease to a whole TTL from its own time first. So the ending
  applies at least ``(TTL - 0.1 s) / (1 + rho)`` after ``sent_at``, which is
  at least ``TTL*(1 - rho) - 0.1 s`` (the documented, weaker bound; checked
  as documented).
- ``EPSILON_S`` (2 ms): stamps are whole milliseconds, truncated
  (``ClockStamper.now_ms``), so ``L`` may read up to 1 ms below the leader's
  clock (1 ms / (1 - rho) real, about 1.05 ms), plus float rounding of the
  drifted clocks.

Not covered, as the document says: a leader whose clock runs faster than rho
(the simulator draws none).

**lease-late-expiry** (liveness, judged at the end of a run without the
``drift`` fault, where every clock reads the global time): a lease its holder
abandoned must have ended somewhere by::

    max(last renewal applied, heal, last new leader's first stamp applied)
        + TTL + LATE_SLACK_S

(a new leader's first stamp renews every lease to a whole TTL, so the last
one counts; the slack covers the stamp interval, a tick, and the round trip
of the stamp that ends it). With drift a leader whose wall clock is behind
stalls log time, by design (``docs/coordination.md``), up to the 100 s of the
simulator's offsets: no deadline in real time holds then.

Also counted per run (``SimStats.leases``): grants, renewals (keep-alives
applied), expiries and revokes, each lease's ending counted once.

Contract: the watch changes nothing in the run and draws no randomness; the
observer (``ObservedMachine``) reports applies and endings in log order with
an order key ``(slot, position)`` that is the same on every replica applying
the same log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from paxon.kv.codec import decode_result
from paxon.kv.model import LeaseGrantResult, LeaseKeepAliveResult, LeaseRevokeResult
from paxon.node.logclock import STAMP_INTERVAL_S
from paxon.sim.checkers import Violation
from paxon.sim.config import DRIFT_RATE_MAX

LATE_SLACK_S: Final = 0.5
"""Slack of the liveness deadline (lease-late-expiry)."""

EPSILON_S: Final = 0.002
"""Slack of the bound: the millisecond truncation of a stamp, and float rounding."""

Order = tuple[int, int]
"""Where an event falls in the log: (slot, position of the event in the slot)."""

CommandKey = tuple[int, int]
"""A command's (client_id, seq)."""


def earliest_expiry_s(sent_at: float, ttl_ms: int) -> float:
    """The earliest global time a lease renewed by a command sent at ``sent_at``
    may end by expiry (the rule above)."""
    return sent_at + ttl_ms / 1000 * (1 - DRIFT_RATE_MAX) - STAMP_INTERVAL_S - EPSILON_S


@dataclass(slots=True)
class _Sent:
    """A lease command a client sent: what it is and when it was first sent."""

    kind: str  # "grant", "keep-alive", "revoke", "put"
    sent_at: float
    ttl_ms: int = 0  # a grant's
    lease_id: int = 0  # a revoke's


@dataclass(slots=True)
class _Lease:
    ttl_ms: int
    # Applied grant and keep-alives: order -> the first send time of the command.
    renewals: dict[Order, float] = field(default_factory=dict)
    ended: str | None = None  # "expired" or "revoked", first seen
    renewed_applied_at: float = 0.0  # the last renewal's first apply anywhere
    abandoned: bool = False  # its holder stopped keeping it alive
    reported: bool = False  # a violation named it already


class LeaseWatch:
    """Collects lease sends and applies; names an early expiry as it happens."""

    def __init__(self, violations: list[Violation]) -> None:
        self._violations = violations
        self._sent: dict[CommandKey, _Sent] = {}
        self._leases: dict[int, _Lease] = {}
        self.counts: dict[str, int] = {"granted": 0, "renewed": 0, "expired": 0, "revoked": 0}
        self._leader_stamp_slots: set[int] = set()
        self._leader_stamp_at = 0.0  # when the newest first stamp of a leader applied first

    # -------------------------------------------------------------- the clients

    def on_sent(
        self, key: CommandKey, kind: str, time: float, *, ttl_ms: int = 0, lease_id: int = 0
    ) -> None:
        """A lease client sends ``key`` (a retry keeps the first send time)."""
        if key not in self._sent:
            self._sent[key] = _Sent(kind, time, ttl_ms, lease_id)

    def watches(self, key: CommandKey) -> bool:
        """Whether ``key`` is a lease client's command (its reply is worth decoding)."""
        return key in self._sent

    def on_abandoned(self, lease_id: int) -> None:
        """The holder of ``lease_id`` stopped keeping it alive."""
        lease = self._leases.get(lease_id)
        if lease is not None:
            lease.abandoned = True

    def live(self, lease_id: int) -> bool:
        """Whether no replica has ended ``lease_id`` yet (as far as seen)."""
        lease = self._leases.get(lease_id)
        return lease is not None and lease.ended is None

    # -------------------------------------------------------------- the replicas

    def on_leader_stamp(self, slot: int, time: float) -> None:
        """A replica applied a new leader's first stamp (``LEADER_MAGIC``) at ``slot``."""
        if slot not in self._leader_stamp_slots:
            self._leader_stamp_slots.add(slot)
            self._leader_stamp_at = max(self._leader_stamp_at, time)

    def on_applied(self, order: Order, key: CommandKey, reply: bytes, time: float) -> None:
        """A replica applied a lease client's command for the first time (fresh)."""
        sent = self._sent[key]
        if sent.kind not in ("grant", "keep-alive", "revoke"):
            return
        result = decode_result(reply)
        if isinstance(result, LeaseRevokeResult):
            self._end(sent.lease_id, "revoked")
            return
        if isinstance(result, LeaseGrantResult):
            lease = self._leases.get(result.lease)
            if lease is None:
                lease = self._leases[result.lease] = _Lease(sent.ttl_ms)
                self.counts["granted"] += 1
        elif isinstance(result, LeaseKeepAliveResult):
            lease = self._leases.get(result.lease)
            if lease is None:
                return  # granted before a snapshot this watch never saw applied
        else:
            return  # refused (LeaseNotFound): it renewed nothing
        if order not in lease.renewals:
            lease.renewals[order] = sent.sent_at
            lease.renewed_applied_at = max(lease.renewed_applied_at, time)
            if sent.kind == "keep-alive":
                self.counts["renewed"] += 1

    def on_expired(self, node_id: int, lease_id: int, order: Order, time: float) -> None:
        """Replica ``node_id`` ended ``lease_id`` by expiry at a clock entry at ``order``."""
        lease = self._leases.get(lease_id)
        self._end(lease_id, "expired")
        if lease is None or lease.reported:
            return  # not a lease client's (or granted before anything seen)
        before = [at for at in lease.renewals if at < order]
        if not before:
            return
        last = max(before)
        sent_at = lease.renewals[last]
        earliest = earliest_expiry_s(sent_at, lease.ttl_ms)
        if time < earliest:
            lease.reported = True
            self._violations.append(
                Violation(
                    time,
                    "lease-early-expiry",
                    f"n{node_id} expired lease {lease_id} (ttl {lease.ttl_ms} ms) at slot "
                    f"{order[0]}, {earliest - time:.3f}s before the holder's bound: its last "
                    f"renewal applied (slot {last[0]}) was sent at t={sent_at:.6f}, so it "
                    f"may not end before t={earliest:.6f}",
                )
            )

    def finish(self, time: float, healed_at: float | None) -> None:
        """The run ends at ``time``: every abandoned lease past its deadline must
        have ended (lease-late-expiry; call it only for runs without drift)."""
        if healed_at is None:
            return
        for lease_id, lease in sorted(self._leases.items()):
            if not lease.abandoned or lease.ended is not None:
                continue
            since = max(lease.renewed_applied_at, healed_at, self._leader_stamp_at)
            deadline = since + lease.ttl_ms / 1000 + LATE_SLACK_S
            if deadline <= time:
                self._violations.append(
                    Violation(
                        time,
                        "lease-late-expiry",
                        f"lease {lease_id} (ttl {lease.ttl_ms} ms), abandoned by its holder, "
                        f"was still live at the end of the run; it should have ended by "
                        f"t={deadline:.6f} (from t={since:.6f}: its last renewal applied, "
                        "the heal, or the last new leader's first stamp)",
                    )
                )

    def _end(self, lease_id: int, how: str) -> None:
        lease = self._leases.get(lease_id)
        if lease is not None and lease.ended is None:
            lease.ended = how
            self.counts[how] += 1


__all__ = ["EPSILON_S", "LATE_SLACK_S", "LeaseWatch", "earliest_expiry_s"]
