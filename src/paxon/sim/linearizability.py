"""Linearizability checker for per-key register histories.

The model is one register per key (initial value ``None``) with three operations:
``write(v)`` (always succeeds), ``read() -> v`` and ``cas(expect, new) -> bool``.

How the check works
-------------------
Linearizability is compositional: a history is linearizable iff the sub-history of every
key is. So the history is split per key and each key is checked on its own (keys in
sorted order, so the outcome is deterministic).

For one key, every completed operation contributes a *call* event at ``invoked_at`` and a
*return* event at ``returned_at``; the events are sorted by time, calls before returns at
equal times (so ``a.returned_at == b.invoked_at`` means "concurrent", never "ordered"),
ties broken by ``op_id``. An operation without an answer gets only a call event: it behaves
as if it returned at +infinity, so it never forces anything to happen before it.

The search (after Wing & Gong, with Lowe's memoisation) keeps the not-yet-linearized events
in a doubly linked list. Walking the list from its head, every call met before the first
return event belongs to an operation that may take effect next ("minimal"). The search
tries them in list order, completed ops first, then pending ones. If the register model
accepts the operation (a completed op must produce its recorded result; an op with unknown
outcome just applies its effect), its events are unlinked from the list, the choice is
pushed on an explicit stack, and the walk restarts at the head. Reaching a return event
means nothing else can go first: the search pops the last choice, relinks its events and
tries the next candidate after it. A ``(linearized-set bitmask, register value)`` pair that
was already reached is never explored twice, since its future does not depend on how it
was reached. The key is linearizable once every completed operation is linearized; pending
operations that are still left over are taken never to have happened.

Reductions (each keeps the verdict exact):

* Pending reads and pending CAS with ``expect == new`` cannot change the register: dropped.
* Completed reads and completed failed CASes ("observers") never change the register. If a
  minimal observer agrees with the current value, it is linearized at once and nothing else
  is tried at that point: in any valid continuation it can be moved to the front (it was
  minimal, so real-time order still holds, and no other op sees a different value).
* Pending ops are placed only where they are needed. In a valid linearization, a pending op
  can always be moved later (it constrains nothing) or dropped, so it is only ever needed
  in a short run right before a completed op that the current value does not fit; the run
  is at most one write followed by CASes, each changing the value. So a pending op is tried
  only if some minimal completed op does not fit the current value, and the value it
  produces fits such an op or is what a pending CAS among the candidates expects.
* Identical pending ops (same kind and arguments) are interchangeable once invoked, so they
  are used in order of invocation.
* Leaving a pending op out never hurts, so a state that has already failed with fewer
  pending ops linearized (same completed ops, same value) prunes the current one; trying
  completed candidates before pending ones makes such states tend to come first.
* A completed read (or successful CAS) expecting a value that no op on the key writes is
  reported at once, without a search.

On failure, the explanation shows the linearizable prefix found with the most completed
operations, and the completed operations that would have to come next but do not fit.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "LinearizabilityBudgetExceeded",
    "LinearizabilityResult",
    "Operation",
    "check_history",
]

_WRITE = 0
_READ = 1
_CAS = 2
_KIND_CODES = {"write": _WRITE, "read": _READ, "cas": _CAS}
_ARITY = {"write": 1, "read": 0, "cas": 2}
# How many operations of the linearizable prefix are listed in a failure explanation.
_PREFIX_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation on one key, as observed by the client."""

    op_id: int
    key: str
    kind: Literal["write", "read", "cas"]
    args: tuple[Hashable, ...]  # write: (value,), read: (), cas: (expect, new)
    invoked_at: float
    # None: no answer came; the op may have taken effect at any time after invoked_at, or never.
    returned_at: float | None
    result: Hashable  # meaningful only when returned_at is not None


@dataclass(frozen=True, slots=True)
class LinearizabilityResult:
    """Outcome of :func:`check_history`."""

    ok: bool
    key: str | None  # the first key (in sorted order) that failed, if any
    explanation: str
    states_explored: int


class LinearizabilityBudgetExceeded(Exception):
    """The search for some key needed more than ``max_states`` states: the check is
    inconclusive (neither a proof of linearizability nor a violation)."""

    def __init__(self, keys: Sequence[str], max_states: int, states_explored: int) -> None:
        self.keys = tuple(keys)
        self.max_states = max_states
        self.states_explored = states_explored
        super().__init__(
            f"linearizability check inconclusive: the search for key(s) "
            f"{', '.join(repr(k) for k in self.keys)} exceeded max_states={max_states} "
            f"({states_explored} states explored in total)"
        )


