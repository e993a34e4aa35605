"""A client load for cluster tests that change the members: checked for
linearizability, and for acknowledged writes that must all survive.

``MixedLoad`` runs ``clients`` asyncio clients from one background thread. Each
client repeats two operations:

- a register operation on one of ``REGISTER_KEYS`` (write, linearizable read,
  or compare-and-set by value through a transaction), recorded with its
  invocation and answer times for ``paxon.sim.linearizability``; one that timed
  out or found no node has an unknown outcome (``returned_at`` None);
- a put of a new key ``n-<client>-<step>``, kept in ``acked`` once answered
  (``unknown`` if not), so the end can read every acknowledged one back (it
  is in the history too, a write on a key of its own).

A Timeout or Unavailable does not end a client: it records the unknown outcome
and goes on, so a test can stop progress on purpose and see it come back.

``finish(kv)`` stops the clients, reads every register once more through ``kv``
(a final read the history must explain) and checks the whole history; every
acknowledged put must then read back through each member the test names.
``gaps(start, end)`` is the longest stretch in ``[start, end]`` in which no
operation of any client was answered: an upper bound on the time the cluster
had no leader that served (a linearizable read or a write needs one).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Hashable, Sequence

import paxon
from paxon.kv.model import Compare, PutOp, Txn
from paxon.sim.linearizability import Operation, check_history

REGISTER_KEYS = ("r0", "r1", "r2")
NEW_KEY_PREFIX = "n-"
STOP_JOIN_S = 30.0


class History:
    """A concurrent history of register operations, for ``check_history``
    (``test_nemesis`` records its clients here too)."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []
        self.completed = 0
        self.answered_at: list[float] = []  # when each answered operation returned
        self.lock = threading.Lock()

    def record(
        self,
        key: str,
        kind: str,
        args: tuple[Hashable, ...],
        invoked_at: float,
        returned_at: float | None,
        result: Hashable,
    ) -> None:
        with self.lock:
            self.operations.append(
                Operation(
                    len(self.operations),
                    key,
                    kind,  # type: ignore[arg-type]
                    args,
                    invoked_at,
                    returned_at,
                    result,
                )
            )
            if returned_at is not None:
                self.completed += 1
                self.answered_at.append(returned_at)


def recent_value(history: History, key: str) -> str | None:
    """The last value some client saw or wrote for ``key`` (so some CAS succeed)."""
    with history.lock:
        recent = history.operations[-50:]
    for op in reversed(recent):
        if op.key == key and op.returned_at is not None:
            if op.kind == "write":
                return str(op.args[0])
            if op.kind == "read":
                return None if op.result is None else str(op.result)
    return None


