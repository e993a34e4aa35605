"""The HTTP endpoint: the JSON key-value API, ``/metrics`` and the dashboard.

Routes and answers are fixed by SPEC.md ("HTTP API", "Transaction request"):

| route                   | answer                                                         |
|-------------------------|----------------------------------------------------------------|
| ``GET /v1/kv/{key}``    | the key's JSON; ``?prefix=1``: ``{"revision", "kvs"}`` (an     |
|                         | empty key lists every key); ``?serializable=1``; ``?revision=R``|
| ``PUT /v1/kv/{key}``    | body is the value; ``{"revision"}``; ``?expect_version=V``: CAS |
| ``DELETE /v1/kv/{key}`` | ``{"deleted", "revision"}``; ``?prefix=1``                     |
| ``POST /v1/txn``        | ``{"succeeded", "revision", "responses"}``                     |
| ``GET /v1/status``      | the ``status --json`` object, from this node's view            |
| ``GET /v1/cluster``     | the same object with every member's row from that member (the  |
|                         | dashboard's view; what ``paxon status`` prints)                |
| ``GET /metrics``        | Prometheus text                                                |
| ``GET /``               | the dashboard page                                             |

``GET /v1/kv/...`` also sends the store's revision in ``X-Paxon-Revision``.

This module is an edge: it validates everything a client sends (the key is the
percent-decoded UTF-8 path after ``/v1/kv/``; query parameters are checked by
name, count and type, and an unknown one is refused; bodies are bounded by
``body_max_bytes``) and hands typed commands to a ``KvService``, which the node
runtime implements. It holds no state of its own.

Every error answer is JSON ``{"error": message, "code": code}``:

| cause                           | status               | code, extra fields               |
|---------------------------------|----------------------|----------------------------------|
| a ``paxon.errors`` error        | its ``http_status``  | its ``code``                     |
| ``NotLeader``                   | 421                  | ``not_leader``, ``leader``,      |
|                                 |                      | ``leader_address``               |
| key absent (``GET``)            | 404                  | ``not_found``, ``revision``      |
| CAS mismatch                    | 412                  | ``compare_failed``, ``revision``,|
|                                 |                      | ``version`` (the current one)    |
| body over ``body_max_bytes``    | 413                  | ``too_large``                    |
| no such route / method          | 404 / 405            | ``not_found`` /                  |
|                                 |                      | ``method_not_allowed``           |
| anything else (a bug)           | 500                  | ``internal``; traceback logged   |

A 4xx answer means nothing was applied; 503 and 504 mean the outcome of a
write is unknown (SPEC.md).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, NoReturn, Protocol
from urllib.parse import unquote

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from paxon.errors import BadRequest, NotLeader, PaxonError
from paxon.kv.jsonforms import keyvalue_to_json, result_to_json, txn_from_json
from paxon.kv.model import DeleteResult, GetResult, PutResult, Txn, TxnResult

log = logging.getLogger(__name__)

DEFAULT_BODY_MAX_BYTES = 1_048_576 + 64 * 1024
"""The largest value (1 MiB) plus room for a transaction's JSON around it."""

KV_PREFIX = "/v1/kv/"
INTEGER_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")
_TRUE = frozenset({"", "1", "true"})
_FALSE = frozenset({"0", "false"})
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
_JSON_TYPES: dict[type, str] = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


class KvService(Protocol):
    """What the HTTP endpoint needs from a node; the node runtime implements it.

    Methods raise ``paxon.errors`` errors for answers other than success.
    """

    async def put(self, key: str, value: bytes, *, expect_version: int | None) -> PutResult: ...

    async def get(
        self, key: str, *, prefix: bool, serializable: bool, revision: int | None
    ) -> GetResult: ...

    async def delete(self, key: str, *, prefix: bool) -> DeleteResult: ...

    async def txn(self, txn: Txn) -> TxnResult: ...

    def status(self) -> dict[str, Any]:
        """The SPEC ``status --json`` object, from this node's view."""
        ...

    async def cluster_status(self) -> dict[str, Any]:
        """The ``status --json`` object with each member's row from that member."""
        ...

    def metrics_text(self) -> tuple[bytes, str]:
        """The ``/metrics`` body and its content type."""
        ...


