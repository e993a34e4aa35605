"""Auth commands, queries, results and the token envelope, to msgpack bytes and back.

The same conventions as ``paxon.kv.codec`` (one array, a type tag first,
fields in order, decoding trusts nothing and raises ``KvDecodeError``)::

    tag  object            fields
    5    envelope          token (str), inner (bin: a command or query's bytes)
    32   AuthEnable        token_key (bin, 32 bytes)
    33   AuthDisable       -
    34   UserAdd           name, password_hash (bin, 48 bytes)
    35   UserDelete        name
    36   UserPasswd        name, password_hash
    37   UserGrantRole     name, role
    38   UserRevokeRole    name, role
    39   RoleAdd           name
    40   RoleDelete        name
    41   RoleGrant         name, prefix, mode ("read" | "readwrite")
    42   RoleRevoke        name, prefix
    48   PasswordRequest   name, password, new_user   (client -> edge only; never logged)
    50   UserList          -                           (query)
    51   RoleList          -                           (query)
    21   AuthResult        revision
    22   UserListResult    enabled, [[name, [role...]]...]
    23   RoleListResult    [[name, [[prefix, mode]...]]...]

The envelope is how a request carries its user's token: the client (or the
HTTP edge) wraps the command or query bytes in it, and the token travels with
the command through forwarding and into the log, where every replica checks
it again at apply time (``paxon.kv.auth``, ``docs/security.md``).
"""

from __future__ import annotations

from typing import Final

from paxon.kv.auth import (
    MODES,
    AuthCommand,
    AuthDisable,
    AuthEnable,
    AuthQuery,
    AuthResult,
    PasswordRequest,
    RoleAdd,
    RoleDelete,
    RoleGrant,
    RoleInfo,
    RoleList,
    RoleListResult,
    RoleRevoke,
    UserAdd,
    UserDelete,
    UserGrantRole,
    UserInfo,
    UserList,
    UserListResult,
    UserPasswd,
    UserRevokeRole,
)
from paxon.kv.codec import KvDecodeError, _pack, decode_result, unpack
from paxon.kv.model import ErrorResult

TAG_ENVELOPE: Final = 5
TAG_RESULT: Final = 21
TAG_USER_LIST_RESULT: Final = 22
TAG_ROLE_LIST_RESULT: Final = 23
TAG_PASSWORD_REQUEST: Final = 48
TAG_USER_LIST: Final = 50
TAG_ROLE_LIST: Final = 51

_COMMAND_TAGS: Final[dict[type, int]] = {
    AuthEnable: 32,
    AuthDisable: 33,
    UserAdd: 34,
    UserDelete: 35,
    UserPasswd: 36,
    UserGrantRole: 37,
    UserRevokeRole: 38,
    RoleAdd: 39,
    RoleDelete: 40,
    RoleGrant: 41,
    RoleRevoke: 42,
}
# Field types of each command after its tag.
_COMMAND_FIELDS: Final[dict[int, tuple[type, tuple[type, ...]]]] = {
    32: (AuthEnable, (bytes,)),
    33: (AuthDisable, ()),
    34: (UserAdd, (str, bytes)),
    35: (UserDelete, (str,)),
    36: (UserPasswd, (str, bytes)),
    37: (UserGrantRole, (str, str)),
    38: (UserRevokeRole, (str, str)),
    39: (RoleAdd, (str,)),
    40: (RoleDelete, (str,)),
    41: (RoleGrant, (str, str, str)),
    42: (RoleRevoke, (str, str)),
}
AUTH_COMMAND_TAGS: Final = frozenset(_COMMAND_FIELDS)


# ------------------------------------------------------------------ envelope


def wrap(token: str, inner: bytes) -> bytes:
    """``inner`` (a command or query's bytes) carried with ``token``."""
    return _pack([TAG_ENVELOPE, token, inner])


def unwrap(data: bytes) -> tuple[str | None, bytes]:
    """``(token, inner)`` of an envelope; ``(None, data)`` for bytes that are not one."""
    # An envelope starts with a fixarray(3) header and the tag 5.
    if data[:2] != b"\x93\x05":
        return None, data
    fields = unpack(data, "envelope")
    if (
        type(fields) is not list
        or len(fields) != 3
        or type(fields[1]) is not str
        or type(fields[2]) is not bytes
    ):
        raise KvDecodeError("envelope: expected [5, token, inner]")
    return fields[1], fields[2]


