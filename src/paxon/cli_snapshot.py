"""The ``paxon snapshot`` commands: backup and disaster recovery.

=============================================  ==================================
command                                        does
=============================================  ==================================
``snapshot save FILE``                         asks the first endpoint that
                                               answers for a backup (its HTTP
                                               port's ``GET /v1/snapshot``) and
                                               writes it to FILE atomically
``snapshot status FILE [--json]``              checks FILE offline; prints its
                                               revision, keys, size, checksum
``snapshot restore FILE --data-dir DIR``       seeds DIR as member N of a new
``--id N --peers 1=H:P,... [--cluster-id C]``  cluster (``paxon.node.restore``)
=============================================  ==================================

``save`` takes the client flags (``--endpoints``, TLS, ``--user``): the native
endpoints are asked where their HTTP port is, and the backup comes from the
first that sends one (HTTPS with the same CA under ``--cacert``); a member that
cannot (no answer, 503 busy or unavailable, 504) is passed over for the next,
a refusal (401, 403, 400) is final. With auth enabled it needs a root
user (a backup holds every key and the users table). ``--timeout`` bounds the
wait for each piece, not the whole transfer.

Exit codes (docs/api.md): 0 done; 1 refused (not root); 2 bad usage, a corrupted
FILE, a data directory that is not empty; 3 no endpoint answered.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit

from paxon.errors import BadRequest, PaxonError, PermissionDenied, Unauthenticated, Unavailable

if TYPE_CHECKING:
    from paxon.client import Client
    from paxon.storage.backup import Backup

_Operation: TypeAlias = "Callable[[Client], Awaitable[int]]"
_Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"

SNAPSHOT_GROUP = "snapshot"
READ_CHUNK_BYTES = 1_048_576
_WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def add_snapshot_commands(commands: _Subcommands, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        SNAPSHOT_GROUP,
        help="save a backup of the store; check one; seed a new member from one",
        description="save a backup of the store; check one; seed a new member from one",
    )
    actions: _Subcommands = parser.add_subparsers(
        dest="snapshot_command", parser_class=type(parser)
    )
    save = actions.add_parser(
        "save",
        help="save a consistent backup at one revision to FILE",
        description="Save a consistent backup of the store at one revision to FILE "
        "(written to FILE.tmp, fsynced, checked, renamed). Example: "
        "paxon snapshot save backup.paxon",
        parents=[common],
    )
    save.add_argument("file", metavar="FILE")
    status = actions.add_parser(
        "status",
        help="check FILE and print its revision, keys, size and checksum",
        description="Check FILE offline. Example: paxon snapshot status backup.paxon",
    )
    status.add_argument("file", metavar="FILE")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    restore = actions.add_parser(
        "restore",
        help="seed a new member's data directory from FILE",
        description="Seed DIR as member N of a new cluster from FILE; run it once per "
        "member, then start each with paxon serve and the same --peers. Example: "
        "paxon snapshot restore backup.paxon --data-dir ./new/node1 --id 1 "
        "--peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003",
    )
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--data-dir", required=True, metavar="DIR", help="must be new or empty")
    restore.add_argument("--id", required=True, type=int, dest="node_id", metavar="N")
    restore.add_argument(
        "--peers", required=True, metavar="1=HOST:PORT,...", help="the new cluster's members"
    )
    restore.add_argument(
        "--cluster-id", default="paxon", metavar="C", help="as paxon serve's (paxon)"
    )


def is_online(args: argparse.Namespace) -> bool:
    """Whether this ``snapshot`` command talks to the cluster (``save``)."""
    return getattr(args, "snapshot_command", None) == "save"


def run_offline(args: argparse.Namespace) -> int:
    """``snapshot status`` or ``snapshot restore``: no connection."""
    action = getattr(args, "snapshot_command", None)
    try:
        if action == "status":
            return _status(args)
        if action == "restore":
            return _restore(args)
        raise BadRequest("choose an action: save, status or restore")
    except PaxonError as error:
        name = f"paxon snapshot {action}" if action else "paxon snapshot"
        print(f"{name}: {error}", file=sys.stderr)
        return error.exit_code


def snapshot_operation(args: argparse.Namespace) -> _Operation:
    """The operation of ``snapshot save`` (FILE's directory is checked now)."""
    path = args.file
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or os.path.isdir(path):
        raise BadRequest(f"cannot write {path}: no such directory, or it is one")

    async def run(client: Client) -> int:
        from paxon.storage.backup import save_atomically

        members = await _http_of(client)
        token = await client.login() if client.user is not None else None
        problems = []
        for url, endpoint in members:
            chunks = _download(url + "/v1/snapshot", token, client, endpoint)
            try:
                backup = await save_atomically(path, chunks)
            except OSError as error:
                raise BadRequest(f"cannot write {path}: {error.strerror or error}") from None
            except Unavailable as error:  # this member cannot send one now: the next may
                problems.append(str(error))
                continue
            _print(args, path, backup, f"saved {path}")
            return 0
        raise Unavailable("no member sent a backup: " + "; ".join(problems))

    return run


# ------------------------------------------------------------------- helpers


def _status(args: argparse.Namespace) -> int:
    from paxon.node.restore import check_backup

    backup = check_backup(args.file)
    _print(args, args.file, backup, f"{args.file}: ok")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from paxon.node.restore import restore_data_dir
    from paxon.server.config import format_address, parse_peers

    try:
        peers = {member: format_address(a) for member, a in parse_peers(args.peers).items()}
    except ValueError as error:
        raise BadRequest(f"--peers: {error}") from None
    try:
        restored = restore_data_dir(args.file, args.data_dir, args.node_id, peers, args.cluster_id)
    except OSError as error:
        raise BadRequest(f"cannot write {args.data_dir}: {error.strerror or error}") from None
    meta = restored.backup.meta
    print(
        f"restored {args.file} into {args.data_dir} as node {args.node_id} of "
        f"{len(peers)}: revision {meta.revision}, {meta.keys} keys, log from slot "
        f"{restored.slot}; start it with: paxon serve --id {args.node_id} "
        f"--data-dir {args.data_dir} --peers {args.peers} ..."
    )
    return 0


def _print(args: argparse.Namespace, path: str, backup: Backup, first: str) -> None:
    meta = backup.meta
    if getattr(args, "json", False):
        row = {"file": path, **meta.to_json()}
        row |= {"file_bytes": backup.file_bytes, "checksum": f"{backup.checksum:08x}"}
        print(json.dumps(row | {"checksum_ok": True}))
        return
    print(
        f"{first}: revision {meta.revision}, {meta.keys} keys, {backup.file_bytes} bytes, "
        f"crc32c {backup.checksum:08x} ok (taken by node {meta.node_id} of cluster "
        f"{meta.cluster_id!r} at {meta.taken_at}, slot {meta.slot})"
    )


async def _http_of(client: Client) -> list[tuple[str, str]]:
    """The HTTP base URL and the endpoint of each endpoint that answers and says where
    it serves HTTP, in the order of the endpoints (``Unavailable`` if none does)."""
    views = await client.node_views()
    found = []
    for endpoint, view in zip(client.endpoints, views, strict=True):
        if not view or not isinstance(view.get("http"), str):
            continue
        parts = urlsplit(view["http"])
        host = parts.hostname or ""
        if host in _WILDCARD_HOSTS:  # listening on every address: dial the one we used
            host = endpoint.rpartition(":")[0]
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        found.append((f"{parts.scheme}://{host}:{parts.port}", endpoint))
    if found:
        return found
    if any(views):
        raise Unavailable("no endpoint that answered serves HTTP (paxon serve --http)")
    raise Unavailable(client.status_problem or "no endpoint answered")


async def _download(
    url: str, token: str | None, client: Client, endpoint: str
) -> AsyncIterator[bytes]:
    import aiohttp

    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=client.options.timeout_s, sock_read=client.options.timeout_s
    )
    ssl = client.tls.context() if client.tls is not None and url.startswith("https") else None
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            async with session.get(url, headers=headers, ssl=ssl or True) as response:
                if response.status != 200:
                    raise _refusal(response.status, await response.read())
                async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
                    yield chunk
        except (aiohttp.ClientError, TimeoutError) as error:
            raise Unavailable(f"{url}: {error or type(error).__name__}") from None


def _refusal(status: int, body: bytes) -> PaxonError:
    try:
        message = str(json.loads(body).get("error"))
    except (ValueError, AttributeError):
        message = body[:200].decode(errors="replace")
    if status == 401:
        return Unauthenticated(message)
    if status == 403:
        return PermissionDenied(message)
    if status in (400, 404, 405):
        return BadRequest(message)
    return Unavailable(f"HTTP {status}: {message}")
