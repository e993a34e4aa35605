"""The lock contenders of a ``RuntimeCluster``: clients that take one lock in
turn, write a guarded key with their fence, and let go.

Each of ``config.lock_clients`` contenders does what ``paxon.locking.Lock``
does, one request at a time (``paxon.sim.requests``), with its own session
(client id = its endpoint, after the lease holders'):

1. **grant** a lease, TTL drawn from ``TTLS_MS`` (log time);
2. **acquire**: ``LockAcquire(LOCK_NAME, lease, delay)``, the lock-delay drawn
   from ``DELAYS_MS``; the answer names its waiter key and fence, and whether
   it holds the lock already;
3. **wait**, if not: ask ``LockState`` (serializable: any member, from its
   applied state, maybe behind) every ``POLL_S`` until it names this waiter's
   key and fence as the holder;
4. **fenced write**: ``Txn((Fence.guard(),), (PutOp(GUARDED_KEY, ...),))``;
   answered ``succeeded`` or refused (the lease was lost: start again);
5. **release**: revoke the lease (the next waiter holds the lock at once),
   delete the waiter key and acquire again with the same lease (a new fence),
   or abandon the lease (it expires and the lock-delay runs).

Throughout, the lease is kept alive at ``KEEP_AT`` of its TTL after the
last renewal was sent; a ``lease_not_found`` answer means it was lost: start
again at 1. Before a fenced write, a holder sometimes stalls (``STALL``): no
keep-alive for longer than its TTL, as a holder paused or cut off that still
believes it holds the lock; its write must be refused if the lock went on.

What they send goes to the lock watch (``paxon.sim.fencing``), which judges
from what the store applied, not from what a contender believes. Their keys
(``_paxon/lock/...``, ``GUARDED_KEY``) are not the registers'. Contract: every
random choice comes from their own stream (``{seed}:locks``).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from paxon.kv.codec import decode_result, encode_command, encode_query
from paxon.kv.model import (
    Command,
    Compare,
    Delete,
    DeleteResult,
    ErrorResult,
    LeaseGrant,
    LeaseGrantResult,
    LeaseKeepAlive,
    LeaseKeepAliveResult,
    LeaseRevoke,
    LeaseRevokeResult,
    LockAcquire,
    LockAcquireResult,
    LockState,
    LockStateResult,
    PutOp,
    Txn,
    TxnResult,
)
from paxon.net.client_messages import ClientResponse, Failure, Reply
from paxon.sim.network import CLIENT_BASE
from paxon.sim.requests import Requester

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster

LOCK_NAME: Final = "sim"
"""The one lock the contenders take."""

GUARDED_KEY: Final = "F.sim"
"""The key the holders write with their fence (the guarded resource)."""

TTLS_MS: Final = (1000, 1500, 2000)
DELAYS_MS: Final = (0, 0, 200)
KEEP_AT: Final = 0.4
"""A contender keeps its lease alive this share of the TTL after the last renewal was sent."""
POLL_S: Final = (0.02, 0.06)
STALL: Final = 0.12
"""The odds a holder stalls past its TTL before its fenced write."""

# The odds of each way to let go (the rest: revoke).
_DELETE: Final = 0.25
_ABANDON: Final = 0.15
_LEASE_GONE = "lease_not_found"


@dataclass(slots=True)
class Contender:
    index: int
    requester: Requester
    phase: str = "grant"  # grant, acquire, wait, write, release
    kind: str = ""  # the request in flight
    sent_at: float = 0.0
    lease: int = 0
    ttl_ms: int = 0
    renewed_at: float = 0.0  # first send of the last grant or keep-alive answered
    stalled: bool = False  # keep-alives stopped until the fenced write
    key: str = ""
    fence: int = 0
    writes: int = 0


class LockClients:
    """The cluster's lock contenders (``config.lock_clients`` of them)."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self._rng = random.Random(f"{seed}:locks")
        config = cluster.config
        members = cluster.first_members
        self._base = CLIENT_BASE + config.clients + 1 + config.lease_clients
        self.all: list[Contender] = []
        for index in range(config.lock_clients):
            target = members[(index + 2) % len(members)]
            answer = functools.partial(self._answer_of, index)
            self.all.append(
                Contender(index, Requester(cluster, self._base + index, target, answer))
            )
        self.counts: dict[str, int] = {"held": 0, "lost": 0, "stalled": 0}

    @property
    def endpoints(self) -> range:
        return range(self._base, self._base + len(self.all))

    def holds(self, endpoint: int) -> bool:
        return endpoint in self.endpoints

    def receive(self, endpoint: int, response: ClientResponse) -> None:
        """An answer reaches contender ``endpoint``."""
        self.all[endpoint - self._base].requester.receive(response)

    def start(self) -> None:
        for contender in self.all:
            at = 0.07 + 0.01 * contender.index
            self._cluster.push(at, functools.partial(self._step, contender))

    # ------------------------------------------------------------------ steps

    def _step(self, contender: Contender) -> None:
        """Send the contender's next request."""
        if contender.requester.busy:
            return
        cluster = self._cluster
        rng = self._rng
        lease = contender.lease
        if not lease or contender.phase == "grant":
            contender.ttl_ms = rng.choice(TTLS_MS)
            self._submit(contender, "grant", LeaseGrant(contender.ttl_ms))
        elif not contender.stalled and cluster.time >= self._keep_due(contender):
            self._submit(contender, "keep-alive", LeaseKeepAlive(lease))
        elif contender.phase == "acquire":
            delay_ms = rng.choice(DELAYS_MS)
            self._submit(contender, "acquire", LockAcquire(LOCK_NAME, lease, delay_ms))
        elif contender.phase == "wait":
            contender.kind = "state"
            contender.requester.query(encode_query(LockState(LOCK_NAME)))
        elif contender.phase == "write":
            contender.writes += 1
            value = f"{contender.fence}:{contender.index}.{contender.writes}".encode()
            guard = Compare(contender.key, "create_revision", "==", contender.fence)
            txn = Txn((guard,), (PutOp(GUARDED_KEY, value),))
            self._submit(contender, "fenced-write", txn)
        else:
            assert contender.phase == "release"
            roll = rng.random()
            if roll < _DELETE:
                self._submit(contender, "delete", Delete(contender.key))
            elif roll < _DELETE + _ABANDON:
                contender.lease = 0  # stop keeping it alive: it expires
                self._later(contender, 0.005)
            else:
                self._submit(contender, "revoke", LeaseRevoke(lease))

    def _keep_due(self, contender: Contender) -> float:
        return contender.renewed_at + KEEP_AT * contender.ttl_ms / 1000

    def _submit(self, contender: Contender, kind: str, command: Command) -> None:
        cluster = self._cluster
        requester = contender.requester
        contender.kind = kind
        contender.sent_at = cluster.time
        payload = encode_command(command)
        key = (requester.endpoint, requester.seq + 1)
        if kind == "acquire":
            cluster.locks.on_sent(key, "acquire", LOCK_NAME)
        elif kind == "fenced-write":
            cluster.locks.on_sent(key, "fenced-write", LOCK_NAME, fence=contender.fence)
        if cluster.tracing:
            cluster.log(f"lock client {requester.endpoint} sends {kind} {command}")
        requester.submit(payload)

    def _answer_of(self, index: int, response: Reply | Failure) -> None:
        self._on_answer(self.all[index], response)

    def _on_answer(self, contender: Contender, response: Reply | Failure) -> None:
        cluster = self._cluster
        kind = contender.kind
        if isinstance(response, Failure):
            cluster.checker.fail(
                cluster.time,
                "client-error",
                f"lock client {contender.requester.endpoint} {kind} failed: "
                f"{response.code}: {response.message}",
            )
            self._restart(contender)
            return
        result = decode_result(response.payload)
        if cluster.tracing:
            cluster.log(f"lock client {contender.requester.endpoint} {kind}: {result!r}")
        gone = isinstance(result, ErrorResult) and result.code == _LEASE_GONE
        pause = 0.002
        if gone:
            self.counts["lost"] += 1
            self._restart(contender)
        elif kind == "grant" and isinstance(result, LeaseGrantResult):
            contender.lease = result.lease
            contender.renewed_at = contender.sent_at
            contender.phase = "acquire"
        elif kind == "keep-alive" and isinstance(result, LeaseKeepAliveResult):
            contender.renewed_at = contender.sent_at
        elif kind == "acquire" and isinstance(result, LockAcquireResult):
            contender.key, contender.fence = result.key, result.fence
            contender.phase = "wait"
            if result.held:
                self._holds(contender)
        elif kind == "state" and isinstance(result, LockStateResult):
            if result.holder_key == contender.key and result.fence == contender.fence:
                self._holds(contender)
            else:
                pause = self._rng.uniform(*POLL_S)
            if self._rng.random() < 0.2:
                contender.requester.rotate()
        elif kind == "fenced-write" and isinstance(result, TxnResult):
            contender.stalled = False
            if result.succeeded:
                contender.phase = "release"
            else:
                self.counts["lost"] += 1  # the lock went on while it stalled
                self._restart(contender)
        elif kind == "delete" and isinstance(result, DeleteResult):
            contender.phase = "acquire"  # again, with the same lease: a new fence
        elif kind == "revoke" and isinstance(result, LeaseRevokeResult):
            self._restart(contender)
        else:
            cluster.checker.fail(
                cluster.time,
                "client-reply",
                f"lock client {contender.requester.endpoint}: a {kind} was answered "
                f"with {result!r}",
            )
            self._restart(contender)
        if contender.phase == "write" and contender.stalled:
            pause = contender.ttl_ms / 1000 * 1.3 + 0.3
        self._later(contender, pause)

    def _holds(self, contender: Contender) -> None:
        self.counts["held"] += 1
        contender.phase = "write"
        if self._rng.random() < STALL:
            self.counts["stalled"] += 1
            contender.stalled = True

    def _restart(self, contender: Contender) -> None:
        contender.lease = 0
        contender.phase = "grant"
        contender.stalled = False

    def _later(self, contender: Contender, delay: float) -> None:
        cluster = self._cluster
        cluster.push(cluster.time + delay, functools.partial(self._step, contender))


__all__ = ["DELAYS_MS", "GUARDED_KEY", "LOCK_NAME", "TTLS_MS", "LockClients"]
