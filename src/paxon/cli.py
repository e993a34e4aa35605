"""The ``paxon`` command: the server (``serve``, ``dev``), the client commands, ``bench``,
``sim``, ``check`` and ``certs``.

Exit codes follow docs/api.md: 0 success; 1 refused or not satisfied (key not
found, compare failed; for ``sim``: a violation was found); 2 bad usage or bad
input; 3 the cluster could not be reached or gave no answer in ``--timeout``.
A paxon error's class carries its exit code (``PaxonError.exit_code``); every
error is one line on stderr, ``paxon COMMAND: what went wrong``.

A client command checks its input (arguments, the request on stdin, the TLS
files of ``--cacert``/``--cert``/``--key``) before it connects, so bad input is
exit 2 without a cluster; a failed TLS handshake makes a node unreachable (exit
3 with the reason). Values given on the
command line are UTF-8 text; ``get`` writes values as raw bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from paxon import __version__
from paxon.cli_auth import (
    AUTH_GROUPS,
    add_auth_commands,
    add_user_flag,
    auth_operation,
    command_name,
    credentials,
)
from paxon.cli_certs import add_certs_command, run_certs
from paxon.cli_common import (
    UsageError,
    non_negative_int,
    one_line,
    positive_float,
    positive_int,
    print_json,
    reporting_errors,
    share,
)
from paxon.cli_elect import add_elect_command, elect_operation
from paxon.cli_endpoint import ENDPOINT_GROUP, add_endpoint_commands, endpoint_operation
from paxon.cli_examples import add_examples
from paxon.cli_lease import (
    LEASE_GROUP,
    add_lease_commands,
    add_put_lease_flag,
    lease_operation,
    runs_until_interrupted,
)
from paxon.cli_lock import add_lock_command, lock_operation, split_command
from paxon.cli_sim import add_sim_command, run_sim
from paxon.cli_snapshot import (
    SNAPSHOT_GROUP,
    add_snapshot_commands,
    is_online,
    run_offline,
    snapshot_operation,
)
from paxon.cli_values import escaped, read_value
from paxon.cli_watch import add_watch_command, watch_operation
from paxon.errors import BadRequest, PaxonError, Timeout, Unavailable

if TYPE_CHECKING:
    from paxon.client import Client
    from paxon.security.client_tls import ClientTls

_Subcommands: TypeAlias = "argparse._SubParsersAction[_Parser]"
_Operation: TypeAlias = "Callable[[Client], Awaitable[int]]"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:
        # `paxon check` has its own parser in the storage package.
        return _run_check(argv[1:])
    parser = _build_parser()
    argv, command_argv = split_command(argv)
    try:
        args = parser.parse_args(argv)
        args.command_argv = command_argv
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        handler = _COMMANDS[args.command]
        return handler(args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`); not an error
        return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="paxon", description="Multi-Paxos for Python.")
    parser.add_argument("--version", action="version", version=f"paxon {__version__}")
    commands = parser.add_subparsers(
        dest="command", parser_class=_Parser, title="commands", metavar="COMMAND"
    )
    _add_server_commands(commands)
    _add_client_commands(commands)
    add_sim_command(commands)
    add_certs_command(commands)
    commands.add_parser(
        "check",
        help="verify a data directory offline (--data-dir DIR [--json])",
        add_help=False,
    )
    add_examples(parser)
    return parser


def _run_check(argv: list[str]) -> int:
    from paxon.storage.check import main as check_main

    return check_main(argv)


# -------------------------------------------------------------- serve and dev


_SERVE_FLAGS = {
    # key: (metavar, help)
    "id": ("N", "this node's id (>= 1); it must be among --peers (or added, for --join)"),
    "data_dir": ("DIR", "this node's data directory (created if missing)"),
    "listen": ("HOST:PORT", "for peers and native clients (default: this node's entry in --peers)"),
    "http": ("HOST:PORT", "for the JSON API, /metrics and the dashboard (none if not given)"),
    "peers": ("ID=HOST:PORT,...", "every member, this node included (read at the first start)"),
    "join": ("HOST:PORT,...", "a new member: ask these members' client ports for the members"),
    "cluster_id": ("NAME", "the cluster's name, kept in the data directory (paxon)"),
    "log_format": ("text|json", "log lines on stderr (text)"),
    "log_level": ("LEVEL", "debug, info, warning, error or critical (info)"),
    "heartbeat_interval_s": ("S", "seconds between leader heartbeats (0.05)"),
    "election_timeout_min_s": ("S", "shortest election timeout (0.3)"),
    "election_timeout_max_s": ("S", "longest election timeout (0.6)"),
    "lease_reads": (
        "on|off",
        "answer linearizable reads under a leader lease; set alike on every member (off)",
    ),
    "clock_drift_max": ("F", "the clock rate error lease reads rest on, a fraction (0.05)"),
    "value_max_bytes": ("B", "largest value accepted (1048576)"),
    "request_timeout_s": ("S", "a request not answered in S seconds times out (10)"),
    "history_revisions": (
        "N",
        "as leader, keep at least the last N revisions readable (10000; at most 1000000)",
    ),
    "history_seconds": (
        "S",
        "as leader, also keep every revision of the last S seconds of log time (off)",
    ),
    "unsafe_no_fsync": (
        "on|off",
        "BENCHMARKS ONLY: never fsync; a power loss loses acknowledged writes (off)",
    ),
    "peer_listen": ("HOST:PORT", "a port for peers only; --peers then names peer ports"),
    "peer_cert": ("FILE", "this node's certificate for peer mutual TLS (paxon certs)"),
    "peer_key": ("FILE", "its private key"),
    "peer_ca": ("FILE", "the CA that signs every member's peer certificate"),
    "cluster_secret_file": ("FILE", "without peer TLS: a shared secret peers must prove"),
    "cert": ("FILE", "client TLS on the native and HTTP ports: this node's certificate"),
    "key": ("FILE", "its private key"),
    "client_ca": ("FILE", "require client certificates signed by this CA"),
    "advertise_client": ("HOST:PORT", "the client address told to other members (--listen)"),
    "http_allowed_hosts": ("H,...", "Host names HTTP also answers to: HOST, HOST:PORT or * (none)"),
    "http_allowed_origins": ("URL,...", "origins whose pages may call HTTP: scheme://host[:port]"),
}


def _add_server_commands(commands: _Subcommands) -> None:
    from paxon.server.config import SETTING_NAMES

    serve = commands.add_parser(
        "serve",
        help="run one node of a cluster",
        description=(
            "Run one paxon node in the foreground until SIGTERM or SIGINT. Every flag "
            "can come from the --config TOML file instead (same names, with _ for -); "
            "flags win."
        ),
    )
    for key in SETTING_NAMES:
        metavar, help = _SERVE_FLAGS[key]
        serve.add_argument("--" + key.replace("_", "-"), dest=key, metavar=metavar, help=help)
    serve.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file")
    dev = commands.add_parser(
        "dev",
        help="run a local cluster of N nodes on 127.0.0.1 in the foreground",
        description=(
            "Start N `paxon serve` processes on 127.0.0.1; a node that exits leaves the "
            "others running. Commands typed at its terminal (help, status, kill N, stop N, "
            "pause N, resume N, restart N, add, remove N, quit) act on the nodes while it "
            "runs; at most 9 nodes. Ctrl-C stops them all. Run again on the same "
            "--data-dir, it starts the members it recorded there (DIR/dev-cluster.json), "
            "on the same ports. Membership changes log in as $PAXON_USER with "
            "$PAXON_PASSWORD once the cluster's auth is enabled."
        ),
    )
    # Defaults are None: a DIR that holds a dev cluster keeps its recorded ones.
    dev.add_argument(
        "--nodes", type=positive_int, help="how many nodes a new cluster starts with (3; 1..9)"
    )
    dev.add_argument("--base-port", type=positive_int, help="node 1's native port (7001)")
    dev.add_argument("--http-base-port", type=positive_int, help="node 1's HTTP port (8001)")
    dev.add_argument("--data-dir", default="./paxon-data", help="where the nodes keep their data")
    dev.add_argument("--peer-base-port", type=positive_int, help="node 1's peer port (7101)")
    dev.add_argument(
        "--insecure",
        action="store_true",
        help="no peer TLS: peers share the native port, unauthenticated",
    )
    dev.add_argument(
        "--client-tls", action="store_true", help="TLS on the native and HTTP ports too"
    )
    dev.add_argument(
        "--chaos",
        action="store_true",
        help="serve a dashboard with kill/pause/resume/restart buttons per node on "
        "127.0.0.1, one port below node 1's HTTP port (8000)",
    )


def _run_serve(args: argparse.Namespace) -> int:
    from paxon.server.config import SETTING_NAMES, load_serve_config

    flags = {key: getattr(args, key) for key in SETTING_NAMES}
    try:
        config = load_serve_config(flags, args.config)
    except BadRequest as error:
        print(f"paxon serve: {one_line(error)}", file=sys.stderr)
        return error.exit_code
    from paxon.server.serve import serve

    return serve(config)


def _run_dev(args: argparse.Namespace) -> int:
    from paxon.server.dev import run_dev

    return run_dev(
        args.nodes,
        args.base_port,
        args.http_base_port,
        args.data_dir,
        peer_base_port=args.peer_base_port,
        insecure=args.insecure,
        client_tls=args.client_tls,
        chaos=args.chaos,
    )


# ------------------------------------------------------------ client commands

_TIMEOUT_GRACE_S = 1.0  # the client gives up at --timeout; this bounds the whole command


def _add_client_commands(commands: _Subcommands) -> None:
    common = _Parser(add_help=False)
    common.add_argument(
        "--endpoints",
        metavar="HOST:PORT,...",
        help="native ports of the cluster (default: $PAXON_ENDPOINTS, then "
        "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003)",
    )
    common.add_argument("--json", action="store_true", help="print JSON, one object per line")
    common.add_argument(
        "--timeout", type=positive_float, default=10.0, metavar="S", help="give up after S s (10)"
    )
    common.add_argument(
        "--cacert",
        dest="tls_cacert",
        metavar="FILE",
        help="speak TLS, trusting the CA in FILE (default: $PAXON_CACERT; "
        "with --cert only: the system's CAs)",
    )
    common.add_argument(
        "--cert",
        dest="tls_cert",
        metavar="FILE",
        help="speak TLS with this client certificate ($PAXON_CERT)",
    )
    common.add_argument(
        "--key", dest="tls_key", metavar="FILE", help="the key of --cert ($PAXON_KEY)"
    )
    add_user_flag(common)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, parents=[common])

    put = add("put", "set KEY to VALUE; prints the new revision")
    put.add_argument("key", metavar="KEY")
    put.add_argument(
        "value",
        metavar="VALUE",
        nargs="?",
        help="UTF-8 text; - reads the value's bytes from stdin (at most 1 MiB)",
    )
    put.add_argument(
        "--from-file", metavar="PATH", help="read the value's bytes from PATH (at most 1 MiB)"
    )
    add_put_lease_flag(put)
    get = add("get", "print KEY's value (linearizable unless --serializable)")
    get.add_argument("key", metavar="KEY")
    get.add_argument(
        "--prefix",
        action="store_true",
        help="every key starting with KEY, one KEY<TAB>VALUE line each, escaped",
    )
    get.add_argument(
        "--serializable", action="store_true", help="read the local state (possibly stale)"
    )
    get.add_argument("--revision", type=non_negative_int, metavar="R", help="read as of R")
    get.add_argument(
        "--limit", type=positive_int, metavar="N", help="with --prefix: print the first N keys"
    )
    shown = get.add_mutually_exclusive_group()
    shown.add_argument("--keys-only", action="store_true", help="print the keys, not the values")
    shown.add_argument(
        "--count-only", action="store_true", help="print how many keys there are (0 is exit 0)"
    )
    delete = add("del", "delete KEY; prints how many keys were deleted")
    delete.add_argument("key", metavar="KEY")
    delete.add_argument("--prefix", action="store_true", help="every key starting with KEY")
    cas = add("cas", "set KEY to VALUE only if its version is V (0: must not exist)")
    cas.add_argument("key", metavar="KEY")
    cas.add_argument("value", metavar="VALUE")
    cas.add_argument(
        "--expect-version", type=non_negative_int, required=True, metavar="V", dest="version"
    )
    add("txn", "run the JSON transaction read from stdin; prints its result")
    compact = add("compact", "drop the history before REVISION on every member")
    compact.add_argument(
        "revision",
        metavar="REVISION",
        type=non_negative_int,
        help="reads below it then fail (exit 1); prints it, the oldest revision kept",
    )
    add("status", "show each member's role, ballot and log indexes")
    add_auth_commands(commands, common)
    add_lease_commands(commands, common)
    add_endpoint_commands(commands, common)
    add_snapshot_commands(commands, common)
    members = commands.add_parser("members", help="list the members; add, promote or remove one")
    member_commands = members.add_subparsers(dest="members_command", parser_class=_Parser)
    member_commands.add_parser("list", help="list the members", parents=[common])
    member_add = member_commands.add_parser(
        "add",
        help="add ID=PEER_HOST:PORT as a voter, or with --learner as a learner",
        parents=[common],
    )
    member_add.add_argument("member", metavar="ID=HOST:PORT", help="its id and peer address")
    member_add.add_argument(
        "--learner", action="store_true", help="it gets the log but does not vote (promote later)"
    )
    member_add.add_argument(
        "--auto-promote",
        action="store_true",
        help="a learner the leader promotes once it has caught up (implies --learner)",
    )
    member_promote = member_commands.add_parser(
        "promote", help="make learner ID a voter", parents=[common]
    )
    member_promote.add_argument("node_id", metavar="ID", type=positive_int)
    member_remove = member_commands.add_parser("remove", help="remove member ID", parents=[common])
    member_remove.add_argument("node_id", metavar="ID", type=positive_int)
    member_transfer = member_commands.add_parser(
        "transfer-leader",
        help="make voter ID the leader, without an election timeout",
        parents=[common],
    )
    member_transfer.add_argument("node_id", metavar="ID", type=positive_int)
    add_lock_command(commands, common)
    add_watch_command(commands, common)
    add_elect_command(commands, common)
    bench = add("bench", "load the cluster and report throughput and latency percentiles")
    bench.add_argument("--clients", type=positive_int, default=16, help="concurrent clients (16)")
    bench.add_argument("--ops", type=positive_int, default=10_000, help="operations (10000)")
    bench.add_argument(
        "--value-size", type=non_negative_int, default=100, metavar="B", help="bytes (100)"
    )
    bench.add_argument(
        "--read-ratio", type=share, default=0.0, metavar="R", help="share of gets (0.0)"
    )
    bench.add_argument(
        "--rate", type=positive_float, metavar="OPS_PER_S", help="open loop at this total rate"
    )
    bench.add_argument("--keys", type=positive_int, default=1000, help="distinct keys (1000)")


def _run_client_command(args: argparse.Namespace) -> int:
    """Check the input, then run the command against the cluster."""

    def body() -> int:
        operation = _CLIENT_COMMANDS[args.command](args)
        endpoints = _endpoints(args.endpoints)
        tls = _client_tls(args)
        user, password = credentials(args)
        # A backup bounds each piece it reads by --timeout, not the whole transfer.
        endless = runs_until_interrupted(args) or args.command in (
            "lock",
            "watch",
            "elect",
            SNAPSHOT_GROUP,
        )
        return asyncio.run(
            _with_client(endpoints, args.timeout, tls, operation, user, password, endless=endless)
        )

    name = f"members {args.members_command}" if args.command == "members" else command_name(args)
    return reporting_errors(name, body)


async def _with_client(
    endpoints: list[str],
    timeout_s: float,
    tls: ClientTls | None,
    operation: _Operation,
    user: str | None = None,
    password: str | None = None,
    *,
    endless: bool = False,
) -> int:
    """``operation`` on a client, all of it within ``timeout_s`` unless ``endless``
    (a command that runs until interrupted bounds each of its calls itself)."""
    from paxon.client import Client

    async def session() -> int:
        client = Client(endpoints, timeout=timeout_s, tls=tls, user=user, password=password)
        async with client:
            return await operation(client)

    if endless:
        return await session()
    try:
        return await asyncio.wait_for(session(), timeout_s + _TIMEOUT_GRACE_S)
    except TimeoutError:
        raise Timeout(f"no answer from the cluster in {timeout_s:g} s") from None


def _put(args: argparse.Namespace) -> _Operation:
    if args.value is None and args.from_file is None:
        raise UsageError("paxon put: the following arguments are required: VALUE")
    value = read_value(args.value, args.from_file)

    async def run(client: Client) -> int:
        revision = await client.put(args.key, value, lease=args.lease)
        _emit(args, {"revision": revision}, str(revision))
        return 0

    return run


def _get(args: argparse.Namespace) -> _Operation:
    from paxon.kv.jsonforms import keyvalue_to_json

    if args.limit is not None and not args.prefix:
        raise UsageError("paxon get: --limit needs --prefix")

    async def run(client: Client) -> int:
        serializable, revision = args.serializable, args.revision
        if args.prefix:
            items = await client.get_prefix(args.key, serializable=serializable, revision=revision)
        else:
            item = await client.get(args.key, serializable=serializable, revision=revision)
            items = [] if item is None else [item]
        if args.count_only:
            _emit(args, {"count": len(items)}, str(len(items)))
            return 0
        if not items:
            if args.prefix:
                raise _NotFound(f"no keys with prefix {args.key!r}")
            raise _NotFound(f"key {args.key!r} not found")
        for item in items[: args.limit]:
            if args.json:
                print_json({"key": item.key} if args.keys_only else keyvalue_to_json(item))
            elif args.keys_only:
                print(escaped(item.key.encode()))
            elif args.prefix:
                print(f"{escaped(item.key.encode())}\t{escaped(item.value)}")
            else:
                _write_bytes(item.value + b"\n")  # one key: its bytes, as they are
        return 0

    return run


def _delete(args: argparse.Namespace) -> _Operation:
    from paxon.kv.jsonforms import result_to_json

    async def run(client: Client) -> int:
        result = await client.delete(args.key, prefix=args.prefix)
        _emit(args, result_to_json(result), str(result.deleted))
        return 0

    return run


def _cas(args: argparse.Namespace) -> _Operation:
    from paxon.kv.jsonforms import result_to_json

    value = _utf8(args.value)

    async def run(client: Client) -> int:
        result = await client.cas(args.key, value, expect_version=args.version)
        if args.json:
            print_json(result_to_json(result))
        elif result.succeeded:
            print(result.revision)
        else:
            print(
                f"paxon cas: compare failed: {args.key!r} is at version {result.version}, "
                f"not {args.version}",
                file=sys.stderr,
            )
        return 0 if result.succeeded else 1

    return run


def _txn(args: argparse.Namespace) -> _Operation:
    from paxon.kv.jsonforms import object_from_json, result_to_json, txn_from_json

    if sys.stdin.isatty():
        print("paxon txn: reading the request from stdin (end it with Ctrl-D)", file=sys.stderr)
    try:
        request = object_from_json(sys.stdin.read(), "stdin")
    except UnicodeDecodeError:
        raise BadRequest("stdin is not UTF-8") from None
    txn = txn_from_json(request)

    async def run(client: Client) -> int:
        result = await client.txn(txn)
        print_json(result_to_json(result))
        return 0 if result.succeeded else 1

    return run


def _compact(args: argparse.Namespace) -> _Operation:
    from paxon.kv.jsonforms import result_to_json

    async def run(client: Client) -> int:
        result = await client.compact(args.revision)
        _emit(args, result_to_json(result), str(result.revision_compacted))
        return 0

    return run


def _status(args: argparse.Namespace) -> _Operation:
    async def run(client: Client) -> int:
        status = await _reachable_status(client)
        if args.json:
            print_json(status)
        else:
            print(_status_table(status))
        return 0

    return run


def _members(args: argparse.Namespace) -> _Operation:
    if args.members_command is None:
        raise UsageError("paxon members: choose list, add, promote, remove or transfer-leader")
    if args.members_command != "list":
        return _change_members(args)

    async def run(client: Client) -> int:
        status = await _reachable_status(client)
        for member in status["members"]:
            if args.json:
                print_json({key: member.get(key) for key in ("id", "address", "role")})
            else:
                role = member.get("role") or ("?" if member.get("reachable") else "unreachable")
                print(f"{member.get('id')}\t{member.get('address')}\t{role}")
        return 0

    return run


def _change_members(args: argparse.Namespace) -> _Operation:
    if args.members_command == "add":
        node_text, _, address = args.member.partition("=")
        if not node_text.isdigit() or int(node_text) < 1 or not address:
            raise UsageError(f"paxon members add: expected ID=HOST:PORT, got {args.member!r}")
        node_id = int(node_text)
        if args.auto_promote:
            action = "add-learner-auto-promote"
        else:
            action = "add-learner" if args.learner else "add"
        if action == "add":
            print(
                "paxon members add: adding a voter directly is safe only for a node that has "
                "caught up; add a new node --learner and promote it (docs/membership.md)",
                file=sys.stderr,
            )
    else:
        action, node_id, address = args.members_command, args.node_id, ""

    async def run(client: Client) -> int:
        configuration = await client.change_members(action, node_id, address)
        if action == "transfer-leader":
            return await _wait_for_leader(client, node_id, args)
        if args.json:
            print_json(configuration)
        else:
            print(f"configuration {configuration['epoch']}:")
            for member in configuration["members"]:
                print(f"{member['id']}\t{member['address']}\t{member['role']}")
        return 0

    return run


async def _wait_for_leader(client: Client, node_id: int, args: argparse.Namespace) -> int:
    """After a transfer: until ``node_id`` leads (1 if not within ``--timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    while loop.time() < deadline:
        if (await client.status()).get("leader") == node_id:
            if args.json:
                print_json({"leader": node_id})
            else:
                print(f"node {node_id} leads")
            return 0
        await asyncio.sleep(0.05)
    print(f"paxon members transfer-leader: node {node_id} did not take over", file=sys.stderr)
    return 1


def _run_bench(args: argparse.Namespace) -> int:
    from paxon.bench import BenchOptions
    from paxon.bench import main as bench_main

    def body() -> int:
        user, password = credentials(args)
        options = BenchOptions(
            endpoints=tuple(_endpoints(args.endpoints)),
            timeout_s=args.timeout,
            clients=args.clients,
            ops=args.ops,
            value_size=args.value_size,
            read_ratio=args.read_ratio,
            rate=args.rate,
            keys=args.keys,
            tls=_client_tls(args),
            user=user,
            password=password,
        )
        return bench_main(options, json_output=args.json)

    return reporting_errors("bench", body)


# ------------------------------------------------------------ client helpers


class _NotFound(PaxonError):
    """A read found nothing: exit 1 (docs/api.md)."""

    code = "not_found"
    exit_code = 1


async def _reachable_status(client: Client) -> dict[str, Any]:
    status = await client.status()
    if not any(member.get("reachable") for member in status["members"]):
        problem = f"; {client.status_problem}" if client.status_problem else ""
        raise Unavailable(f"no member answered ({', '.join(client.endpoints)}{problem})")
    return status


_STATUS_COLUMNS = (
    ("id", "ID"),
    ("address", "ADDRESS"),
    ("role", "ROLE"),
    ("epoch", "EPOCH"),
    ("ballot", "BALLOT"),
    ("commit_index", "COMMIT"),
    ("applied_index", "APPLIED"),
    ("lag", "LAG"),
    ("log_start", "LOG START"),
    ("snapshot_index", "SNAPSHOT"),
    ("reachable", "REACHABLE"),
)


def _status_table(status: dict[str, Any]) -> str:
    rows = [[title for _, title in _STATUS_COLUMNS]]
    for member in status["members"]:
        rows.append([_cell(member.get(key)) for key, _ in _STATUS_COLUMNS])
    widths = [max(len(row[column]) for row in rows) for column in range(len(_STATUS_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    leader = status.get("leader")
    lines.append(f"leader: {'none known' if leader is None else leader}")
    configuration = status.get("configuration")
    if configuration:
        roles: dict[str, list[str]] = {"voter": [], "learner": []}
        for member in configuration.get("members", []):
            roles.setdefault(str(member.get("role")), []).append(str(member.get("id")))
        lines.append(
            f"configuration {configuration.get('epoch')}: voters {', '.join(roles['voter'])}"
            + (f"; learners {', '.join(roles['learner'])}" if roles["learner"] else "")
        )
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _endpoints(text: str | None) -> list[str]:
    from paxon.client import parse_endpoints

    try:
        return parse_endpoints(text)
    except BadRequest as error:
        source = "--endpoints" if text is not None else "$PAXON_ENDPOINTS"
        raise BadRequest(f"{source}: {error}") from None


def _client_tls(args: argparse.Namespace) -> ClientTls | None:
    """TLS settings from the flags and ``$PAXON_CACERT``/``CERT``/``KEY``; None: plain TCP."""
    from paxon.security.client_tls import ClientTls

    tls = ClientTls.from_options(args.tls_cacert, args.tls_cert, args.tls_key)
    if tls is not None:
        tls.context()  # a missing or bad file is exit 2 now, before anything connects
    return tls


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise BadRequest("VALUE is not valid UTF-8 text") from None


def _emit(args: argparse.Namespace, as_json: object, as_text: str) -> None:
    if args.json:
        print_json(as_json)
    else:
        print(as_text)


def _write_bytes(data: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


_CLIENT_COMMANDS: dict[str, Callable[[argparse.Namespace], _Operation]] = {
    "put": _put,
    "get": _get,
    "del": _delete,
    "cas": _cas,
    "txn": _txn,
    "compact": _compact,
    "status": _status,
    "members": _members,
    **dict.fromkeys(AUTH_GROUPS, auth_operation),
    LEASE_GROUP: lease_operation,
    ENDPOINT_GROUP: endpoint_operation,
    SNAPSHOT_GROUP: snapshot_operation,
    "lock": lock_operation,
    "watch": watch_operation,
    "elect": elect_operation,
}


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": _run_serve,
    "dev": _run_dev,
    "put": _run_client_command,
    "get": _run_client_command,
    "del": _run_client_command,
    "cas": _run_client_command,
    "txn": _run_client_command,
    "compact": _run_client_command,
    "status": _run_client_command,
    "members": _run_client_command,
    **dict.fromkeys(AUTH_GROUPS, _run_client_command),
    LEASE_GROUP: _run_client_command,
    ENDPOINT_GROUP: _run_client_command,
    SNAPSHOT_GROUP: lambda args: (
        _run_client_command(args) if is_online(args) else run_offline(args)
    ),
    "lock": _run_client_command,
    "watch": _run_client_command,
    "elect": _run_client_command,
    "bench": _run_bench,
    "sim": run_sim,
    "certs": run_certs,
}
