"""``paxon endpoint health [--cluster] [--json]``: is each endpoint ready to serve?

Each endpoint (``--endpoints``; with ``--cluster``, every member's client address
that the endpoints report) is asked for its own status over the native port, on
its own connection, all at once; it is **healthy** when it answers within
``--timeout`` and its readiness report (``paxon.node.readiness``, the body of
``GET /readyz``) says ready: it knows a leader, is caught up and can write its
disk. A node run without ``paxon serve`` keeps no report; it counts as healthy
when it answers and names a leader.

Output, one line per endpoint in the order given (as ``etcdctl endpoint health``)::

    127.0.0.1:7001 is healthy: took 3.1 ms
    127.0.0.1:7003 is unhealthy: took 2.0 s: 127.0.0.1:7003: no answer in time

``--json``: one object a line, ``{"endpoint", "healthy", "took_ms", "error",
"node_id", "report"}`` (``error`` and ``report`` null when there is none).

Exit codes (docs/api.md): 0 every endpoint is healthy; 1 at least one answered but
not every one is healthy; 2 bad usage; 3 none answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from paxon.errors import BadRequest

if TYPE_CHECKING:
    from paxon.client import Client

_Operation: TypeAlias = "Callable[[Client], Awaitable[int]]"
_Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"

ENDPOINT_GROUP = "endpoint"
CLUSTER_ENDPOINTS_MAX = 64
"""``--cluster`` checks at most this many member addresses."""


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    endpoint: str
    healthy: bool
    took_s: float
    error: str | None
    node_id: int | None
    report: dict[str, Any] | None
    members: tuple[str, ...] = ()  # the client addresses its view names (for --cluster)

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "healthy": self.healthy,
            "took_ms": round(self.took_s * 1000, 3),
            "error": self.error,
            "node_id": self.node_id,
            "report": self.report,
        }

    def line(self) -> str:
        took = f"{self.took_s * 1000:.1f} ms" if self.took_s < 1 else f"{self.took_s:.1f} s"
        if self.healthy:
            return f"{self.endpoint} is healthy: took {took}"
        return f"{self.endpoint} is unhealthy: took {took}: {self.error}"


def add_endpoint_commands(commands: _Subcommands, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        ENDPOINT_GROUP,
        help="check the endpoints' health",
        description="check the endpoints' health",
    )
    actions: _Subcommands = parser.add_subparsers(
        dest="endpoint_command", parser_class=type(parser)
    )
    health_help = "is each endpoint ready: knows a leader, caught up, disk writable"
    health: argparse.ArgumentParser = actions.add_parser(
        "health",
        help=health_help,
        description=health_help
        + ". Exit 0: all healthy; 1: some unhealthy; 3: none answered."
        + " Example: paxon endpoint health --cluster",
        parents=[common],
    )
    health.add_argument(
        "--cluster",
        action="store_true",
        help="check every member the endpoints report, not only the endpoints",
    )


def endpoint_operation(args: argparse.Namespace) -> _Operation:
    """The operation for ``paxon endpoint ACTION``."""
    if getattr(args, "endpoint_command", None) != "health":
        raise BadRequest("choose an action: health")

    async def run(client: Client) -> int:
        endpoints = list(client.endpoints)
        results = await check_all(client, endpoints)
        if args.cluster:
            members = _member_addresses(results)
            extra = [address for address in members if address not in endpoints]
            results += await check_all(client, extra)
        for result in results:
            if args.json:
                print(json.dumps(result.to_json(), ensure_ascii=False))
            else:
                print(result.line())
        return exit_code(results)

    return run


def exit_code(results: list[EndpointHealth]) -> int:
    if all(result.healthy for result in results):
        return 0
    if any(result.node_id is not None for result in results):
        return 1
    return 3


async def check_all(client: Client, endpoints: list[str]) -> list[EndpointHealth]:
    return list(await asyncio.gather(*(check_endpoint(client, e) for e in endpoints)))


async def check_endpoint(client: Client, endpoint: str) -> EndpointHealth:
    """One endpoint's health, asked on a connection of its own (``client``'s
    timeout and TLS)."""
    from paxon.client import Client

    started = time.monotonic()
    probe = Client([endpoint], timeout=client.options.timeout_s, tls=client.tls)
    async with probe:
        [view] = await probe.node_views()
    took = time.monotonic() - started
    error: str | None
    if view is None:
        error = probe.status_problem or f"{endpoint}: no answer"
        return EndpointHealth(endpoint, False, took, error, None, None)
    node_id = view.get("node_id")
    report = view.get("health")
    if isinstance(report, dict):
        healthy = bool(report.get("ready"))
        failed = report.get("failed")
        reason = (report.get("checks") or {}).get(failed)
        error = None if healthy else f"not ready: {failed}: {reason}"
    else:  # a node that keeps no readiness report: does it know a leader?
        report = None
        healthy = view.get("leader") is not None
        error = None if healthy else "not ready: no leader known"
    members = tuple(
        row["address"]
        for row in view.get("members", [])
        if isinstance(row, dict) and isinstance(row.get("address"), str)
    )
    node = node_id if isinstance(node_id, int) else None
    return EndpointHealth(endpoint, healthy, took, error, node, report, members)


def _member_addresses(results: list[EndpointHealth]) -> list[str]:
    """The members' client addresses the answering endpoints named, in order, once each."""
    seen: dict[str, None] = {}
    for result in results:
        for address in result.members:
            seen.setdefault(address, None)
    return list(seen)[:CLUSTER_ENDPOINTS_MAX]
