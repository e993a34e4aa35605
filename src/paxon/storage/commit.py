"""Group commit: many appends, one fsync, on a thread of its own.

The runtime performs a ``Ready`` like this::

    handle = committer.submit(ready.records)   # queued after every earlier batch
    send(ready.messages)                        # may go at once
    await handle                                # durable: this batch and all before it
    send(ready.messages_after_persist)

Contract:
- ``submit`` runs on the appending thread (the event loop). It appends to the
  log (assigning lsns in call order) and wakes the sync thread; it never waits
  for the disk. It returns a ``CommitHandle`` for the batch's last lsn, or for
  the current lsn when the batch is empty, so even an empty batch waits for
  every earlier record: the ordering rule of ``paxon.protocol.ready`` holds by
  construction, because durability only ever grows as a prefix of the log.
- The sync thread takes everything appended so far, writes it and fdatasyncs
  once. Batches submitted while it syncs go into the next sync. A handle
  completes only after the fdatasync covering it has returned.
- Waiting: ``handle.wait()`` blocks; ``await handle`` suspends an asyncio task.
  The sync thread wakes an event loop with one ``call_soon_threadsafe`` per
  sync (not per handle); futures are resolved in lsn order.
- ``append_blocking`` is for threads that are not an event loop: the caller
  syncs on its own thread (leader-based group commit), serialized with the
  sync thread by the log; handles and futures complete all the same.
- A failed sync fails every waiting and every later handle with
  ``StorageFailed``; nothing is ever reported durable that was not synced.
- ``submit(records, sync=False)`` appends without asking for a sync: records
  no message waits on ride along with the next sync instead of costing one.
- ``close`` syncs whatever was submitted, completes its handles, stops the
  thread. It does not close the ``Storage``.
- Syncing on the loop's own thread, at low rates: ``may_sync_here()`` says
  whether the disk is idle and quick (the sync thread idle with nothing
  asked of it, its last sync over ``SYNC_HERE_IDLE_S`` ago and shorter than
  ``SYNC_HERE_MAX_S``); if so the caller may ``submit(records, sync=False)``,
  send what needs no durability, then ``sync_here(lsn)``: one fdatasync on
  the calling thread, without the two thread hand-offs (a futex one way, the
  loop's self-pipe back), which at 1,000 writes/s cost the leader about as
  much CPU as the fsync itself (docs/benchmarks.md, "The tail").
  Under load the sync thread keeps the group commit, and one slow sync sends
  every later one back to it until a sync is quick again; the first sync of
  all is the thread's, so a disk is timed before the loop waits on it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, Protocol

from paxon.storage.codec import StorageRecord
from paxon.storage.errors import StorageClosed, StorageError, StorageFailed
from paxon.storage.wal import DurableListener


class Log(Protocol):
    """What the committer needs of a log (``Storage`` and ``Wal`` both fit)."""

    @property
    def lsn_appended(self) -> int: ...

    @property
    def lsn_durable(self) -> int: ...

    def append(self, records: Sequence[StorageRecord]) -> int: ...

    def sync(self) -> int: ...

    def sync_through(self, lsn: int) -> int: ...

    def add_durable_listener(self, listener: DurableListener) -> None: ...


_Waiter = tuple[int, int, "asyncio.Future[None]"]

SYNC_HERE_MAX_S = 0.002
"""A sync on the caller's thread only while the last sync took at most this:
a slow disk must not hold the event loop (its heartbeats, its reads)."""
SYNC_HERE_IDLE_S = 0.0005
"""... and only when the last sync ended at least this long ago: at higher
rates batches meet in the sync thread's group commit instead."""
_log = logging.getLogger("paxon.storage")


# The simulator plays group commit as events (sim/host.py's SimCommitter:
# a write, then an fsync, a crash may fall between): a thread is not
# deterministic. This module is tested by tests/storage/test_storage_commit.py.


