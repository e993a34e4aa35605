"""The simulator's state machine: a few named registers with read, write and CAS.

Writes and compare-and-set go through the log as commands; reads use the
leader's read index and never touch the log. Commands are applied at most once
per ``(client_id, seq)`` through ``paxon.kv.SessionTable``.
"""

from __future__ import annotations

from dataclasses import dataclass

from paxon.kv.sessions import SessionTable, SessionVerdict
from paxon.protocol.types import Command

_SEP = "\x1f"
_ABSENT = "\x00"


@dataclass(frozen=True, slots=True)
class RegisterOp:
    kind: str  # "write" or "cas"
    key: str
    value: str
    expect: str | None = None  # cas only; None: the key must not exist

    def encode(self) -> bytes:
        expect = _ABSENT if self.expect is None else self.expect
        return _SEP.join((self.kind, self.key, self.value, expect)).encode()

    @staticmethod
    def decode(payload: bytes) -> RegisterOp:
        kind, key, value, expect = payload.decode().split(_SEP)
        return RegisterOp(kind, key, value, None if expect == _ABSENT else expect)


Result = bool | None
"""A write answers None; a CAS answers whether it swapped."""


class RegisterMachine:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.sessions: SessionTable[Result] = SessionTable()
        self.applied_commands = 0  # commands that took effect (not duplicates)

    def apply(self, command: Command) -> tuple[SessionVerdict, Result]:
        verdict = self.sessions.verdict(command.client_id, command.seq)
        if verdict is SessionVerdict.DUPLICATE:
            return verdict, self.sessions.reply(command.client_id, command.seq)
        if verdict is SessionVerdict.STALE:
            return verdict, None
        op = RegisterOp.decode(command.payload)
        result: Result = None
        if op.kind == "write":
            self.values[op.key] = op.value
        elif op.kind == "cas":
            result = self.values.get(op.key) == op.expect
            if result:
                self.values[op.key] = op.value
        else:
            raise ValueError(f"unknown register op {op.kind!r}")
        self.sessions.record(command.client_id, command.seq, result)
        self.applied_commands += 1
        return verdict, result

    def read(self, key: str) -> str | None:
        return self.values.get(key)
