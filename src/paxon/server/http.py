"""The HTTP endpoint: the JSON key-value API, ``/metrics`` and the dashboard.

Routes and answers are fixed by docs/api.md ("HTTP API", "Transaction request"):

| route                   | answer                                                         |
|-------------------------|----------------------------------------------------------------|
| ``GET /v1/kv/{key}``    | the key's JSON; ``?prefix=1``: ``{"revision", "kvs"}`` (an     |
|                         | empty key lists every key) plus ``"more": true`` when cut     |
|                         | short; ``?limit=N`` and ``?after=K`` (keys > K) with prefix;   |
|                         | ``?serializable=1``; ``?revision=R``                           |
| ``PUT /v1/kv/{key}``    | body is the value; ``{"revision"}``; ``?expect_version=V``: CAS |
|                         | ``?lease=ID``: the key goes when lease ID ends                 |
| ``DELETE /v1/kv/{key}`` | ``{"deleted", "revision"}``; ``?prefix=1``                     |
| ``POST /v1/txn``        | ``{"succeeded", "revision", "responses"}``; the body must be   |
|                         | ``Content-Type: application/json``                             |
| ``POST /v1/compact``    | body ``{"revision": R}``; ``{"revision", "revision_compacted"}``:|
|                         | history before R is gone on every replica (a logged command)   |
| ``POST /v1/lease/grant``| body ``{"ttl": SECONDS}`` (1 to 2592000); ``{"id", "ttl"}``     |
| ``POST /v1/lease/keepalive`` | body ``{"id": ID}``; ``{"id", "ttl"}``, the TTL it has    |
|                         | again from now                                                 |
| ``POST /v1/lease/revoke``| body ``{"id": ID}``; ``{"deleted", "revision"}``: its keys went|
| ``GET /v1/lease/{id}``  | ``{"id", "granted_ttl", "ttl"}`` (seconds left); ``?keys=1``   |
|                         | adds ``"keys"``; ``?serializable=1``                           |
| ``GET /v1/leases``      | ``{"leases": [ID...]}``, the live leases; ``?serializable=1``  |
| ``POST /v1/auth/authenticate`` | body ``{"user", "password"}``; ``{"token"}``: send it as  |
|                         | ``Authorization: Bearer TOKEN`` (any node accepts it)          |
| ``GET /v1/status``      | the ``status --json`` object, from this node's view            |
| ``GET /v1/cluster``     | the same object with every member's row from that member (the  |
|                         | dashboard's view; what ``paxon status`` prints)                |
| ``GET /v1/members``     | ``{"configuration", "members"}``: the newest configuration and |
|                         | each member's row from its own view (``members list``)         |
| ``POST /v1/members``    | body ``{"action", "id": N, "address": "HOST:PORT"}``, action   |
|                         | ``add``, ``add-learner``, ``add-learner-auto-promote``,        |
|                         | ``promote`` or ``remove`` (address for the adds only); the     |
|                         | configuration once the change is chosen (docs/membership.md);  |
|                         | with auth enabled, a root user's token                         |
| ``GET /v1/snapshot``    | a backup of the store at one revision, streamed               |
|                         | (``application/octet-stream``, ``paxon.storage.backup``;       |
|                         | ``X-Paxon-Revision``); with auth enabled, a root user's token  |
| ``GET /v1/activity``    | extension: ``{"node_id", "interval_s", "samples_max",         |
|                         | "samples"}``, this node's last per-second samples             |
|                         | (``paxon.node.activity``); 400 ``not_supported`` without     |
|                         | a sampler (a node not run by ``paxon serve``)                 |
| ``GET /v1/slots``       | extension: ``{"node_id", "log_start", "commit_index",         |
|                         | "slot_next" (a leader's; else null), "slots_max", "slots"}``: |
|                         | the last slots of the log it holds, each ``{"slot",           |
|                         | "ballot", "state", "noop", "commands"}``, state ``chosen``,   |
|                         | ``in_flight`` or ``hole``; ``?limit=N`` (at most              |
|                         | ``RECENT_SLOTS_MAX``, 64)                                     |
| ``GET /metrics``        | Prometheus text                                                |
| ``GET /health``         | 200 ``{"health": "ok", "node_id"}`` while the process serves   |
| ``GET /readyz``         | 200 with the readiness report (``paxon.node.readiness``) when  |
|                         | the node knows a leader, is caught up and can write its disk;  |
|                         | else 503 with the same report, ``"code": "not_ready"`` and the |
|                         | failing check named in ``"failed"`` and ``"error"``            |
| ``GET /``               | the dashboard page                                             |

``GET /v1/kv/...`` also sends the store's revision in ``X-Paxon-Revision``.

A lease that does not exist (never granted, revoked, or expired) is 404
``lease_not_found``, from every route that names one (``PUT /v1/kv`` with
``?lease=`` and the transaction's ``"lease"`` too).

Auth (``docs/security.md``): the ``/v1/kv``, ``/v1/txn`` and lease routes pass the
``Authorization: Bearer TOKEN`` header's token to the service, which wraps it
around the command; with auth enabled, no token or a bad one is 401
``unauthenticated`` (with ``WWW-Authenticate: Bearer``), a token without the
permission is 403 ``permission_denied``, and nothing is applied. An
``Authorization`` header that is not ``Bearer`` with a token of at most
``TOKEN_MAX_BYTES`` is 401. ``/v1/status``, ``/v1/cluster``, ``/v1/activity``,
``/v1/slots``, ``/metrics``,
``/health``, ``/readyz`` and the dashboard stay open, as etcd leaves ``/metrics``
and ``/health`` open: they show members, roles and counters, never a key, a
value, a user or a path.

This module is an edge: it validates everything a client sends (the key is the
percent-decoded UTF-8 path after ``/v1/kv/``; query parameters are checked by
name, count and type, and an unknown one is refused; every integer, in a query
or a JSON body, is within -2**63 .. 2**63-1 or the route's tighter range;
bodies are bounded by ``body_max_bytes``) and hands typed commands to a
``KvService``, which the node runtime implements. It holds no state of its own.

Browsers: every request passes ``guard.RequestGuard`` first (its ``Host`` is a
name of this node, its ``Origin``, if any, is this node's own or allowed), and
``POST`` bodies must be ``application/json``, which a cross-site form cannot
send. No CORS header is ever sent, so a page on another origin can neither
send a ``PUT``/``DELETE`` nor read an answer.

Limits (defaults; each is a keyword of ``make_app`` / ``start_http``):

| limit                          | default     | over it                               |
|--------------------------------|-------------|---------------------------------------|
| ``body_max_bytes``             | 1,114,112   | 413 ``too_large``                     |
| ``range_max_keys`` (per answer)| 10,000      | ``"more": true``, the rest cut        |
| ``range_max_bytes`` (per       | 4 MiB of    | ``"more": true`` (the first key is    |
| answer, keys + values)         | raw bytes   | always sent, so reading progresses)   |
| ``requests_in_flight_max``     | 256         | 503 ``busy`` (nothing applied)        |
| ``BACKUPS_MAX`` (being sent)  | 1           | 503 ``busy``                          |
| ``connections_max``            | 512         | the connection is closed at once      |
| idle keep-alive                | 30 s        | the connection is closed              |
| TLS handshake                  | 10 s        | the connection is closed              |
| request line / header field    | 8,190 bytes | 400 (aiohttp's own limits)            |
| header count                   | 128         | 400 (aiohttp's own limits)            |

The range bounds apply to a prefix ``GET`` and to the ``get`` responses of a
transaction together (one budget per answer). Worst-case memory for bodies is
``requests_in_flight_max * body_max_bytes`` (about 272 MiB by default).

Every error answer is JSON ``{"error": message, "code": code}``:

| cause                           | status               | code, extra fields               |
|---------------------------------|----------------------|----------------------------------|
| a ``paxon.errors`` error        | its ``http_status``  | its ``code``                     |
| ``NotLeader``                   | 421                  | ``not_leader``, ``leader``,      |
|                                 |                      | ``leader_address``               |
| ``RevisionCompacted``           | 400                  | ``compacted``,                   |
|                                 |                      | ``revision_compacted`` (the      |
|                                 |                      | oldest kept, when known)         |
| key absent (``GET``)            | 404                  | ``not_found``, ``revision``      |
| CAS mismatch                    | 412                  | ``compare_failed``, ``revision``,|
|                                 |                      | ``version`` (the current one)    |
| ``Host`` not a name of the node | 403                  | ``host_not_allowed``             |
| foreign ``Origin``              | 403                  | ``origin_not_allowed``           |
| ``POST`` body not JSON          | 415                  | ``unsupported_media_type``       |
| body over ``body_max_bytes``    | 413                  | ``too_large``                    |
| too many requests in flight     | 503                  | ``busy``                         |
| this node leads but has heard   | 503                  | ``no_quorum``                    |
| from no majority within 0.3 s   |                      |                                  |
| (``election_timeout_min_s``)    |                      |                                  |
| this node has not heard its     | 503                  | ``leader_unreachable``,          |
| leader within 0.3 s, or knows   |                      | ``leader``, ``leader_address``   |
| none: it does not forward       |                      | (null when it knows none)        |
| no such route / method          | 404 / 405            | ``not_found`` /                  |
|                                 |                      | ``method_not_allowed``           |
| anything else (a bug)           | 500                  | ``internal``; traceback logged   |

A 4xx answer means nothing was applied; 503 and 504 mean the outcome of a
write is unknown (docs/api.md); a 503 ``busy`` from this module was refused
before anything was done. ``no_quorum`` and ``leader_unreachable`` come at
once (``paxon.node.failfast``): retry on another node, or at
``leader_address``; the message says whether the request was refused on
arrival ("nothing was done") or failed while held ("outcome ... unknown").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol
from urllib.parse import unquote

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from paxon.errors import (
    BadRequest,
    Busy,
    LeaderUnreachable,
    NotLeader,
    NotSupported,
    PaxonError,
    RevisionCompacted,
    Unauthenticated,
)
from paxon.kv.auth import TOKEN_MAX_BYTES
from paxon.kv.jsonforms import (
    event_to_json,
    keyvalue_to_json,
    lease_id_from_json,
    lease_ttl_ms,
    object_from_json,
    result_to_json,
    txn_from_json,
)
from paxon.kv.model import (
    EVENTS_PAGE_MAX,
    INT_MAX,
    CompactResult,
    DeleteResult,
    Events,
    EventsResult,
    GetResult,
    KeyValue,
    LeaseGrantResult,
    LeaseKeepAliveResult,
    LeaseListResult,
    LeaseRevokeResult,
    LeaseTimeToLiveResult,
    PutResult,
    Txn,
    TxnResponse,
    TxnResult,
)
from paxon.net.client_messages import MEMBER_ACTIONS
from paxon.node.metrics import NodeMetrics
from paxon.protocol.replica import RECENT_SLOTS_MAX
from paxon.server.dashboard import dashboard_page
from paxon.server.guard import RememberingGuard, RequestGuard
from paxon.server.http_metrics import metrics_middleware
from paxon.storage.backup import BackupMeta, encode_chunks, encoded_size

log = logging.getLogger(__name__)

DEFAULT_BODY_MAX_BYTES: Final = 1_048_576 + 64 * 1024
"""The largest value (1 MiB) plus room for a transaction's JSON around it."""
RANGE_MAX_KEYS: Final = 10_000
RANGE_MAX_BYTES: Final = 4 * 1024 * 1024
REQUESTS_IN_FLIGHT_MAX: Final = 256
CONNECTIONS_MAX: Final = 512
KEEPALIVE_TIMEOUT_S: Final = 30.0
TLS_HANDSHAKE_TIMEOUT_S: Final = 10.0

