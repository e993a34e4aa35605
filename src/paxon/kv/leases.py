"""Leases of the key-value store: ids, TTLs and expiry, in log time only.

A lease is granted with a TTL, kept alive, revoked, or expires; keys attached
to it are deleted with it (``KvStore`` does the deleting, at one revision).
This module is the table: which leases live, when each expires, which keys
each holds. It is part of the replicated state, so it is deterministic:

- **Time is log time** (``paxon.node.logclock``): ``now_ms`` is always the log
  time of the command being applied, the same on every replica. No replica
  reads its own clock, so every replica expires the same lease at the same
  command.
- **Grant and keep-alive** set ``expiry_ms = now_ms + ttl_ms``.
- **A new leader renews every lease** (``renew_all``): ``expiry_ms =
  max(expiry_ms, now_ms + ttl_ms)`` at the new leader's first log time, so a
  leader change never shortens a lease, whatever the new leader's clock says
  (``docs/coordination.md`` states the bound this gives under drift).
- **Expiry** (``expired``): every lease whose ``expiry_ms`` is at or before
  the log time, in order of ``(expiry_ms, id)``.
- **Ids** count up from 1 and are never reused (``next_id`` is in snapshots).
- **Attachment**: a key is attached to at most one lease (``lease_of``); a
  lease's keys are kept sorted when they leave, so deletion order is the same
  everywhere.
- **Owner**: under auth, a lease is owned by the user whose token granted it
  (``paxon.kv.store`` verifies the token at apply, on every replica, so the
  owner is the same everywhere and no client field can name another user);
  without auth it has none. ``owned`` counts each owner's live leases.

Limits: at most ``KvLimits.leases_max`` (100,000) live leases, and at most
``KvLimits.leases_per_user_max`` (10,000) owned by one user, so one tenant
cannot take the whole table from the others; a grant past either is refused
with ``Busy`` (a lease without an owner counts toward the first only).
``owned`` holds one entry per owner with a live lease, so it is bounded by the
live leases. The deadline heap holds one entry per grant,
keep-alive or renewal not yet popped; it is rebuilt when it holds more than
twice the live leases (plus 64), so keep-alives cannot grow it without bound.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from paxon.errors import Busy, LeaseNotFound

_HEAP_SLACK: Final = 64

LeaseRow = tuple[int, int, int, list[str], str | None]
"""``(id, ttl_ms, expiry_ms, keys, owner)``: one lease of a snapshot, checked."""


@dataclass(slots=True)
class Lease:
    """One live lease. ``keys`` is a set; read it through ``sorted_keys``."""

    id: int
    ttl_ms: int
    expiry_ms: int
    keys: set[str] = field(default_factory=set)
    owner: str | None = None
    """The user who granted it under auth, else None."""

    def sorted_keys(self) -> list[str]:
        return sorted(self.keys)


class LeaseTable:
    def __init__(self, leases_max: int, leases_per_user_max: int) -> None:
        self.leases_max = leases_max
        self.leases_per_user_max = leases_per_user_max
        self.next_id = 1
        self.leases: dict[int, Lease] = {}
        self.lease_of: dict[str, int] = {}
        """Key -> the lease it is attached to (only attached keys)."""
        self.owned: dict[str, int] = {}
        """Owner -> how many live leases it owns (only owners with one or more)."""
        self._deadlines: list[tuple[int, int]] = []  # (expiry_ms, id), maybe stale

    def __len__(self) -> int:
        return len(self.leases)

    def __iter__(self) -> Iterator[Lease]:
        """The live leases, by id."""
        for lease_id in sorted(self.leases):
            yield self.leases[lease_id]

    def get(self, lease_id: int) -> Lease:
        lease = self.leases.get(lease_id)
        if lease is None:
            raise LeaseNotFound(f"lease {lease_id} does not exist (never granted, or ended)")
        return lease

    # -------------------------------------------------------------- changes

    def grant(self, ttl_ms: int, now_ms: int, owner: str | None = None) -> Lease:
        """A new lease, owned by ``owner`` (None: no one); ``Busy`` past a limit."""
        if len(self.leases) >= self.leases_max:
            raise Busy(
                f"the lease table is full ({self.leases_max} live leases): grant refused; "
                "retry once some expire or are revoked"
            )
        if owner is not None and self.owned.get(owner, 0) >= self.leases_per_user_max:
            raise Busy(
                f"user {owner!r} holds {self.leases_per_user_max} live leases, the most one "
                "user may: grant refused; revoke some or let them expire"
            )
        lease = Lease(self.next_id, ttl_ms, now_ms + ttl_ms, owner=owner)
        self.next_id += 1
        self.leases[lease.id] = lease
        self._count(owner, 1)
        self._push(lease)
        return lease

    def keep_alive(self, lease_id: int, now_ms: int) -> Lease:
        lease = self.get(lease_id)
        if now_ms + lease.ttl_ms > lease.expiry_ms:
            lease.expiry_ms = now_ms + lease.ttl_ms
            self._push(lease)
        return lease

    def renew_all(self, now_ms: int) -> None:
        """A new leader's first log time: no lease ends sooner than a full TTL from it."""
        for lease in self.leases.values():
            if now_ms + lease.ttl_ms > lease.expiry_ms:
                lease.expiry_ms = now_ms + lease.ttl_ms
        self._rebuild()

    def remove(self, lease_id: int) -> Lease:
        """End a lease (revoked or expired); its keys are detached and returned with it."""
        lease = self.leases.pop(lease_id)
        for key in lease.keys:
            del self.lease_of[key]
        self._count(lease.owner, -1)
        return lease

    def expired(self, now_ms: int) -> list[int]:
        """The leases whose expiry is at or before ``now_ms``, in ``(expiry, id)``
        order; they stay in the table until ``remove``."""
        found = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now_ms:
            expiry_ms, lease_id = heapq.heappop(deadlines)
            lease = self.leases.get(lease_id)
            if lease is not None and lease.expiry_ms == expiry_ms:
                found.append(lease_id)
        return found

    def next_expiry_ms(self) -> int | None:
        """The earliest expiry of a live lease, or None without leases."""
        deadlines = self._deadlines
        while deadlines:
            expiry_ms, lease_id = deadlines[0]
            lease = self.leases.get(lease_id)
            if lease is not None and lease.expiry_ms == expiry_ms:
                return expiry_ms
            heapq.heappop(deadlines)  # stale: kept alive, renewed or removed since
        return None

    def attach(self, key: str, lease_id: int) -> None:
        """Attach ``key`` to ``lease_id`` (which must live), detaching it from any other."""
        if self.lease_of.get(key) == lease_id:
            return
        self.detach(key)
        self.leases[lease_id].keys.add(key)
        self.lease_of[key] = lease_id

    def detach(self, key: str) -> None:
        lease_id = self.lease_of.pop(key, None)
        if lease_id is not None:
            self.leases[lease_id].keys.discard(key)

    # -------------------------------------------------------------- snapshots

    def export(self) -> list[list[object]]:
        """``[[id, ttl_ms, expiry_ms, [key...]] or [id, ttl_ms, expiry_ms, [key...],
        owner]...]`` by id, keys sorted: the owner only when there is one, so a
        table without owners (no auth) exports as it did before owners."""
        rows: list[list[object]] = []
        for lease in self:
            row: list[object] = [lease.id, lease.ttl_ms, lease.expiry_ms, lease.sorted_keys()]
            if lease.owner is not None:
                row.append(lease.owner)
            rows.append(row)
        return rows

    def load(self, next_id: int, rows: Iterable[LeaseRow]) -> None:
        """Fill an empty table from checked rows (``paxon.kv.store`` checks them)."""
        assert not self.leases
        self.next_id = next_id
        for lease_id, ttl_ms, expiry_ms, keys, owner in rows:
            lease = Lease(lease_id, ttl_ms, expiry_ms, set(keys), owner)
            self.leases[lease_id] = lease
            for key in keys:
                self.lease_of[key] = lease_id
            self._count(owner, 1)
        self._rebuild()

    def check_invariants(self) -> None:
        """Assert the table is consistent (for tests; O(state))."""
        assert len(self.leases) <= self.leases_max
        attached = 0
        for lease_id, lease in self.leases.items():
            assert lease.id == lease_id and 1 <= lease_id < self.next_id
            for key in lease.keys:
                assert self.lease_of[key] == lease_id
            attached += len(lease.keys)
        assert attached == len(self.lease_of)
        owned: dict[str, int] = {}
        for lease in self.leases.values():
            if lease.owner is not None:
                owned[lease.owner] = owned.get(lease.owner, 0) + 1
        assert owned == self.owned
        live = {(lease.expiry_ms, lease.id) for lease in self.leases.values()}
        assert live <= set(self._deadlines)

    # -------------------------------------------------------------- helpers

    def _count(self, owner: str | None, change: int) -> None:
        if owner is None:
            return
        count = self.owned.get(owner, 0) + change
        assert count >= 0
        if count:
            self.owned[owner] = count
        else:
            del self.owned[owner]

    # -------------------------------------------------------------- deadlines

    def _push(self, lease: Lease) -> None:
        heapq.heappush(self._deadlines, (lease.expiry_ms, lease.id))
        if len(self._deadlines) > 2 * len(self.leases) + _HEAP_SLACK:
            self._rebuild()

    def _rebuild(self) -> None:
        self._deadlines = [(lease.expiry_ms, lease.id) for lease in self.leases.values()]
        heapq.heapify(self._deadlines)
