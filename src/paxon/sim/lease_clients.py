"""The lease holders of a ``RuntimeCluster``: clients that grant, use, keep and drop leases.

Each of ``config.lease_clients`` holders runs one command at a time on the
real ``KvStore`` through the native ``Submit`` request, with its own session
(client id = its endpoint, after the register clients' and the operator's):

- with no lease, it **grants** one, TTL drawn from ``TTLS_MS`` (1 to 3 s of
  log time; the store's minimum is 1 s), then **puts** a key with it;
- holding one, at ``KEEP_FRACTION`` of the TTL after its last renewal was
  sent, it **keeps it alive** (most often), **puts** another key with it,
  **revokes** it, or **abandons** it (stops keeping it alive, so it expires,
  and grants a new one at once);
- a keep-alive or put answered ``lease_not_found`` means the lease expired
  meanwhile (a slow retry under faults): it grants a new one.

Retries follow the register clients (``paxon.sim.clients``): the same
``(client_id, seq)`` to the next member at a timeout, straight to the named
leader at a redirect, after a short pause at a retryable failure; any other
failure, or a reply no correct store sends, is a violation.

The holders' keys (``L<holder>.<n>``) are kept apart from the registers'
(``k<n>``): the linearizability model (``paxon.sim.linearizability``) knows
registers that never vanish, and a leased key vanishes at an expiry point
the client does not see. Nothing they do enters the client history; the
lease watch (``paxon.sim.lease_watch``) judges them instead, from the first
send time of each command (``LeaseWatch.on_sent``) and what the replicas apply.

Contract: every random choice comes from the holders' own stream
(``{seed}:leases``), so the register clients draw as before; a reply to an
attempt already given up is ignored.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from paxon.kv.codec import decode_result, encode_command
from paxon.kv.model import (
    Command as KvCommand,
)
from paxon.kv.model import (
    ErrorResult,
    LeaseGrant,
    LeaseGrantResult,
    LeaseKeepAlive,
    LeaseKeepAliveResult,
    LeaseRevoke,
    LeaseRevokeResult,
    Put,
    PutResult,
)
from paxon.net.client_messages import ClientResponse, Failure, Redirect, Reply, Submit
from paxon.protocol.types import Command
from paxon.sim.network import CLIENT_BASE

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster

TTLS_MS: Final = (1000, 1500, 2000, 3000)
"""The TTLs the holders grant (milliseconds of log time)."""

KEEP_FRACTION: Final = (0.2, 0.6)
"""A holder acts again this share of the TTL (uniform) after its last renewal was sent."""

# The odds, at each step while holding a lease, of each action besides keep-alive.
_ABANDON: Final = 0.15
_REVOKE: Final = 0.1
_PUT: Final = 0.15

# Failures a holder retries (on the next node) rather than report.
_RETRYABLE = frozenset({"busy", "unavailable", "timeout", "not_leader", "no_quorum"})
_LEASE_GONE = "lease_not_found"


@dataclass(slots=True)
class Holder:
    """One lease client: its session, its command in flight, the lease it keeps."""

    index: int
    endpoint: int
    target: int
    seq: int = 0
    attempt: int = 0
    kind: str | None = None  # the command in flight: grant, keep-alive, put, revoke
    payload: bytes | None = None
    sent_at: float = 0.0  # the command in flight's first send
    redirected: bool = False
    lease: int = 0  # the lease it keeps alive (0: none)
    ttl_ms: int = 0
    renewed_at: float = 0.0  # first send of the last grant or keep-alive answered
    keys: int = 0  # keys put so far (they are named in order)
    put_due: bool = False  # a lease just granted: put a key with it next


class LeaseClients:
    """The cluster's lease holders (``config.lease_clients`` of them)."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self._rng = random.Random(f"{seed}:leases")
        members = cluster.first_members
        # After the register clients (CLIENT_BASE + i) and the operator's endpoint.
        base = CLIENT_BASE + cluster.config.clients + 1
        self.all = [
            Holder(index, base + index, target=members[(index + 1) % len(members)])
            for index in range(cluster.config.lease_clients)
        ]
        self._base = base
        self.counts: dict[str, int] = {"abandoned": 0, "lost": 0}

    def holds(self, endpoint: int) -> bool:
        """Whether ``endpoint`` is one of the lease holders'."""
        return 0 <= endpoint - self._base < len(self.all)

    def start(self) -> None:
        for holder in self.all:
            at = 0.06 + 0.01 * holder.index
            self._cluster.push(at, functools.partial(self._step, holder))

    def receive(self, endpoint: int, response: ClientResponse) -> None:
        """An answer reaches holder ``endpoint``."""
        cluster = self._cluster
        holder = self.all[endpoint - self._base]
        if holder.kind is None or response.request_id != holder.attempt:
            return  # an answer to an attempt already given up
        if isinstance(response, Redirect | Failure):
            if isinstance(response, Redirect) and response.leader_id is not None:
                holder.target = response.leader_id
                holder.redirected = True
            elif isinstance(response, Failure) and response.code not in _RETRYABLE:
                cluster.checker.fail(
                    cluster.time,
                    "client-error",
                    f"lease client {endpoint} {holder.kind} #{holder.seq} failed: "
                    f"{response.code}: {response.message}",
                )
            holder.attempt += 1  # the pending timeout no longer applies
            cluster.push(cluster.time + 0.005, functools.partial(self._retry, holder))
            return
        assert isinstance(response, Reply)
        self._on_reply(holder, response.payload)

    # ------------------------------------------------------------------ steps

    def _on_reply(self, holder: Holder, payload: bytes) -> None:
        cluster = self._cluster
        kind = holder.kind
        result = decode_result(payload)
        gone = isinstance(result, ErrorResult) and result.code == _LEASE_GONE
        if kind == "grant" and isinstance(result, LeaseGrantResult):
            holder.lease, holder.ttl_ms = result.lease, result.ttl_ms
            holder.put_due = True
            holder.renewed_at = holder.sent_at
        elif kind == "keep-alive" and isinstance(result, LeaseKeepAliveResult):
            holder.renewed_at = holder.sent_at
        elif kind in ("keep-alive", "put") and gone:
            self.counts["lost"] += 1  # it expired while this command was on its way
            holder.lease = 0
        elif kind == "revoke" and (isinstance(result, LeaseRevokeResult) or gone):
            holder.lease = 0
        elif not (kind == "put" and isinstance(result, PutResult) and result.succeeded):
            cluster.checker.fail(
                cluster.time,
                "client-reply",
                f"lease client {holder.endpoint}: a {kind} was answered with {result!r}",
            )
            holder.lease = 0
        if cluster.tracing:
            cluster.log(f"lease client {holder.endpoint} {kind} #{holder.seq}: {result!r}")
        holder.kind = None
        holder.payload = None
        holder.attempt += 1
        if kind == "grant" and holder.lease:
            at = cluster.time + 0.005  # put a key with it at once
        elif holder.lease:
            share = self._rng.uniform(*KEEP_FRACTION)
            at = max(cluster.time + 0.005, holder.renewed_at + share * holder.ttl_ms / 1000)
        else:
            at = cluster.time + 0.005 + 0.03 * self._rng.random()
        cluster.push(at, functools.partial(self._step, holder))

    def _step(self, holder: Holder) -> None:
        """Start the holder's next command."""
        if holder.kind is not None:
            return
        rng = self._rng
        if holder.lease and (holder.put_due or rng.random() < _PUT):
            self._put(holder)
            return
        roll = rng.random()
        if holder.lease and roll < _ABANDON:
            self.counts["abandoned"] += 1
            self._cluster.leases.on_abandoned(holder.lease)
            holder.lease = 0
        if not holder.lease:
            ttl_ms = rng.choice(TTLS_MS)
            self._submit(holder, "grant", LeaseGrant(ttl_ms), ttl_ms=ttl_ms)
        elif roll < _ABANDON + _REVOKE:
            self._submit(holder, "revoke", LeaseRevoke(holder.lease), lease_id=holder.lease)
        else:
            self._submit(holder, "keep-alive", LeaseKeepAlive(holder.lease))

    def _put(self, holder: Holder) -> None:
        holder.keys += 1
        holder.put_due = False
        key = f"L{holder.index}.{holder.keys}"
        self._submit(holder, "put", Put(key, b"held", lease=holder.lease))

    def _submit(
        self, holder: Holder, kind: str, command: KvCommand, *, ttl_ms: int = 0, lease_id: int = 0
    ) -> None:
        cluster = self._cluster
        holder.seq += 1
        holder.kind = kind
        holder.payload = encode_command(command)
        holder.sent_at = cluster.time
        cluster.checker.on_submit(Command(holder.endpoint, holder.seq, holder.payload))
        cluster.leases.on_sent(
            (holder.endpoint, holder.seq), kind, cluster.time, ttl_ms=ttl_ms, lease_id=lease_id
        )
        if cluster.tracing:
            cluster.log(f"lease client {holder.endpoint} sends {kind} #{holder.seq} {command}")
        self._send(holder)

    def _retry(self, holder: Holder) -> None:
        if holder.kind is None:
            return
        if not holder.redirected:
            members = self._cluster.members
            holder.target = members[holder.target % len(members)]
        holder.redirected = False
        self._send(holder)

    def _send(self, holder: Holder) -> None:
        cluster = self._cluster
        assert holder.payload is not None
        holder.attempt += 1
        request = Submit(holder.attempt, holder.endpoint, holder.seq, holder.payload)
        endpoint, target = holder.endpoint, holder.target
        for delay in cluster.network.delays(endpoint, target):
            cluster.push(
                cluster.time + delay,
                lambda: cluster.deliver_request(endpoint, target, request),
            )
        attempt = holder.attempt
        cluster.push(
            cluster.time + cluster.config.client_timeout_s,
            lambda: self._timeout(holder, attempt),
        )

    def _timeout(self, holder: Holder, attempt: int) -> None:
        if holder.attempt == attempt and holder.kind is not None:
            self._retry(holder)


__all__ = ["KEEP_FRACTION", "TTLS_MS", "Holder", "LeaseClients"]
