"""The ``paxon lease`` commands: grant, revoke, keep-alive, ttl and list.

=====================================  =========================================
command                                prints (``--json``: one object a line)
=====================================  =========================================
``lease grant TTL_SECONDS``            the new lease's id (``{"id", "ttl"}``)
``lease revoke ID``                    how many keys went with it
                                       (``{"deleted", "revision"}``)
``lease keep-alive ID``                the TTL it has again, in seconds, after
                                       each keep-alive, every TTL/3 until
                                       interrupted (``{"id", "ttl"}``);
                                       ``--once``: one keep-alive
``lease ttl ID [--keys]``              ``lease ID: S s left of T s`` then, with
                                       ``--keys``, one key a line
                                       (``{"id", "granted_ttl", "ttl"[, "keys"]}``)
``lease list``                         the live leases' ids, one a line
                                       (``{"leases": [...]}``)
=====================================  =========================================

``paxon put KEY VALUE --lease ID`` attaches a key (``paxon.cli``).

TTLs are seconds (1 to 2592000; a fraction is fine), checked before anything
connects. Exit codes are docs/api.md's: 0 done; 1 the lease does not exist (never
granted, revoked or expired: ``lease_not_found``) or was refused; 2 bad usage;
3 the cluster could not be reached. ``keep-alive`` without ``--once`` runs
until interrupted (exit 130) or until the lease is lost: 1 when it expired,
3 when no keep-alive got through for a whole TTL (``paxon.client_lease``);
``--timeout`` bounds its first keep-alive, and each later one is bounded by
what is left of the TTL.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from paxon.errors import BadRequest
from paxon.kv.jsonforms import lease_ttl_ms, result_to_json, seconds_from_ms
from paxon.kv.model import INT_MAX, LeaseKeepAliveResult

if TYPE_CHECKING:
    from paxon.client import Client

_Operation: TypeAlias = "Callable[[Client], Awaitable[int]]"
_Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"

LEASE_GROUP = "lease"


def add_lease_commands(commands: _Subcommands, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        LEASE_GROUP,
        help="grant, keep alive, revoke and inspect leases",
        description="grant, keep alive, revoke and inspect leases",
    )
    actions: _Subcommands = parser.add_subparsers(dest="lease_command", parser_class=type(parser))

    def add(name: str, help: str) -> argparse.ArgumentParser:
        action: argparse.ArgumentParser = actions.add_parser(
            name, help=help, description=help, parents=[common]
        )
        return action

    grant = add("grant", "grant a lease of TTL_SECONDS; prints its id")
    grant.add_argument("ttl", metavar="TTL_SECONDS", type=_seconds, help="1 to 2592000")
    revoke = add("revoke", "end lease ID now and delete its keys; prints how many")
    revoke.add_argument("lease_id", metavar="ID", type=_lease_id)
    keep_alive = add(
        "keep-alive", "keep lease ID alive until interrupted; prints its TTL each time"
    )
    keep_alive.add_argument("lease_id", metavar="ID", type=_lease_id)
    keep_alive.add_argument("--once", action="store_true", help="one keep-alive, then exit")
    ttl = add("ttl", "print how long lease ID has left (linearizable unless --serializable)")
    ttl.add_argument("lease_id", metavar="ID", type=_lease_id)
    ttl.add_argument("--keys", action="store_true", help="also list the keys attached to it")
    ttl.add_argument(
        "--serializable", action="store_true", help="read the local state (possibly stale)"
    )
    add("list", "list the live leases' ids")


def add_put_lease_flag(put: argparse.ArgumentParser) -> None:
    put.add_argument(
        "--lease",
        metavar="ID",
        type=_lease_id,
        default=0,
        help="attach KEY to lease ID: it is deleted when the lease ends",
    )


def runs_until_interrupted(args: argparse.Namespace) -> bool:
    """Whether this command runs for as long as it is let (no overall deadline)."""
    return (
        args.command == LEASE_GROUP
        and getattr(args, "lease_command", None) == "keep-alive"
        and not args.once
    )


def lease_operation(args: argparse.Namespace) -> _Operation:
    """The operation for ``paxon lease ACTION``; input is checked now."""
    action = getattr(args, "lease_command", None)
    if action is None:
        raise BadRequest("choose an action: grant, revoke, keep-alive, ttl or list")
    operations: dict[str, Callable[[argparse.Namespace], _Operation]] = {
        "grant": _grant,
        "revoke": _revoke,
        "keep-alive": _keep_alive,
        "ttl": _ttl,
        "list": _list,
    }
    return operations[action](args)


def _grant(args: argparse.Namespace) -> _Operation:
    ttl_ms = lease_ttl_ms(args.ttl)  # exit 2 before connecting

    async def run(client: Client) -> int:
        result = await client.grant_lease(ttl_ms / 1000)
        _emit(args, result_to_json(result), str(result.lease))
        return 0

    return run


def _revoke(args: argparse.Namespace) -> _Operation:
    async def run(client: Client) -> int:
        result = await client.revoke_lease(args.lease_id)
        _emit(args, result_to_json(result), str(result.deleted))
        return 0

    return run


def _keep_alive(args: argparse.Namespace) -> _Operation:
    from paxon.client_lease import keep_lease_alive

    def show(result: LeaseKeepAliveResult) -> None:
        _emit(args, result_to_json(result), str(seconds_from_ms(result.ttl_ms)))

    async def run(client: Client) -> int:
        first = await client.keep_alive(args.lease_id, timeout=args.timeout)
        show(first)
        if args.once:
            return 0
        error = await keep_lease_alive(
            client,
            args.lease_id,
            ttl_s=first.ttl_ms / 1000,
            interval_s=first.ttl_ms / 3000,
            on_keep_alive=show,
        )
        raise error

    return run


def _ttl(args: argparse.Namespace) -> _Operation:
    async def run(client: Client) -> int:
        result = await client.lease_time_to_live(
            args.lease_id, keys=args.keys, serializable=args.serializable
        )
        body = result_to_json(result)
        if not args.keys:
            del body["keys"]  # not asked for: an empty list would say "no keys"
        if args.json:
            print(json.dumps(body, ensure_ascii=False), flush=True)
            return 0
        print(f"lease {result.lease}: {body['ttl']} s left of {body['granted_ttl']} s")
        for key in result.keys:
            print(key)
        return 0

    return run


def _list(args: argparse.Namespace) -> _Operation:
    async def run(client: Client) -> int:
        leases = await client.leases()
        if args.json:
            print(json.dumps({"leases": leases}))
        else:
            for lease in leases:
                print(lease)
        return 0

    return run


def _emit(args: argparse.Namespace, as_json: object, as_text: str) -> None:
    print(json.dumps(as_json, ensure_ascii=False) if args.json else as_text, flush=True)


def _lease_id(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= INT_MAX:
        raise argparse.ArgumentTypeError(f"a lease id is an integer from 1, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