def check_history(
    operations: Iterable[Operation], *, max_states: int = 2_000_000
) -> LinearizabilityResult:
    """Check that a history of register operations is linearizable.

    ``max_states`` bounds the number of search states per key. A definite violation on any
    key is reported even if another key ran out of budget; otherwise, if some key ran out,
    :class:`LinearizabilityBudgetExceeded` is raised. Raises :class:`ValueError` for a
    malformed history (duplicate ``op_id``, bad arguments, ``returned_at < invoked_at``,
    non-bool result of a completed CAS).
    """
    if max_states < 1:
        raise ValueError(f"max_states must be positive, got {max_states}")
    by_key: dict[str, list[Operation]] = {}
    seen_ids: set[int] = set()
    for op in operations:
        _validate(op)
        if op.op_id in seen_ids:
            raise ValueError(f"duplicate op_id {op.op_id}")
        seen_ids.add(op.op_id)
        by_key.setdefault(op.key, []).append(op)

    total_states = 0
    exhausted: list[str] = []
    for key in sorted(by_key):
        outcome = _check_key(by_key[key], max_states)
        total_states += outcome.states
        if outcome.exhausted:
            exhausted.append(key)
        elif outcome.failure is not None:
            return LinearizabilityResult(
                ok=False,
                key=key,
                explanation=f"key {key!r}: {outcome.failure}",
                states_explored=total_states,
            )
    if exhausted:
        raise LinearizabilityBudgetExceeded(exhausted, max_states, total_states)
    return LinearizabilityResult(
        ok=True,
        key=None,
        explanation=f"linearizable ({len(by_key)} key(s), {len(seen_ids)} operation(s))",
        states_explored=total_states,
    )


def _validate(op: Operation) -> None:
    if op.kind not in _KIND_CODES:
        raise ValueError(f"op {op.op_id}: unknown kind {op.kind!r}")
    if len(op.args) != _ARITY[op.kind]:
        raise ValueError(f"op {op.op_id}: {op.kind} takes {_ARITY[op.kind]} args, got {op.args!r}")
    if math.isnan(op.invoked_at):
        raise ValueError(f"op {op.op_id}: invoked_at is NaN")
    if op.returned_at is not None:
        if math.isnan(op.returned_at) or op.returned_at < op.invoked_at:
            raise ValueError(
                f"op {op.op_id}: returned_at {op.returned_at} is before invoked_at {op.invoked_at}"
            )
        if op.kind == "cas" and not isinstance(op.result, bool):
            raise ValueError(
                f"op {op.op_id}: a completed cas must return a bool, got {op.result!r}"
            )


@dataclass(slots=True)
class _KeyOutcome:
    states: int
    exhausted: bool = False
    failure: str | None = None


def _relevant(op: Operation) -> bool:
    """Whether ``op`` can matter to the search (pending no-effect ops are dropped)."""
    if op.returned_at is not None:
        return True
    if op.kind == "read":
        return False
    return not (op.kind == "cas" and op.args[0] == op.args[1])


def _never_written(ops: list[Operation]) -> Operation | None:
    """The first completed op that observes a value no op writes (the initial None aside)."""
    written: set[Hashable] = {None}
    for op in ops:
        if op.kind != "read":
            written.add(op.args[-1])
    for op in ops:
        if op.returned_at is None:
            continue
        if op.kind == "read" and op.result not in written:
            return op
        if op.kind == "cas" and op.result is True and op.args[0] not in written:
            return op
    return None


