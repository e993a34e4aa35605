"""``paxon watch KEY [--prefix] [--from-revision R] [--prev] [--json]``.

Prints every change to KEY (or, with ``--prefix``, to every key under it) as
it is applied, in revision order, exactly once, until interrupted
(``Client.watch``, ``paxon.watching``). Without ``--from-revision`` it starts
after the current revision.

Text: one line per event, ``put KEY VALUE`` or ``delete KEY`` (the value as
raw bytes, as ``get`` prints it). ``--json``: one object per line,
``{"type": "put"|"delete", "key", "value" (or "value_b64"), "version",
"create_revision", "mod_revision"}`` (docs/api.md), with ``"prev"`` (the value
before, the same fields) when ``--prev`` is given and there was one.

Exit codes: 0 when interrupted; 1 if the history asked for was compacted
(the message names the oldest revision kept); 2 bad usage; 3 unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from paxon.kv.jsonforms import event_to_json

if TYPE_CHECKING:
    from paxon.client import Client
    from paxon.kv.model import Event

_Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"
_Operation: TypeAlias = "Callable[[Client], Awaitable[int]]"


def add_watch_command(commands: _Subcommands, common: argparse.ArgumentParser) -> None:
    help = "print every change to KEY as it happens, in revision order, until interrupted"
    watch = commands.add_parser("watch", help=help, description=help, parents=[common])
    watch.add_argument("key", metavar="KEY")
    watch.add_argument("--prefix", action="store_true", help="every key that starts with KEY")
    watch.add_argument(
        "--from-revision",
        type=_revision,
        metavar="R",
        help="start at revision R (default: after the current one)",
    )
    watch.add_argument("--prev", action="store_true", help="show each key's value before")


def watch_operation(args: argparse.Namespace) -> _Operation:
    async def run(client: Client) -> int:
        watch = client.watch(
            args.key, prefix=args.prefix, from_revision=args.from_revision, prev_kv=args.prev
        )
        async for event in watch:
            _print(event, as_json=args.json)
        return 0

    return run


def _print(event: Event, *, as_json: bool) -> None:
    if as_json:
        line = json.dumps(event_to_json(event), ensure_ascii=False).encode() + b"\n"
    elif event.type == "put":
        line = b"put " + event.kv.key.encode() + b" " + event.kv.value + b"\n"
    else:
        line = b"delete " + event.kv.key.encode() + b"\n"
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()  # a watch is read as it goes (a pipe, a log)


def _revision(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a revision: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a revision is 1 or more: {text!r}")
    return value
