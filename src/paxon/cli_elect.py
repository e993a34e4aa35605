"""``paxon elect NAME [VALUE] [--ttl S]``.

With VALUE: campaign in election NAME (``Client.election``), print
``elected NAME VALUE (revision R)`` once this process leads, and lead until
SIGTERM or SIGINT (then resign, so the next candidate leads at once: exit 0)
or until the candidacy's lease is lost (exit 1). Without VALUE: print the
leader's value each time the leader changes (``-`` while nobody leads),
until interrupted. ``--json`` prints ``{"name", "key", "value" (or
"value_b64"), "revision"}`` (``"leader": null`` while nobody leads).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from paxon.client import Client
    from paxon.election import Leadership

_Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"
_Operation: TypeAlias = "Callable[[Client], Awaitable[int]]"


def add_elect_command(commands: _Subcommands, common: argparse.ArgumentParser) -> None:
    help = "campaign in election NAME with VALUE and lead until interrupted; without VALUE, observe"
    elect = commands.add_parser("elect", help=help, description=help, parents=[common])
    elect.add_argument("name", metavar="NAME")
    elect.add_argument("value", metavar="VALUE", nargs="?")
    elect.add_argument(
        "--ttl", type=float, default=10.0, metavar="S", help="the candidacy's lease, seconds (10)"
    )


def elect_operation(args: argparse.Namespace) -> _Operation:
    async def run(client: Client) -> int:
        election = client.election(args.name, ttl=args.ttl)
        if args.value is None:
            async for leader in election.observe():
                _print(args, leader)
            return 0
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        with contextlib.suppress(RuntimeError, ValueError):  # not the main thread: skip
            loop.add_signal_handler(signal.SIGTERM, task.cancel)  # stop: resign first
        try:
            leader = await election.campaign(args.value)
            _print(args, leader, elected=True)
            await election.wait_lost()
            print(f"paxon elect: lost the lease of election {args.name!r}", file=sys.stderr)
            return 1
        except asyncio.CancelledError:
            return 0  # SIGTERM or SIGINT: resigned below
        finally:
            await asyncio.shield(election.resign())

    return run


def _print(args: argparse.Namespace, leader: Leadership | None, *, elected: bool = False) -> None:
    if args.json:
        fields: dict[str, Any] = {"name": args.name}
        if leader is None:
            fields["leader"] = None
        else:
            fields["key"] = leader.key
            try:
                fields["value"] = leader.value.decode()
            except UnicodeDecodeError:
                fields["value_b64"] = base64.b64encode(leader.value).decode("ascii")
            fields["revision"] = leader.revision
        print(json.dumps(fields, ensure_ascii=False), flush=True)
        return
    if leader is None:
        print("-", flush=True)
        return
    shown = leader.value.decode(errors="replace")
    prefix = f"elected {args.name} " if elected else ""
    print(f"{prefix}{shown} (revision {leader.revision})", flush=True)