def _check_key(key_ops: list[Operation], max_states: int) -> _KeyOutcome:
    ops = sorted((op for op in key_ops if _relevant(op)), key=lambda o: (o.invoked_at, o.op_id))
    n = len(ops)
    kinds = [_KIND_CODES[op.kind] for op in ops]
    arg0: list[Hashable] = [op.args[0] if op.args else None for op in ops]
    arg1: list[Hashable] = [op.args[1] if len(op.args) > 1 else None for op in ops]
    results = [op.result for op in ops]
    pending = [op.returned_at is None for op in ops]
    completed = sum(1 for p in pending if not p)
    remaining = completed  # completed ops not yet linearized
    if remaining == 0:
        return _KeyOutcome(states=0)
    impossible = _never_written(ops)
    if impossible is not None:
        return _KeyOutcome(
            states=0,
            failure=f"not linearizable: {_describe(impossible)} expects a value that no "
            "operation on this key writes",
        )

    # Event list: entry 2*i is the call of ops[i], 2*i+1 its return (completed ops only);
    # entry 2*n is the list head. -1 terminates the list.
    events: list[tuple[float, int, int, int]] = []
    for i, op in enumerate(ops):
        events.append((op.invoked_at, 0, op.op_id, 2 * i))
        if op.returned_at is not None:
            events.append((op.returned_at, 1, op.op_id, 2 * i + 1))
    events.sort()
    head = 2 * n
    nxt = [-1] * (2 * n + 1)
    prv = [-1] * (2 * n + 1)
    last = head
    for event in events:
        entry = event[3]
        nxt[last] = entry
        prv[entry] = last
        last = entry

    # Pending ops that are exact copies of each other (same kind and arguments) are
    # interchangeable once invoked, so they are used in order of invocation: each may only
    # be linearized after the previous copy, kept in twin_bit (0 for the first copy).
    twin_bit = [0] * n
    last_copy: dict[tuple[int, Hashable, Hashable], int] = {}
    for _, _, _, entry in events:
        i = entry >> 1
        if entry & 1 == 0 and pending[i]:
            signature = (kinds[i], arg0[i], arg1[i])
            if signature in last_copy:
                twin_bit[i] = 1 << last_copy[signature]
            last_copy[signature] = i

    # Memo of explored states: (completed ops linearized, register value) -> the sets of
    # pending ops linearized with them (each list keeps only the minimal sets). A state found
    # here with the same or fewer pending ops has failed: it is not on the current path,
    # whose linearized set only grows, and the search stops at the first success. Then so
    # does this state, as leaving a pending op out is always allowed. One caveat: after a
    # pending op the completed set is unchanged, so a state with fewer pending ops may be an
    # ancestor still being explored: only an exact match is taken then.
    pbits = sum(1 << i for i in range(n) if pending[i])
    seen: dict[tuple[int, Hashable], list[int]] = {(0, None): [0]}

    def explored(mask: int, value: Hashable, after_pending: bool) -> bool:
        used = seen.get((mask & ~pbits, value))
        if used is None:
            return False
        pmask = mask & pbits
        if after_pending:
            return pmask in used
        return any(u & pmask == u for u in used)

    def remember(mask: int, value: Hashable) -> None:
        pmask = mask & pbits
        used = seen.setdefault((mask & ~pbits, value), [])
        used[:] = [u for u in used if u & pmask != pmask]
        used.append(pmask)

    state: Hashable = None
    mask = 0
    states = 1
    # What the completed candidates at the current node that disagree with the register
    # need: values that would make a read / successful CAS acceptable, the expected values
    # of pending CASes among the candidates, and whether a failed CAS needs any other value.
    # None when no completed candidate disagrees: then no pending op is tried there.
    need: tuple[set[Hashable], set[Hashable], bool] | None = None
    # Choices made so far: (call entry linearized, register before it, forced?, need there).
    stack: list[tuple[int, Hashable, bool, tuple[set[Hashable], set[Hashable], bool] | None]]
    stack = []
    # For the explanation: the first prefix reached with the most completed ops.
    best_prefix: list[int] = []
    best_done = 0
    fresh = True  # at a node whose candidates have not been looked at yet
    phase = 0  # which candidates the walk is at: 0 completed ones, 1 pending ones
    entry = -1  # where to resume the walk over candidates when not fresh

    while True:
        chosen = -1
        forced = False
        new_state = state
        if fresh:
            # One pass over the candidates (the calls before the first return). An observer
            # that agrees with the register is linearized right away, alone (see module
            # docstring); otherwise note what the blocked candidates need.
            unblock: set[Hashable] = set()
            cas_from: set[Hashable] = set()
            failed_cas_blocked = False
            e = nxt[head]
            while e & 1 == 0:
                i = e >> 1
                kind = kinds[i]
                if pending[i]:
                    if kind == _CAS:
                        cas_from.add(arg0[i])
                elif kind == _READ:
                    if results[i] == state:
                        forced = True
                        break
                    unblock.add(results[i])
                elif kind == _CAS:
                    if results[i] is False:
                        if state != arg0[i]:
                            forced = True
                            break
                        failed_cas_blocked = True
                    elif state != arg0[i]:
                        unblock.add(arg0[i])
                e = nxt[e]
            if forced:
                if not explored(mask | (1 << (e >> 1)), state, False):
                    chosen = e
            else:
                blocked = failed_cas_blocked or bool(unblock)
                need = (unblock, cas_from, failed_cas_blocked) if blocked else None
                entry = nxt[head]
                phase = 0
        if not forced:
            # The candidates are the calls before the first return. Completed ops are tried
            # first (phase 0), then pending ones (phase 1): a state reached without a pending
            # op makes the same state reached with it redundant.
            e = entry
            while True:
                if e & 1:  # the first return
                    if phase == 0 and need is not None:
                        phase = 1
                        e = nxt[head]
                        continue
                    break
                i = e >> 1
                kind = kinds[i]
                if pending[i] != (phase == 1):
                    e = nxt[e]
                    continue
                if phase:
                    # Only worth it right before a blocked completed op that it (or a chain
                    # of pending CASes starting from its value) could unblock.
                    if need is None or mask & twin_bit[i] != twin_bit[i]:
                        ok = False
                    else:
                        if kind == _WRITE:
                            new_state = arg0[i]
                        elif state == arg0[i]:
                            new_state = arg1[i]
                        else:
                            new_state = state
                        ok = new_state != state and (
                            need[2] or new_state in need[0] or new_state in need[1]
                        )
                elif kind == _WRITE:
                    new_state = arg0[i]
                    ok = True
                elif kind == _READ:
                    new_state = state
                    ok = results[i] == state
                elif state == arg0[i]:  # a CAS that succeeds
                    new_state = arg1[i]
                    ok = results[i] is True
                else:  # a CAS that fails: no effect
                    new_state = state
                    ok = results[i] is False
                if ok and not explored(mask | (1 << i), new_state, phase == 1):
                    chosen = e
                    break
                e = nxt[e]

        if chosen != -1:
            if states >= max_states:
                return _KeyOutcome(states=states, exhausted=True)
            i = chosen >> 1
            mask |= 1 << i
            remember(mask, new_state)
            states += 1
            stack.append((chosen, state, forced, need))
            state = new_state
            # Unlink the call and, if any, its return.
            a, b = prv[chosen], nxt[chosen]
            nxt[a] = b
            if b != -1:
                prv[b] = a
            if not pending[i]:
                ret = chosen + 1
                a, b = prv[ret], nxt[ret]
                nxt[a] = b
                if b != -1:
                    prv[b] = a
                remaining -= 1
                if remaining == 0:
                    return _KeyOutcome(states=states)
                if completed - remaining > best_done:
                    best_done = completed - remaining
                    best_prefix = [frame[0] >> 1 for frame in stack]
            fresh = True
            continue

        # No candidate left here: undo the last choice and try the one after it. A forced
        # choice was the only one worth trying at its node, so that node fails as well.
        while True:
            if not stack:
                return _KeyOutcome(states=states, failure=_explain(ops, best_prefix))
            e, state, forced, need = stack.pop()
            i = e >> 1
            mask ^= 1 << i
            # Relink in reverse order of unlinking: the return first, then the call.
            if not pending[i]:
                ret = e + 1
                a, b = prv[ret], nxt[ret]
                nxt[a] = ret
                if b != -1:
                    prv[b] = ret
                remaining += 1
            a, b = prv[e], nxt[e]
            nxt[a] = e
            if b != -1:
                prv[b] = e
            if not forced:
                entry = nxt[e]
                phase = 1 if pending[i] else 0
                fresh = False
                break


