"""Locks of the key-value store: waiters are keys, fences are revisions, and a
holder that dies blocks the lock for its lock-delay.

The recipe is etcd's (``concurrency.Mutex``), with Chubby's lock-delay added
in the store:

- **A waiter is a key.** ``LockAcquire(name, lease, delay_ms)`` puts
  ``_paxon/lock/<name>/<lease, 16 hex digits>`` (``model.lock_key``) with the
  lease, once per (name, lease). Its value is the waiter's lock-delay in
  milliseconds (decimal ASCII). The key's create revision is the waiter's
  **fence**: revisions only grow, so every later holder has a larger fence.
- **The holder** is the waiter with the lowest create revision, unless a
  lock-delay runs for the lock; waiters are served in the order they joined.
  A waiter leaves when its key goes: deleted (a release), its lease revoked,
  or its lease expired.
- **Lock-delay** (Chubby): when a lease *expires* and takes the key of the
  lock's holder, nobody holds that lock until ``delay_ms`` of log time later
  (``LockDelays``). A release or a revoke frees the lock at once: the holder
  said it was done. This is what keeps a holder that was paused or cut off
  (and may still think it holds the lock) from overlapping the next holder
  at a resource that does not check fences.
- **A stale holder is refused by fence**: a write guarded by
  ``Compare(holder key, "create_revision", "==", fence)`` fails once the
  holder's key is gone, and a resource that keeps the highest fence it saw
  refuses a lower one.

Limits: a delay is at most ``LOCK_DELAY_MAX_MS`` (60 s); one delay per lock
name, each set only by an expiring holder and gone when it has run, so the
table holds at most one entry per lock whose holder expired in the last
minute.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from paxon.kv.model import LOCK_DELAY_MAX_MS


def encode_delay(delay_ms: int) -> bytes:
    """A waiter key's value: its lock-delay."""
    return str(delay_ms).encode()


def decode_delay(value: bytes) -> int:
    """The lock-delay a waiter key's value says; 0 if it does not say one (a
    user overwrote the key), never more than ``LOCK_DELAY_MAX_MS``."""
    if not value.isdigit() or len(value) > 8:
        return 0
    return min(int(value), LOCK_DELAY_MAX_MS)


class LockDelays:
    """Lock name -> the log time its lock-delay ends; part of the replicated state."""

    def __init__(self) -> None:
        self.until_ms: dict[str, int] = {}
        self._ends: list[tuple[int, str]] = []  # (until_ms, name), maybe stale

    def __len__(self) -> int:
        return len(self.until_ms)

    def start(self, name: str, until_ms: int) -> None:
        if until_ms > self.until_ms.get(name, 0):
            self.until_ms[name] = until_ms
            heapq.heappush(self._ends, (until_ms, name))

    def remaining_ms(self, name: str, now_ms: int) -> int:
        return max(0, self.until_ms.get(name, 0) - now_ms)

    def end_passed(self, now_ms: int) -> None:
        """Forget the delays that have run by ``now_ms``."""
        ends = self._ends
        while ends and ends[0][0] <= now_ms:
            until_ms, name = heapq.heappop(ends)
            if self.until_ms.get(name) == until_ms:
                del self.until_ms[name]

    def next_end_ms(self) -> int | None:
        ends = self._ends
        while ends:
            until_ms, name = ends[0]
            if self.until_ms.get(name) == until_ms:
                return until_ms
            heapq.heappop(ends)
        return None

    def export(self) -> list[list[object]]:
        return [[name, self.until_ms[name]] for name in sorted(self.until_ms)]

    def load(self, rows: Iterable[tuple[str, int]]) -> None:
        assert not self.until_ms
        for name, until_ms in rows:
            self.start(name, until_ms)