class MixedLoad:
    def __init__(
        self, endpoints: Sequence[str], *, clients: int = 4, timeout_s: float = 10.0, seed: int = 1
    ) -> None:
        self.endpoints = list(endpoints)
        self.clients = clients
        self.timeout_s = timeout_s
        self.seed = seed
        self.history = History()
        self.acked: dict[str, bytes] = {}
        self.unknown: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="mixed-load", daemon=True)

    def __enter__(self) -> MixedLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=STOP_JOIN_S)

    # ------------------------------------------------------------ what a test asks

    @property
    def answered(self) -> int:
        with self.history.lock:
            return self.history.completed

    def wait_progress(self, more: int, timeout_s: float, what: str, describe: str = "") -> None:
        """Until ``more`` operations beyond those answered now have been answered."""
        target = self.answered + more
        deadline = time.monotonic() + timeout_s
        while self.answered < target:
            self._raise_if_failed()
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"waited {timeout_s} s for {more} answers {what} "
                    f"({self.answered} of {target})\n{describe}"
                )
            time.sleep(0.05)

    def answered_between(self, start: float, end: float) -> list[Operation]:
        """Answered operations invoked at or after ``start`` that returned by ``end``."""
        with self.history.lock:
            operations = list(self.history.operations)
        return [
            op
            for op in operations
            if op.returned_at is not None and op.invoked_at >= start and op.returned_at <= end
        ]

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time within ``[start, end]`` in which no operation was answered."""
        with self.history.lock:
            times = sorted(t for t in self.history.answered_at if start <= t <= end)
        edges = [start, *times, end]
        return max(later - earlier for earlier, later in itertools.pairwise(edges))

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=STOP_JOIN_S)
        assert not self._thread.is_alive(), "the load's clients did not stop"
        self._raise_if_failed()

    def finish(self, kv: paxon.SyncClient) -> str:
        """Stops the load, reads each register once more through ``kv`` (linearizable),
        and checks the history; every acknowledged put must read back through ``kv``.
        What was checked, in a line."""
        self.stop()
        for key in REGISTER_KEYS:
            invoked = time.monotonic()
            item = kv.get(key)
            value = None if item is None else item.value.decode()
            self.history.record(key, "read", (), invoked, time.monotonic(), value)
        verdict = check_history(self.history.operations)
        assert verdict.ok, verdict.explanation
        self.check_acked(kv, serializable=False)
        unanswered = sum(op.returned_at is None for op in self.history.operations)
        return (
            f"{verdict.explanation}, {unanswered} unanswered; "
            f"{len(self.acked)} acknowledged puts read back"
        )

    def check_acked(self, kv: paxon.SyncClient, *, serializable: bool) -> None:
        """Every acknowledged put reads back through ``kv``, written exactly once."""
        read = kv.get_prefix(NEW_KEY_PREFIX, serializable=serializable)
        items = {item.key: item for item in read}
        lost = sorted(key for key in self.acked if key not in items)
        assert not lost, f"{len(lost)} acknowledged puts lost: {lost[:10]}"
        wrong = [key for key, value in self.acked.items() if items[key].value != value]
        assert not wrong, f"acknowledged puts read back with other values: {wrong[:10]}"
        twice = [item for item in items.values() if item.version != 1]
        assert not twice, f"puts of new keys applied more than once: {twice[:5]}"
        strangers = set(items) - set(self.acked) - self.unknown
        assert not strangers, f"keys no client wrote: {sorted(strangers)[:10]}"

    # ------------------------------------------------------------ the clients

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise AssertionError(f"a client crashed: {self._error!r}") from self._error

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as error:  # handed to the test thread by stop()
            self._error = error

    async def _run(self) -> None:
        async with paxon.Client(self.endpoints, timeout=self.timeout_s) as kv:
            await asyncio.gather(*(self._client(kv, index) for index in range(self.clients)))

    async def _client(self, kv: paxon.Client, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        step = 0
        while not self._stopping.is_set():
            step += 1
            await self._register_operation(kv, rng, f"{index}:{step}")
            await self._put_new_key(kv, f"{NEW_KEY_PREFIX}{index}-{step:06d}", f"{index}:{step}")

    async def _register_operation(self, kv: paxon.Client, rng: random.Random, new: str) -> None:
        key = rng.choice(REGISTER_KEYS)
        roll = rng.random()
        invoked = time.monotonic()
        result: Hashable = None
        if roll < 0.4:
            kind, args = "write", (new,)
        elif roll < 0.75:
            kind, args = "read", ()
        else:
            expect = recent_value(self.history, key) if rng.random() < 0.7 else None
            kind, args = "cas", (expect, new)
        try:
            if kind == "write":
                await kv.put(key, new)
            elif kind == "read":
                item = await kv.get(key)
                result = None if item is None else item.value.decode()
            else:
                result = await _cas_by_value(kv, key, args[0], new)
        except (paxon.Timeout, paxon.Unavailable):
            self.history.record(key, kind, args, invoked, None, None)
            return
        self.history.record(key, kind, args, invoked, time.monotonic(), result)

    async def _put_new_key(self, kv: paxon.Client, key: str, value: str) -> None:
        invoked = time.monotonic()
        try:
            await kv.put(key, value)
        except (paxon.Timeout, paxon.Unavailable):
            with self._lock:
                self.unknown.add(key)
            self.history.record(key, "write", (value,), invoked, None, None)
            return
        with self._lock:
            self.acked[key] = value.encode()
        self.history.record(key, "write", (value,), invoked, time.monotonic(), None)


async def _cas_by_value(kv: paxon.Client, key: str, expect: Hashable, new: str) -> bool:
    if expect is None:
        compare = Compare(key, "version", "==", 0)
    else:
        compare = Compare(key, "value", "==", str(expect).encode())
    result = await kv.txn(Txn((compare,), (PutOp(key, new.encode()),), ()))
    return result.succeeded