def _apply(op: Operation, state: Hashable) -> Hashable:
    if op.kind == "write":
        return op.args[0]
    if op.kind == "cas" and state == op.args[0]:
        return op.args[1]
    return state


def _describe(op: Operation) -> str:
    args = ", ".join(repr(a) for a in op.args)
    call = f"#{op.op_id} {op.kind}({args})"
    if op.returned_at is None:
        return f"{call} -> ? [{op.invoked_at:g}, pending]"
    if op.kind != "write":
        call = f"{call} -> {op.result!r}"
    return f"{call} [{op.invoked_at:g}, {op.returned_at:g}]"


def _explain(ops: list[Operation], prefix: list[int]) -> str:
    """Describe the longest linearizable prefix and the ops that could not follow it.

    ``prefix`` has the most completed ops of all prefixes the search reached, so none of the
    completed ops that may come next fits, even after some ops with unknown outcome.
    """
    state: Hashable = None
    for i in prefix:
        state = _apply(ops[i], state)
    done = set(prefix)
    # The first return of a completed op not linearized yet; the ops that may come next are
    # those called no later (calls sort before returns at equal times).
    deadline, blocking = min(
        (op.returned_at, op.op_id)
        for i, op in enumerate(ops)
        if i not in done and op.returned_at is not None
    )
    stuck = [
        op
        for i, op in enumerate(ops)
        if i not in done and op.returned_at is not None and op.invoked_at <= deadline
    ]
    n_pending = sum(1 for i in prefix if ops[i].returned_at is None)
    n_completed = sum(1 for op in ops if op.returned_at is not None)
    lines = [
        f"not linearizable; the longest linearizable prefix found has {len(prefix)} op(s) "
        f"({len(prefix) - n_pending} of {n_completed} completed ones, {n_pending} with "
        "unknown outcome assumed to have taken effect):"
    ]
    shown = prefix[-_PREFIX_SHOWN:]
    if len(shown) < len(prefix):
        lines.append(f"  ... {len(prefix) - len(shown)} earlier op(s) omitted")
    lines.extend(f"  {_describe(ops[i])}" for i in shown)
    lines.append(
        f"after it the register holds {state!r}, and none of these completed ops can take "
        f"effect next (not even after ops with unknown outcome), though one must before "
        f"#{blocking} returns at {deadline:g}:"
    )
    lines.extend(f"  {_describe(op)}" for op in stuck)
    return "\n".join(lines)
