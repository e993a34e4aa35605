"""Locks in the store: waiters in order, fences that only grow, a stale holder
refused by its fence, and lock-delay after a holder's lease expires
(``paxon.kv.locks``)."""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]
import pytest

from paxon.kv.codec import (
    decode_command,
    decode_query,
    decode_result,
    encode_command,
    encode_query,
    encode_result,
)
from paxon.kv.model import (
    LOCK_DELAY_MAX_MS,
    Compare,
    Delete,
    ErrorResult,
    KvLimits,
    LeaseGrant,
    LeaseGrantResult,
    LeaseRevoke,
    LockAcquire,
    LockAcquireResult,
    LockState,
    LockStateResult,
    Put,
    PutOp,
    Txn,
    TxnResult,
    lock_key,
    lock_name,
)
from paxon.kv.store import KvStore

T0 = 1_800_000_000_000


def timed_store() -> KvStore:
    store = KvStore()
    store.on_log_time(T0)
    return store


def lease(store: KvStore, ttl_ms: int = 5_000) -> int:
    result = store.execute(LeaseGrant(ttl_ms))
    assert isinstance(result, LeaseGrantResult)
    return result.lease


def acquire(store: KvStore, name: str, lease_id: int, delay_ms: int = 0) -> LockAcquireResult:
    result = store.execute(LockAcquire(name, lease_id, delay_ms))
    assert isinstance(result, LockAcquireResult), result
    return result


def state(store: KvStore, name: str) -> LockStateResult:
    result = store.read(LockState(name))
    assert isinstance(result, LockStateResult), result
    return result


def test_waiters_are_served_in_the_order_they_joined_and_fences_grow() -> None:
    store = timed_store()
    first, second, third = lease(store), lease(store), lease(store)
    a = acquire(store, "jobs", first)
    b = acquire(store, "jobs", second)
    c = acquire(store, "jobs", third)
    assert (a.held, b.held, c.held) == (True, False, False)
    assert a.fence < b.fence < c.fence
    assert state(store, "jobs") == LockStateResult(a.key, a.fence, 3, 0)
    store.execute(Delete(a.key))  # released
    assert state(store, "jobs") == LockStateResult(b.key, b.fence, 2, 0)
    store.execute(LeaseRevoke(second))  # released by revoking: no delay either
    assert state(store, "jobs") == LockStateResult(c.key, c.fence, 1, 0)
    again = acquire(store, "jobs", first)
    assert not again.held and again.fence > c.fence


def test_acquiring_again_with_the_same_lease_is_the_same_waiter() -> None:
    store = timed_store()
    held = lease(store)
    first = acquire(store, "jobs", held)
    revision = store.revision
    assert acquire(store, "jobs", held) == first
    assert store.revision == revision, "a retry writes nothing"


def test_locks_of_different_names_are_apart() -> None:
    store = timed_store()
    one, two = lease(store), lease(store)
    assert acquire(store, "a", one).held and acquire(store, "ab", two).held
    assert lock_name(lock_key("ab", two)) == "ab" and lock_name("ab/c") is None


def test_a_stale_holder_is_refused_by_its_fence() -> None:
    """The worked example of docs/coordination.md: holder A's lease expires (A
    was paused), B takes the lock, and A's fenced write fails."""
    store = timed_store()
    lease_a, lease_b = lease(store, 2_000), lease(store, 60_000)
    a = acquire(store, "db", lease_a)
    b = acquire(store, "db", lease_b)
    assert a.held and not b.held
    store.on_log_time(T0 + 2_000)  # A's lease expires while A sleeps
    assert state(store, "db").holder_key == b.key

    def fenced_write(holder_key: str, fence: int, value: bytes) -> bool:
        guard = Compare(holder_key, "create_revision", "==", fence)
        result = store.execute(Txn((guard,), (PutOp("db/row", value),), ()))
        assert isinstance(result, TxnResult)
        return result.succeeded

    assert not fenced_write(a.key, a.fence, b"from A, stale")
    assert fenced_write(b.key, b.fence, b"from B")


