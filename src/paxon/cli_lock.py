"""``paxon lock NAME [--ttl S] [--timeout S] [--delay S] -- COMMAND ARGS...``.

Runs COMMAND holding lock NAME (``paxon.locking``): waits up to ``--timeout``
(10 s) for the lock, exit 1 if it was not acquired; then runs COMMAND with
``$PAXON_FENCE`` (the fencing token: an integer, larger for every later
holder) and ``$PAXON_LOCK_KEY`` (the holder's key, for a txn guard) in its
environment, keeps the lease alive while it runs, releases the lock when it
ends, and exits with COMMAND's status (128 + N if signal N ended it; 127 if
it could not be started).

If the lease is lost while COMMAND runs (this process was paused or cut off
past ``--ttl``), the lock may already be another's: COMMAND gets SIGTERM,
then SIGKILL after ``KILL_AFTER_S`` (5 s), and ``paxon lock`` exits 1 saying
so. A SIGTERM or SIGINT to ``paxon lock`` is passed on to COMMAND; the lock
is released once COMMAND ends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from paxon.errors import BadRequest

if TYPE_CHECKING:
    from paxon.client import Client

_Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"
_Operation: TypeAlias = "Callable[[Client], Awaitable[int]]"

KILL_AFTER_S: Final = 5.0
_FORWARDED: Final = (signal.SIGTERM, signal.SIGINT)


def add_lock_command(commands: _Subcommands, common: argparse.ArgumentParser) -> None:
    help = "run COMMAND holding lock NAME ($PAXON_FENCE: its fencing token)"
    lock = commands.add_parser(
        "lock",
        help=help,
        description=help + "; --timeout is how long to wait for the lock",
        parents=[common],
    )
    lock.add_argument("name", metavar="NAME")
    lock.add_argument(
        "--ttl", type=_seconds, default=10.0, metavar="S", help="the lock's lease, seconds (10)"
    )
    lock.add_argument(
        "--delay",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="lock-delay: if this holder's lease expires, nobody gets the lock for S s (0, <= 60)",
    )
    lock.usage = "paxon lock NAME [options] -- COMMAND ARGS..."


def split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """``paxon lock``'s own arguments and, after the first ``--``, COMMAND's
    (its options may come before or after NAME; COMMAND's are never parsed)."""
    if argv[:1] != ["lock"] or "--" not in argv:
        return argv, None
    split = argv.index("--")
    return argv[:split], argv[split + 1 :]


def lock_operation(args: argparse.Namespace) -> _Operation:
    argv = args.command_argv or []
    if not argv:
        raise BadRequest("no COMMAND to run (paxon lock NAME [options] -- COMMAND ARGS...)")
    if not 0 <= args.delay <= 60:
        raise BadRequest(f"--delay: from 0 to 60 s, got {args.delay:g}")

    async def run(client: Client) -> int:
        return await _run_locked(client, args, argv)

    return run


async def _run_locked(client: Client, args: argparse.Namespace, argv: list[str]) -> int:
    lock = client.lock(args.name, ttl=args.ttl, timeout=args.timeout, delay=args.delay)
    fence = await lock.acquire()
    environment = dict(os.environ, PAXON_FENCE=str(int(fence)), PAXON_LOCK_KEY=fence.key)
    try:
        child = await asyncio.create_subprocess_exec(*argv, env=environment)
    except OSError as error:
        await lock.release()
        print(f"paxon lock: cannot run {argv[0]!r}: {error}", file=sys.stderr)
        return 127
    loop = asyncio.get_running_loop()
    forwarding = []
    for number in _FORWARDED:
        try:
            loop.add_signal_handler(number, _pass_on, child, number)
        except (RuntimeError, ValueError):
            continue  # not the main thread (paxon.cli.main called from a thread)
        forwarding.append(number)
    ended = asyncio.ensure_future(child.wait())
    lost = asyncio.ensure_future(lock.wait_lost())
    try:
        await asyncio.wait({ended, lost}, return_when=asyncio.FIRST_COMPLETED)
        if not ended.done():
            print(
                f"paxon lock: the lease of lock {args.name!r} was lost while COMMAND ran "
                "(paused or cut off past --ttl?); stopping COMMAND",
                file=sys.stderr,
            )
            child.terminate()
            try:
                await asyncio.wait_for(asyncio.shield(ended), KILL_AFTER_S)
            except TimeoutError:
                child.kill()
                await ended
            return 1
        code = ended.result()
        return code if code >= 0 else 128 - code
    finally:
        lost.cancel()
        for number in forwarding:
            loop.remove_signal_handler(number)
        await lock.release()


def _pass_on(child: asyncio.subprocess.Process, number: int) -> None:
    if child.returncode is None:
        child.send_signal(number)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value
