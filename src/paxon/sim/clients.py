"""The simulated clients of a ``RuntimeCluster``: each runs its operations on lanes.

A client picks a random key and a read, a write or a compare-and-set,
sends it to a node through the native request types (``Query``, ``Submit``)
over the simulated network, and retries on the next node at a timeout, a
redirect (straight to the named leader) or a retryable failure. "The next
node" is the next one, in node order, that the operation was not yet sent to
in this round (a round ends when it was sent to all), so a lane never loops
between nodes that cannot serve it. Each
operation is recorded in the cluster's history for the linearizability
checker: invoked when first sent, returned when its reply arrives.

A client has ``config.client_lanes`` lanes, each with one operation in
flight, as ``paxon.Client`` runs concurrent calls: a lane is a session of its
own (lane 0's client id is the client's endpoint, lane k's is
``k << 32 | endpoint``), numbers its commands 1, 2, 3, ..., and keeps its own
target. The lanes share the client's endpoint (its network fate), so request
ids are ``attempt * lanes + lane``. With one lane a client behaves, and draws
from its stream, exactly as before lanes existed.

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
_RETRYABLE = frozenset({"busy", "unavailable", "timeout", "not_leader", "no_quorum"})


@dataclass(slots=True)
class Lane:
    """One session of a client: its own client id, one operation at a time."""

    client: SimClient
    number: int
    session_id: int
    target: int
    seq: int = 0
    attempt: int = 0
    op: HistoryOp | None = None
    payload: bytes | None = None
    redirected: bool = False
    # The nodes this operation was sent to since the lane last went round all.
    tried: set[int] = field(default_factory=set)

    @property
    def request_id(self) -> int:
        return self.attempt * len(self.client.lanes) + self.number


@dataclass(slots=True)
class SimClient:
    endpoint: int
    lanes: list[Lane] = field(default_factory=list)
    last_seen: dict[str, str | None] = field(default_factory=dict)


class Clients:
    """The cluster's clients (``config.clients`` of them), spread over the members."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self._rng = random.Random(f"{seed}:clients")
        members = cluster.first_members  # a spare is no member yet
        self.all: list[SimClient] = []
        for index in range(cluster.config.clients):
            client = SimClient(CLIENT_BASE + index)
            client.lanes = [
                Lane(
                    client,
                    number,
                    number << _LANE_ID_SHIFT | client.endpoint,
                    target=members[index % len(members)],
                )
                for number in range(cluster.config.client_lanes)
            ]
            self.all.append(client)

    def start(self) -> None:
        """Each client starts its first operations, a little after the last client."""
        for index, client in enumerate(self.all):
            for lane in client.lanes:
                at = 0.05 + 0.01 * index + _LANE_START_GAP_S * lane.number
                self._cluster.push(at, functools.partial(self._next, lane))

    def receive(self, endpoint: int, response: ClientResponse) -> None:
        """An answer reaches client ``endpoint``."""
        cluster = self._cluster
        client = self.all[endpoint - CLIENT_BASE]
        lane = client.lanes[response.request_id % len(client.lanes)]
        op = lane.op
        if op is None or response.request_id != lane.request_id:
            return  # an answer to an attempt already given up
        if isinstance(response, Redirect | Failure):
            if isinstance(response, Redirect) and response.leader_id is not None:
                lane.target = response.leader_id
                lane.redirected = True
            elif isinstance(response, Failure) and response.code not in _RETRYABLE:
                cluster.checker.fail(
                    cluster.time,
                    "client-error",
                    f"client {endpoint} #{op.op_id} {op.kind} failed: "
                    f"{response.code}: {response.message}",
                )
            lane.attempt += 1  # the pending timeout no longer applies
            cluster.push(cluster.time + 0.005, lambda: self._next(lane))
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
        lane.op = None
        lane.payload = None
        lane.tried.clear()
        lane.attempt += 1
        think = 0.005 + 0.03 * self._rng.random()
        cluster.push(cluster.time + think, lambda: self._next(lane))

    def _next(self, lane: Lane) -> None:
        """Start a new operation on ``lane``, or retry its current one on the next node."""
        if lane.op is None:
            self._start_op(lane)
            return
        if not lane.redirected:
            lane.target = self._next_untried(lane)
        lane.redirected = False
        self._send(lane)

    def _next_untried(self, lane: Lane) -> int:
        """The node after the lane's last target that this operation has not
        been sent to since it last went round them all: a node left behind that
        keeps naming a removed leader cannot hold the lane in a loop that never
        reaches the members (swarm seeds 2000990, 3001298). ``paxon.Client``
        escapes the same loop by skipping nodes that failed lately."""
        members = self._cluster.members
        if lane.tried.issuperset(members):
            lane.tried.clear()
        target = lane.target
        for _ in members:
            target = members[target % len(members)]
            if target not in lane.tried:
                break
        return target

    def _start_op(self, lane: Lane) -> None:
        cluster = self._cluster
        rng = self._rng
        client = lane.client
        key = f"k{rng.randrange(cluster.config.keys)}"
        op_id = len(cluster.history)
        roll = rng.random()
        # The first ``readers`` clients only read (a dashboard, a cache
        # filler): one sticks to a deposed leader while others write elsewhere.
        if roll < 0.4 or client.endpoint - CLIENT_BASE < cluster.config.readers:
            op = HistoryOp(op_id, key, "read", (), cluster.time)
            lane.payload = None
        else:
            lane.seq += 1
            value = f"c{lane.session_id}.{lane.seq}"
            if roll < 0.75:
                op = HistoryOp(op_id, key, "write", (value,), cluster.time)
                lane.payload = write_command(key, value)
            else:
                expect = client.last_seen.get(key)
                op = HistoryOp(op_id, key, "cas", (expect, value), cluster.time)
                lane.payload = cas_command(key, expect, value)
            cluster.checker.on_submit(Command(lane.session_id, lane.seq, lane.payload))
        lane.op = op
        cluster.history.append(op)
        if cluster.tracing:
            cluster.log(
                f"client {client.endpoint}{_lane_name(lane)} invokes #{op_id} {op.kind} "
                f"{key} {op.args}"
            )
        self._send(lane)

    def _send(self, lane: Lane) -> None:
        cluster = self._cluster
        op = lane.op
        assert op is not None
        endpoint = lane.client.endpoint
        lane.attempt += 1
        request: ClientRequest
        if lane.payload is None:
            request = Query(lane.request_id, read_query(op.key), True)
        else:
            request = Submit(lane.request_id, lane.session_id, lane.seq, lane.payload)
        target = lane.target
        lane.tried.add(target)
        for delay in cluster.network.delays(endpoint, target):
            cluster.push(
                cluster.time + delay,
                lambda: cluster.deliver_request(endpoint, target, request),
            )
        attempt = lane.attempt
        cluster.push(
            cluster.time + cluster.config.client_timeout_s,
            lambda: self._timeout(lane, attempt),
        )

    def _timeout(self, lane: Lane, attempt: int) -> None:
        if lane.attempt == attempt and lane.op is not None:
            self._next(lane)


def _lane_name(lane: Lane) -> str:
    return f"/{lane.number}" if len(lane.client.lanes) > 1 else ""


# Lane k's session id is ``k << _LANE_ID_SHIFT | endpoint``: distinct from every
# endpoint, and lane 0's is the endpoint itself (one-lane seeds as before).
_LANE_ID_SHIFT = 32
# The lanes of one client start this far apart (a burst, as concurrent calls).
_LANE_START_GAP_S = 0.0005
