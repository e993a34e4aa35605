"""Locks and watches in the simulator: the contenders' and watchers' workload,
the lock watch (``lock-grant-order``, ``fencing-order``: ``paxon.sim.fencing``)
and the watch check (``watch-exactly-once``: ``paxon.sim.watch_check``), with
the planted store bugs they must catch (``COORDINATION_MUTANTS`` in
``mutants.py``) within a few seeds."""

from __future__ import annotations

import pytest
from tests.sim.mutants import COORDINATION_MUTANTS

from paxon.kv.codec import encode_result
from paxon.kv.model import (
    Compare,
    Delete,
    Events,
    EventsResult,
    LeaseGrant,
    LeaseGrantResult,
    LeaseRevoke,
    LockAcquire,
    LockAcquireResult,
    Put,
    PutOp,
    Txn,
    TxnResult,
)
from paxon.kv.store import KvStore
from paxon.sim import SimConfig, replay_command, run_seed
from paxon.sim.checkers import Violation
from paxon.sim.fencing import LockWatch
from paxon.sim.watch_check import WatchCheck

# A leader change (crash) and members cut off (partition): holders that stall
# past their TTL while the lock goes on, watchers that resume elsewhere.
MUTANT_FAULTS = frozenset({"crash", "partition"})
MAX_SEEDS = 4


class _Log:
    """A store applying commands as points of a log, told to the lock watch."""

    def __init__(self) -> None:
        self.store = KvStore()
        self.violations: list[Violation] = []
        self.watch = LockWatch(self.violations)
        self.slot = 0
        self.client_seq = 0

    def run(self, command: object, *, kind: str = "", fence: int = 0) -> object:
        self.slot += 1
        key = (7, self.slot)
        if kind:
            self.watch.on_sent(key, kind, "sim", fence=fence)
        result = self.store.execute(command)  # type: ignore[arg-type]
        self.watch.on_point(
            (self.slot, 0), self.store, float(self.slot), key, encode_result(result)
        )
        return result

    def lease(self) -> int:
        result = self.run(LeaseGrant(5000))
        assert isinstance(result, LeaseGrantResult)
        return result.lease

    def acquire(self, lease: int) -> LockAcquireResult:
        result = self.run(LockAcquire("sim", lease), kind="acquire")
        assert isinstance(result, LockAcquireResult)
        return result

    def fenced_write(self, joined: LockAcquireResult) -> bool:
        guard = Compare(joined.key, "create_revision", "==", joined.fence)
        txn = Txn((guard,), (PutOp("F.sim", b"x"),))
        result = self.run(txn, kind="fenced-write", fence=joined.fence)
        assert isinstance(result, TxnResult)
        return result.succeeded


def test_holders_in_turn_with_their_fences_are_fine() -> None:
    log = _Log()
    first, second = log.lease(), log.lease()
    a = log.acquire(first)
    b = log.acquire(second)
    assert a.held and not b.held
    assert log.fenced_write(a)
    log.run(LeaseRevoke(first))  # the lock goes on to b
    assert not log.fenced_write(a)  # a's stale write is refused by its guard
    assert log.fenced_write(b)
    assert log.violations == []
    assert log.watch.counts == {"granted": 2, "fenced-writes": 2, "refused": 1}


def test_a_grant_over_a_lower_waiter_is_named() -> None:
    log = _Log()
    log.store = _grants_newest()
    a = log.acquire(log.lease())
    b = log.acquire(log.lease())
    assert a.held and b.held
    assert [v.rule for v in log.violations] == ["lock-grant-order"]
    assert f"fence {b.fence}" in log.violations[0].detail


def test_an_earlier_holder_writing_after_a_later_grant_is_named() -> None:
    # A store whose guard always holds lets a's write through after b holds.
    log = _Log()
    log.store = _ignores_guard()
    a = log.acquire(log.lease())
    b_lease = log.lease()
    b = log.acquire(b_lease)
    assert log.fenced_write(a)
    log.run(Delete(a.key))  # a leaves; b holds
    assert log.fenced_write(a)  # a stale holder's write goes through
    assert [v.rule for v in log.violations] == ["fencing-order"]
    assert "after the store granted the lock" in log.violations[0].detail
    assert log.fenced_write(b)


def test_decreasing_fences_and_a_fence_never_granted_are_named() -> None:
    log = _Log()
    log.store = _ignores_guard()
    a = log.acquire(log.lease())
    b = log.acquire(log.lease())
    assert log.fenced_write(b)  # b was never granted: a holds
    assert [v.rule for v in log.violations] == ["fencing-order"]
    assert "never granted" in log.violations[0].detail
    other = _Log()
    other.store = _ignores_guard()
    a = other.acquire(other.lease())
    b = other.acquire(other.lease())
    other.run(Delete(a.key))
    assert other.fenced_write(b)
    assert other.fenced_write(a)  # lower than one already written
    assert [v.rule for v in other.violations] == ["fencing-order"]
    assert f"succeeded after one fenced by {b.fence}" in other.violations[0].detail


def _grants_newest() -> KvStore:
    factory, _rule = COORDINATION_MUTANTS["grants-without-checking-lower"]
    return factory(None, 1)  # type: ignore[arg-type]