KV_PREFIX: Final = "/v1/kv/"
WATCH_PREFIX: Final = "/v1/watch/"
WATCH_STREAMS_MAX: Final = 256
"""Open ``/v1/watch`` streams per node (each holds a connection of CONNECTIONS_MAX)."""
BACKUPS_MAX: Final = 1
"""Backups (``GET /v1/snapshot``) a node sends at once: each holds a copy of the
whole encoded store in memory until its reader has it."""
WATCH_WAIT_S: Final = 5.0
"""A watch stream writes a progress line at least this often while idle."""
INTEGER_MAX: Final = 2**63 - 1
JSON_CONTENT_TYPE: Final = "application/json"
_DIGITS = re.compile(r"[0-9]{1,19}")
_TRUE = frozenset({"", "1", "true"})
_FALSE = frozenset({"0", "false"})
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


class KvService(Protocol):
    """What the HTTP endpoint needs from a node; the node runtime implements it.

    Methods raise ``paxon.errors`` errors for answers other than success.
    """

    async def put(
        self,
        key: str,
        value: bytes,
        *,
        expect_version: int | None,
        lease: int = 0,
        token: str | None = None,
    ) -> PutResult: ...

    async def get(
        self,
        key: str,
        *,
        prefix: bool,
        serializable: bool,
        revision: int | None,
        token: str | None = None,
    ) -> GetResult: ...

    async def delete(self, key: str, *, prefix: bool, token: str | None = None) -> DeleteResult: ...

    async def txn(self, txn: Txn, *, token: str | None = None) -> TxnResult: ...

    async def compact(self, revision: int, *, token: str | None = None) -> CompactResult:
        """Drop the history before ``revision`` (a command through the log)."""
        ...

    async def grant_lease(self, ttl_ms: int, *, token: str | None = None) -> LeaseGrantResult:
        """A new lease of ``ttl_ms`` milliseconds of log time."""
        ...

    async def keep_alive(self, lease: int, *, token: str | None = None) -> LeaseKeepAliveResult:
        """Renew ``lease`` for its whole TTL; ``LeaseNotFound`` if it has ended."""
        ...

    async def revoke_lease(self, lease: int, *, token: str | None = None) -> LeaseRevokeResult:
        """End ``lease`` and delete its keys; ``LeaseNotFound`` if it has ended."""
        ...

    async def lease_time_to_live(
        self, lease: int, *, keys: bool, serializable: bool, token: str | None = None
    ) -> LeaseTimeToLiveResult: ...

    async def leases(self, *, serializable: bool, token: str | None = None) -> LeaseListResult: ...

    async def events(self, query: Events, *, token: str | None = None) -> EventsResult:
        """A page of a watch (``paxon.kv.model.Events``), held for ``wait_ms``."""
        ...

    async def authenticate(self, user: str, password: str) -> str:
        """A token for ``user``; ``Unauthenticated`` for a wrong user or password."""
        ...

    def status(self) -> dict[str, Any]:
        """The ``status --json`` object of docs/api.md, from this node's view."""
        ...

    async def cluster_status(self) -> dict[str, Any]:
        """The ``status --json`` object with each member's row from that member."""
        ...

    async def change_members(
        self, action: str, node_id: int, address: str, *, token: str | None = None
    ) -> dict[str, Any]:
        """Change the members by one; the configuration once the change is chosen."""
        ...

    def activity(self) -> dict[str, Any] | None:
        """The recent per-second samples (``paxon.node.activity``); None if it keeps none."""
        ...

    def recent_slots(self, count: int) -> dict[str, Any]:
        """The last ``count`` (at most ``RECENT_SLOTS_MAX``) slots of the log as this
        node holds them (``Node.recent_slots``)."""
        ...

    def metrics_text(self) -> tuple[bytes, str]:
        """The ``/metrics`` body and its content type."""
        ...

    async def backup(self, *, token: str | None = None) -> tuple[BackupMeta, bytes]:
        """A backup of the store, fresh and at one revision (``paxon.node.backup``)."""
        ...

    def readiness(self) -> dict[str, Any] | None:
        """This node's readiness report (``paxon.node.readiness.judge``), None if
        it keeps none (a node not run by ``paxon serve``)."""
        ...


