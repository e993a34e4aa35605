"""The client side of the store's locks: ``async with kv.lock(name, ttl=...) as fence``.

The store keeps the queue, the fences and the lock-delay (``paxon.kv.locks``,
``docs/coordination.md``); a ``Lock`` is one waiter:

1. It holds a lease of ``ttl`` seconds, kept alive every third of the TTL
   while it waits and while it holds the lock (``Client.lease``,
   ``paxon.client_lease``).
2. ``LockAcquire(name, lease, delay)`` puts its waiter key; the answer has the
   key, the fence and whether it holds the lock already.
3. Otherwise it waits for the waiter just ahead of it to leave, with a watch
   of that one key held by a member (read at a revision, watched from the
   next, so the leaving is never missed; etcd's clients wait the same way, so
   one release wakes one waiter, not all), then asks ``LockState`` again;
   during a lock-delay it sleeps the delay out. Past ``timeout`` it revokes
   its lease, so it leaves the queue, and raises ``LockNotAcquired`` (exit 1
   for ``paxon lock``).
4. The block runs holding the lock. The ``Fence`` it gets is an ``int`` (the
   fencing token: the waiter key's create revision, larger for every later
   holder) that knows its key, so ``fence.guard()`` is the txn compare that
   refuses a stale holder's write.
5. Leaving revokes the lease: the key goes and the next waiter holds the lock
   at once (no lock-delay: the holder said it was done).

If the lease is lost while the block runs (the holder was paused or cut off
past its TTL), ``lock.lost`` turns true and ``await lock.wait_lost()``
returns: the lock may already be another's. Code that holds a lock for long
should check it, or guard its writes with the fence (safe either way).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Final

from paxon.errors import LeaseNotFound, LockNotAcquired
from paxon.kv.model import (
    EVENTS_WAIT_MAX_MS,
    LOCK_DELAY_MAX_MS,
    Compare,
    Events,
    EventsResult,
    Get,
    GetResult,
    KeyValue,
    LockAcquire,
    LockAcquireResult,
    LockState,
    LockStateResult,
    lock_key,
)

if TYPE_CHECKING:
    from paxon.client import Client
    from paxon.client_lease import KeptLease

WAIT_S: Final = 5.0
"""The longest one wait for the waiter ahead lasts before the state is read again."""


class Fence(int):
    """A fencing token: the holder key's create revision (larger for every
    later holder of any lock), with the key and the lock it belongs to."""

    key: str
    name: str

    def __new__(cls, fence: int, *, key: str, name: str) -> Fence:
        made = super().__new__(cls, fence)
        made.key = key
        made.name = name
        return made

    def guard(self) -> Compare:
        """The txn compare that holds only while this holder's key lives:
        ``Txn((fence.guard(),), (PutOp(...),))`` writes nothing once the lock
        has passed on (the holder's lease expired or was revoked)."""
        return Compare(self.key, "create_revision", "==", int(self))


class Lock:
    """One waiter of lock ``name``: ``async with kv.lock(name) as fence``."""

    def __init__(
        self,
        client: Client,
        name: str,
        *,
        ttl: float = 10.0,
        timeout: float | None = None,
        delay: float = 0.0,
    ) -> None:
        delay_ms = round(delay * 1000)
        if not 0 <= delay_ms <= LOCK_DELAY_MAX_MS:
            raise ValueError(f"delay: from 0 to {LOCK_DELAY_MAX_MS / 1000:g} s, got {delay}")
        self._client = client
        self.name = name
        self.ttl = ttl
        self.timeout = timeout
        self.delay_ms = delay_ms
        self._lease: KeptLease | None = None
        self.fence: Fence | None = None

    @property
    def lost(self) -> bool:
        """Whether the lease behind the lock is lost (the lock may be another's)."""
        return self._lease is not None and self._lease.lost

    async def wait_lost(self) -> None:
        """Return once the lease behind the held lock is lost."""
        if self._lease is None:
            raise RuntimeError("the lock is not held")
        await self._lease.wait_lost()

    async def __aenter__(self) -> Fence:
        return await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.release(exc_type, exc, traceback)

    async def acquire(self) -> Fence:
        """Wait for the lock (up to ``timeout``); its fence."""
        client = self._client
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout is None else loop.time() + self.timeout
        lease = client.lease(self.ttl)
        await lease.__aenter__()
        try:
            joined = await client._write(
                LockAcquire(self.name, lease.id, self.delay_ms), LockAcquireResult
            )
            held = joined.held
            while not held:
                if lease.lost:
                    raise LeaseNotFound(
                        f"lock {self.name!r}: the lease was lost while waiting "
                        f"({lease.lost_reason})"
                    )
                left_s = WAIT_S if deadline is None else deadline - loop.time()
                if left_s <= 0:
                    raise LockNotAcquired(
                        f"lock {self.name!r} not acquired in {self.timeout:g} s "
                        "(this waiter left the queue)"
                    )
                held = await self._turn_or_wait(joined, min(WAIT_S, left_s))
        except BaseException as error:
            await lease.__aexit__(type(error), error, error.__traceback__)
            raise
        self._lease = lease
        self.fence = Fence(joined.fence, key=joined.key, name=self.name)
        return self.fence

    async def _turn_or_wait(self, joined: LockAcquireResult, wait_s: float) -> bool:
        """Whether this waiter holds the lock now; if not, return once the waiter
        just ahead of it leaves (or the lock-delay runs out, or ``wait_s``
        passes): the waiters are read at a revision and the one ahead is
        watched from the next, held by a member (``paxon.node.watches``), so
        its leaving is never missed."""
        client = self._client
        state = await client._read(LockState(self.name), False, LockStateResult)
        if state.holder_key == joined.key:
            return True
        if state.delay_remaining_ms:
            await asyncio.sleep(min(wait_s, state.delay_remaining_ms / 1000))
            return False
        await wait_for_the_one_ahead(client, lock_key(self.name, 0)[:-16], joined.fence, wait_s)
        return False

    async def release(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Leave the lock: the lease is revoked, the next waiter holds it at once."""
        lease, self._lease = self._lease, None
        if lease is not None:
            await lease.__aexit__(exc_type, exc, traceback)


def _create_revision(kv: KeyValue) -> int:
    return kv.create_revision


async def wait_for_the_one_ahead(client: Client, queue: str, revision: int, wait_s: float) -> bool:
    """In the queue of keys under ``queue`` ordered by create revision, wait
    until the key just ahead of the one created at ``revision`` changes or
    goes, or ``wait_s`` passes; False at once if none is ahead. The queue is
    read linearizably at a revision and that key watched from the next one
    (a query a member holds), so its leaving is never missed."""
    read = await client._read(Get(queue, True), False, GetResult)
    ahead = [kv for kv in read.items if kv.create_revision < revision]
    if not ahead:
        return False
    one_ahead = max(ahead, key=_create_revision).key
    wait_ms = max(1, min(EVENTS_WAIT_MAX_MS, round(wait_s * 1000)))
    leaving = Events(one_ahead, False, read.revision + 1, "", 1, False, wait_ms)
    held_s = wait_ms / 1000
    timeout_s = held_s + client.options.timeout_s
    await client._read(leaving, True, EventsResult, timeout=timeout_s, held_s=held_s)
    return True