def make_app(
    service: KvService, *, body_max_bytes: int = DEFAULT_BODY_MAX_BYTES
) -> web.Application:
    if body_max_bytes < 1:
        raise ValueError("body_max_bytes must be >= 1")
    routes = _Routes(service)
    app = web.Application(
        client_max_size=body_max_bytes, middlewares=[_error_middleware(body_max_bytes)]
    )
    app.router.add_get("/", routes.dashboard)
    app.router.add_get("/metrics", routes.metrics)
    app.router.add_get("/v1/status", routes.status)
    app.router.add_get("/v1/cluster", routes.cluster_status)
    app.router.add_post("/v1/txn", routes.txn)
    for path in ("/v1/kv", KV_PREFIX, KV_PREFIX + "{key:.+}"):
        app.router.add_get(path, routes.get)
        app.router.add_put(path, routes.put)
        app.router.add_delete(path, routes.delete)
    return app


async def start_http(service: KvService, host: str, port: int, **kw: Any) -> web.AppRunner:
    """Serve ``make_app(service, **kw)`` on ``host:port``; ``OSError`` if it cannot bind.

    The caller stops it with ``await runner.cleanup()``; ``runner.addresses``
    gives the bound address (useful with ``port=0``).
    """
    runner = web.AppRunner(make_app(service, **kw), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


class _Routes:
    def __init__(self, service: KvService) -> None:
        self.service = service
        self.dashboard_html = (
            resources.files("paxon.server").joinpath("dashboard.html").read_text("utf-8")
        )

    async def get(self, request: web.Request) -> web.Response:
        query = _query(request, "prefix", "serializable", "revision")
        prefix = _flag(query, "prefix")
        key = _key(request, empty_ok=prefix)
        result = await self.service.get(
            key,
            prefix=prefix,
            serializable=_flag(query, "serializable"),
            revision=_integer(query, "revision", minimum=0),
        )
        headers = {"X-Paxon-Revision": str(result.revision)}
        if prefix:
            return web.json_response(result_to_json(result), headers=headers)
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
        expect_version = _integer(_query(request, "expect_version"), "expect_version", minimum=0)
        value = await request.read()
        result = await self.service.put(key, value, expect_version=expect_version)
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
        result = await self.service.delete(key, prefix=prefix)
        return web.json_response(result_to_json(result))

    async def txn(self, request: web.Request) -> web.Response:
        _query(request)
        txn = txn_from_json(_json_object(await request.read()))
        result = await self.service.txn(txn)
        return web.json_response(result_to_json(result))

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.service.status(), headers={"Cache-Control": "no-store"})

    async def cluster_status(self, request: web.Request) -> web.Response:
        _query(request)
        view = await self.service.cluster_status()
        return web.json_response(view, headers={"Cache-Control": "no-store"})

    async def metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.service.metrics_text()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def dashboard(self, request: web.Request) -> web.Response:
        return web.Response(text=self.dashboard_html, content_type="text/html")


def _error_middleware(body_max_bytes: int) -> Middleware:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except PaxonError as error:
            if error.http_status >= 500 and error.http_status not in (503, 504):
                log.exception("error serving %s %s", request.method, request.path)
            return _error_response(error)
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
    if isinstance(error, NotLeader):
        body["leader"] = error.leader_hint
        body["leader_address"] = error.leader_address
    return web.json_response(body, status=error.http_status)


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
    raise BadRequest(f"query parameter {name!r} must be 1 or 0, not {value!r}")


def _integer(query: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if not _DIGITS.fullmatch(value) or not minimum <= int(value) <= INTEGER_MAX:
        raise BadRequest(
            f"query parameter {name!r} must be an integer from {minimum} to {INTEGER_MAX}, "
            f"not {value!r}"
        )
    return int(value)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8") from None
    except json.JSONDecodeError as error:
        raise BadRequest(f"request body is not valid JSON: {error}") from None
    except RecursionError:
        raise BadRequest("request body JSON is nested too deeply") from None
    if not isinstance(obj, dict):
        raise BadRequest(f"request body must be a JSON object, not {_JSON_TYPES[type(obj)]}")
    return obj


def _reject_constant(name: str) -> NoReturn:
    raise BadRequest(f"request body JSON holds {name}, which is not JSON")
