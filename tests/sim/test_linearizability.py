"""Tests for the per-key register linearizability checker."""

from __future__ import annotations

import itertools
import random
from collections.abc import Hashable, Sequence
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paxon.sim.linearizability import (
    LinearizabilityBudgetExceeded,
    Operation,
    check_history,
)

HYPOTHESIS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow],
)

NEVER = "never-written"


class History:
    """Small builder so hand-written histories stay readable."""

    def __init__(self) -> None:
        self.ops: list[Operation] = []

    def _add(
        self,
        kind: Literal["write", "read", "cas"],
        args: tuple[Hashable, ...],
        start: float,
        end: float | None,
        result: Hashable,
        key: str,
    ) -> Operation:
        op = Operation(len(self.ops), key, kind, args, start, end, result)
        self.ops.append(op)
        return op

    def write(self, value: Hashable, start: float, end: float | None, key: str = "k") -> Operation:
        return self._add("write", (value,), start, end, None, key)

    def read(self, result: Hashable, start: float, end: float | None, key: str = "k") -> Operation:
        return self._add("read", (), start, end, result, key)

    def cas(
        self,
        expect: Hashable,
        new: Hashable,
        result: bool | None,
        start: float,
        end: float | None,
        key: str = "k",
    ) -> Operation:
        return self._add("cas", (expect, new), start, end, result, key)


def ok(h: History) -> bool:
    return check_history(h.ops).ok


# ---------------------------------------------------------------- hand-written histories


def test_empty_history() -> None:
    result = check_history([])
    assert result.ok and result.key is None


def test_sequential_history_is_linearizable() -> None:
    h = History()
    h.read(None, 0, 1)
    h.write("a", 2, 3)
    h.read("a", 4, 5)
    h.cas("a", "b", True, 6, 7)
    h.read("b", 8, 9)
    assert ok(h)


def test_stale_read_after_completed_write_fails() -> None:
    h = History()
    h.write("a", 0, 1)
    h.write("b", 2, 3)
    h.read("a", 4, 5)
    result = check_history(h.ops)
    assert not result.ok
    assert result.key == "k"
    assert "#2 read() -> 'a' [4, 5]" in result.explanation
    assert "prefix found has 2 op(s)" in result.explanation
    assert "#1 write('b') [2, 3]" in result.explanation
    assert "register holds 'b'" in result.explanation


def test_read_concurrent_with_write_may_see_either_value() -> None:
    for seen in (None, "a"):
        h = History()
        h.write("a", 0, 10)
        h.read(seen, 5, 6)
        assert ok(h)


def test_equal_timestamps_are_concurrent() -> None:
    h = History()
    h.write("a", 0, 1)
    h.read(None, 1, 2)  # invoked exactly when the write returned: may precede it
    assert ok(h)
    h = History()
    h.write("a", 0, 1)
    h.read(None, 1.5, 2)
    assert not ok(h)


def test_zero_length_intervals() -> None:
    h = History()
    h.write("a", 1, 1)
    h.read("a", 1, 1)
    h.write("b", 1, 1)
    h.read("b", 1, 1)
    assert ok(h)


def test_concurrent_writes_observed_in_both_orders_fails() -> None:
    h = History()
    h.write("x", 0, 10)
    h.write("y", 0, 10)
    h.read("x", 1, 2)
    h.read("y", 3, 4)
    h.read("x", 5, 6)  # x, y, x would need x written twice
    assert not ok(h)


def test_concurrent_writes_then_reads_disagree_fails() -> None:
    h = History()
    h.write("x", 0, 10)
    h.write("y", 0, 10)
    h.read("x", 11, 12)
    h.read("y", 13, 14)
    assert not ok(h)


def test_concurrent_writes_any_single_order_is_fine() -> None:
    for first, second in (("x", "y"), ("y", "x")):
        h = History()
        h.write("x", 0, 10)
        h.write("y", 0, 10)
        h.read(first, 1, 2)
        h.read(second, 11, 12)
        assert ok(h)


