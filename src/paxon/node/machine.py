"""The replicated state machine as the runtime sees it: user machine + sessions.

Contract:
- ``apply(entry)`` runs every command of a chosen slot, in order, through the
  session table (``paxon.kv.sessions``): a command whose ``(client_id, seq)``
  is new is applied and its reply recorded; a duplicate is skipped and answered
  with the recorded reply; a stale one is skipped and answered with ``None``.
  Every replica applies the same slots in the same order, so every replica
  holds the same user state and the same session table.
- ``slot_applied`` is the first slot not yet applied; ``apply`` insists on
  slot order, so a gap or a repeat is a crash, not a silent divergence.
- ``snapshot()`` and ``restore()`` carry the user state *and* the session
  table, so a node restored from a snapshot still applies each command once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import msgpack  # type: ignore[import-untyped]

from paxon.kv.sessions import SessionTable, SessionVerdict
from paxon.protocol.ready import ChosenEntry
from paxon.protocol.types import Slot
from paxon.statemachine import StateMachine

_SNAPSHOT_VERSION = 1

SESSIONS_MAX = 100_000
"""Client sessions remembered for exactly-once; the least recently applied is
forgotten. Not a per-node setting: which session is forgotten decides whether a
late retry is applied, so every replica must use the same number (changing it
is a change of the replicated state's rules, like a format change)."""


class Applied(NamedTuple):
    """One command's outcome; ``reply`` is None when the command was stale.

    A named tuple, not a dataclass: one is made per command on every replica.
    """

    client_id: int
    seq: int
    reply: bytes | None
    fresh: bool


class ReplicatedMachine:
    def __init__(
        self, machine: StateMachine, *, sessions_max: int = SESSIONS_MAX, slot_applied: Slot = 0
    ):
        self.machine = machine
        self.sessions: SessionTable[bytes] = SessionTable(sessions_max)
        self.slot_applied = slot_applied

    def apply(self, entry: ChosenEntry) -> Iterator[Applied]:
        if entry.slot != self.slot_applied:
            raise AssertionError(f"applying slot {entry.slot}, expected {self.slot_applied}")
        self.slot_applied += 1
        sessions = self.sessions
        for command in entry.value.commands:
            client_id, seq = command.client_id, command.seq
            verdict = sessions.verdict(client_id, seq)
            if verdict is SessionVerdict.NEW:
                reply = self.machine.apply(command.payload)
                sessions.record(client_id, seq, reply)
                yield Applied(client_id, seq, reply, True)
            elif verdict is SessionVerdict.DUPLICATE:
                yield Applied(client_id, seq, sessions.reply(client_id, seq), False)
            else:
                yield Applied(client_id, seq, None, False)

    def snapshot(self) -> bytes:
        return self.snapshot_later()()

    def snapshot_later(self) -> Callable[[], bytes]:
        """The state as of now, encoded when the returned function is called
        (on any thread; see ``StateMachine.snapshot_later``)."""
        body = [_SNAPSHOT_VERSION, self.slot_applied, self.sessions.export()]
        user = self.machine.snapshot_later()

        def encode() -> bytes:
            head: bytes = msgpack.packb(body, use_bin_type=True)
            return head + user()

        return encode

    def restore(self, data: bytes) -> None:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=len(data))
        unpacker.feed(data)
        version, slot_applied, sessions = unpacker.unpack()
        if version != _SNAPSHOT_VERSION:
            raise ValueError(f"unknown snapshot version {version}")
        offset = unpacker.tell()
        self.machine.restore(data[offset:])
        self.sessions.load([(int(c), int(s), bytes(r)) for c, s, r in sessions])
        self.slot_applied = int(slot_applied)