def make_app(
    service: KvService,
    *,
    listen_host: str | None = None,
    allowed_hosts: Iterable[str] = (),
    allowed_origins: Iterable[str] = (),
    body_max_bytes: int = DEFAULT_BODY_MAX_BYTES,
    range_max_keys: int = RANGE_MAX_KEYS,
    range_max_bytes: int = RANGE_MAX_BYTES,
    requests_in_flight_max: int = REQUESTS_IN_FLIGHT_MAX,
    metrics: NodeMetrics | None = None,
) -> web.Application:
    """The application; ``ValueError`` for a limit below 1 or a malformed host or origin.

    ``listen_host`` is the HTTP listen host as given (a known ``Host`` name);
    ``allowed_hosts`` and ``allowed_origins`` are the settings of the same
    names (see ``paxon.server.guard``). With ``metrics``, every request is
    counted and timed there (``paxon.server.http_metrics``).
    """
    if min(body_max_bytes, range_max_keys, range_max_bytes, requests_in_flight_max) < 1:
        raise ValueError("body_max_bytes and the range and request limits must be >= 1")
    guard = RequestGuard.build(
        listen_host, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
    )
    routes = _Routes(service, _RangeLimits(range_max_keys, range_max_bytes))
    app = web.Application(
        client_max_size=body_max_bytes,
        middlewares=[
            *([] if metrics is None else [metrics_middleware(metrics)]),
            _error_middleware(body_max_bytes),
            _guard_middleware(guard),
            _in_flight_middleware(requests_in_flight_max),
        ],
    )
    app.router.add_get("/", routes.dashboard)
    app.router.add_get("/metrics", routes.metrics)
    app.router.add_get("/health", routes.health)
    app.router.add_get("/readyz", routes.readyz)
    app.router.add_get("/v1/snapshot", routes.snapshot)
    app.router.add_get("/v1/status", routes.status)
    app.router.add_get("/v1/cluster", routes.cluster_status)
    app.router.add_get("/v1/activity", routes.activity)
    app.router.add_get("/v1/slots", routes.recent_slots)
    app.router.add_get("/v1/members", routes.members)
    app.router.add_post("/v1/members", routes.change_members)
    app.router.add_post("/v1/txn", routes.txn)
    app.router.add_post("/v1/compact", routes.compact)
    app.router.add_post("/v1/auth/authenticate", routes.authenticate)
    app.router.add_post("/v1/lease/grant", routes.lease_grant)
    app.router.add_post("/v1/lease/keepalive", routes.lease_keep_alive)
    app.router.add_post("/v1/lease/revoke", routes.lease_revoke)
    app.router.add_get("/v1/lease/{id}", routes.lease_time_to_live)
    app.router.add_get("/v1/leases", routes.leases)
    app.router.add_get(WATCH_PREFIX + "{key:.*}", routes.watch)
    for path in ("/v1/kv", KV_PREFIX, KV_PREFIX + "{key:.+}"):
        app.router.add_get(path, routes.get)
        app.router.add_put(path, routes.put)
        app.router.add_delete(path, routes.delete)
    return app


