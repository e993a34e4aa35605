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
- A snapshot is untrusted bytes (a peer sent it, or a disk kept it):
  ``check_snapshot`` decodes all of it into scratch values (the head, a
  scratch session table, the user machine's ``check_snapshot``) and changes
  nothing; ``restore`` refuses what ``check_snapshot`` refuses. Both raise
  ``InvalidSnapshot`` only.
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


class InvalidSnapshot(ValueError):
    """A snapshot ``restore`` refuses; the message says which part is wrong."""


class _Head(NamedTuple):
    slot_applied: Slot
    sessions: list[tuple[int, int, bytes]]
    size: int  # bytes of the head; the user machine's image follows


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

    def check_snapshot(self, data: bytes) -> Slot:
        """The slot ``data`` covers, if ``restore(data)`` would accept it.

        Changes nothing (any thread): the sessions go into a scratch table and
        the user part to ``StateMachine.check_snapshot``. Raises ``InvalidSnapshot``.
        """
        head = _decode_head(data)
        SessionTable[bytes](self.sessions.max_sessions).load(head.sessions)
        try:
            self.machine.check_snapshot(data[head.size :])
        except Exception as error:  # the user machine's own refusal, whatever its type
            raise InvalidSnapshot(f"state machine refused its part: {error!r}") from error
        return head.slot_applied

    def restore(self, data: bytes) -> None:
        """Replace the state with ``data``; on ``InvalidSnapshot`` from the head nothing changed."""
        head = _decode_head(data)
        try:
            self.machine.restore(data[head.size :])
        except Exception as error:
            raise InvalidSnapshot(f"state machine refused its part: {error!r}") from error
        self.sessions.load(head.sessions)
        self.slot_applied = head.slot_applied


def _decode_head(data: bytes) -> _Head:
    """``[version, slot_applied, sessions]`` at the start of ``data``, every field checked."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=max(1, len(data)))
    try:
        unpacker.feed(data)
        head = unpacker.unpack()
        size = unpacker.tell()
    except (ValueError, msgpack.UnpackException) as error:
        raise InvalidSnapshot(f"snapshot head does not decode: {error!r}") from None
    if type(head) is not list or len(head) != 3:
        raise InvalidSnapshot("snapshot head: expected [version, slot_applied, sessions]")
    version, slot_applied, sessions = head
    if version != _SNAPSHOT_VERSION or type(version) is not int:
        raise InvalidSnapshot(f"unknown snapshot version {version!r}")
    if type(slot_applied) is not int or not 0 <= slot_applied < 2**63:
        raise InvalidSnapshot(f"snapshot head: slot_applied {slot_applied!r} out of range")
    return _Head(slot_applied, _session_entries(sessions), size)


def _session_entries(sessions: object) -> list[tuple[int, int, bytes]]:
    """The exported session table: ``[client_id, seq, reply]`` each, as ``export`` writes."""
    if type(sessions) is not list:
        raise InvalidSnapshot("snapshot head: sessions: expected an array")
    entries = []
    for item in sessions:
        if (
            type(item) is not list
            or len(item) != 3
            or type(item[0]) is not int
            or type(item[1]) is not int
            or type(item[2]) is not bytes
        ):
            raise InvalidSnapshot("snapshot head: sessions: expected [client_id, seq, reply]")
        entries.append((item[0], item[1], item[2]))
    return entries
