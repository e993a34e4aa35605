"""A lease kept alive while a block runs: ``Client.lease`` and ``SyncClient.lease``.

::

    async with client.lease(10) as lease:          # grant: 10 s of log time
        await client.put("service/a", "10.0.0.7:80", lease=lease.id)
        ...                                        # work; check lease.lost
    # revoked here: service/a is gone

Contract:

- **Entering** grants a lease of ``ttl`` seconds (``Client.grant_lease``; its
  errors propagate and nothing is kept). ``lease.id`` is its id.
- **While the block runs**, a background task on the client's event loop sends
  a keep-alive every ``keep_alive_interval`` seconds (``ttl / 3`` by default),
  as etcd's clients stream them.
- **The lease is lost** (``lease.lost`` turns true, ``lease.lost_reason`` says
  why, ``await lease.wait_lost()`` returns, keep-alives stop) when:

  | what the keep-alive got                    | then                         |
  |--------------------------------------------|------------------------------|
  | success                                    | the local deadline moves to  |
  |                                            | its send time + the TTL      |
  | ``LeaseNotFound``                          | lost at once: it expired or  |
  |                                            | was revoked; its keys are    |
  |                                            | gone                         |
  | ``Unavailable``, ``Timeout``, ``Busy``,    | retried (each attempt cut to |
  | ``SessionExpired``, ``NotLeader``          | the time left) until the     |
  |                                            | local deadline; then lost:   |
  |                                            | the cluster may have expired |
  |                                            | it                           |
  | any other refusal (``Unauthenticated``...) | lost at once                 |

  The local deadline is counted on the loop's monotonic clock from the *send*
  time of the last keep-alive that succeeded, so it is never later than the
  cluster's (whose log time starts the TTL when the keep-alive is applied,
  after it was sent). The block is not interrupted: code that must stop when
  the lease goes checks ``lease.lost`` or waits on ``lease.wait_lost()``.
- **Leaving** stops the keep-alives and revokes the lease (its keys are
  deleted at one revision) unless it was lost; a ``LeaseNotFound`` from the
  revoke is ignored. Another error of the revoke is raised, unless the block
  itself raised: then the block's exception goes on, and the lease expires by
  itself within its TTL. A bug in the keep-alive task (an exception that is
  not a ``PaxonError``) is raised on leaving.

``SyncKeptLease`` is the same for ``SyncClient``: the keep-alives run on the
client's own loop thread while the calling thread runs the ``with`` block.

Limits: one keep-alive in flight at a time; after a failed attempt the next
waits ``RETRY_PAUSE_S`` (0.1 s) or the interval, whichever is shorter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from paxon.errors import (
    BadRequest,
    Busy,
    LeaseNotFound,
    NotLeader,
    PaxonError,
    SessionExpired,
    Timeout,
    Unavailable,
)
from paxon.kv.jsonforms import lease_ttl_ms
from paxon.kv.model import LeaseKeepAliveResult

if TYPE_CHECKING:
    from paxon.client import Client

_T = TypeVar("_T")

RETRY_PAUSE_S: Final = 0.1
"""After a keep-alive failed for want of a cluster, wait this long (at most the
interval) before the next attempt."""

UNREACHABLE_ERRORS: Final = (Unavailable, Timeout, Busy, SessionExpired, NotLeader)
"""Keep-alive failures that say nothing about the lease: retried until the TTL runs out."""


async def keep_lease_alive(
    client: Client,
    lease_id: int,
    *,
    ttl_s: float,
    interval_s: float,
    on_keep_alive: Callable[[LeaseKeepAliveResult], None] | None = None,
) -> PaxonError:
    """Keep ``lease_id`` alive every ``interval_s`` until it is lost; the error that
    lost it (see the module's table). Runs until then, or until cancelled.

    ``ttl_s`` is what the lease had left when the caller last heard of it (at
    the call); ``on_keep_alive`` sees every successful keep-alive.
    """
    loop = asyncio.get_running_loop()
    deadline_s = loop.time() + ttl_s
    pause_s = interval_s
    while True:
        await asyncio.sleep(pause_s)
        sent_s = loop.time()
        left_s = deadline_s - sent_s
        if left_s <= 0:
            return Timeout(
                f"lease {lease_id}: no keep-alive succeeded within its TTL; "
                "the cluster may have expired it"
            )
        try:
            result = await client.keep_alive(lease_id, timeout=left_s)
        except LeaseNotFound as error:
            return error
        except UNREACHABLE_ERRORS:
            pause_s = min(RETRY_PAUSE_S, interval_s)
            continue
        except PaxonError as error:
            return error
        deadline_s = sent_s + result.ttl_ms / 1000
        pause_s = interval_s
        if on_keep_alive is not None:
            on_keep_alive(result)


class KeptLease:
    """A lease granted on entering an ``async with`` block, kept alive while it
    runs, revoked on leaving (the module docstring has the whole contract)."""

    def __init__(
        self, client: Client, ttl: float, *, keep_alive_interval: float | None = None
    ) -> None:
        self.ttl_ms = lease_ttl_ms(ttl)
        self.ttl = self.ttl_ms / 1000
        """The TTL asked for, in seconds."""
        interval_s = self.ttl / 3 if keep_alive_interval is None else keep_alive_interval
        if not 0 < interval_s < self.ttl:
            raise BadRequest(
                f"keep_alive_interval: must be above 0 and below the TTL ({self.ttl:g} s), "
                f"got {interval_s!r}"
            )
        self.keep_alive_interval = interval_s
        self._client = client
        self._id: int | None = None
        self.keep_alives = 0
        """How many keep-alives have succeeded."""
        self.lost_reason: str | None = None
        """Why the lease was lost, once it is (``lost``)."""
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def id(self) -> int:
        """The lease's id (``BadRequest`` before the block is entered)."""
        if self._id is None:
            raise BadRequest("the lease is granted on entering its `async with` block")
        return self._id

    @property
    def lost(self) -> bool:
        """Whether the lease is lost: it expired, or was revoked, or no keep-alive
        got through for a whole TTL. Its keys are (or may be) gone."""
        return self._lost.is_set()

    async def wait_lost(self) -> None:
        """Return once the lease is lost (never, while it is kept alive)."""
        await self._lost.wait()

    async def __aenter__(self) -> KeptLease:
        if self._id is not None:
            raise BadRequest("a KeptLease can be entered once")
        loop = asyncio.get_running_loop()
        sent_s = loop.time()
        granted = await self._client.grant_lease(self.ttl)
        self._id = granted.lease
        # The TTL runs from the grant's log time, after it was sent: count from the send.
        ttl_left_s = granted.ttl_ms / 1000 - (loop.time() - sent_s)
        self._task = loop.create_task(
            self._keep_alive(ttl_left_s), name=f"paxon-lease-{granted.lease}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # a bug in the task is raised here
        if self.lost or self._id is None:
            return
        try:
            await self._client.revoke_lease(self._id)
        except LeaseNotFound:
            pass
        except PaxonError:
            if exc_type is None:
                raise

    async def _keep_alive(self, ttl_s: float) -> None:
        error = await keep_lease_alive(
            self._client,
            self.id,
            ttl_s=ttl_s,
            interval_s=self.keep_alive_interval,
            on_keep_alive=self._on_keep_alive,
        )
        self._lose(f"{type(error).__name__}: {error}")

    def _on_keep_alive(self, result: LeaseKeepAliveResult) -> None:
        self.keep_alives += 1

    def _lose(self, reason: str) -> None:
        if not self._lost.is_set():
            self.lost_reason = reason
            self._lost.set()


class SyncKeptLease:
    """``KeptLease`` for a ``with`` block of ``SyncClient``; ``run_sync`` runs a
    coroutine on the client's loop thread and returns its result."""

    def __init__(
        self, kept: KeptLease, run_sync: Callable[[Coroutine[Any, Any, Any]], Any]
    ) -> None:
        self._kept = kept
        self._run_sync = run_sync

    @property
    def id(self) -> int:
        return self._kept.id

    @property
    def ttl(self) -> float:
        return self._kept.ttl

    @property
    def lost(self) -> bool:
        return self._kept.lost

    @property
    def lost_reason(self) -> str | None:
        return self._kept.lost_reason

    @property
    def keep_alives(self) -> int:
        return self._kept.keep_alives

    def wait_lost(self, timeout: float | None = None) -> bool:
        """Block until the lease is lost or ``timeout`` seconds pass; whether it is lost."""
        with contextlib.suppress(TimeoutError):
            self._run_sync(asyncio.wait_for(self._kept.wait_lost(), timeout))
        return self._kept.lost

    def __enter__(self) -> SyncKeptLease:
        self._run_sync(self._kept.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._run_sync(self._kept.__aexit__(exc_type, exc, traceback))


__all__ = ["KeptLease", "SyncKeptLease", "keep_lease_alive"]