async def start_http(
    service: KvService,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    connections_max: int = CONNECTIONS_MAX,
    **kw: Any,
) -> web.AppRunner:
    """Serve ``make_app(service, listen_host=host, **kw)`` on ``host:port``.

    HTTPS when ``ssl_context`` is given. ``OSError`` if it cannot bind. The
    caller stops it with ``await runner.cleanup()``; ``runner.addresses``
    gives the bound address (useful with ``port=0``).
    """
    if connections_max < 1:
        raise ValueError("connections_max must be >= 1")
    app = make_app(service, listen_host=host, **kw)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT_S)
    await runner.setup()
    try:
        await _CappedSite(runner, host, port, ssl_context, connections_max).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


class _CappedSite(web.BaseSite):
    """A TCP site that closes a new connection at once while ``connections_max`` are open.

    aiohttp has no connection cap of its own; this wraps its protocol factory,
    counting the connections its ``Server`` holds. The count lags by one event
    loop turn (a burst of accepts may pass the cap by up to one accept batch),
    and a TLS connection counts once its handshake is done, which
    ``TLS_HANDSHAKE_TIMEOUT_S`` bounds.
    """

    __slots__ = ("_connections_max", "_host", "_port")

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        connections_max: int,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._connections_max = connections_max

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "runner.setup() makes the server"

        def protocol() -> asyncio.BaseProtocol:
            if len(server.connections) >= self._connections_max:
                return _Refuse()
            return server()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            protocol,
            self._host,
            self._port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S if self._ssl_context else None,
        )


