"""Prometheus metrics of one node.

Each ``NodeMetrics`` owns its own ``CollectorRegistry``, so several nodes can
live in one process (tests, the simulator, ``paxon dev`` in one interpreter)
without their series clashing. There is no ``node`` label: one registry is one
node, and Prometheus adds the ``instance`` label when it scrapes.

The node runtime updates the prometheus_client objects directly
(``metrics.commits.inc()``, ``metrics.slot_chosen.set(n)``); ``render`` gives
the body and content type that ``GET /metrics`` serves.

Besides the node's own series, each registry carries what dashboards already
chart for any service: the process (``process_*``: CPU, memory, open files),
the Python runtime (``python_info``, ``python_gc_*``), ``paxon_build_info``
(version and Python), and the requests it serves:

- ``paxon_requests_total{api, op}``, ``paxon_request_errors_total{api, op,
  code}`` and ``paxon_request_seconds{api, op}``: every client request this
  node answers, by ``api`` (``native`` or ``http``) and operation (``put``,
  ``get``, ``txn``, ``delete``, ``compact``, ``lease_*``, ``lock``, ``watch``,
  ``auth``, ``status``, ``members``, ``authenticate``; ``other`` for a command
  that is not the key-value store's). An error is an answer that did not do
  what was asked: a native ``Failure`` (its code) or ``Redirect`` (code
  ``redirect``: ask the leader), a key-value error reply, or an HTTP status of
  400 and over (the JSON ``code``), except a ``GET`` of an absent key (404) and
  a failed compare (412), which are answers. Where the histogram samples:
  native, from the request frame's arrival at this node's transport (past the
  in-flight bound: one refused there is counted by ``paxon_requests_refused``
  only) to its response being queued on the connection (a forwarded or
  redirected request counts on each node it reaches); HTTP, from the request
  entering the application to its response being ready, so it includes the
  Host/Origin guard, the in-flight bound, forwarding to the leader and, for a
  watch, the whole stream (``server.http_metrics``).
- ``paxon_http_requests_total{route, method, status}`` and
  ``paxon_http_request_seconds{route, method}``: every HTTP request, by its
  route pattern (``/v1/kv/{key}``, never the key itself; ``other`` for a path
  without a route), sampled from the request entering the application to its
  response, so it includes the guard and error answers.
"""

from __future__ import annotations

import platform

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from paxon.kv.operations import error_code_of_reply, operation_name
from paxon.net.client_messages import (
    Authenticate,
    ChangeMembers,
    ClientRequest,
    ClientResponse,
    Failure,
    Query,
    Redirect,
    Reply,
    StatusRequest,
    Submit,
)
from paxon.node.request_tally import RequestTally
from paxon.version import __version__

FSYNC_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
"""From 0.1 ms (a fast NVMe write cache) to 1 s (a disk in trouble)."""

COMMIT_BUCKETS_S = (*FSYNC_BUCKETS_S, 2.5, 5.0, 10.0)
"""Fsync buckets plus the slow tail up to the default client timeout of 10 s."""


REQUEST_BUCKETS_S = COMMIT_BUCKETS_S
"""A request answered at once (a redirect, a local read) to one the client gives up on."""

NO_ROUTE = "other"
"""The ``route`` label of an HTTP request that matched no route (bounded: never the
path), and the ``method`` label of a method outside ``HTTP_METHODS``."""

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
"""The methods counted under their own name."""


_NATIVE_OPERATIONS: dict[type, str] = {
    StatusRequest: "status",
    Authenticate: "authenticate",
    ChangeMembers: "members",
}


