"""The simulated clients of a ``RuntimeCluster``: each runs one operation at a time.

A client picks a random key and a read, a write or a compare-and-set,
sends it to a node through the native request types (``Query``, ``Submit``)
over the simulated network, and retries on the next node at a timeout, a
redirect (straight to the named leader) or a retryable failure. Each
operation is recorded in the cluster's history for the linearizability
checker: invoked when first sent, returned when its reply arrives.

Contract: every random choice comes from the clients' own stream
(``{seed}:clients``), drawn in the same order for a seed; a reply to an
attempt already given up is ignored; a non-retryable failure or a reply the
client cannot decode is a violation.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from paxon.errors import PaxonError
from paxon.net.client_messages import (
    ClientRequest,
    ClientResponse,
    Failure,
    Query,
    Redirect,
    Reply,
    Submit,
)
from paxon.protocol.types import Command
from paxon.sim.config import HistoryOp
from paxon.sim.network import CLIENT_BASE
from paxon.sim.workload import (
    UnexpectedReply,
    cas_command,
    decode_reply,
    read_query,
    write_command,
)

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster

# Failures a client retries (on the next node) rather than report.
_RETRYABLE = frozenset({"busy", "unavailable", "timeout", "not_leader"})


@dataclass(slots=True)
class SimClient:
    endpoint: int
    seq: int = 0
    attempt: int = 0
    target: int = 1
    op: HistoryOp | None = None
    payload: bytes | None = None
    redirected: bool = False
    last_seen: dict[str, str | None] = field(default_factory=dict)


class Clients:
    """The cluster's clients (``config.clients`` of them), spread over the members."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self._rng = random.Random(f"{seed}:clients")
        members = cluster.first_members  # a spare is no member yet
        self.all = [
            SimClient(CLIENT_BASE + index, target=members[index % len(members)])
            for index in range(cluster.config.clients)
        ]

    def start(self) -> None:
        """Each client starts its first operation, a little after the last."""
        for index, _ in enumerate(self.all):
            self._cluster.push(0.05 + 0.01 * index, functools.partial(self._next, index))

    def receive(self, endpoint: int, response: ClientResponse) -> None:
        """An answer reaches client ``endpoint``."""
        cluster = self._cluster
        client = self.all[endpoint - CLIENT_BASE]
        op = client.op
        if op is None or response.request_id != client.attempt:
            return  # an answer to an attempt already given up
        index = endpoint - CLIENT_BASE
        if isinstance(response, Redirect | Failure):
            if isinstance(response, Redirect) and response.leader_id is not None:
                client.target = response.leader_id
                client.redirected = True
            elif isinstance(response, Failure) and response.code not in _RETRYABLE:
                cluster.checker.fail(
                    cluster.time,
                    "client-error",
                    f"client {endpoint} #{op.op_id} {op.kind} failed: "
                    f"{response.code}: {response.message}",
                )
            client.attempt += 1  # the pending timeout no longer applies
            cluster.push(cluster.time + 0.005, lambda: self._next(index))
            return
        assert isinstance(response, Reply)
        try:
            result = decode_reply(op.kind, response.payload)
        except (UnexpectedReply, PaxonError) as error:
            cluster.checker.fail(cluster.time, "client-reply", f"client {endpoint}: {error}")
            result = "?"
        op.returned_at = cluster.time
        op.result = result
        cluster.stats.ops_completed += 1
        cluster.healing.on_op_completed(cluster.time)
        if op.kind == "read":
            client.last_seen[op.key] = result if isinstance(result, str) else None
        elif op.kind == "write" or (op.kind == "cas" and result is True):
            client.last_seen[op.key] = str(op.args[-1])
        if cluster.tracing:
            cluster.log(f"client {endpoint} completes #{op.op_id}: {result!r}")
        if cluster.healed_at is not None and cluster.stats.heal_progress_s is None:
            cluster.stats.heal_progress_s = cluster.time - cluster.healed_at
        client.op = None
        client.payload = None
        client.attempt += 1
        think = 0.005 + 0.03 * self._rng.random()
        cluster.push(cluster.time + think, lambda: self._next(index))

    def _next(self, index: int) -> None:
        """Start a new operation, or retry the current one on the next node."""
        client = self.all[index]
        if client.op is None:
            self._start_op(client)
            return
        if not client.redirected:
            members = self._cluster.members
            client.target = members[client.target % len(members)]
        client.redirected = False
        self._send(client)

    def _start_op(self, client: SimClient) -> None:
        cluster = self._cluster
        rng = self._rng
        key = f"k{rng.randrange(cluster.config.keys)}"
        op_id = len(cluster.history)
        roll = rng.random()
        # The first ``readers`` clients only read (a dashboard, a cache
        # filler): one sticks to a deposed leader while others write elsewhere.
        if roll < 0.4 or client.endpoint - CLIENT_BASE < cluster.config.readers:
            op = HistoryOp(op_id, key, "read", (), cluster.time)
            client.payload = None
        else:
            client.seq += 1
            value = f"c{client.endpoint}.{client.seq}"
            if roll < 0.75:
                op = HistoryOp(op_id, key, "write", (value,), cluster.time)
                client.payload = write_command(key, value)
            else:
                expect = client.last_seen.get(key)
                op = HistoryOp(op_id, key, "cas", (expect, value), cluster.time)
                client.payload = cas_command(key, expect, value)
            cluster.checker.on_submit(Command(client.endpoint, client.seq, client.payload))
        client.op = op
        cluster.history.append(op)
        if cluster.tracing:
            cluster.log(f"client {client.endpoint} invokes #{op_id} {op.kind} {key} {op.args}")
        self._send(client)

    def _send(self, client: SimClient) -> None:
        cluster = self._cluster
        op = client.op
        assert op is not None
        client.attempt += 1
        request: ClientRequest
        if client.payload is None:
            request = Query(client.attempt, read_query(op.key), True)
        else:
            request = Submit(client.attempt, client.endpoint, client.seq, client.payload)
        target = client.target
        for delay in cluster.network.delays(client.endpoint, target):
            cluster.push(
                cluster.time + delay,
                lambda: cluster.deliver_request(client.endpoint, target, request),
            )
        attempt = client.attempt
        index = client.endpoint - CLIENT_BASE
        cluster.push(
            cluster.time + cluster.config.client_timeout_s,
            lambda: self._timeout(index, attempt),
        )

    def _timeout(self, index: int, attempt: int) -> None:
        client = self.all[index]
        if client.attempt == attempt and client.op is not None:
            self._next(index)
