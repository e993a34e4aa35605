"""Locks judged from what the replicated store applied: grants in order, and
mutual exclusion by fencing order.

The lock contenders (``paxon.sim.lock_clients``) take lock ``N`` through the
real store commands and then write the lock's guarded key with a *fenced
write*: a ``Txn`` whose only compare is ``Fence.guard()``
(``Compare(waiter key, "create_revision", "==", fence)``). This watch sees the
log through the store of the first replica to apply each *point* of it (a
client command or a clock entry, with the order key ``(slot, position)`` of
``ObservedMachine``, the same on every replica; every replica applying the
log reaches the same state there). At each point it reads, with the store's
own read API, lock ``N``'s holder (``LockState``) and its live waiter keys
(the keys under ``_paxon/lock/N/``).

Definitions, all at points of the log:

- The store **grants** ``N`` to fence ``f`` at point ``p`` when, in the state
  after ``p``, ``LockState(N)`` names a holder with fence ``f``, or the
  command at ``p`` is a ``LockAcquire`` answered ``held`` with fence ``f``.
- A **fenced write** of fence ``f`` *succeeds* at ``p`` when the command at
  ``p`` is a contender's guarded txn and the store answered ``succeeded``.

The rules:

- **lock-grant-order**: whenever the store grants ``N`` to ``f`` at ``p``,
  ``f`` is the lowest create revision among ``N``'s live waiter keys after
  ``p`` (no lock granted while a lower-revision waiter key of it is live).
- **fencing-order** (mutual exclusion by fencing order), for the fenced
  writes of ``N`` that succeed, in log order:

  1. their fences never decrease (a later holder's write is never followed
     by an earlier holder's);
  2. a fenced write of fence ``f`` that succeeds at ``p`` comes after no grant
     of a fence above ``f`` (a holder's write never succeeds once a later
     holder was granted the lock: their validity does not overlap);
  3. ``f`` was granted at or before ``p`` (a contender writes only after the
     store said it holds: a write of a fence never granted means the store
     answered ``held`` to a waiter it never made holder).

Why they hold on a correct store: the holder is the live waiter with the
lowest create revision (``paxon.kv.locks``), revisions only grow, so once
``f`` is granted no lower waiter appears; ``f``'s guard holds only while its
key lives, and a higher fence is granted only once that key is gone (or,
during a lock-delay, nobody is). Client beliefs do not enter: a contender
that trusts a stale member's answer writes anyway, and the store refuses it.

Also counted (``counts``): grants seen, fenced writes that succeeded and that
were refused. Contract: the watch changes nothing in the run and draws no
randomness; it names each lock at most once per rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paxon.kv.codec import decode_result
from paxon.kv.model import (
    Get,
    GetResult,
    LockAcquireResult,
    LockState,
    LockStateResult,
    TxnResult,
    lock_key,
)
from paxon.kv.store import KvStore
from paxon.sim.checkers import Violation

Order = tuple[int, int]
"""A point of the log: (slot, position of the command or clock entry in the slot)."""

CommandKey = tuple[int, int]
"""A command's (client_id, seq)."""


@dataclass(slots=True)
class _Sent:
    kind: str  # "acquire" or "fenced-write"
    lock: str
    fence: int = 0  # a fenced write's


@dataclass(slots=True)
class _Lock:
    """What the log did to one lock so far."""

    granted: set[int] = field(default_factory=set)  # every fence granted
    granted_max: int = 0
    written_max: int = 0  # the highest fence of a fenced write that succeeded
    named: set[str] = field(default_factory=set)  # rules already reported


class LockWatch:
    """Collects the contenders' commands; judges each point of the log once."""

    def __init__(self, violations: list[Violation]) -> None:
        self._violations = violations
        self._sent: dict[CommandKey, _Sent] = {}
        self._locks: dict[str, _Lock] = {}
        self.counts: dict[str, int] = {"granted": 0, "fenced-writes": 0, "refused": 0}

    def on_sent(self, key: CommandKey, kind: str, lock: str, *, fence: int = 0) -> None:
        """A contender sends ``key``: a ``LockAcquire`` of ``lock``, or a write
        fenced by ``fence``."""
        self._locks.setdefault(lock, _Lock())
        self._sent.setdefault(key, _Sent(kind, lock, fence))

    def on_point(
        self,
        order: Order,
        store: KvStore,
        time: float,
        command: CommandKey | None = None,
        reply: bytes | None = None,
    ) -> None:
        """The first replica to reach ``order`` applied it (``command`` applied
        fresh with ``reply``, or a clock entry); ``store`` is its state after it."""
        if not self._locks:
            return
        sent = None if command is None else self._sent.get(command)
        if sent is not None and reply is not None:
            self._on_reply(order, store, time, sent, reply)
        for name, lock in self._locks.items():
            state = store.read(LockState(name))
            assert isinstance(state, LockStateResult)
            if state.holder_key:
                self._granted(order, store, time, name, lock, state.fence)

    def _on_reply(
        self, order: Order, store: KvStore, time: float, sent: _Sent, reply: bytes
    ) -> None:
        result = decode_result(reply)
        lock = self._locks[sent.lock]
        if sent.kind == "acquire":
            if isinstance(result, LockAcquireResult) and result.held:
                self._granted(order, store, time, sent.lock, lock, result.fence)
            return
        if not isinstance(result, TxnResult):
            return
        if not result.succeeded:
            self.counts["refused"] += 1
            return
        self.counts["fenced-writes"] += 1
        fence = sent.fence
        problem = None
        if fence < lock.written_max:
            problem = f"a write fenced by {fence} succeeded after one fenced by {lock.written_max}"
        elif fence < lock.granted_max:
            problem = (
                f"a write fenced by {fence} succeeded after the store granted the lock "
                f"to fence {lock.granted_max}"
            )
        elif fence not in lock.granted:
            problem = f"a write fenced by {fence} succeeded, a fence the store never granted"
        lock.written_max = max(lock.written_max, fence)
        if problem is not None:
            self._fail(time, "fencing-order", sent.lock, lock, f"at slot {order[0]}: {problem}")

    def _granted(
        self, order: Order, store: KvStore, time: float, name: str, lock: _Lock, fence: int
    ) -> None:
        if fence not in lock.granted:
            lock.granted.add(fence)
            lock.granted_max = max(lock.granted_max, fence)
            self.counts["granted"] += 1
        waiters = store.read(Get(lock_key(name, 0)[:-16], True))
        assert isinstance(waiters, GetResult)
        lowest = min((kv.create_revision for kv in waiters.items), default=None)
        if lowest != fence:
            self._fail(
                time,
                "lock-grant-order",
                name,
                lock,
                f"at slot {order[0]} the store granted it to fence {fence} while the "
                f"lowest live waiter key has create revision {lowest}",
            )

    def _fail(self, time: float, rule: str, name: str, lock: _Lock, detail: str) -> None:
        if rule in lock.named:
            return
        lock.named.add(rule)
        self._violations.append(Violation(time, rule, f"lock {name!r}: {detail}"))


__all__ = ["LockWatch"]