def test_cas_success_requiring_a_particular_order() -> None:
    h = History()
    h.write("a", 0, 10)
    h.write("b", 0, 10)
    h.cas("a", "c", True, 0, 10)  # must come right after write(a)
    h.read("c", 11, 12)  # so write(b) came first
    assert ok(h)
    h = History()
    h.write("a", 0, 10)
    h.write("b", 0, 10)
    h.cas("a", "c", True, 0, 10)
    h.read("b", 11, 12)  # so write(b) came last
    assert ok(h)
    h = History()
    h.write("a", 0, 10)
    h.write("b", 0, 10)
    h.cas("a", "c", True, 0, 10)
    h.read("a", 11, 12)  # impossible: a cannot be the final value after the CAS took it
    assert not ok(h)


def test_cas_success_on_value_never_present_fails() -> None:
    h = History()
    h.write("a", 0, 1)
    h.cas("b", "c", True, 2, 3)
    assert not ok(h)


def test_cas_on_absent_key() -> None:
    h = History()
    h.cas(None, "a", True, 0, 1)
    h.cas(None, "b", False, 2, 3)
    h.read("a", 4, 5)
    assert ok(h)


def test_cas_failure() -> None:
    h = History()
    h.write("a", 0, 1)
    h.cas("a", "c", False, 2, 3)  # the value was a: it must have succeeded
    assert not ok(h)
    h = History()
    h.write("a", 0, 1)
    h.cas("b", "c", False, 2, 3)
    h.read("a", 4, 5)  # a failed CAS changes nothing
    assert ok(h)
    h = History()
    h.write("a", 0, 1)
    h.cas("b", "c", False, 2, 3)
    h.read("c", 4, 5)
    assert not ok(h)


def test_pending_write_may_or_may_not_have_happened() -> None:
    for seen in (None, "a"):
        h = History()
        h.write("a", 0, None)
        h.read(seen, 5, 6)
        assert ok(h), seen


def test_pending_write_effect_observed_later() -> None:
    h = History()
    h.write("a", 0, 1)
    h.write("b", 2, None)
    h.read("a", 3, 4)  # not yet
    h.read("b", 100, 101)  # took effect between the two reads
    h.read("b", 102, 103)
    assert ok(h)


def test_pending_write_cannot_take_effect_twice() -> None:
    h = History()
    h.write("a", 0, 1)
    h.write("b", 2, None)
    h.read("b", 3, 4)
    h.read("a", 5, 6)  # nothing else wrote a after b
    assert not ok(h)


def test_identical_pending_writes_each_take_effect_once() -> None:
    h = History()
    h.write("x", 0, None)
    h.write("x", 0, None)  # e.g. a client retry of a request that timed out
    h.read("x", 1, 2)
    h.write("y", 3, 4)
    h.read("x", 5, 6)  # needs the second copy
    assert ok(h)
    h.write("y", 7, 8)
    h.read("x", 9, 10)  # would need a third
    assert not ok(h)


def test_pending_write_cannot_act_before_its_invocation() -> None:
    h = History()
    h.read("b", 0, 1)
    h.write("b", 2, None)
    assert not ok(h)


def test_pending_cas_may_or_may_not_have_happened() -> None:
    for seen in ("a", "b"):
        h = History()
        h.write("a", 0, 1)
        h.cas("a", "b", None, 2, None)
        h.read(seen, 3, 4)
        assert ok(h), seen


def test_pending_write_then_pending_cas_chain() -> None:
    h = History()
    h.write("x", 0, None)
    h.cas("x", "y", None, 0, None)
    h.read("y", 5, 6)  # needs both pending ops, in that order
    assert ok(h)
    h = History()
    h.write("x", 0, None)
    h.cas("x", "y", None, 0, None)
    h.read("y", 5, 6)
    h.read("x", 7, 8)  # the pending write cannot take effect a second time
    assert not ok(h)


def test_fewer_pending_ops_after_more_failed() -> None:
    """Linearizable only with the pending write(y) used late, after an earlier state that
    used it had failed (found by fuzzing against a wrong pruning rule)."""
    h = History()
    h.write("y", -30, None)
    h.read("y", -10, 40)
    h.cas("y", "x", True, 20, 70)
    h.write("y", 45, 55)
    h.write("x", 30, None)
    h.read("x", 70, 90)
    h.write("y", 70, 100)
    h.read("y", 100, 130)
    h.cas("x", "x", True, 110, 130)
    assert ok(h)


def test_pending_read_is_ignored() -> None:
    h = History()
    h.read("whatever", 0, None)
    assert ok(h)


