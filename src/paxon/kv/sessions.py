"""Client sessions: apply each ``(client_id, seq)`` at most once.

A client numbers its commands 1, 2, 3, ... and retries a command with the same
number after a timeout or a leader change, so the log may hold one command more
than once. The state machine asks the table before applying:

| seq vs. last applied for this client | verdict   | what the state machine does           |
|--------------------------------------|-----------|---------------------------------------|
| greater                              | NEW       | apply, then ``record`` the reply      |
| equal                                | DUPLICATE | skip; answer with the recorded reply  |
| smaller                              | STALE     | skip; the client has moved on          |

The table is part of the replicated state: every replica sees the same commands
in the same order, so every replica keeps the same table. It holds at most
``max_sessions`` clients and forgets the one that applied least recently, which
is the same client on every replica.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

Reply = TypeVar("Reply")


class SessionVerdict(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(slots=True)
class _Session(Generic[Reply]):
    seq: int
    reply: Reply


class SessionTable(Generic[Reply]):
    def __init__(self, max_sessions: int = 100_000) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[int, _Session[Reply]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def verdict(self, client_id: int, seq: int) -> SessionVerdict:
        session = self._sessions.get(client_id)
        if session is None or seq > session.seq:
            return SessionVerdict.NEW
        return SessionVerdict.DUPLICATE if seq == session.seq else SessionVerdict.STALE

    def reply(self, client_id: int, seq: int) -> Reply | None:
        """The recorded reply of ``(client_id, seq)``, if it is the last one applied."""
        session = self._sessions.get(client_id)
        return session.reply if session is not None and session.seq == seq else None

    def export(self) -> list[tuple[int, int, Reply]]:
        """Every session as ``(client_id, seq, reply)``, least recently applied first."""
        return [(client_id, s.seq, s.reply) for client_id, s in self._sessions.items()]

    def load(self, sessions: list[tuple[int, int, Reply]]) -> None:
        """Replace the table with an ``export`` (e.g. from a snapshot)."""
        self._sessions.clear()
        for client_id, seq, reply in sessions:
            self._sessions[client_id] = _Session(seq, reply)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)

    def record(self, client_id: int, seq: int, reply: Reply) -> None:
        if self.verdict(client_id, seq) is not SessionVerdict.NEW:
            raise ValueError(f"command {client_id}#{seq} was already applied")
        self._sessions[client_id] = _Session(seq, reply)
        self._sessions.move_to_end(client_id)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
