"""The library's replicated structures (``paxon.repl``): their rules, limits and
snapshots, as state machines (bytes in, bytes out), and the example running
on real nodes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paxon.repl import ReplCounter, ReplDict, ReplLockManager
from paxon.statemachine import StateMachine

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "repl_structures.py"


def call(machine: StateMachine, *request: object) -> Any:
    """Apply one command; its result, or ``("refused", why)``."""
    ok, result = msgpack.unpackb(machine.apply(msgpack.packb(list(request))), raw=False)
    return result if ok else ("refused", result)


def ask(machine: StateMachine, *request: object) -> Any:
    ok, result = msgpack.unpackb(machine.query(msgpack.packb(list(request))), raw=False)
    return result if ok else ("refused", result)


# ------------------------------------------------------------------ ReplDict


def test_dict_sets_deletes_and_compares_and_sets() -> None:
    d = ReplDict()
    assert call(d, "set", "a", {"x": [1, 2]}) is None
    assert ask(d, "get", "a") == [True, {"x": [1, 2]}]
    assert ask(d, "get", "b") == [False, None]
    assert call(d, "cas", "a", "wrong", 5) is False
    assert call(d, "cas", "a", {"x": [1, 2]}, 5) is True
    assert call(d, "cas", "new", None, 1) is True  # None: must be absent
    assert ask(d, "items") == [["a", 5], ["new", 1]]
    assert call(d, "delete", "a") is True and call(d, "delete", "a") is False
    assert call(d, "clear") == 1 and ask(d, "len") == 0


def test_dict_limits_refuse_and_change_nothing() -> None:
    d = ReplDict(keys_max=2)
    call(d, "set", "a", 1)
    call(d, "set", "b", 1)
    assert call(d, "set", "c", 1)[0] == "refused"
    assert call(d, "set", "a", 2) is None, "an existing key may change when full"
    assert call(d, "set", "", 1)[0] == "refused"
    assert call(d, "set", "k" * 5000, 1)[0] == "refused"
    assert call(d, "frobnicate")[0] == "refused"
    assert ask(d, "items") == [["a", 2], ["b", 1]]


def test_dict_snapshots_are_exact_and_bad_ones_refused() -> None:
    d = ReplDict()
    call(d, "set", "b", b"bytes")
    call(d, "set", "a", [None, True, 1.5])
    copy = ReplDict()
    copy.restore(d.snapshot())
    assert copy.data == d.data and copy.snapshot() == d.snapshot()
    for bad in (msgpack.packb({"a": 1}), msgpack.packb([["a"]]), b"\xc1"):
        with pytest.raises(ValueError):
            copy.check_snapshot(bad)


# ------------------------------------------------------------------ ReplCounter


def test_counter_adds_and_stays_in_64_bits() -> None:
    c = ReplCounter(names_max=1)
    assert call(c, "add", "n", 5) == 5 and call(c, "add", "n", -7) == -2
    assert call(c, "add", "other", 1)[0] == "refused"
    assert call(c, "add", "n", 2**63 - 1) == 2**63 - 3
    assert call(c, "add", "n", 3)[0] == "refused"
    assert call(c, "add", "n", -(2**63) + 3) == 0
    assert call(c, "add", "n", "1")[0] == "refused"
    assert ask(c, "get", "n") == 0 and ask(c, "all") == [["n", 0]]
    copy = ReplCounter()
    copy.restore(c.snapshot())
    assert copy.counts == {"n": 0}


# ------------------------------------------------------------------ ReplLockManager

T0 = 1_800_000_000_000


def locks() -> ReplLockManager:
    manager = ReplLockManager()
    manager.on_log_time(T0)
    return manager


def test_a_lock_is_held_until_released_or_expired_and_fences_grow() -> None:
    m = locks()
    assert call(m, "acquire", "job", "alice", 1_000) == [True, "alice", 1]
    assert call(m, "acquire", "job", "bob", 1_000) == [False, "alice", 1]
    assert call(m, "release", "job", "bob") is False
    m.on_log_time(T0 + 500)
    assert call(m, "acquire", "job", "alice", 1_000) == [True, "alice", 1], "a renewal"
    m.on_log_time(T0 + 1_499)
    assert ask(m, "holder", "job") == ["alice", 1, 1]
    assert m.next_deadline_ms() == T0 + 1_500
    m.on_log_time(T0 + 1_500)
    assert ask(m, "holder", "job") == [None, 0, 0]
    assert call(m, "acquire", "job", "bob", 1_000) == [True, "bob", 2]
    assert call(m, "release", "job", "bob") is True
    assert call(m, "acquire", "job", "carol", 1_000) == [True, "carol", 3]


def test_a_new_leader_renews_every_hold() -> None:
    m = locks()
    call(m, "acquire", "job", "alice", 1_000)
    m.on_leader_change(T0 + 5_000)  # a new leader far ahead: the hold is renewed first
    m.on_log_time(T0 + 5_000)
    assert ask(m, "holder", "job") == ["alice", 1, 1_000]
    m.on_log_time(T0 + 6_000)
    assert ask(m, "holder", "job")[0] is None


def test_lock_limits_and_snapshots() -> None:
    m = ReplLockManager(locks_max=1)
    assert call(m, "acquire", "a", "x", 99)[0] == "refused"
    assert call(m, "acquire", "a", "x", 1_000)[0] is True
    assert call(m, "acquire", "b", "x", 1_000)[0] == "refused"
    copy = ReplLockManager(locks_max=1)
    copy.restore(m.snapshot())
    assert copy.snapshot() == m.snapshot()
    assert copy.next_deadline_ms() == 1_000
    with pytest.raises(ValueError):
        copy.check_snapshot(msgpack.packb([0, 0, [["a", "x", 1, 1, 5]]]))  # fence past the last


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_no_bytes_make_a_structure_raise(data: bytes) -> None:
    for machine in (ReplDict(), ReplCounter(), ReplLockManager()):
        machine.apply(data)
        machine.query(data)


def test_the_example_runs_each_structure_on_three_nodes(tmp_path: Path) -> None:
    from tests.node.test_example import free_base_port

    base = free_base_port()
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "counter", str(tmp_path), str(base)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "counter: visits = 30" in result.stdout