def test_read_of_value_never_written_fails() -> None:
    h = History()
    h.write("a", 0, 10)
    h.write("b", 0, None)
    h.read(NEVER, 0, 10)
    result = check_history(h.ops)
    assert not result.ok
    assert NEVER in result.explanation


def test_per_key_independence() -> None:
    h = History()
    h.write("x", 0, 1, key="a")
    h.read("x", 2, 3, key="b")  # x was written to a, not b
    result = check_history(h.ops)
    assert not result.ok and result.key == "b"

    h = History()  # each key alone is fine, even though the values interleave in time
    h.write("1", 0, 1, key="a")
    h.write("2", 2, 3, key="b")
    h.read("1", 4, 5, key="a")
    h.read("2", 6, 7, key="b")
    h.read(None, 8, 9, key="c")
    result = check_history(h.ops)
    assert result.ok


def test_first_failing_key_is_reported_in_sorted_order() -> None:
    h = History()
    h.read(NEVER, 0, 1, key="z")
    h.read(NEVER, 0, 1, key="m")
    h.read(None, 0, 1, key="a")
    assert check_history(h.ops).key == "m"


def test_malformed_histories_are_rejected() -> None:
    h = History()
    h.write("a", 0, 1)
    dup = Operation(0, "k", "read", (), 2, 3, "a")
    with pytest.raises(ValueError, match="duplicate"):
        check_history([*h.ops, dup])
    with pytest.raises(ValueError, match="before"):
        check_history([Operation(1, "k", "read", (), 5, 4, None)])
    with pytest.raises(ValueError, match="args"):
        check_history([Operation(1, "k", "write", (), 0, 1, None)])
    with pytest.raises(ValueError, match="bool"):
        check_history([Operation(1, "k", "cas", (None, "a"), 0, 1, None)])


def _hard_unlinearizable(n_writes: int, key: str = "k") -> list[Operation]:
    """Concurrent writes, then two reads that disagree: refuting it means trying every
    order of the writes."""
    h = History()
    for i in range(n_writes):
        h.write(f"v{i}", 0, 100, key=key)
    h.read("v0", 101, 102, key=key)
    h.read("v1", 103, 104, key=key)
    return h.ops


def test_budget_exceeded_raises() -> None:
    with pytest.raises(LinearizabilityBudgetExceeded) as info:
        check_history(_hard_unlinearizable(16), max_states=1000)
    assert info.value.keys == ("k",)


def test_definite_failure_wins_over_exhausted_budget() -> None:
    ops = _hard_unlinearizable(16, key="a")
    ops.append(Operation(1000, "b", "read", (), 0, 1, NEVER))
    result = check_history(ops, max_states=1000)
    assert not result.ok and result.key == "b"


def test_unlinearizable_search_is_exhaustive_within_budget() -> None:
    result = check_history(_hard_unlinearizable(8))
    assert not result.ok
    assert result.states_explored >= 2**8


# ---------------------------------------------------------------- generated histories


def _random_execution(
    rng: random.Random,
    n: int,
    spread: int,
    *,
    keys: Sequence[str] = ("a", "b"),
    n_values: int = 3,
    pending_rate: float = 0.1,
) -> list[Operation]:
    """A random sequential execution of registers, turned into a concurrent history.

    Op i takes effect at time 10*i; its interval reaches a random whole number of time
    units, up to ``spread``, either side of that point (so timestamps often tie). Some ops
    get no answer, and half of those never take effect at all.
    """
    values = [f"v{k}" for k in range(n_values)]
    registers: dict[str, Hashable] = {}
    ops: list[Operation] = []
    for i in range(n):
        key = rng.choice(keys)
        point = 10.0 * i
        start = point - rng.randint(0, spread)
        end: float | None = point + rng.randint(0, spread)
        pending = rng.random() < pending_rate
        happened = not pending or rng.random() < 0.5
        if pending:
            end = None
        current = registers.get(key)
        roll = rng.random()
        if roll < 0.4:
            new = rng.choice(values)
            if happened:
                registers[key] = new
            ops.append(Operation(i, key, "write", (new,), start, end, None))
        elif roll < 0.8:
            ops.append(Operation(i, key, "read", (), start, end, current))
        else:
            expect = rng.choice([None, current, *values])
            new = rng.choice(values)
            success = current == expect
            if happened and success:
                registers[key] = new
            ops.append(Operation(i, key, "cas", (expect, new), start, end, success))
    return ops