def _ignores_guard() -> KvStore:
    factory, _rule = COORDINATION_MUTANTS["ignores-fence-guard"]
    return factory(None, 1)  # type: ignore[arg-type]


def _watched_store() -> tuple[KvStore, WatchCheck, list[Violation]]:
    store = KvStore()
    violations: list[Violation] = []
    check = WatchCheck(violations, history_revisions=1)  # any cut may come
    lease = store.execute(LeaseGrant(1000))
    assert isinstance(lease, LeaseGrantResult)
    check.on_point(store)
    for command in (
        Put("a/1", b"x"),
        Put("b", b"y"),
        Put("a/2", b"z", lease=lease.lease),
        Put("a/1", b"w"),
        Delete("a/1"),
    ):
        store.execute(command)
        check.on_point(store)
    store.on_log_time(5000)  # the lease expires: a/2 goes
    check.on_point(store)
    return store, check, violations


def test_the_store_changes_are_read_put_by_put_and_delete_by_delete() -> None:
    _store, check, _ = _watched_store()
    assert check.changes == [
        (1, "a/1", "put", b"x"),
        (2, "b", "put", b"y"),
        (3, "a/2", "put", b"z"),
        (4, "a/1", "put", b"w"),
        (5, "a/1", "delete", b""),
        (6, "a/2", "delete", b""),
    ]


def test_a_stream_equal_to_the_changes_is_fine_and_a_gap_or_repeat_is_named() -> None:
    store, check, violations = _watched_store()
    page = store.read(Events("a/", True, 1))
    assert isinstance(page, EventsResult)
    check.start(0, "a/", 1)
    check.on_received(0, page.events[:2], 1.0)
    check.on_received(0, page.events[2:], 1.0)
    assert violations == []
    check.start(1, "a/", 1)  # skips the put of a/2 at revision 3
    check.on_received(1, page.events[0:1] + page.events[2:3], 2.0)
    check.start(2, "", 1)  # everything: repeats b's put
    everything = store.read(Events("", True, 1))
    assert isinstance(everything, EventsResult)
    check.on_received(2, everything.events[:2] + everything.events[1:2], 3.0)
    assert [v.rule for v in violations] == ["watch-exactly-once"] * 2
    assert "watcher 1 " in violations[0].detail and "(a gap)" in violations[0].detail
    assert "watcher 2 " in violations[1].detail and "a repeat" in violations[1].detail
    assert check.counts["events"] == 5 + 2 + 3


def test_a_compacted_end_must_name_a_cut_at_or_above_the_revision_asked() -> None:
    store, check, violations = _watched_store()
    store.compact_history(3)
    check.on_point(store)
    check.start(0, "", 1)
    assert check.on_compacted(0, 2, "... the oldest kept is 3", 1.0) == 4
    assert violations == []
    check.on_compacted(0, 4, "... the oldest kept is 3", 2.0)  # 4 was not compacted
    check.start(1, "", 1)
    check.on_compacted(1, 1, "... the oldest kept is 9", 2.0)  # no replica cut at 9
    assert [v.rule for v in violations] == ["watch-exactly-once"] * 2
    assert "highest cut applied is 3" in violations[1].detail


def test_a_cut_leaving_fewer_revisions_than_the_leader_keeps_is_named() -> None:
    store = KvStore()
    violations: list[Violation] = []
    check = WatchCheck(violations, history_revisions=3)
    for index in range(6):
        store.execute(Put("k", bytes([index])))
    store.compact_history(3)  # 3 of 6: revisions 3 to 6 readable
    check.on_point(store, 1.0)
    assert violations == []
    store.execute(Put("k", b"x"))
    store.compact_history(5)  # 5 of 7: 2 kept
    check.on_point(store, 2.0)
    assert [(v.rule, v.time) for v in violations] == [("history-kept", 2.0)]
    assert "cut at revision 5 of 7" in violations[0].detail


@pytest.mark.sim
def test_contenders_and_watchers_run_under_faults_and_a_correct_store_passes() -> None:
    """Every path of the workload runs on the real store under all the faults
    (held locks, stalls refused by the fence, streams resumed elsewhere), and
    the checks find nothing on a correct cluster."""
    totals: dict[str, int] = {}
    config = SimConfig(nodes=3)
    for seed in range(4):  # a few: a stalled holder refused by its fence in most
        result = run_seed(seed, config)
        assert result.ok, f"seed {seed}: {result.violations[:3]}\n{replay_command(seed, config)}"
        for name, count in result.coordination.items():
            totals[name] = totals.get(name, 0) + count
    for name in ("granted", "fenced-writes", "refused", "stalled", "events"):
        assert totals[name] > 0, totals


@pytest.mark.mutation
@pytest.mark.parametrize("name", sorted(COORDINATION_MUTANTS))
def test_a_planted_lock_or_watch_bug_is_caught_within_a_few_seeds(name: str) -> None:
    factory, rule = COORDINATION_MUTANTS[name]
    config = SimConfig(nodes=3, faults=MUTANT_FAULTS)
    for seed in range(MAX_SEEDS):
        result = run_seed(seed, config, store_factory=factory)
        if result.violations:
            assert any(f" {rule}: " in v for v in result.violations), result.violations
            return
    pytest.fail(f"{name} ran {MAX_SEEDS} seeds undetected")