class NodeMetrics:
    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        # The process and the runtime, as every Python service exports them (the
        # default registry's collectors read /proc and gc only when scraped).
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
        Info("paxon_build", "The paxon version and Python it runs on.", registry=registry).info(
            {"version": __version__, "python": platform.python_version()}
        )
        # paxon_requests_total, paxon_request_errors_total, paxon_request_seconds:
        # counted in plain dicts, built when scraped (``request_tally``).
        self.request_tally = RequestTally(REQUEST_BUCKETS_S)
        registry.register(self.request_tally)
        self._http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.http_requests = Counter(
            "paxon_http_requests",
            "HTTP requests, by route pattern, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_request_seconds = Histogram(
            "paxon_http_request_seconds",
            "Seconds from an HTTP request entering the application to its response.",
            ["route", "method"],
            buckets=REQUEST_BUCKETS_S,
            registry=registry,
        )

        self.proposals = Counter(
            "paxon_proposals", "Client commands proposed by this node.", registry=registry
        )
        self.commits = Counter(
            "paxon_commits", "Client commands applied (chosen and executed).", registry=registry
        )
        self.slots_chosen = Counter(
            "paxon_slots_chosen", "Log slots this node learned as chosen.", registry=registry
        )
        self.elections = Counter(
            "paxon_elections", "Times this node started phase 1.", registry=registry
        )
        self.leader_changes = Counter(
            "paxon_leader_changes", "Times this node saw the leader change.", registry=registry
        )
        self.bad_frames = Counter(
            "paxon_bad_frames", "Frames rejected at the network edge.", registry=registry
        )
        self.handshakes_refused = Counter(
            "paxon_handshakes_refused",
            "Connections refused in their handshake (wrong cluster, id, certificate or proof).",
            registry=registry,
        )
        self.incarnations_refused = Counter(
            "paxon_incarnations_refused",
            "Peer handshakes refused for naming another data directory incarnation than "
            "the one the newest configuration binds (a wiped member back under its id).",
            registry=registry,
        )
        self.connections_refused = Counter(
            "paxon_connections_refused",
            "Connections closed at once for being over a connection bound.",
            registry=registry,
        )
        self.requests_refused = Counter(
            "paxon_requests_refused",
            "Client requests answered 'busy' for being over the in-flight bound.",
            registry=registry,
        )
        self.snapshots_refused = Counter(
            "paxon_snapshots_refused",
            "Snapshot chunks or whole snapshots ignored (not from the leader, not asked "
            "for, undecodable, too large), by reason.",
            ["reason"],
            registry=registry,
        )
        self.core_refused = Counter(
            "paxon_core_refused",
            "Messages the protocol core ignored as out of bounds (not from a member, a "
            "ballot the wire cannot carry, a slot past the window, an unasked Learn), by reason.",
            ["reason"],
            registry=registry,
        )
        self._core_seen: dict[str, int] = {}
        self._network_seen: dict[str, int] = {}
        self.snapshot_failures = Counter(
            "paxon_snapshot_failures",
            "Snapshots of the state machine that could not be written.",
            registry=registry,
        )

        self.fsync_seconds = Histogram(
            "paxon_fsync_seconds",
            "Duration of one write-ahead log fsync.",
            buckets=FSYNC_BUCKETS_S,
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "paxon_commit_seconds",
            "Proposal to reply latency of a client command on the leader.",
            buckets=COMMIT_BUCKETS_S,
            registry=registry,
        )

        self.apply_lag = Gauge(
            "paxon_apply_lag_slots", "slot_chosen - slot_applied.", registry=registry
        )
        self.slot_chosen = Gauge(
            "paxon_slot_chosen", "Highest slot this node knows is chosen.", registry=registry
        )
        self.slot_applied = Gauge(
            "paxon_slot_applied", "Highest slot applied to the state machine.", registry=registry
        )
        self.log_start = Gauge(
            "paxon_log_start", "First slot still held in the log.", registry=registry
        )
        self.ballot_round = Gauge(
            "paxon_ballot_round", "Round of the highest ballot this node knows.", registry=registry
        )
        self.is_leader = Gauge(
            "paxon_is_leader", "1 while this node is the leader, else 0.", registry=registry
        )
        self.kv_revision = Gauge(
            "paxon_kv_revision",
            "The key-value store's revision as this node applied it.",
            registry=registry,
        )
        self.kv_revision_compacted = Gauge(
            "paxon_kv_revision_compacted",
            "The oldest revision a read can still ask for (history before it is cut).",
            registry=registry,
        )
        self.peer_reachable = Gauge(
            "paxon_peer_reachable",
            "1 while the link to the peer is up, else 0.",
            ["peer"],
            registry=registry,
        )

    def observe_network(self, totals: dict[str, int]) -> None:
        """Advance the network counters to the transport's running totals."""
        for name, total in totals.items():
            counter: Counter = getattr(self, name)
            seen = self._network_seen.get(name, 0)
            if total > seen:
                counter.inc(total - seen)
                self._network_seen[name] = total

    def observe_core(self, totals: dict[str, int]) -> None:
        """Advance the core's refusal counters to its running totals (which restart
        at zero with the process, as a Prometheus counter does)."""
        for reason, total in totals.items():
            seen = self._core_seen.get(reason, 0)
            if total > seen:
                self.core_refused.labels(reason=reason).inc(total - seen)
                self._core_seen[reason] = total

    def observe_request(self, api: str, op: str, seconds: float, code: str | None) -> None:
        """One client request answered: ``code`` is None for a success."""
        self.request_tally.observe(api, op, seconds, code)

    def observe_native(
        self, request: ClientRequest, response: ClientResponse, seconds: float
    ) -> None:
        """A native request answered (``Transport``'s ``on_client_answer``).

        Dispatch with ``isinstance``, not ``match``: this runs for every request."""
        if isinstance(request, Submit | Query):
            op = operation_name(request.payload)
        else:
            op = _NATIVE_OPERATIONS[type(request)]
        error: str | None = None
        if isinstance(response, Reply):
            error = error_code_of_reply(response.payload)
        elif isinstance(response, Failure):
            error = response.code
        elif isinstance(response, Redirect):
            error = "redirect"
        self.request_tally.observe("native", op, seconds, error)

    def observe_native_reply(self, request: ClientRequest, reply: bytes, seconds: float) -> None:
        """``observe_native(request, Reply(..., reply), seconds)`` for an answer sent
        with ``ClientConnection.reply`` (``Transport``'s ``on_client_reply``)."""
        kind = type(request)
        op = (
            operation_name(request.payload)  # type: ignore[union-attr]
            if kind is Submit or kind is Query
            else _NATIVE_OPERATIONS[kind]
        )
        self.request_tally.observe("native", op, seconds, error_code_of_reply(reply))

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered (``route``: its pattern, or ``NO_ROUTE``).

        A method outside ``HTTP_METHODS`` is counted as ``other``: with the
        route's pattern and a status, the label set stays small whatever a
        client sends, and so does the cache of children."""
        if method not in HTTP_METHODS:
            method = NO_ROUTE
        key = (route, method, status)
        children = self._http_children.get(key)
        if children is None:  # labels() costs more than the update: look it up once
            children = (
                self.http_requests.labels(route, method, str(status)),
                self.http_request_seconds.labels(route, method),
            )
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of this node, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
