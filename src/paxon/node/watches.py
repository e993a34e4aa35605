"""Watches on a node: ``Events`` queries held until a change they ask for is applied.

A watch is a client reading ``Events`` pages from any member's applied state
(``paxon.kv.store``: changes derived from the MVCC history, by a (revision,
key) cursor, so a client that moves to another member resumes without gaps
or repeats). This module makes that a push rather than a poll:

- **Parking.** A serializable ``Events`` query with ``wait_ms > 0`` whose
  answer has no events is not answered; it is *parked* until a change it
  matches is applied or ``wait_ms`` passes (then the empty answer goes out: a
  progress notification naming the store's revision).
- **Waking.** After each batch of applied slots, the store says which keys
  changed (``KvStore.changed_since``); a parked watch of one of those keys,
  or of a prefix of one, runs its query again and is answered if it now has
  events. If the store cannot say (too far back, or just restored), every
  parked watch runs again.
- **Nothing grows with a slow watcher.** A parked watch holds its request and
  nothing else: the events are read from history when it is answered, at most
  a page (``EVENTS_PAGE_MAX``). A watcher that falls behind reads the history
  at its own pace; one whose cursor was compacted away gets
  ``RevisionCompacted`` naming the oldest revision kept.

Limits: at most ``PARKED_MAX`` (10,000) parked watches per node; past it a
watch is answered at once, empty, and the client backs off. ``wait_ms`` is at
most ``EVENTS_WAIT_MAX_MS`` (30 s).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from paxon.errors import BadRequest, Unavailable
from paxon.kv.authcodec import unwrap
from paxon.kv.codec import TAG_EVENTS, TAG_EVENTS_RESULT, decode_query
from paxon.kv.model import Events
from paxon.kv.store import KvStore

PARKED_MAX: Final = 10_000

# The first bytes of an ``EventsResult`` with no events: a 5-array, the tag, an
# empty array. Checked on the answer's bytes, so an answer with events is not decoded.
_EMPTY_EVENTS: Final = bytes([0x95, TAG_EVENTS_RESULT, 0x90])


@dataclass(slots=True)
class Parked:
    """One held watch: its query and what it watches; ``answer`` replies to it."""

    number: int
    payload: bytes
    key: str
    prefix: bool
    deadline: float
    answer: Callable[[bytes | None, Exception | None], None]
    done: bool = field(default=False)


class WatchParking:
    """The parked watches of one node (its event loop only)."""

    def __init__(self, store: Callable[[], KvStore | None], query: Callable[[bytes], bytes]):
        self._store = store
        self._query = query  # the node's query of its machine (raises PaxonError)
        self._by_key: dict[str, dict[int, Parked]] = {}
        self._by_prefix: dict[str, dict[int, Parked]] = {}
        self._deadlines: list[tuple[float, int, Parked]] = []
        self._order = itertools.count()
        self._count = 0
        self._revision_seen = 0

    def __len__(self) -> int:
        return self._count

    def wait_of(self, payload: bytes) -> Events | None:
        """The ``Events`` query in ``payload`` if it asks to wait, else None (cheap
        for every other query: one byte is looked at before anything is decoded)."""
        try:
            _, inner = unwrap(payload)
        except BadRequest:
            return None
        if len(inner) < 2 or inner[1] != TAG_EVENTS:
            return None
        try:
            query = decode_query(inner)
        except BadRequest:
            return None
        return query if type(query) is Events and query.wait_ms > 0 else None

    def park(
        self,
        payload: bytes,
        reply: bytes,
        now: float,
        answer: Callable[[bytes | None, Exception | None], None],
    ) -> bool:
        """Hold the query instead of answering ``reply``, if it asks to wait and
        ``reply`` has no events; whether it was parked."""
        if not reply.startswith(_EMPTY_EVENTS) or self._count >= PARKED_MAX:
            return False
        query = self.wait_of(payload)
        if query is None:
            return False
        deadline = now + query.wait_ms / 1000
        self._add(Parked(next(self._order), payload, query.key, query.prefix, deadline, answer))
        return True

    def on_applied(self) -> None:
        """Slots were applied: run the watches whose keys changed again."""
        store = self._store()
        if store is None or not self._count or store.revision == self._revision_seen:
            self._revision_seen = 0 if store is None else store.revision
            return
        changed = store.changed_since(self._revision_seen + 1)
        self._revision_seen = store.revision
        if changed is None:
            woken = [p for group in self._by_key.values() for p in group.values()]
            woken += [p for group in self._by_prefix.values() for p in group.values()]
        else:
            woken = self._matching(set(changed))
        for parked in woken:
            self._run(parked)

    def on_tick(self, now: float) -> None:
        """Answer the watches whose wait is over (with their empty page: progress)."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, parked = heapq.heappop(deadlines)
            if not parked.done:
                self._remove(parked)
                self._reply(parked)

    def fail_all(self, message: str) -> None:
        for _, _, parked in self._deadlines:
            if not parked.done:
                parked.done = True
                parked.answer(None, Unavailable(message))
        self._by_key.clear()
        self._by_prefix.clear()
        self._deadlines.clear()
        self._count = 0

    def _matching(self, changed: set[str]) -> list[Parked]:
        by_key = self._by_key
        woken = [p for key in changed if key in by_key for p in by_key[key].values()]
        for prefix, group in self._by_prefix.items():
            if any(key.startswith(prefix) for key in changed):
                woken.extend(group.values())
        return woken

    def _run(self, parked: Parked) -> None:
        if parked.done:
            return
        try:
            reply = self._query(parked.payload)
        except Exception as error:  # the query's own refusal (compacted, auth)
            self._remove(parked)
            parked.done = True
            parked.answer(None, error)
            return
        if reply.startswith(_EMPTY_EVENTS):
            return  # still nothing (a change below its cursor): stays parked
        self._remove(parked)
        parked.done = True
        parked.answer(reply, None)

    def _reply(self, parked: Parked) -> None:
        parked.done = True
        try:
            reply = self._query(parked.payload)
        except Exception as error:
            parked.answer(None, error)
        else:
            parked.answer(reply, None)

    def _add(self, parked: Parked) -> None:
        index = self._by_prefix if parked.prefix else self._by_key
        index.setdefault(parked.key, {})[parked.number] = parked
        heapq.heappush(self._deadlines, (parked.deadline, parked.number, parked))
        self._count += 1
        if len(self._deadlines) > 2 * self._count + 64:
            # Answered watches leave their deadline behind: drop those now and
            # then, so a watch answered often does not grow the heap.
            self._deadlines = [entry for entry in self._deadlines if not entry[2].done]
            heapq.heapify(self._deadlines)

    def _remove(self, parked: Parked) -> None:
        index = self._by_prefix if parked.prefix else self._by_key
        group = index.get(parked.key)
        if group is not None and group.pop(parked.number, None) is not None:
            if not group:
                del index[parked.key]
            self._count -= 1
