"""Client sessions: apply each ``(client_id, seq)`` at most once, whatever the load.

A client numbers its commands 1, 2, 3, ... on one session and retries a command
with the same number after a timeout or a leader change, so the log may hold
one command more than once. The state machine asks the table before applying:

| known? | seq                  | verdict   | what the state machine does               |
|--------|----------------------|-----------|-------------------------------------------|
| yes    | > last applied       | NEW       | apply, then ``record`` the reply          |
| yes    | == last applied      | DUPLICATE | skip; answer with the recorded reply      |
| yes    | < last applied       | STALE     | skip; the client has moved on             |
| no     | == 1, table not full | NEW       | apply, then ``record`` (opens a session)  |
| no     | == 1, table full     | FULL      | refuse: ``SessionsFull``, nothing applied |
| no     | != 1                 | EXPIRED   | refuse: ``SessionExpired``, nothing applied |

Why EXPIRED: a session opens with seq 1, so an unknown session at seq 2 or
later is one the table dropped (or never saw). Its command may already have
been applied before the drop; applying it "as new" could apply it twice, so
it is refused. A retry of seq 1 after its session expired cannot be told
from a new session; the client makes that impossible in practice by never
retrying a command longer than ``paxon.client.SESSION_RETRY_MAX_S``, far below
the expiry time (see ``paxon.node.machine.SESSION_TTL_MS``).

Time: the table never reads a clock. Every call that can change it takes
``now_ms``, the *log time* (``paxon.node.logclock``): the same number on
every replica at the same command. A session's ``active_ms`` is the log time
of its last NEW or DUPLICATE command. ``expire(now_ms)`` drops every session
idle longer than ``ttl_ms``; sessions are kept in order of ``active_ms`` (log
time never goes back), so expiry pops from the front.

Bounds: at most ``max_sessions`` sessions. A full table refuses a *new*
session (FULL) instead of evicting a live one: evicting would let a retry of
the evicted session's last command be applied again.

The table is part of the replicated state: every replica sees the same
commands in the same order at the same log times, so every replica keeps the
same table and gives the same verdicts.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

Reply = TypeVar("Reply")

SEQ_FIRST = 1
"""The seq that opens a session; an unknown session at any other seq is EXPIRED."""


class SessionVerdict(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    STALE = "stale"
    FULL = "full"
    EXPIRED = "expired"


@dataclass(slots=True)
class _Session(Generic[Reply]):
    seq: int
    reply: Reply
    active_ms: int


class SessionTable(Generic[Reply]):
    """The sessions of one replicated state; ``ttl_ms=None`` never expires them."""

    def __init__(self, max_sessions: int = 100_000, *, ttl_ms: int | None = None) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        if ttl_ms is not None and ttl_ms < 1:
            raise ValueError("ttl_ms must be >= 1")
        self.max_sessions = max_sessions
        self.ttl_ms = ttl_ms
        # Least recently active first; active_ms never decreases along it.
        self._sessions: OrderedDict[int, _Session[Reply]] = OrderedDict()
        self._newest_ms = 0  # the latest active_ms recorded: time may not go back past it

    def __len__(self) -> int:
        return len(self._sessions)

    def verdict(self, client_id: int, seq: int) -> SessionVerdict:
        session = self._sessions.get(client_id)
        if session is None:
            if seq != SEQ_FIRST:
                return SessionVerdict.EXPIRED
            if len(self._sessions) >= self.max_sessions:
                return SessionVerdict.FULL
            return SessionVerdict.NEW
        if seq > session.seq:
            return SessionVerdict.NEW
        return SessionVerdict.DUPLICATE if seq == session.seq else SessionVerdict.STALE

    def reply(self, client_id: int, seq: int) -> Reply | None:
        """The recorded reply of ``(client_id, seq)``, if it is the last one applied."""
        session = self._sessions.get(client_id)
        return session.reply if session is not None and session.seq == seq else None

    def record(self, client_id: int, seq: int, reply: Reply, now_ms: int = 0) -> None:
        """Remember that ``(client_id, seq)`` was applied at log time ``now_ms``.

        Once per command on every replica: one lookup, and a known session is
        updated in place (``export`` copies the fields, so no snapshot shares it)."""
        sessions = self._sessions
        session = sessions.get(client_id)
        if session is None:
            if seq != SEQ_FIRST or len(sessions) >= self.max_sessions:
                raise ValueError(f"command {client_id}#{seq} is not new to the session table")
            self._check_time(now_ms)
            sessions[client_id] = _Session(seq, reply, now_ms)  # added last: the most recent
            return
        if seq <= session.seq:
            raise ValueError(f"command {client_id}#{seq} is not new to the session table")
        self._check_time(now_ms)
        session.seq = seq
        session.reply = reply
        session.active_ms = now_ms
        sessions.move_to_end(client_id)

    def touch(self, client_id: int, now_ms: int) -> None:
        """A retry of the last command was seen at ``now_ms``: the session is in use."""
        session = self._sessions.get(client_id)
        if session is None:
            raise ValueError(f"no session {client_id} to touch")
        self._check_time(now_ms)
        session.active_ms = now_ms
        self._sessions.move_to_end(client_id)

    def expire(self, now_ms: int) -> int:
        """Drop every session idle longer than ``ttl_ms`` at ``now_ms``; how many."""
        if self.ttl_ms is None:
            return 0
        cutoff = now_ms - self.ttl_ms
        sessions = self._sessions
        dropped = 0
        while sessions:
            oldest = next(iter(sessions.values()))
            if oldest.active_ms >= cutoff:
                break
            sessions.popitem(last=False)
            dropped += 1
        return dropped

    def rebase(self, active_ms: int) -> None:
        """Count every session as active at ``active_ms`` (when the log first gets a
        time: sessions recorded at log time 0 must not all expire at once)."""
        for session in self._sessions.values():
            session.active_ms = active_ms
        self._newest_ms = active_ms

    def export(self) -> list[tuple[int, int, int, Reply]]:
        """Every session as ``(client_id, seq, active_ms, reply)``, least recently active first."""
        return [(c, s.seq, s.active_ms, s.reply) for c, s in self._sessions.items()]

    def load(self, sessions: list[tuple[int, int, int, Reply]]) -> None:
        """Replace the table with an ``export`` (e.g. from a snapshot).

        Raises ``ValueError`` for a table this one could not have made: over
        ``max_sessions``, a client twice, or out of ``active_ms`` order.
        """
        if len(sessions) > self.max_sessions:
            raise ValueError(f"{len(sessions)} sessions, over the limit of {self.max_sessions}")
        loaded: OrderedDict[int, _Session[Reply]] = OrderedDict()
        previous_ms = 0
        for client_id, seq, active_ms, reply in sessions:
            if client_id in loaded:
                raise ValueError(f"session {client_id} is listed twice")
            if active_ms < previous_ms:
                raise ValueError(f"session {client_id} is out of activity order")
            previous_ms = active_ms
            loaded[client_id] = _Session(seq, reply, active_ms)
        self._sessions = loaded
        self._newest_ms = previous_ms

    def _check_time(self, now_ms: int) -> None:
        if now_ms < self._newest_ms:
            raise ValueError(f"log time {now_ms} is before {self._newest_ms}: time went back")
        self._newest_ms = now_ms
