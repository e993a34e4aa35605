"""The runtime's wrapper of the user state machine: sessions and snapshots."""

from __future__ import annotations

import pytest

from paxon.node.machine import ReplicatedMachine
from paxon.protocol.ready import ChosenEntry
from paxon.protocol.types import Command, Value
from paxon.statemachine import StateMachine


class Appender(StateMachine):
    def __init__(self) -> None:
        self.items: list[bytes] = []

    def apply(self, command: bytes) -> bytes:
        self.items.append(command)
        return str(len(self.items)).encode()

    def snapshot(self) -> bytes:
        return b"\n".join(self.items)

    def restore(self, data: bytes) -> None:
        self.items = data.split(b"\n") if data else []


def entry(slot: int, *commands: tuple[int, int, bytes]) -> ChosenEntry:
    return ChosenEntry(slot, Value(tuple(Command(c, s, p) for c, s, p in commands)))


def test_a_retried_command_is_applied_once_and_answered_with_the_first_reply() -> None:
    machine = ReplicatedMachine(Appender(), sessions_max=10)
    first = list(machine.apply(entry(0, (7, 1, b"a"), (8, 1, b"b"))))
    retry = list(machine.apply(entry(1, (7, 1, b"a"))))
    assert [a.reply for a in first] == [b"1", b"2"]
    assert retry[0].reply == b"1" and not retry[0].fresh
    assert isinstance(machine.machine, Appender)
    assert machine.machine.items == [b"a", b"b"]


def test_a_stale_command_is_skipped_without_a_reply() -> None:
    machine = ReplicatedMachine(Appender(), sessions_max=10)
    list(machine.apply(entry(0, (7, 2, b"new"))))
    (stale,) = machine.apply(entry(1, (7, 1, b"old")))
    assert stale.reply is None and not stale.fresh


def test_slots_must_come_in_order() -> None:
    machine = ReplicatedMachine(Appender(), sessions_max=10)
    with pytest.raises(AssertionError):
        list(machine.apply(entry(1, (7, 1, b"a"))))


def test_snapshot_carries_sessions_and_state() -> None:
    machine = ReplicatedMachine(Appender(), sessions_max=10)
    list(machine.apply(entry(0, (7, 1, b"a"), (8, 1, b"b"))))
    restored = ReplicatedMachine(Appender(), sessions_max=10)
    restored.restore(machine.snapshot())
    assert restored.slot_applied == 1
    (retry,) = restored.apply(entry(1, (8, 1, b"b")))
    assert retry.reply == b"2" and not retry.fresh
    assert isinstance(restored.machine, Appender)
    assert restored.machine.items == [b"a", b"b"]