def test_an_expired_holder_blocks_the_lock_for_its_delay_but_a_release_does_not() -> None:
    store = timed_store()
    dying, waiting = lease(store, 2_000), lease(store, 60_000)
    acquire(store, "jobs", dying, delay_ms=10_000)
    b = acquire(store, "jobs", waiting)
    store.on_log_time(T0 + 2_000)  # the holder's lease expires
    assert state(store, "jobs") == LockStateResult("", 0, 1, 10_000)
    assert not acquire(store, "jobs", waiting).held
    assert store.next_deadline_ms() == T0 + 12_000, "the leader must stamp when the delay ends"
    store.on_log_time(T0 + 11_999)
    assert state(store, "jobs").fence == 0
    store.on_log_time(T0 + 12_000)
    assert state(store, "jobs") == LockStateResult(b.key, b.fence, 1, 0)
    # B releases: the next waiter gets the lock at once.
    third = lease(store, 60_000)
    c = acquire(store, "jobs", third, delay_ms=10_000)
    store.execute(Delete(b.key))
    assert state(store, "jobs") == LockStateResult(c.key, c.fence, 1, 0)


def test_a_waiter_that_expires_without_holding_starts_no_delay() -> None:
    store = timed_store()
    holder, dying = lease(store, 60_000), lease(store, 2_000)
    a = acquire(store, "jobs", holder)
    acquire(store, "jobs", dying, delay_ms=10_000)
    store.on_log_time(T0 + 2_000)
    assert state(store, "jobs") == LockStateResult(a.key, a.fence, 1, 0)


def test_lock_delays_are_in_snapshots() -> None:
    store = timed_store()
    dying = lease(store, 2_000)
    acquire(store, "jobs", dying, delay_ms=10_000)
    store.on_log_time(T0 + 2_000)
    copy = KvStore()
    copy.restore(store.snapshot())
    assert state(copy, "jobs").delay_remaining_ms == 10_000
    copy.on_log_time(T0 + 12_000)
    assert len(copy.lock_delays) == 0


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (LockAcquire("", 1), "non-empty"),
        (LockAcquire("a/b", 1), "must not contain '/'"),
        (LockAcquire("a", 0), "lease"),
        (LockAcquire("a", 1, LOCK_DELAY_MAX_MS + 1), "delay_ms"),
        (LockAcquire("a", 1, -1), "delay_ms"),
        (LockAcquire("x" * 5000, 1), "too_large"),
        (LockAcquire("a", 99), "lease 99 does not exist"),
    ],
)
def test_bad_lock_commands_are_refused_and_change_nothing(
    command: LockAcquire, reason: str
) -> None:
    store = timed_store()
    lease(store)
    result = store.execute(command)
    assert isinstance(result, ErrorResult)
    assert reason in result.message or reason == result.code
    assert store.revision == 0


def test_a_user_overwriting_a_waiter_key_gets_no_delay_and_no_crash() -> None:
    store = KvStore(KvLimits())
    store.on_log_time(T0)
    dying = lease(store, 2_000)
    a = acquire(store, "jobs", dying, delay_ms=10_000)
    store.execute(Put(a.key, b"not a number", lease=dying))
    store.on_log_time(T0 + 2_000)
    assert state(store, "jobs") == LockStateResult("", 0, 0, 0)


@pytest.mark.parametrize(
    "item",
    [
        LockAcquire("jobs", 3, 1_000),
        LockState("jobs"),
        LockAcquireResult("_paxon/lock/jobs/0000000000000003", 7, True),
        LockStateResult("", 0, 2, 500),
    ],
)
def test_lock_messages_round_trip(item: object) -> None:
    if isinstance(item, LockAcquire):
        assert decode_command(encode_command(item)) == item
    elif isinstance(item, LockState):
        assert decode_query(encode_query(item)) == item
    else:
        assert decode_result(encode_result(item)) == item  # type: ignore[arg-type]
    assert msgpack.unpackb(encode_command(LockAcquire("n", 1)))[0] == 12
