"""Metrics of the HTTP endpoint: every request by route, and client requests by operation.

``metrics_middleware(metrics)`` is the outermost middleware of the HTTP
application (``server.http.make_app``), so it sees every request that reaches
the application and the final answer to it, guard refusals and error answers
included. For each request it records, in ``NodeMetrics``:

- ``paxon_http_requests_total{route, method, status}`` and
  ``paxon_http_request_seconds{route, method}``; ``route`` is the route's
  pattern (``/v1/kv/{key}``), never the path a client sent, and ``other``
  for a path or method no route serves, so the labels stay a small set;
- for a client request (the key-value, transaction, lease, watch, auth,
  status and member routes; not ``/``, ``/metrics`` or the probes),
  ``paxon_requests_total{api="http", op}``, ``paxon_request_seconds`` and,
  for an error answer, ``paxon_request_errors_total{api="http", op, code}``
  with the JSON body's ``code`` (``node.metrics`` says which answers are
  errors).

The time is sampled from the request entering the application (after aiohttp
parsed its head) to the response being ready; for a watch, that is the
whole stream.
"""

from __future__ import annotations

import json
import time
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from paxon.kv.operations import ERROR_CODE_MAX_CHARS
from paxon.node.metrics import NO_ROUTE, NodeMetrics

_OPERATIONS: Final[dict[tuple[str, str], str]] = {
    ("POST", "/v1/txn"): "txn",
    ("POST", "/v1/compact"): "compact",
    ("POST", "/v1/lease/grant"): "lease_grant",
    ("POST", "/v1/lease/keepalive"): "lease_keepalive",
    ("POST", "/v1/lease/revoke"): "lease_revoke",
    ("GET", "/v1/lease/{id}"): "lease_ttl",
    ("GET", "/v1/leases"): "lease_list",
    ("GET", "/v1/watch/{key}"): "watch",
    ("POST", "/v1/auth/authenticate"): "authenticate",
    ("GET", "/v1/status"): "status",
    ("GET", "/v1/cluster"): "status",
    ("GET", "/v1/members"): "status",
    ("POST", "/v1/members"): "members",
}
_KV_OPERATIONS: Final = {"GET": "get", "PUT": "put", "DELETE": "delete"}
_KV_ROUTE: Final = "/v1/kv"

_ERROR_BODY_MAX_BYTES: Final = 64 * 1024
"""An error body longer than this is not parsed for its code (the status stands in)."""


def metrics_middleware(metrics: NodeMetrics) -> Middleware:
    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = route_of(request)
        try:
            response = await handler(request)
        except web.HTTPException as exception:  # a redirect the error middleware lets through
            _observe(metrics, request.method, route, exception, time.perf_counter() - started)
            raise
        _observe(metrics, request.method, route, response, time.perf_counter() - started)
        return response

    return measure


def route_of(request: web.Request) -> str:
    """The pattern of the route that serves ``request``; ``NO_ROUTE`` for none."""
    resource = request.match_info.route.resource
    return NO_ROUTE if resource is None else resource.canonical


def operation_of(method: str, route: str) -> str | None:
    """The client operation a request asks for; None for a page, /metrics or a probe."""
    if route == _KV_ROUTE or route.startswith(_KV_ROUTE + "/"):
        return _KV_OPERATIONS.get(method)
    return _OPERATIONS.get((method, route))


def _observe(
    metrics: NodeMetrics, method: str, route: str, response: web.StreamResponse, seconds: float
) -> None:
    metrics.observe_http(route, method, response.status, seconds)
    operation = operation_of(method, route)
    if operation is not None:
        metrics.observe_request("http", operation, seconds, _error_code(operation, response))


def _error_code(operation: str, response: web.StreamResponse) -> str | None:
    status = response.status
    if status < 400 or status == 412 or (status == 404 and operation == "get"):
        return None  # an answer: the key is absent, or the compare failed
    body = response.body if isinstance(response, web.Response) else None
    if isinstance(body, bytes) and len(body) <= _ERROR_BODY_MAX_BYTES:
        try:
            code = json.loads(body).get("code")
        except (ValueError, AttributeError):
            code = None
        if isinstance(code, str) and code:
            return code[:ERROR_CODE_MAX_CHARS]
    return str(status)