class _Refuse(asyncio.Protocol):
    """A connection over the cap: closed as soon as it is made, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class _RangeLimits:
    """How much one answer may list: ``keys_max`` keys, ``bytes_max`` key and value bytes."""

    __slots__ = ("bytes_max", "keys_max")

    def __init__(self, keys_max: int, bytes_max: int) -> None:
        self.keys_max = keys_max
        self.bytes_max = bytes_max


class _Budget:
    """What is left of one answer's range limits, spent as items are listed."""

    __slots__ = ("bytes_left", "keys_left", "listed")

    def __init__(self, keys_max: int, bytes_max: int) -> None:
        self.keys_left = keys_max
        self.bytes_left = bytes_max
        self.listed = 0

    def take(self, items: Iterable[KeyValue]) -> tuple[list[KeyValue], bool]:
        """The items that fit, and whether any were left out.

        The first item of an answer is always taken, whatever its size, so a
        reader paging with ``after`` always progresses.
        """
        taken: list[KeyValue] = []
        for item in items:
            size = len(item.key.encode()) + len(item.value)
            if self.keys_left < 1 or (size > self.bytes_left and self.listed > 0):
                return taken, True
            taken.append(item)
            self.listed += 1
            self.keys_left -= 1
            self.bytes_left -= size
        return taken, False


