"""``ReplLockManager``: named locks with owners, TTLs in log time and fences.

A lighter lock than the key-value store's (``docs/coordination.md``), for a
library user's own cluster: no queue, a try-lock that a holder renews.

- ``acquire(name, owner, ttl_ms)``: if the lock is free (or expired, or
  already ``owner``'s) ``owner`` holds it until ``ttl_ms`` of log time from
  now; answers ``[held, holder, fence]``. A new holder gets a new fence (one
  more than any before, for every lock), a renewal keeps its fence.
- ``release(name, owner)``: frees it if ``owner`` holds it.
- Expiry by log time only (``StateMachine.on_log_time``); a new leader's
  first stamp renews every lock for its TTL (``on_leader_change``), as the
  store's leases are, so a leader change never shortens a hold; and
  ``next_deadline_ms`` makes an idle leader stamp when a lock expires.

Limits, the same on every replica: ``locks_max`` held locks (default
100,000), names and owners of at most 256 bytes, TTL from 100 ms to one day.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import msgpack  # type: ignore[import-untyped]

from paxon.errors import PaxonError, Timeout
from paxon.repl.wire import Refused, Replicator, ok, pack, refused, result_of, unpack_request
from paxon.statemachine import StateMachine

NAME_MAX_BYTES: Final = 256
LOCKS_MAX: Final = 100_000
TTL_MIN_MS: Final = 100
TTL_MAX_MS: Final = 24 * 3600 * 1000


@dataclass(slots=True)
class _Hold:
    owner: str
    ttl_ms: int
    expiry_ms: int
    fence: int


class ReplLockManager(StateMachine):
    def __init__(self, *, locks_max: int = LOCKS_MAX) -> None:
        self.locks_max = locks_max
        self.holds: dict[str, _Hold] = {}
        self.fence = 0  # the last fence given
        self.log_time_ms = 0
        self._ends: list[tuple[int, str]] = []  # (expiry_ms, name), maybe stale

    def apply(self, command: bytes) -> bytes:
        try:
            op, args = unpack_request(command)
            match op, args:
                case "acquire", [name, owner, ttl_ms]:
                    return ok(self._acquire(_text(name), _text(owner), _ttl(ttl_ms)))
                case "release", [name, owner]:
                    hold = self.holds.get(_text(name))
                    if hold is None or hold.owner != _text(owner):
                        return ok(False)
                    del self.holds[name]
                    return ok(True)
            raise Refused(f"unknown command {op!r} with {len(args)} arguments")
        except Refused as error:
            return refused(error)

    def query(self, query: bytes) -> bytes:
        try:
            op, args = unpack_request(query)
            if op != "holder" or len(args) != 1:
                raise Refused("a query is ['holder', name]")
            hold = self.holds.get(_text(args[0]))
            if hold is None:
                return ok([None, 0, 0])
            return ok([hold.owner, hold.fence, max(0, hold.expiry_ms - self.log_time_ms)])
        except Refused as error:
            return refused(error)

    def on_log_time(self, log_time_ms: int) -> None:
        self.log_time_ms = max(self.log_time_ms, log_time_ms)
        ends = self._ends
        while ends and ends[0][0] <= self.log_time_ms:
            expiry_ms, name = heapq.heappop(ends)
            hold = self.holds.get(name)
            if hold is not None and hold.expiry_ms == expiry_ms:
                del self.holds[name]

    def on_leader_change(self, log_time_ms: int) -> None:
        for name, hold in self.holds.items():
            if log_time_ms + hold.ttl_ms > hold.expiry_ms:
                hold.expiry_ms = log_time_ms + hold.ttl_ms
                heapq.heappush(self._ends, (hold.expiry_ms, name))

    def next_deadline_ms(self) -> int | None:
        ends = self._ends
        while ends:
            expiry_ms, name = ends[0]
            hold = self.holds.get(name)
            if hold is not None and hold.expiry_ms == expiry_ms:
                return expiry_ms
            heapq.heappop(ends)
        return None

    def snapshot(self) -> bytes:
        holds = [
            [name, hold.owner, hold.ttl_ms, hold.expiry_ms, hold.fence]
            for name, hold in sorted(self.holds.items())
        ]
        return pack([self.log_time_ms, self.fence, holds])

    def check_snapshot(self, data: bytes) -> None:
        self._decode(data)

    def restore(self, data: bytes) -> None:
        self.log_time_ms, self.fence, self.holds = self._decode(data)
        self._ends = [(hold.expiry_ms, name) for name, hold in self.holds.items()]
        heapq.heapify(self._ends)

    def _acquire(self, name: str, owner: str, ttl_ms: int) -> list[Any]:
        hold = self.holds.get(name)
        expiry_ms = self.log_time_ms + ttl_ms
        if hold is not None and hold.owner != owner:
            return [False, hold.owner, hold.fence]
        if hold is None:
            if len(self.holds) >= self.locks_max:
                raise Refused(f"too many held locks ({self.locks_max}): acquire refused")
            self.fence += 1
            hold = self.holds[name] = _Hold(owner, ttl_ms, expiry_ms, self.fence)
        else:
            hold.ttl_ms, hold.expiry_ms = ttl_ms, max(hold.expiry_ms, expiry_ms)
        heapq.heappush(self._ends, (hold.expiry_ms, name))
        if len(self._ends) > 2 * len(self.holds) + 64:
            self._ends = [(each.expiry_ms, key) for key, each in self.holds.items()]
            heapq.heapify(self._ends)
        return [True, owner, hold.fence]

    def _decode(self, data: bytes) -> tuple[int, int, dict[str, _Hold]]:
        fields = msgpack.unpackb(data, raw=False, strict_map_key=True)
        if type(fields) is not list or len(fields) != 3:
            raise ValueError("a ReplLockManager snapshot is [log_time_ms, fence, holds]")
        log_time_ms, fence, rows = fields
        if type(log_time_ms) is not int or type(fence) is not int or type(rows) is not list:
            raise ValueError("a ReplLockManager snapshot has bad fields")
        if len(rows) > self.locks_max:
            raise ValueError(f"a ReplLockManager snapshot holds more than {self.locks_max}")
        holds = {}
        for row in rows:
            if type(row) is not list or len(row) != 5:
                raise ValueError("a ReplLockManager hold is [name, owner, ttl, expiry, fence]")
            name, owner, ttl_ms, expiry_ms, hold_fence = row
            if not all(type(each) is int for each in (ttl_ms, expiry_ms, hold_fence)):
                raise ValueError("a ReplLockManager hold has bad numbers")
            if not 0 < hold_fence <= fence:
                raise ValueError("a ReplLockManager hold's fence is past the last given")
            holds[_text(name)] = _Hold(_text(owner), ttl_ms, expiry_ms, hold_fence)
        return log_time_ms, fence, holds


def _text(value: object) -> str:
    if type(value) is not str or not value or len(value.encode(errors="replace")) > NAME_MAX_BYTES:
        raise Refused(f"names and owners are non-empty strings of at most {NAME_MAX_BYTES} bytes")
    return value


def _ttl(ttl_ms: object) -> int:
    if type(ttl_ms) is not int or not TTL_MIN_MS <= ttl_ms <= TTL_MAX_MS:
        raise Refused(f"ttl_ms is an integer from {TTL_MIN_MS} to {TTL_MAX_MS}")
    return ttl_ms


@dataclass(frozen=True, slots=True)
class LockHandle:
    """A held lock: its name and fence (pass the fence to what the lock guards)."""

    name: str
    fence: int


class LockManagerHandle:
    """A ``ReplLockManager`` seen by one ``owner`` through a node or a client."""

    def __init__(self, replicator: Replicator, owner: str, *, ttl: float = 10.0) -> None:
        self._via = replicator
        self.owner = owner
        self.ttl_ms = int(ttl * 1000)

    async def try_acquire(self, name: str) -> LockHandle | None:
        """Hold (or renew) ``name`` now, or None if another owner holds it."""
        request = pack(["acquire", name, self.owner, self.ttl_ms])
        held, _, fence = result_of(await self._via.submit(request))
        return LockHandle(name, fence) if held else None

    async def release(self, name: str) -> bool:
        return bool(result_of(await self._via.submit(pack(["release", name, self.owner]))))

    async def holder(self, name: str) -> tuple[str | None, int, int]:
        """``(owner, fence, remaining ms)`` of ``name`` now (``(None, 0, 0)`` if free)."""
        owner, fence, remaining_ms = result_of(await self._via.query(pack(["holder", name])))
        return owner, fence, remaining_ms

    @contextlib.asynccontextmanager
    async def lock(self, name: str, *, timeout: float = 10.0) -> AsyncIterator[LockHandle]:
        """Wait (polling) up to ``timeout`` s for ``name``, renew it every third
        of the TTL while the block runs, release it after."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (held := await self.try_acquire(name)) is None:
            if loop.time() >= deadline:
                raise Timeout(f"lock {name!r} not acquired in {timeout} s")
            await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))
        renewing = asyncio.create_task(self._renew(name))
        try:
            yield held
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await self.release(name)

    async def _renew(self, name: str) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            with contextlib.suppress(PaxonError):  # the next try may get through
                await self.try_acquire(name)