@st.composite
def linearizable_histories(draw: st.DrawFn) -> list[Operation]:
    """Histories of up to 40 ops over two keys, from :func:`_random_execution`."""
    n = draw(st.integers(1, 40))
    spread = draw(st.sampled_from([0, 5, 15, 40, 100]))
    pending_rate = draw(st.sampled_from([0.0, 0.1, 0.3]))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    return _random_execution(rng, n, spread, pending_rate=pending_rate)


@HYPOTHESIS
@given(linearizable_histories())
def test_generated_linearizable_histories_are_accepted(ops: list[Operation]) -> None:
    result = check_history(ops)
    assert result.ok, result.explanation


@HYPOTHESIS
@given(linearizable_histories(), st.data())
def test_read_of_impossible_value_is_rejected(ops: list[Operation], data: st.DataObject) -> None:
    reads = [i for i, op in enumerate(ops) if op.kind == "read" and op.returned_at is not None]
    if not reads:  # make sure there is a completed read to corrupt
        last = ops[-1].invoked_at + 10
        ops.append(Operation(len(ops), "a", "read", (), last, last + 1, None))
        reads.append(len(ops) - 1)
    victim = ops[data.draw(st.sampled_from(reads))]
    ops[ops.index(victim)] = Operation(
        victim.op_id, victim.key, "read", (), victim.invoked_at, victim.returned_at, NEVER
    )
    result = check_history(ops)
    assert not result.ok
    assert result.key == victim.key
    assert f"#{victim.op_id} read() -> {NEVER!r}" in result.explanation


def _brute_force(ops: Sequence[Operation]) -> bool:
    """Reference checker for tiny single-key histories: try every order of every subset."""
    inf = float("inf")
    completed = [op for op in ops if op.returned_at is not None]
    optional = [op for op in ops if op.returned_at is None]
    for r in range(len(optional) + 1):
        for extra in itertools.combinations(optional, r):
            for order in itertools.permutations([*completed, *extra]):
                # Real time: nothing may be placed after an op that was invoked after it returned.
                if any(
                    (a.returned_at if a.returned_at is not None else inf) < b.invoked_at
                    for j, b in enumerate(order)
                    for a in order[j + 1 :]
                ):
                    continue
                state: Hashable = None
                good = True
                for op in order:
                    pending = op.returned_at is None
                    if op.kind == "write":
                        state = op.args[0]
                    elif op.kind == "read":
                        good = pending or op.result == state
                    else:
                        success = state == op.args[0]
                        good = pending or op.result == success
                        if success:
                            state = op.args[1]
                    if not good:
                        break
                if good:
                    return True
    return False


@st.composite
def random_small_histories(draw: st.DrawFn) -> list[Operation]:
    """Arbitrary (mostly non-linearizable) histories on one key, small enough to brute-force."""
    n = draw(st.integers(1, 6))
    small = st.sampled_from([None, "x", "y"])
    ops: list[Operation] = []
    for i in range(n):
        kind: Literal["write", "read", "cas"] = draw(st.sampled_from(["write", "read", "cas"]))
        start = float(draw(st.integers(0, 8)))
        end: float | None = start + draw(st.integers(0, 4))
        if draw(st.integers(0, 5)) == 0:
            end = None
        if kind == "write":
            args: tuple[Hashable, ...] = (draw(small),)
            result: Hashable = None
        elif kind == "read":
            args = ()
            result = draw(small)
        else:
            args = (draw(small), draw(small))
            result = draw(st.booleans())
        ops.append(Operation(i, "k", kind, args, start, end, result))
    return ops


@settings(HYPOTHESIS, max_examples=250)
@given(random_small_histories())
def test_agrees_with_brute_force(ops: list[Operation]) -> None:
    assert check_history(ops).ok == _brute_force(ops)


