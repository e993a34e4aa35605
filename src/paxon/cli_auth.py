"""The ``paxon auth``, ``paxon user`` and ``paxon role`` commands, and ``--user``.

Who runs a client command: ``--user NAME`` (default ``$PAXON_USER``), with the
password from ``$PAXON_PASSWORD`` or else a prompt on the terminal. Without a
user, commands run without a token, which is all a cluster with auth disabled
(the default) needs. A new user's password (``user add``, ``user passwd``)
comes from ``$PAXON_NEW_PASSWORD`` or a prompt (asked twice). Passwords are
never taken on the command line, where other local users could read them.

Exit codes are docs/api.md's: 0 done; 1 refused (``unauthenticated``: no login or a
wrong one; ``permission_denied``; a rule of ``paxon.kv.auth`` such as "no such
user"); 2 bad usage; 3 the cluster could not be reached.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from paxon.errors import BadRequest

if TYPE_CHECKING:
    from paxon.client import Client

_Operation: TypeAlias = "Callable[[Client], Awaitable[int]]"
_Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"

AUTH_GROUPS = ("auth", "user", "role")


def add_user_flag(common: argparse.ArgumentParser) -> None:
    common.add_argument(
        "--user",
        metavar="NAME",
        help="run as this user (default: $PAXON_USER); password from $PAXON_PASSWORD or a prompt",
    )


def credentials(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """``(user, password)`` from ``--user``/``$PAXON_USER`` and ``$PAXON_PASSWORD`` or a prompt."""
    user = args.user or os.environ.get("PAXON_USER") or None
    if user is None:
        return None, None
    password = os.environ.get("PAXON_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password for {user}: ")
    return user, password


def add_auth_commands(commands: _Subcommands, common: argparse.ArgumentParser) -> None:
    def group(name: str, help: str) -> _Subcommands:
        parser = commands.add_parser(name, help=help, description=help)
        actions: _Subcommands = parser.add_subparsers(
            dest=f"{name}_command", parser_class=type(parser)
        )
        return actions

    def add(actions: _Subcommands, name: str, help: str, *names: str) -> None:
        parser = actions.add_parser(name, help=help, description=help, parents=[common])
        for each in names:
            parser.add_argument(each.lower(), metavar=each)

    auth = group("auth", "turn users and permissions on or off")
    add(auth, "enable", "require a login for every request (the user root must exist)")
    add(auth, "disable", "let every client do everything again (users and roles are kept)")
    user = group("user", "manage users")
    add(user, "add", "add a user (password: $PAXON_NEW_PASSWORD or a prompt)", "NAME")
    add(user, "delete", "delete a user", "NAME")
    add(user, "passwd", "change a user's password ($PAXON_NEW_PASSWORD or a prompt)", "NAME")
    add(user, "grant-role", "give a user a role", "NAME", "ROLE")
    add(user, "revoke-role", "take a role from a user", "NAME", "ROLE")
    add(user, "list", "list the users and their roles")
    role = group("role", "manage roles and their permissions on key prefixes")
    add(role, "add", "add a role", "NAME")
    add(role, "delete", "delete a role (and take it from every user)", "NAME")
    grant = role.add_parser(
        "grant",
        help="let a role read, or read and write, every key under PREFIX",
        parents=[common],
    )
    grant.add_argument("name", metavar="NAME")
    grant.add_argument("prefix", metavar="PREFIX", help='a key prefix ("" for every key)')
    grant.add_argument("mode", metavar="MODE", choices=("read", "readwrite"))
    add(role, "revoke", "take a role's permission on PREFIX away", "NAME", "PREFIX")
    add(role, "list", "list the roles and their permissions")


def command_name(args: argparse.Namespace) -> str:
    action = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {action}" if action else args.command


def auth_operation(args: argparse.Namespace) -> _Operation:
    """The operation for ``paxon auth|user|role ACTION``; input is checked now."""
    action = getattr(args, f"{args.command}_command", None)
    if action is None:
        raise BadRequest("choose an action (see --help)")
    key = f"{args.command} {action}"
    if key in ("user add", "user passwd"):
        new_password = _new_password(args.name)
        verb = "added" if action == "add" else "changed"

        async def with_password(client: Client) -> int:
            if action == "add":
                revision = await client.user_add(args.name, new_password)
            else:
                revision = await client.user_passwd(args.name, new_password)
            _done(args, revision, f"user {args.name} {verb}")
            return 0

        return with_password
    if key == "user list":
        return _user_list(args)
    if key == "role list":
        return _role_list(args)
    return _simple(args, key)


def _simple(args: argparse.Namespace, key: str) -> _Operation:
    calls: dict[str, tuple[Callable[[Client], Awaitable[int]], str]] = {
        "auth enable": (lambda c: c.auth_enable(), "auth enabled"),
        "auth disable": (lambda c: c.auth_disable(), "auth disabled"),
        "user delete": (lambda c: c.user_delete(args.name), f"user {_arg(args, 'name')} deleted"),
        "user grant-role": (
            lambda c: c.user_grant_role(args.name, args.role),
            f"role {_arg(args, 'role')} granted to user {_arg(args, 'name')}",
        ),
        "user revoke-role": (
            lambda c: c.user_revoke_role(args.name, args.role),
            f"role {_arg(args, 'role')} revoked from user {_arg(args, 'name')}",
        ),
        "role add": (lambda c: c.role_add(args.name), f"role {_arg(args, 'name')} added"),
        "role delete": (lambda c: c.role_delete(args.name), f"role {_arg(args, 'name')} deleted"),
        "role grant": (
            lambda c: c.role_grant(args.name, args.prefix, args.mode),
            f"role {_arg(args, 'name')} may {_arg(args, 'mode')} keys under "
            f"{_arg(args, 'prefix')!r}",
        ),
        "role revoke": (
            lambda c: c.role_revoke(args.name, args.prefix),
            f"role {_arg(args, 'name')} lost its permission on {_arg(args, 'prefix')!r}",
        ),
    }
    call, message = calls[key]

    async def run(client: Client) -> int:
        _done(args, await call(client), message)
        return 0

    return run


def _user_list(args: argparse.Namespace) -> _Operation:
    async def run(client: Client) -> int:
        enabled, users = await client.user_list()
        if args.json:
            rows = [{"name": user.name, "roles": list(user.roles)} for user in users]
            print(json.dumps({"enabled": enabled, "users": rows}))
        else:
            print(f"auth {'enabled' if enabled else 'disabled'}")
            for user in users:
                print(f"{user.name}\t{','.join(user.roles) or '-'}")
        return 0

    return run


def _role_list(args: argparse.Namespace) -> _Operation:
    async def run(client: Client) -> int:
        roles = await client.role_list()
        if args.json:
            rows = [
                {
                    "name": role.name,
                    "permissions": [{"prefix": p, "mode": m} for p, m in role.permissions],
                }
                for role in roles
            ]
            print(json.dumps({"roles": rows}))
        else:
            for role in roles:
                permissions = ",".join(f"{p!r}={m}" for p, m in role.permissions)
                print(f"{role.name}\t{permissions or '-'}")
        return 0

    return run


def _done(args: argparse.Namespace, revision: int, message: str) -> None:
    print(json.dumps({"auth_revision": revision}) if args.json else message)


def _arg(args: argparse.Namespace, name: str) -> str:
    return str(getattr(args, name, ""))


def _new_password(name: str) -> str:
    password = os.environ.get("PAXON_NEW_PASSWORD")
    if password is not None:
        return password
    password = getpass.getpass(f"new password for {name}: ")
    if getpass.getpass(f"new password for {name} again: ") != password:
        raise BadRequest("the two passwords differ")
    return password