class CommitHandle:  # sim: unreachable: replaced by the simulator's SimCommitter
    """Completes when every record up to ``lsn`` is durable."""

    __slots__ = ("_committer", "lsn")

    def __init__(self, committer: GroupCommitter, lsn: int) -> None:
        self._committer = committer
        self.lsn = lsn

    def done(self) -> bool:
        return self._committer.lsn_durable >= self.lsn

    def wait(self, timeout: float | None = None) -> int:
        """Block until durable (``TimeoutError`` after ``timeout`` seconds); the lsn."""
        self._committer.wait_durable(self.lsn, timeout)
        return self.lsn

    def __await__(self) -> Generator[Any, None, int]:
        yield from self._committer.durable_future(self.lsn).__await__()
        return self.lsn

    def __repr__(self) -> str:
        return f"CommitHandle(lsn={self.lsn}, done={self.done()})"


class GroupCommitter:  # sim: unreachable: replaced by the simulator's SimCommitter
    """Owns the sync thread of one log. See the module contract."""

    def __init__(
        self,
        log: Log,
        *,
        name: str = "paxon-wal-sync",
        observe_sync: Callable[[float], None] | None = None,
    ) -> None:
        self._log = log
        # Told the seconds each sync of the sync thread took (for metrics).
        self._observe_sync = observe_sync
        # One lock; two conditions, so that waking one side never wakes the
        # other (a needless wake-up costs a GIL hand-off on a busy machine).
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the sync thread waits here
        self._durable = threading.Condition(self._lock)  # blocking waiters wait here
        self._lsn_wanted = log.lsn_appended
        self._lsn_durable = log.lsn_durable
        # The last sync's duration and end (perf_counter), whichever thread ran it;
        # none timed yet counts as slow, so the disk is first timed on the thread.
        self._last_sync_s = float("inf")
        self._last_sync_end = 0.0
        self._failure: StorageError | None = None
        self._closing = False
        self._waiters: dict[asyncio.AbstractEventLoop, list[_Waiter]] = {}
        self._wake_posted: set[asyncio.AbstractEventLoop] = set()
        self._order = itertools.count()
        log.add_durable_listener(self._on_durable)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public

    @property
    def lsn_durable(self) -> int:
        return self._lsn_durable

    def submit(self, records: Sequence[StorageRecord], *, sync: bool = True) -> CommitHandle:
        """Append ``records`` after every earlier batch; a handle for their durability.

        ``sync=False`` appends without asking for an fsync: the records become
        durable with the next sync someone asks for (or at ``close``). For
        records nothing waits on, so they do not cost an fsync of their own.
        """
        if self._closing:
            raise StorageClosed("the group committer is closed")
        if self._failure is not None:
            raise self._failure
        lsn = self._log.append(records)
        if not sync:
            return CommitHandle(self, lsn)
        with self._lock:
            if lsn > self._lsn_wanted:
                self._lsn_wanted = lsn
                self._work.notify()
        return CommitHandle(self, lsn)

    async def append(self, records: Sequence[StorageRecord]) -> int:
        """``submit`` and wait (asyncio) until durable; the lsn of the last record."""
        return await self.submit(records)

    def append_blocking(self, records: Sequence[StorageRecord]) -> int:
        """Append and make durable on the calling thread; the lsn of the last record.

        For callers that are not an event loop and would only block waiting
        anyway: the caller leads its own group commit (as in RocksDB) instead
        of waking the sync thread and waiting for it, which saves two thread
        hand-offs per sync. If a sync is running, this waits for it, then
        syncs everything appended meanwhile (other callers' batches too).
        """
        if self._closing:
            raise StorageClosed("the group committer is closed")
        if self._failure is not None:
            raise self._failure
        lsn = self._log.append(records)
        try:
            self._log.sync_through(lsn)
        except StorageError as exc:
            self._fail(exc)
            raise
        return lsn

    def may_sync_here(self) -> bool:
        """Whether ``sync_here`` is cheap now: see the module contract."""
        return (
            self._lsn_wanted <= self._lsn_durable  # nothing asked of the sync thread
            and self._failure is None
            and not self._closing
            and self._last_sync_s <= SYNC_HERE_MAX_S
            and time.perf_counter() - self._last_sync_end >= SYNC_HERE_IDLE_S
        )

    def sync_here(self, lsn: int) -> None:
        """Make every record up to ``lsn`` durable on the calling thread.

        Serialized with the sync thread by the log; ``StorageFailed`` (and every
        later handle fails) if the sync fails.
        """
        if self._failure is not None:
            raise self._failure
        if self._lsn_durable >= lsn:
            return  # no fsync: not timed (the slow-disk guard reads real syncs only)
        started = time.perf_counter()
        try:
            self._log.sync_through(lsn)
        except Exception as exc:  # every waiter must hear of it, whatever it is
            self._fail(exc)
            assert self._failure is not None
            raise self._failure from exc
        self._synced(started)

    def wait_durable(self, lsn: int, timeout: float | None = None) -> None:
        with self._lock:
            if not self._durable.wait_for(
                lambda: self._lsn_durable >= lsn or self._failure is not None, timeout
            ):
                raise TimeoutError(f"lsn {lsn} not durable after {timeout} s")
            if self._lsn_durable < lsn:
                assert self._failure is not None
                raise self._failure

    def durable_future(self, lsn: int) -> asyncio.Future[None]:
        """A future of the running loop, done when ``lsn`` is durable."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._lsn_durable >= lsn:
                future.set_result(None)
            elif self._failure is not None:
                future.set_exception(self._failure)
            else:
                heapq.heappush(self._waiters.setdefault(loop, []), (lsn, next(self._order), future))
        return future

    def close(self, timeout: float | None = None) -> None:
        """Sync everything submitted, complete its handles, stop the thread."""
        with self._lock:
            self._closing = True
            self._lsn_wanted = max(self._lsn_wanted, self._log.lsn_appended)
            self._work.notify()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            with self._lock:
                self._work.wait_for(
                    lambda: (
                        self._lsn_wanted > self._lsn_durable
                        or self._closing
                        or self._failure is not None
                    )
                )
                if self._failure is not None:
                    return
                if self._lsn_wanted <= self._lsn_durable:
                    return  # closing, and nothing left to sync
            started = time.perf_counter()
            try:
                self._log.sync()
            except Exception as exc:  # every waiter must hear of it, whatever it is
                self._fail(exc)
                return
            self._synced(started)

    def _synced(self, started: float) -> None:
        ended = time.perf_counter()
        self._last_sync_s = ended - started
        self._last_sync_end = ended
        if self._observe_sync is not None:
            try:
                self._observe_sync(self._last_sync_s)
            except Exception:  # a metrics hook must never stop the log
                _log.exception("the sync observer failed")

    def _on_durable(self, lsn: int) -> None:
        """Listener of the log: runs on whichever thread synced."""
        with self._lock:
            if lsn <= self._lsn_durable:
                return
            self._lsn_durable = lsn
            self._durable.notify_all()
            self._post_wakeups()

    def _fail(self, exc: Exception) -> None:
        failure = (
            exc if isinstance(exc, StorageFailed) else StorageFailed(f"log sync failed: {exc}")
        )
        with self._lock:
            self._failure = failure
            self._durable.notify_all()
            self._work.notify()
            self._post_wakeups()

    def _post_wakeups(self) -> None:
        """Ask each loop with waiters to resolve them (called with the lock held)."""
        for loop, waiters in list(self._waiters.items()):
            if not waiters or loop in self._wake_posted:
                continue
            try:
                loop.call_soon_threadsafe(self._resolve, loop)
                self._wake_posted.add(loop)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                del self._waiters[loop]

    def _resolve(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: complete its futures that are now durable (or failed), in lsn order."""
        outcomes: list[tuple[asyncio.Future[None], StorageError | None]] = []
        with self._lock:
            self._wake_posted.discard(loop)
            waiters = self._waiters.get(loop, [])
            while waiters and (self._failure is not None or waiters[0][0] <= self._lsn_durable):
                lsn, _, future = heapq.heappop(waiters)
                outcomes.append((future, None if lsn <= self._lsn_durable else self._failure))
            if not waiters:
                self._waiters.pop(loop, None)  # forget the loop: it may be closed next
        for future, failure in outcomes:
            if future.done():
                continue  # cancelled by its waiter
            if failure is None:
                future.set_result(None)
            else:
                future.set_exception(failure)
