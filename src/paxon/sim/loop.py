"""An asyncio event loop on simulated time, turned one step at a time.

The simulator runs the real node runtime (``paxon.node.Node``): its tasks,
futures, ``call_soon``, ``call_later`` and ``run_in_executor`` all work as on
a normal loop, but nothing waits on a real clock, a socket or a thread.

Contract:
- ``time()`` is the node's local clock, a function of the simulator's global
  time (drift and offset are the simulator's to choose).
- The loop never runs by itself. The simulator asks ``next_due()`` (the local
  time of the earliest thing to do: now when a callback is ready, else the
  earliest timer) and calls ``run_turn()`` when that time has come: one turn
  runs every callback ready at its start and every timer due, exactly like
  one iteration of asyncio's own loop, without polling for I/O.
- A paused node (SIGSTOP) is simply not turned; its timers fire late, all at
  once, as they would after a real pause. A crashed node's loop is dropped.
- ``run_in_executor`` hands the work to the simulator (``defer``), which runs
  it later at a simulated time of its choosing: work "on a thread" takes time
  and finishes in an order the simulator picks, and a crash before it runs
  means it never happened.
- An exception that escapes a callback is reported to ``on_error``: in the
  runtime that is a bug, and the simulator counts it as a violation.

Everything is deterministic: the ready queue is FIFO and timers are ordered
by (time, creation), so one seed replays exactly.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import heapq
import inspect
import threading
from asyncio import events
from collections.abc import Callable
from typing import Any

# Local times within this of a timer's deadline count as due (float rounding
# of drifted clocks must never leave a timer due "almost now" forever).
_RESOLUTION_S = 1e-7

Defer = Callable[[Callable[[], None]], None]
"""``defer(work)``: run ``work()`` later, at a simulated time the simulator picks."""


class DeferredExecutor(concurrent.futures.ThreadPoolExecutor):
    """``run_in_executor`` work, run by the simulator instead of a thread."""

    def __init__(self, defer: Defer) -> None:
        super().__init__(max_workers=1)
        self._defer = defer

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:  # handed to the awaiting task
                future.set_exception(error)
            else:
                future.set_result(result)

        self._defer(work)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # no threads were ever started


class SimLoop(asyncio.BaseEventLoop):
    """See the module docstring."""

    # asyncio.BaseEventLoop's own state, which a turn drives directly.
    _ready: collections.deque[asyncio.Handle]
    _scheduled: list[asyncio.TimerHandle]
    _timer_cancelled_count: int

    def __init__(
        self,
        clock: Callable[[], float],
        defer: Defer,
        on_error: Callable[[SimLoop, dict[str, Any]], None],
    ) -> None:
        super().__init__()
        self._clock = clock
        self._clock_resolution = _RESOLUTION_S
        self._buried = False
        self.set_default_executor(DeferredExecutor(defer))
        self.set_exception_handler(lambda _loop, context: on_error(self, context))

    def time(self) -> float:
        return self._clock()

    def next_due(self) -> float | None:
        """Local time of the next thing to run (now if a callback is ready); None if idle."""
        if self._ready:
            return self._clock()
        scheduled = self._scheduled
        while scheduled and scheduled[0].cancelled():
            self._timer_cancelled_count -= 1
            heapq.heappop(scheduled)._scheduled = False  # type: ignore[attr-defined]
        if scheduled:
            return scheduled[0].when()
        return None

    def run_turn(self) -> None:
        """One turn: every timer due now moves to the ready queue; every ready callback runs."""
        self._thread_id = threading.get_ident()
        events._set_running_loop(self)
        try:
            end = self._clock() + self._clock_resolution
            scheduled, ready = self._scheduled, self._ready
            while scheduled and (scheduled[0].cancelled() or scheduled[0].when() < end):
                timer = heapq.heappop(scheduled)
                timer._scheduled = False  # type: ignore[attr-defined]
                if timer.cancelled():
                    self._timer_cancelled_count -= 1
                else:
                    ready.append(timer)
            for _ in range(len(ready)):
                if self._buried:
                    break  # the process crashed in the middle of the turn
                handle = ready.popleft()
                if not handle.cancelled():
                    handle._run()
        finally:
            events._set_running_loop(None)
            self._thread_id = None  # type: ignore[assignment]  # asyncio's "not running"
        if self._buried:
            self._close_buried()

    def bury(self) -> None:
        """Close the loop of a process that crashed: nothing of it runs again.

        Its tasks are left where they stand (a crash does not unwind a
        process); they are told not to complain when collected, and a task
        that never started is closed without running. Called during a turn
        (the process crashed in one of its own callbacks), the rest of the
        turn is skipped and the loop closed after it."""
        self._buried = True
        if not self.is_running():
            self._close_buried()

    def _close_buried(self) -> None:
        if self.is_closed():
            return
        for task in asyncio.all_tasks(self):
            task._log_destroy_pending = False  # type: ignore[attr-defined]
            coroutine = task.get_coro()
            if inspect.iscoroutine(coroutine) and (
                inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED
            ):
                coroutine.close()
        self._ready.clear()
        self.close()

    # Never polled, never woken from another thread: there is no I/O and no thread.
    def _process_events(self, event_list: Any) -> None:
        pass

    def _write_to_self(self) -> None:
        pass


__all__ = ["DeferredExecutor", "SimLoop"]