def _reference(ops: Sequence[Operation]) -> bool:
    """Reference checker without any of the reductions: depth-first over (linearized set,
    value), any minimal op may go next, pending ops are optional with any outcome."""
    inf = float("inf")
    returns = [op.returned_at if op.returned_at is not None else inf for op in ops]
    must = sum(1 << i for i, op in enumerate(ops) if op.returned_at is not None)
    failed: set[tuple[int, Hashable]] = set()

    def search(mask: int, value: Hashable) -> bool:
        if mask & must == must:
            return True
        if (mask, value) in failed:
            return False
        first_return = min(r for i, r in enumerate(returns) if not mask >> i & 1)
        for i, op in enumerate(ops):
            if mask >> i & 1 or op.invoked_at > first_return:
                continue
            pending = op.returned_at is None
            new = value
            if op.kind == "write":
                new = op.args[0]
                good = True
            elif op.kind == "read":
                good = pending or op.result == value
            else:
                success = value == op.args[0]
                good = pending or op.result == success
                if success:
                    new = op.args[1]
            if good and search(mask | 1 << i, new):
                return True
        failed.add((mask, value))
        return False

    return search(0, None)


@st.composite
def near_linearizable_histories(draw: st.DrawFn) -> list[Operation]:
    """Up to 12 ops on one key, many pending, with zero to two results corrupted."""
    n = draw(st.integers(2, 12))
    spread = draw(st.sampled_from([5, 15, 40]))
    n_values = draw(st.sampled_from([2, 3]))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    ops = _random_execution(rng, n, spread, keys=("k",), n_values=n_values, pending_rate=0.3)
    for _ in range(draw(st.integers(0, 2))):
        j = rng.randrange(n)
        op = ops[j]
        if op.returned_at is None or op.kind == "write":
            continue
        result: Hashable = not op.result if op.kind == "cas" else rng.choice([None, "v0", "v1"])
        ops[j] = Operation(op.op_id, "k", op.kind, op.args, op.invoked_at, op.returned_at, result)
    return ops


@settings(HYPOTHESIS, max_examples=300)
@given(near_linearizable_histories())
def test_agrees_with_reference_search(ops: list[Operation]) -> None:
    assert check_history(ops).ok == _reference(ops)


# ---------------------------------------------------------------- size


def _stale_tail(ops: list[Operation], key: str) -> list[Operation]:
    """``ops`` followed, once all of them have returned or timed out, by write("stale"),
    write("fresh") and a read of "stale": provably not linearizable, because no other op
    writes "stale", but found only after refuting every linearization of ``ops``."""
    last = max(max(op.invoked_at, op.returned_at or 0.0) for op in ops) + 10
    ids = max(op.op_id for op in ops) + 1
    return [
        *ops,
        Operation(ids, key, "write", ("stale",), last, last + 1, None),
        Operation(ids + 1, key, "write", ("fresh",), last + 2, last + 3, None),
        Operation(ids + 2, key, "read", (), last + 4, last + 5, "stale"),
    ]


@HYPOTHESIS
@given(linearizable_histories())
def test_stale_read_after_everything_is_rejected(ops: list[Operation]) -> None:
    result = check_history(_stale_tail(ops, "a"))
    assert not result.ok
    assert result.key == "a"
    assert "read() -> 'stale'" in result.explanation


def _concurrent_history(seed: int, n: int, spread: int) -> list[Operation]:
    """``n`` ops on one key, six values, 10% of the ops without an answer."""
    return _random_execution(random.Random(seed), n, spread, keys=("k",), n_values=6)


def test_large_concurrent_history_runs() -> None:
    """300 ops on one key, each concurrent with about 20 others, some pending."""
    ops = _concurrent_history(seed=20240601, n=300, spread=100)
    result = check_history(ops)
    assert result.ok, result.explanation

    # A late completed read of a value never written: caught without a search.
    last_read = max(i for i, op in enumerate(ops) if op.kind == "read" and op.returned_at)
    bad = ops[last_read]
    corrupted = list(ops)
    corrupted[last_read] = Operation(
        bad.op_id, "k", "read", (), bad.invoked_at, bad.returned_at, NEVER
    )
    assert not check_history(corrupted).ok


def test_large_concurrent_history_stale_tail_needs_full_search() -> None:
    """Refuting a violation at the very end explores every linearization of what precedes."""
    ops = _stale_tail(_concurrent_history(seed=1, n=300, spread=50), "k")
    result = check_history(ops)
    assert not result.ok
    assert "#302 read() -> 'stale'" in result.explanation
