"""Watch streams judged against what the store applied: exactly once, in order.

**The store's changes.** At each point of the log (a client command or a
clock entry, ``ObservedMachine``'s order key), the first replica to reach it
is read: every live key whose ``mod_revision`` is above the revision before
the point is a *put* at that revision; every key live before and gone after
is a *delete*, at the revision that removed it (the one revision the point
moved, or, when a clock entry ended several leases at once, the first
revision at which ``Get(key, revision=r)`` finds it gone). The list of changes
is kept in order of (revision, key), the order ``Events`` promises. It is read
with the store's plain reads (``Get``), not with ``Events``, so a bug in how
events are derived from the MVCC history does not hide itself.

**watch-exactly-once**. A watcher (``paxon.sim.watch_clients``) of prefix
``P`` started at revision ``R``: the events it receives, concatenated over
every page and every member it asked (rotating at timeouts, crashes and
restarts), equal, in order and without gaps or repeats, the changes under
``P`` from revision ``R`` on: same type, key, revision (a delete's
``mod_revision`` is its deleting revision), and a put's value. It may lag
(the run ends while it catches up); it may not skip, repeat, reorder or
invent a change. A watcher is named once.

**RevisionCompacted** is an allowed end of a stream, if the revision the
watcher asked from is at or below the cut the refusal names, and that cut is
at or below the highest cut a replica applied. The watcher then starts a new
stream just past the cut (``on_compacted``).

**history-kept**. Each cut of the store's history at a point of the log
leaves at least the leader's ``--history-revisions`` N readable: after it,
``revision - revision_compacted >= N`` (``paxon.node.history``: the leader
compacts to ``revision - N`` of its own applied state, which the entry's point
can only pass). The simulator's values are small, so the store's byte cap
never cuts sooner, and no client compacts.

Contract: the check changes nothing in the run and draws no randomness.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from paxon.kv.model import Event, Get, GetResult, KeyValue
from paxon.kv.store import KvStore
from paxon.node.history import HISTORY_REVISIONS_DEFAULT
from paxon.sim.checkers import Violation

Change = tuple[int, str, str, bytes]
"""(revision, key, "put" or "delete", the value put; b"" for a delete)."""

_CUT = re.compile(r"oldest kept is (\d+)")

_ALL: Final = Get("", True)


@dataclass(slots=True)
class _Stream:
    prefix: str
    position: int  # the index in the changes of the next one to match
    named: bool = False  # a violation named it already
    received: int = 0


class WatchCheck:
    """The store's changes, and each watcher's stream checked against them."""

    def __init__(
        self, violations: list[Violation], history_revisions: int = HISTORY_REVISIONS_DEFAULT
    ) -> None:
        """``history_revisions``: what every leader keeps (``history-kept``)."""
        self._violations = violations
        self._history_revisions = history_revisions
        self.changes: list[Change] = []
        self._live: dict[str, KeyValue] = {}  # the state after the last point
        self._revision = 0
        self._cut_max = 0
        self._streams: dict[int, _Stream] = {}
        self.counts: dict[str, int] = {"events": 0, "compacted": 0}

    # -------------------------------------------------------------- the store

    def on_point(self, store: KvStore, time: float = 0.0) -> None:
        """The first replica to reach a point of the log applied it, at ``time``;
        ``store`` is its state after it."""
        revision = store.revision
        cut = store.revision_compacted
        if cut > self._cut_max and revision - cut < self._history_revisions:
            self._violations.append(
                Violation(
                    time,
                    "history-kept",
                    f"the history was cut at revision {cut} of {revision}: fewer than the "
                    f"{self._history_revisions} revisions the leader keeps are readable",
                )
            )
        self._cut_max = max(self._cut_max, cut)
        before = self._revision
        if revision == before:
            return
        now = store.read(_ALL)
        assert isinstance(now, GetResult)
        live = {kv.key: kv for kv in now.items}
        found: list[Change] = [
            (kv.mod_revision, kv.key, "put", kv.value)
            for kv in now.items
            if kv.mod_revision > before
        ]
        for key in self._live.keys() - live.keys():
            found.append((self._deleted_at(store, key, before, revision), key, "delete", b""))
        found.sort()
        self.changes.extend(found)
        self._live = live
        self._revision = revision

    @staticmethod
    def _deleted_at(store: KvStore, key: str, before: int, after: int) -> int:
        if after == before + 1:
            return after
        for revision in range(before + 1, after):
            if revision < store.revision_compacted:
                continue
            found = store.read(Get(key, False, revision))
            if isinstance(found, GetResult) and not found.items:
                return revision
        return after

    # -------------------------------------------------------------- the watchers

    def start(self, watcher: int, prefix: str, from_revision: int) -> None:
        """Watcher ``watcher`` starts a stream of ``prefix`` from ``from_revision``."""
        position = 0
        changes = self.changes
        while position < len(changes) and changes[position][0] < from_revision:
            position += 1
        earlier = self._streams.get(watcher)
        self._streams[watcher] = _Stream(prefix, position, earlier is not None and earlier.named)

    def on_received(self, watcher: int, events: tuple[Event, ...], time: float) -> None:
        """Watcher ``watcher`` received a page of events."""
        stream = self._streams[watcher]
        changes = self.changes
        for event in events:
            self.counts["events"] += 1
            stream.received += 1
            if stream.named:
                continue
            got = _as_change(event)
            position = stream.position
            while position < len(changes) and not changes[position][1].startswith(stream.prefix):
                position += 1
            expected = changes[position] if position < len(changes) else None
            if got != expected:
                how = (
                    "the store never made it"
                    if expected is None
                    else ("a gap" if got > expected else "a repeat or out of order")
                )
                self._name(
                    stream,
                    time,
                    f"watcher {watcher} (prefix {stream.prefix!r}), event #{stream.received}: "
                    f"got {_show(got)}, expected {_show(expected)} ({how})",
                )
                continue
            stream.position = position + 1

    def on_compacted(self, watcher: int, from_revision: int, message: str, time: float) -> int:
        """The stream of ``watcher``, asking from ``from_revision``, ended with
        RevisionCompacted saying ``message``; the revision to start again from."""
        self.counts["compacted"] += 1
        stream = self._streams[watcher]
        match = _CUT.search(message)
        cut = int(match.group(1)) if match else -1
        if not 0 <= from_revision <= cut or cut > self._cut_max:
            self._name(
                stream,
                time,
                f"watcher {watcher} asked from revision {from_revision} and was told "
                f"{message!r}; the highest cut applied is {self._cut_max}",
            )
        self.start(watcher, stream.prefix, cut + 1)
        return cut + 1

    def _name(self, stream: _Stream, time: float, detail: str) -> None:
        stream.named = True
        self._violations.append(Violation(time, "watch-exactly-once", detail))


def _as_change(event: Event) -> Change:
    kv = event.kv
    return (kv.mod_revision, kv.key, event.type, kv.value if event.type == "put" else b"")


def _show(change: Change | None) -> str:
    if change is None:
        return "nothing"
    revision, key, kind, value = change
    return f"{kind} {key!r} at revision {revision}" + (f" = {value!r}" if kind == "put" else "")


__all__ = ["Change", "WatchCheck"]
