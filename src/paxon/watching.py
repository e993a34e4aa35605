"""The client side of watches: ``async for event in kv.watch(key)``.

A ``Watch`` reads ``Events`` pages (``paxon.kv.store``) from any member's
applied state by a (revision, key) cursor it keeps, and asks each member to
hold the query until a change comes (``paxon.node.watches``), so:

- **In order, exactly once.** Events come in (revision, key) order; the
  cursor moves past each page, so a retry, a reconnect or a move to another
  member (the client's usual rotation) neither skips nor repeats one. A
  member behind the cursor holds the query until it has caught up.
- **Resumable.** ``from_revision`` starts anywhere above the compacted
  revision (``RevisionCompacted`` names the oldest kept otherwise).
  ``watch.revision``: every event at or below it has been handed out, so a
  new watch from ``watch.revision + 1`` goes on where this one stopped.
- **Progress.** While nothing changes, a held query ends after ``wait``
  seconds with an empty page that moves ``watch.revision`` up to the store's
  revision (a progress notification: ``on_progress`` is called with it).
- **Bounded.** The client holds at most one page (``EVENTS_PAGE_MAX``, 1,000
  events); a member holds nothing for it but the request.

Without ``from_revision`` a watch starts after the current revision, read
linearizably (a page asked past every revision) when the watch first asks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Final

from paxon.errors import BadRequest
from paxon.kv.model import (
    EVENTS_PAGE_MAX,
    EVENTS_WAIT_MAX_MS,
    INT_MAX,
    Event,
    Events,
    EventsResult,
)

if TYPE_CHECKING:
    from paxon.client import Client

WAIT_S: Final = 5.0
"""How long a member holds a watch's query that found nothing (so a progress
notification comes at least this often), unless the watch asks otherwise."""


class Watch:
    def __init__(
        self,
        client: Client,
        key: str,
        *,
        prefix: bool = False,
        from_revision: int | None = None,
        prev_kv: bool = False,
        wait: float = WAIT_S,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        wait_ms = round(wait * 1000)
        if not 1 <= wait_ms <= EVENTS_WAIT_MAX_MS:
            raise BadRequest(f"wait: from 0.001 to {EVENTS_WAIT_MAX_MS / 1000:g} s, got {wait}")
        if from_revision is not None and from_revision < 1:
            raise BadRequest(f"from_revision: 1 or more, got {from_revision}")
        self._client = client
        self.key = key
        self.prefix = prefix
        self.prev_kv = prev_kv
        self._wait_ms = wait_ms
        self._cursor: tuple[int, str] | None = (
            None if from_revision is None else (from_revision, "")
        )
        self.revision = 0 if from_revision is None else from_revision - 1
        """Every event at or below this revision has been handed out."""
        self._on_progress = on_progress
        self._pending: deque[Event] = deque()
        self._complete_below = 0  # the page fetched last is whole below this revision

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while not self._pending:
            await self._next_page()
        event = self._pending.popleft()
        if not self._pending:
            whole = self._complete_below - 1  # the page is handed out
        elif self._pending[0].revision > event.revision:
            whole = event.revision  # the last event of its revision
        else:
            whole = event.revision - 1  # more of this revision to come
        self.revision = max(self.revision, whole)
        return event

    async def _next_page(self) -> None:
        client = self._client
        if self._cursor is None:
            # The revision now, from a page asked past it (no keys are read).
            probe = Events(self.key, self.prefix, INT_MAX)
            now = await client._read(probe, False, EventsResult)
            self._cursor = (now.revision + 1, "")
            self.revision = now.revision
        start, after_key = self._cursor
        query = Events(
            self.key, self.prefix, start, after_key, EVENTS_PAGE_MAX, self.prev_kv, self._wait_ms
        )
        held_s = self._wait_ms / 1000
        timeout_s = held_s + client.options.timeout_s
        page = await client._read(query, True, EventsResult, timeout=timeout_s, held_s=held_s)
        self._pending.extend(page.events)
        self._cursor = (page.next_revision, page.next_key)
        # Below next_revision every event is in this page (a page that stops
        # inside a revision names that revision and the key to go on after).
        self._complete_below = page.next_revision
        if not page.events:
            self.revision = max(self.revision, page.next_revision - 1)
            if self._on_progress is not None:
                self._on_progress(self.revision)