class _Routes:
    def __init__(self, service: KvService, range_limits: _RangeLimits) -> None:
        self.service = service
        self.range_limits = range_limits
        self.watch_streams = 0
        self.backups = 0
        self.dashboard_html = dashboard_page()

    async def get(self, request: web.Request) -> web.Response:
        query = _query(request, "prefix", "serializable", "revision", "limit", "after")
        prefix = _flag(query, "prefix")
        key = _key(request, empty_ok=prefix)
        limit = _integer(query, "limit", minimum=1)
        after = query.get("after")
        if not prefix and (limit is not None or after is not None):
            raise BadRequest("query parameters 'limit' and 'after' need prefix=1")
        result = await self.service.get(
            key,
            prefix=prefix,
            serializable=_flag(query, "serializable"),
            revision=_integer(query, "revision", minimum=0),
            token=_token(request),
        )
        headers = {"X-Paxon-Revision": str(result.revision)}
        if prefix:
            keys_max = min(limit or self.range_limits.keys_max, self.range_limits.keys_max)
            budget = _Budget(keys_max, self.range_limits.bytes_max)
            items = result.items if after is None else (i for i in result.items if i.key > after)
            taken, more = budget.take(items)
            body = result_to_json(GetResult(tuple(taken), result.revision))
            if more:
                body["more"] = True
            return web.json_response(body, headers=headers)
        if not result.items:
            body = {
                "error": f"key not found: {key!r}",
                "code": "not_found",
                "revision": result.revision,
            }
            return web.json_response(body, status=404, headers=headers)
        return web.json_response(keyvalue_to_json(result.items[0]), headers=headers)

    async def put(self, request: web.Request) -> web.Response:
        key = _key(request)
        query = _query(request, "expect_version", "lease")
        expect_version = _integer(query, "expect_version", minimum=0)
        lease = _integer(query, "lease", minimum=1) or 0
        value = await request.read()
        result = await self.service.put(
            key, value, expect_version=expect_version, lease=lease, token=_token(request)
        )
        if not result.succeeded:
            body = {
                "error": (
                    f"compare failed: {key!r} is at version {result.version}, "
                    f"expected {expect_version}"
                ),
                "code": "compare_failed",
                "revision": result.revision,
                "version": result.version,
            }
            return web.json_response(body, status=412)
        return web.json_response({"revision": result.revision})

    async def delete(self, request: web.Request) -> web.Response:
        key = _key(request)
        prefix = _flag(_query(request, "prefix"), "prefix")
        result = await self.service.delete(key, prefix=prefix, token=_token(request))
        return web.json_response(result_to_json(result))

    async def txn(self, request: web.Request) -> web.Response:
        _query(request)
        txn = txn_from_json(await _json_body(request))
        result = await self.service.txn(txn, token=_token(request))
        return web.json_response(self._txn_to_json(result))

    async def compact(self, request: web.Request) -> web.Response:
        _query(request)
        body = await _json_body(request)
        revision = body.get("revision")
        if (
            set(body) != {"revision"}
            or type(revision) is not int
            or not 0 <= revision <= INTEGER_MAX
        ):
            raise BadRequest(f'expected {{"revision": R}}, R an integer from 0 to {INTEGER_MAX}')
        result = await self.service.compact(revision, token=_token(request))
        return web.json_response(result_to_json(result))

    async def lease_grant(self, request: web.Request) -> web.Response:
        _query(request)
        body = await _json_body(request)
        if set(body) != {"ttl"}:
            raise BadRequest('expected {"ttl": SECONDS}')
        result = await self.service.grant_lease(lease_ttl_ms(body["ttl"]), token=_token(request))
        return web.json_response(result_to_json(result))

    async def lease_keep_alive(self, request: web.Request) -> web.Response:
        lease = await _lease_id_body(request)
        result = await self.service.keep_alive(lease, token=_token(request))
        return web.json_response(result_to_json(result))

    async def lease_revoke(self, request: web.Request) -> web.Response:
        lease = await _lease_id_body(request)
        result = await self.service.revoke_lease(lease, token=_token(request))
        return web.json_response(result_to_json(result))

    async def lease_time_to_live(self, request: web.Request) -> web.Response:
        query = _query(request, "keys", "serializable")
        text = request.match_info["id"]
        if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= INTEGER_MAX:
            raise BadRequest(
                f"a lease id is an integer from 1 to {INTEGER_MAX}, not {text[:100]!r}"
            )
        keys = _flag(query, "keys")
        result = await self.service.lease_time_to_live(
            int(text), keys=keys, serializable=_flag(query, "serializable"), token=_token(request)
        )
        body = result_to_json(result)
        if not keys:
            del body["keys"]  # not asked for: an empty list would say "no keys"
        return web.json_response(body)

    async def watch(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/watch/{key}?prefix=1&from_revision=R&prev=1``: newline-delimited
        JSON, one event a line (as ``paxon watch --json``), and a
        ``{"progress": R}`` line whenever ``WATCH_WAIT_S`` passes with none.
        Held open until the client goes. A compacted start is a 400 before
        the stream; an error later is a last ``{"error", "code"}`` line."""
        query = _query(request, "prefix", "from_revision", "prev")
        prefix = _flag(query, "prefix")
        key = _key(request, empty_ok=prefix)
        start = _integer(query, "from_revision", minimum=1)
        prev_kv = _flag(query, "prev")
        token = _token(request)
        if self.watch_streams >= WATCH_STREAMS_MAX:
            raise Busy(f"{self.watch_streams} watch streams open, the most this node serves")
        if start is None:  # after the revision now (a page asked past every revision)
            now = await self.service.events(Events(key, prefix, INT_MAX), token=token)
            start = now.revision + 1
        cursor = (start, "")
        wait_ms = int(WATCH_WAIT_S * 1000)
        first = await self.service.events(  # before the stream: its errors are a status
            Events(key, prefix, start, "", EVENTS_PAGE_MAX, prev_kv, 0), token=token
        )
        stream = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await stream.prepare(request)
        self.watch_streams += 1
        try:
            page = first
            while True:
                lines = [event_to_json(event) for event in page.events]
                cursor = (page.next_revision, page.next_key)
                if not page.events and not page.next_key:
                    lines.append({"progress": page.next_revision - 1})
                if lines:
                    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
                    await stream.write(text.encode())  # waits while the reader is slow
                events = Events(
                    key, prefix, cursor[0], cursor[1], EVENTS_PAGE_MAX, prev_kv, wait_ms
                )
                page = await self.service.events(events, token=token)
        except PaxonError as error:
            line = {"error": str(error), "code": error.code}
            with contextlib.suppress(ConnectionError):
                await stream.write((json.dumps(line) + "\n").encode())
        except ConnectionError:
            pass  # the client went
        finally:
            self.watch_streams -= 1
        return stream

    async def leases(self, request: web.Request) -> web.Response:
        query = _query(request, "serializable")
        serializable = _flag(query, "serializable")
        result = await self.service.leases(serializable=serializable, token=_token(request))
        return web.json_response(result_to_json(result))

    async def authenticate(self, request: web.Request) -> web.Response:
        _query(request)
        body = await _json_body(request)
        user, password = body.get("user"), body.get("password")
        if set(body) != {"user", "password"} or type(user) is not str or type(password) is not str:
            raise BadRequest('expected {"user": string, "password": string}')
        token = await self.service.authenticate(user, password)
        return web.json_response({"token": token}, headers={"Cache-Control": "no-store"})

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.service.status(), headers={"Cache-Control": "no-store"})

    async def cluster_status(self, request: web.Request) -> web.Response:
        _query(request)
        view = await self.service.cluster_status()
        return web.json_response(view, headers={"Cache-Control": "no-store"})

    async def members(self, request: web.Request) -> web.Response:
        _query(request)
        view = await self.service.cluster_status()
        answer = {"configuration": view.get("configuration"), "members": view["members"]}
        return web.json_response(answer, headers={"Cache-Control": "no-store"})

    async def change_members(self, request: web.Request) -> web.Response:
        _query(request)
        body = await _json_body(request)
        action, node_id, address = body.get("action"), body.get("id"), body.get("address", "")
        if (
            not set(body) <= {"action", "id", "address"}
            or action not in MEMBER_ACTIONS
            or type(node_id) is not int
            or not 0 < node_id < 2**63
            or type(address) is not str
        ):
            raise BadRequest(
                'expected {"action": ACTION, "id": N, "address": "HOST:PORT"}, ACTION one of '
                + ", ".join(a for a in MEMBER_ACTIONS if a != "transfer-leader")
            )
        configuration = await self.service.change_members(
            action, node_id, address, token=_token(request)
        )
        return web.json_response(configuration, headers={"Cache-Control": "no-store"})

    async def health(self, request: web.Request) -> web.Response:
        _query(request)
        body = {"health": "ok", "node_id": self.service.status().get("node_id")}
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def readyz(self, request: web.Request) -> web.Response:
        _query(request)
        report = self.service.readiness()
        if report is None:
            report = {"ready": False, "failed": "readiness", "checks": {}}
            reason = "this node keeps no readiness checks"
        else:
            reason = str(report["checks"].get(report["failed"], ""))
        status = 200
        if not report["ready"]:
            status = 503
            report = {
                "error": f"not ready: {report['failed']}: {reason}",
                "code": "not_ready",
                **report,
            }
        return web.json_response(report, status=status, headers={"Cache-Control": "no-store"})

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        _query(request)
        if self.backups >= BACKUPS_MAX:
            raise Busy(f"{self.backups} backup(s) being sent, the most this node sends at once")
        self.backups += 1
        try:
            return await self._send_backup(request)
        finally:
            self.backups -= 1

    async def _send_backup(self, request: web.Request) -> web.StreamResponse:
        meta, data = await self.service.backup(token=_token(request))
        stream = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(encoded_size(meta)),
                "X-Paxon-Revision": str(meta.revision),
                "Cache-Control": "no-store",
            }
        )
        await stream.prepare(request)
        for chunk in encode_chunks(meta, data):
            await stream.write(chunk)  # waits while the reader is slow
        await stream.write_eof()
        return stream

    async def activity(self, request: web.Request) -> web.Response:
        _query(request)
        samples = self.service.activity()
        if samples is None:
            raise NotSupported("this node keeps no activity samples (not run by paxon serve)")
        return web.json_response(samples, headers={"Cache-Control": "no-store"})

    async def recent_slots(self, request: web.Request) -> web.Response:
        query = _query(request, "limit")
        limit = _integer(query, "limit", minimum=1)
        count = RECENT_SLOTS_MAX if limit is None else min(limit, RECENT_SLOTS_MAX)
        view = self.service.recent_slots(count)
        return web.json_response(view, headers={"Cache-Control": "no-store"})

    async def metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.service.metrics_text()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def dashboard(self, request: web.Request) -> web.Response:
        return web.Response(text=self.dashboard_html, content_type="text/html")

    def _txn_to_json(self, result: TxnResult) -> dict[str, Any]:
        """docs/api.md's shape, each ``get`` cut to one budget (``"more": true`` when cut)."""
        budget = _Budget(self.range_limits.keys_max, self.range_limits.bytes_max)
        cut: set[int] = set()
        responses: list[TxnResponse] = []
        for index, response in enumerate(result.responses):
            if isinstance(response, GetResult):
                taken, more = budget.take(response.items)
                response = GetResult(tuple(taken), response.revision)
                if more:
                    cut.add(index)
            responses.append(response)
        body = result_to_json(TxnResult(result.succeeded, result.revision, tuple(responses)))
        for index in cut:
            body["responses"][index]["get"]["more"] = True
        return body


class _Refused(Exception):
    """A request this edge refuses before any handler work: its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _guard_middleware(guard: RequestGuard) -> Middleware:
    remembering = RememberingGuard(guard)

    @web.middleware
    async def check_host_and_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = remembering.refusal(
            host_header=request.headers.get("Host"),
            origin_header=request.headers.get("Origin"),
            scheme=request.scheme,
            local_address=_local_address(request),
        )
        if refusal is not None:
            raise _Refused(403, refusal.code, refusal.message)
        return await handler(request)

    return check_host_and_origin


def _in_flight_middleware(requests_max: int) -> Middleware:
    in_flight = 0

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight
        if request.path.startswith(WATCH_PREFIX):
            return await handler(request)  # a stream: counted by its own limit
        if in_flight >= requests_max:
            raise Busy(f"{in_flight} HTTP requests in flight, the most this node takes; retry")
        in_flight += 1
        try:
            return await handler(request)
        finally:
            in_flight -= 1

    return count


def _error_middleware(body_max_bytes: int) -> Middleware:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except PaxonError as error:
            if error.http_status >= 500 and error.http_status not in (503, 504):
                log.exception("error serving %s %s", request.method, request.path)
            return _error_response(error)
        except _Refused as refused:
            body = {"error": str(refused), "code": refused.code}
            return web.json_response(body, status=refused.status)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            return _http_error_response(request, error, body_max_bytes)
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.path)
            return web.json_response(
                {"error": "internal error; see the server log", "code": "internal"}, status=500
            )

    return errors


def _error_response(error: PaxonError) -> web.Response:
    body: dict[str, Any] = {"error": str(error) or error.code, "code": error.code}
    if isinstance(error, NotLeader | LeaderUnreachable):
        body["leader"] = error.leader_hint
        body["leader_address"] = error.leader_address
    if isinstance(error, RevisionCompacted) and error.revision_compacted is not None:
        body["revision_compacted"] = error.revision_compacted
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthenticated) else None
    return web.json_response(body, status=error.http_status, headers=headers)


def _token(request: web.Request) -> str | None:
    """The bearer token of the ``Authorization`` header, None without one."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > TOKEN_MAX_BYTES:
        raise Unauthenticated("the Authorization header must be: Bearer TOKEN")
    return token


def _http_error_response(
    request: web.Request, error: web.HTTPException, body_max_bytes: int
) -> web.Response:
    headers: dict[str, str] = {}
    if isinstance(error, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(error.allowed_methods))
        message = f"method {request.method} not allowed on {request.path}; allowed: {allowed}"
        headers["Allow"] = error.headers["Allow"]
    elif isinstance(error, web.HTTPNotFound):
        message = f"no route for {request.method} {request.path}"
    elif isinstance(error, web.HTTPRequestEntityTooLarge):
        message = f"request body is over the limit of {body_max_bytes} bytes"
    else:
        message = error.text or error.reason
    code = _HTTP_CODES.get(error.status, "bad_request" if error.status < 500 else "internal")
    return web.json_response({"error": message, "code": code}, status=error.status, headers=headers)


async def _json_body(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 415 unless it is declared ``application/json`` (UTF-8).

    A cross-site HTML form can only send ``text/plain``, urlencoded or
    multipart bodies, so this refuses it before anything is read.
    """
    charset = (request.charset or "utf-8").lower()
    if request.content_type.lower() != JSON_CONTENT_TYPE or charset not in ("utf-8", "utf8"):
        given = request.headers.get("Content-Type", "none")
        raise _Refused(
            415,
            "unsupported_media_type",
            f"request body must be Content-Type: {JSON_CONTENT_TYPE}, not {given[:100]!r}",
        )
    return object_from_json(await request.read())


async def _lease_id_body(request: web.Request) -> int:
    """The lease id of a ``{"id": ID}`` body (no query parameters)."""
    _query(request)
    body = await _json_body(request)
    if set(body) != {"id"}:
        raise BadRequest('expected {"id": ID}')
    return lease_id_from_json(body["id"])


def _local_address(request: web.Request) -> tuple[str, int] | None:
    """The address this connection arrived on, or None if the transport does not say."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    return None


def _key(request: web.Request, *, empty_ok: bool = False) -> str:
    """The key: the path after ``/v1/kv/``, percent-decoded as UTF-8.

    Only a prefix read may use the empty key, meaning every key.
    """
    try:
        unquote(request.rel_url.raw_path, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("the URL path is not valid percent-encoded UTF-8") from None
    key = request.match_info.get("key", "")
    if not key and not empty_ok:
        raise BadRequest(f"empty key: the key goes in the path, as {KV_PREFIX}KEY")
    return key


def _query(request: web.Request, *allowed: str) -> Mapping[str, str]:
    """The query parameters, each given at most once and each one this route takes."""
    query = request.query
    for name in query:
        if name not in allowed:
            takes = ", ".join(allowed) if allowed else "none"
            raise BadRequest(f"unknown query parameter {name!r}; this route takes: {takes}")
        if len(query.getall(name)) > 1:
            raise BadRequest(f"query parameter {name!r} is given more than once")
    return query


def _flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name)
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise BadRequest(f"query parameter {name!r} must be 1 or 0, not {value[:100]!r}")


def _integer(query: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if not _DIGITS.fullmatch(value) or not minimum <= int(value) <= INTEGER_MAX:
        raise BadRequest(
            f"query parameter {name!r} must be an integer from {minimum} to {INTEGER_MAX}, "
            f"not {value[:100]!r}"
        )
    return int(value)