# ------------------------------------------------------------------ commands


def encode_auth_command(command: AuthCommand | PasswordRequest) -> bytes:
    if type(command) is PasswordRequest:
        return _pack([TAG_PASSWORD_REQUEST, command.name, command.password, command.new_user])
    tag = _COMMAND_TAGS[type(command)]
    return _pack([tag, *(getattr(command, name) for name in command.__slots__)])


def decode_auth_command(fields: list[object]) -> AuthCommand | PasswordRequest:
    """An auth command from its decoded array (tag first), or ``KvDecodeError``."""
    tag = fields[0]
    if tag == TAG_PASSWORD_REQUEST:
        if (
            len(fields) == 4
            and type(fields[1]) is str
            and type(fields[2]) is str
            and type(fields[3]) is bool
        ):
            return PasswordRequest(fields[1], fields[2], fields[3])
        raise KvDecodeError("password request: expected [48, name, password, new_user]")
    shape = _COMMAND_FIELDS.get(tag)  # type: ignore[call-overload]
    if shape is None:
        raise KvDecodeError(f"command: unknown tag {tag}")
    kind, types = shape
    values = fields[1:]
    if len(values) != len(types) or any(
        type(value) is not want for value, want in zip(values, types, strict=True)
    ):
        raise KvDecodeError(f"command: {kind.__name__} expects fields of {types}")
    if kind is RoleGrant and values[2] not in MODES:
        raise KvDecodeError(f"command: RoleGrant mode must be one of {MODES}")
    command: AuthCommand = kind(*values)
    return command


def encode_auth_query(query: AuthQuery) -> bytes:
    return _pack([TAG_USER_LIST if type(query) is UserList else TAG_ROLE_LIST])


def decode_auth_query(fields: list[object]) -> AuthQuery | None:
    """The auth query ``fields`` holds, or None when it is not one."""
    if fields == [TAG_USER_LIST]:
        return UserList()
    if fields == [TAG_ROLE_LIST]:
        return RoleList()
    return None


# ------------------------------------------------------------------ results

AuthAnswer = AuthResult | UserListResult | RoleListResult


def encode_auth_result(result: AuthAnswer) -> bytes:
    match result:
        case AuthResult(revision):
            return _pack([TAG_RESULT, revision])
        case UserListResult(enabled, users):
            return _pack([TAG_USER_LIST_RESULT, enabled, [[u.name, list(u.roles)] for u in users]])
        case RoleListResult(roles):
            rows = [[r.name, [list(p) for p in r.permissions]] for r in roles]
            return _pack([TAG_ROLE_LIST_RESULT, rows])


def decode_auth_result(data: bytes) -> AuthAnswer:
    """An auth answer; an ``ErrorResult`` raises its typed error."""
    fields = unpack(data, "result")
    if type(fields) is list and fields and type(fields[0]) is int:
        try:
            return _auth_answer(fields)
        except (TypeError, ValueError):
            raise KvDecodeError("result: a malformed auth answer") from None
    result = decode_result(data)
    if isinstance(result, ErrorResult):
        raise result.to_error()
    raise KvDecodeError(f"expected an auth answer, got a {type(result).__name__}")


def _auth_answer(fields: list[object]) -> AuthAnswer:
    tag = fields[0]
    if tag == TAG_RESULT and len(fields) == 2 and type(fields[1]) is int:
        return AuthResult(fields[1])
    if tag == TAG_USER_LIST_RESULT and len(fields) == 3 and type(fields[1]) is bool:
        users = tuple(
            UserInfo(str(name), tuple(str(role) for role in roles))
            for name, roles in fields[2]  # type: ignore[attr-defined]
        )
        return UserListResult(fields[1], users)
    if tag == TAG_ROLE_LIST_RESULT and len(fields) == 2:
        roles = tuple(
            RoleInfo(str(name), tuple((str(p), m) for p, m in permissions if m in MODES))
            for name, permissions in fields[1]  # type: ignore[attr-defined]
        )
        return RoleListResult(roles)
    if tag == 20:  # an ErrorResult: the store's refusal
        result = decode_result(_pack(fields))
        assert isinstance(result, ErrorResult)
        raise result.to_error()
    raise KvDecodeError(f"result: expected an auth answer, got tag {tag}")
