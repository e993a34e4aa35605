"""Users, roles and permissions: replicated state of the key-value store, as etcd keeps it.

Everything here is deterministic (no clock, no randomness, no I/O): every
replica applies the same auth commands in log order and holds the same
``AuthState``. The node's edge (``paxon.node.authgate``) does what needs a
clock or randomness: it hashes passwords (with a random salt, on a worker
thread), picks the token key of ``auth enable``, issues tokens and checks
their age.

Model (etcd's):
- Users have a password hash and roles; roles have permissions ``(prefix,
  mode)``, ``mode`` ``read`` or ``readwrite``. A permission on prefix ``p``
  covers key ``k`` when ``k`` starts with ``p`` (``""`` covers every key), and
  a prefix range ``q`` when ``q`` starts with ``p``. A user may do what one of
  its roles' permissions covers.
- The role ``root`` is built in: it covers every key for read and write and
  is the only role that may administer auth. The user ``root`` always holds
  it (it is granted on ``user add root`` and cannot be revoked), and ``auth
  enable`` requires the user ``root`` to exist. While enabled, ``root`` cannot
  be deleted.
- While auth is disabled (the default) every request is allowed, including
  auth administration (that is how ``root`` is made before enabling).
- ``revision`` counts auth changes. A user's ``generation`` is the revision
  at which its password was last set, so a password change or a delete and
  re-add makes every earlier token of that user invalid; disabling auth
  clears ``token_key``, and each ``auth enable`` carries a fresh one.

Tokens: ``base64url(msgpack([1, user, generation, issued_ms])) "." base64url(mac)``
with ``mac = HMAC-SHA256(token_key, "paxon-token-1" 0x00 || payload)``. Any
member verifies one against its own replica of ``token_key`` (so a token
works on every node). ``verify_token`` checks the MAC, the user and the
generation; its age (``TOKEN_TTL_MS``) is checked at the edge against the
receiving node's clock, since the store has no clock.

Passwords: ``hashlib.scrypt`` (OpenSSL's) with N=2**14, r=8, p=1, a 32-byte
key and a 16-byte random salt; the stored hash is ``salt || key`` (48 bytes).
The parameters are fixed (a rule of the replicated state), so a hash sent in
a command cannot ask a node for a costlier verification.

Limits (rules of the replicated state, the same on every node):

| limit                     | number   |
|---------------------------|----------|
| ``USERS_MAX``             | 1,000    |
| ``ROLES_MAX``             | 1,000    |
| ``PERMISSIONS_PER_ROLE_MAX`` | 256   |
| ``ROLES_PER_USER_MAX``    | 64       |
| ``NAME_MAX_BYTES`` (user, role) | 64 (printable ASCII, no space) |
| ``PASSWORD_MAX_BYTES``    | 1,024 (checked at the edge) |
| ``TOKEN_MAX_BYTES``       | 512      |
| ``TOKEN_TTL_MS``          | 86,400,000 (24 h) |
| a permission's prefix     | the store's ``key_max_bytes`` (4,096) |
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

import msgpack  # type: ignore[import-untyped]

from paxon.errors import BadRequest, PermissionDenied, Unauthenticated

USERS_MAX: Final = 1_000
ROLES_MAX: Final = 1_000
PERMISSIONS_PER_ROLE_MAX: Final = 256
ROLES_PER_USER_MAX: Final = 64
NAME_MAX_BYTES: Final = 64
PASSWORD_MAX_BYTES: Final = 1_024
TOKEN_MAX_BYTES: Final = 512
TOKEN_TTL_MS: Final = 24 * 3600 * 1000
TOKEN_KEY_BYTES: Final = 32

ROOT: Final = "root"
"""The built-in role, and the user that must exist before ``auth enable``."""

SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SALT_BYTES: Final = 16
DERIVED_BYTES: Final = 32
PASSWORD_HASH_BYTES: Final = SALT_BYTES + DERIVED_BYTES

Mode: TypeAlias = Literal["read", "readwrite"]
MODES: Final[tuple[Mode, ...]] = ("read", "readwrite")
Access: TypeAlias = Literal["read", "write"]

_TOKEN_VERSION: Final = 1
_TOKEN_CONTEXT: Final = b"paxon-token-1\x00"


# ------------------------------------------------------------------ commands


@dataclass(frozen=True, slots=True)
class AuthEnable:
    token_key: bytes


@dataclass(frozen=True, slots=True)
class AuthDisable:
    pass


@dataclass(frozen=True, slots=True)
class UserAdd:
    name: str
    password_hash: bytes


@dataclass(frozen=True, slots=True)
class UserDelete:
    name: str


@dataclass(frozen=True, slots=True)
class UserPasswd:
    name: str
    password_hash: bytes


@dataclass(frozen=True, slots=True)
class UserGrantRole:
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class UserRevokeRole:
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class RoleAdd:
    name: str


@dataclass(frozen=True, slots=True)
class RoleDelete:
    name: str


@dataclass(frozen=True, slots=True)
class RoleGrant:
    name: str
    prefix: str
    mode: Mode


@dataclass(frozen=True, slots=True)
class RoleRevoke:
    name: str
    prefix: str


AuthCommand: TypeAlias = (
    AuthEnable
    | AuthDisable
    | UserAdd
    | UserDelete
    | UserPasswd
    | UserGrantRole
    | UserRevokeRole
    | RoleAdd
    | RoleDelete
    | RoleGrant
    | RoleRevoke
)


@dataclass(frozen=True, slots=True)
class PasswordRequest:
    """``user add`` / ``user passwd`` as a client sends it: the password in clear.

    Only the node's edge sees one; it hashes the password and proposes a
    ``UserAdd`` / ``UserPasswd``. The store refuses one that reaches ``apply``.
    """

    name: str
    password: str
    new_user: bool


@dataclass(frozen=True, slots=True)
class UserList:
    pass


@dataclass(frozen=True, slots=True)
class RoleList:
    pass


AuthQuery: TypeAlias = UserList | RoleList


@dataclass(frozen=True, slots=True)
class AuthResult:
    """An auth command was applied; ``revision`` is the auth revision after it."""

    revision: int


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoleInfo:
    name: str
    permissions: tuple[tuple[str, Mode], ...]


@dataclass(frozen=True, slots=True)
class UserListResult:
    enabled: bool
    users: tuple[UserInfo, ...]


@dataclass(frozen=True, slots=True)
class RoleListResult:
    roles: tuple[RoleInfo, ...]


# ------------------------------------------------------------------ state


@dataclass(slots=True)
class User:
    password_hash: bytes
    roles: list[str]  # sorted
    generation: int


@dataclass(slots=True)
class AuthState:
    enabled: bool = False
    token_key: bytes = b""
    revision: int = 0
    users: dict[str, User] = field(default_factory=dict)
    roles: dict[str, list[tuple[str, Mode]]] = field(default_factory=dict)
    """Role name -> permissions sorted by prefix (one per prefix); ``root`` is not in it."""

    def apply(self, command: AuthCommand, key_max_bytes: int) -> AuthResult:
        """Apply one auth command, or raise ``BadRequest`` and change nothing."""
        _check_command(command, key_max_bytes)
        match command:
            case AuthEnable(token_key):
                user = self.users.get(ROOT)
                if user is None:
                    raise BadRequest("auth enable needs the user root: `paxon user add root` first")
                self.enabled, self.token_key = True, token_key
            case AuthDisable():
                self.enabled, self.token_key = False, b""
            case UserAdd(name, password_hash):
                if name in self.users:
                    raise BadRequest(f"user {name!r} already exists")
                if len(self.users) >= USERS_MAX:
                    raise BadRequest(f"there are already {USERS_MAX} users (the limit)")
                roles = [ROOT] if name == ROOT else []
                self.users[name] = User(password_hash, roles, self.revision + 1)
            case UserDelete(name):
                self._user(name)
                if name == ROOT and self.enabled:
                    raise BadRequest("the user root cannot be deleted while auth is enabled")
                del self.users[name]
            case UserPasswd(name, password_hash):
                user = self._user(name)
                user.password_hash, user.generation = password_hash, self.revision + 1
            case UserGrantRole(name, role):
                user = self._user(name)
                self._role(role)
                if role in user.roles:
                    raise BadRequest(f"user {name!r} already has role {role!r}")
                if len(user.roles) >= ROLES_PER_USER_MAX:
                    raise BadRequest(f"user {name!r} has {ROLES_PER_USER_MAX} roles (the limit)")
                user.roles = sorted([*user.roles, role])
            case UserRevokeRole(name, role):
                user = self._user(name)
                if role not in user.roles:
                    raise BadRequest(f"user {name!r} does not have role {role!r}")
                if name == ROOT and role == ROOT:
                    raise BadRequest("the role root cannot be revoked from the user root")
                user.roles = [each for each in user.roles if each != role]
            case RoleAdd(name):
                if name == ROOT or name in self.roles:
                    raise BadRequest(f"role {name!r} already exists")
                if len(self.roles) >= ROLES_MAX:
                    raise BadRequest(f"there are already {ROLES_MAX} roles (the limit)")
                self.roles[name] = []
            case RoleDelete(name):
                self._editable_role(name)
                del self.roles[name]
                for user in self.users.values():
                    if name in user.roles:
                        user.roles.remove(name)
            case RoleGrant(name, prefix, mode):
                permissions = self._editable_role(name)
                kept = [p for p in permissions if p[0] != prefix]
                if len(kept) >= PERMISSIONS_PER_ROLE_MAX:
                    raise BadRequest(
                        f"role {name!r} has {PERMISSIONS_PER_ROLE_MAX} permissions (the limit)"
                    )
                self.roles[name] = sorted([*kept, (prefix, mode)])
            case RoleRevoke(name, prefix):
                permissions = self._editable_role(name)
                kept = [p for p in permissions if p[0] != prefix]
                if len(kept) == len(permissions):
                    raise BadRequest(f"role {name!r} has no permission on prefix {prefix!r}")
                self.roles[name] = kept
        self.revision += 1
        return AuthResult(self.revision)

    def allowed(self, user: str, access: Access, key: str, *, prefix: bool = False) -> bool:
        """Whether ``user`` may ``access`` the key (or every key under the prefix)."""
        found = self.users.get(user)
        if found is None:
            return False
        for role in found.roles:
            if role == ROOT:
                return True
            for permission_prefix, mode in self.roles.get(role, ()):
                if access == "write" and mode != "readwrite":
                    continue
                if key.startswith(permission_prefix):
                    return True
        return False

    def is_root(self, user: str) -> bool:
        found = self.users.get(user)
        return found is not None and ROOT in found.roles

    def check(self, user: str, wants: Iterable[tuple[Access, str, bool]]) -> None:
        """Raise ``PermissionDenied`` unless ``user`` may do each ``(access, key, prefix)``."""
        for access, key, prefix in wants:
            if not self.allowed(user, access, key, prefix=prefix):
                what = "keys under" if prefix else "key"
                raise PermissionDenied(f"user {user!r} may not {access} {what} {key!r}")

    def check_admin(self, user: str) -> None:
        if not self.is_root(user):
            raise PermissionDenied(f"user {user!r} may not administer auth (needs role root)")

    def list_users(self) -> UserListResult:
        users = tuple(UserInfo(name, tuple(self.users[name].roles)) for name in sorted(self.users))
        return UserListResult(self.enabled, users)

    def list_roles(self) -> RoleListResult:
        roles = [RoleInfo(ROOT, (("", "readwrite"),))]
        roles += [RoleInfo(name, tuple(self.roles[name])) for name in sorted(self.roles)]
        return RoleListResult(tuple(roles))

    def copy(self) -> AuthState:
        """A deep copy (for a snapshot captured now and encoded later)."""
        users = {
            name: User(user.password_hash, list(user.roles), user.generation)
            for name, user in self.users.items()
        }
        roles = {name: list(permissions) for name, permissions in self.roles.items()}
        return AuthState(self.enabled, self.token_key, self.revision, users, roles)

    def check_invariants(self) -> None:
        problem = self.invariant_problem()
        assert problem is None, problem

    def invariant_problem(self) -> str | None:
        """The first broken invariant, or None (also used on untrusted snapshots)."""
        if self.enabled != bool(self.token_key) or (self.enabled and ROOT not in self.users):
            return "enabled needs a token key and the user root (and disabled has no key)"
        if len(self.users) > USERS_MAX or len(self.roles) > ROLES_MAX or ROOT in self.roles:
            return "too many users or roles, or root among the roles"
        for name, user in self.users.items():
            if user.roles != sorted(set(user.roles)) or (name == ROOT and ROOT not in user.roles):
                return f"user {name!r}: roles not sorted, repeated, or root without root"
            if any(role != ROOT and role not in self.roles for role in user.roles):
                return f"user {name!r}: a role that does not exist"
            if not 0 < user.generation <= self.revision:
                return f"user {name!r}: generation out of range"
        for name, permissions in self.roles.items():
            prefixes = [prefix for prefix, _ in permissions]
            if prefixes != sorted(set(prefixes)):
                return f"role {name!r}: permissions not sorted or repeated"
        return None

    # -------------------------------------------------------------- tokens

    def verify_token(self, token: str) -> tuple[str, int]:
        """``(user, issued_ms)`` of a token this state accepts, else ``Unauthenticated``.

        Checks the MAC under ``token_key``, that the user exists and that its
        generation is the token's; not the token's age (the caller's clock)."""
        if not self.enabled:
            raise Unauthenticated("auth is not enabled; no token is valid")
        user, generation, issued_ms = _open_token(self.token_key, token)
        found = self.users.get(user)
        if found is None or found.generation != generation:
            raise Unauthenticated("the token is no longer valid (user changed or deleted)")
        return user, issued_ms

    # -------------------------------------------------------------- helpers

    def _user(self, name: str) -> User:
        user = self.users.get(name)
        if user is None:
            raise BadRequest(f"no such user {name!r}")
        return user

    def _role(self, name: str) -> None:
        if name != ROOT and name not in self.roles:
            raise BadRequest(f"no such role {name!r}")

    def _editable_role(self, name: str) -> list[tuple[str, Mode]]:
        if name == ROOT:
            raise BadRequest("the role root is built in and cannot be changed")
        permissions = self.roles.get(name)
        if permissions is None:
            raise BadRequest(f"no such role {name!r}")
        return permissions


# ------------------------------------------------------------------ tokens and passwords


def issue_token(token_key: bytes, user: str, generation: int, issued_ms: int) -> str:
    payload = msgpack.packb([_TOKEN_VERSION, user, generation, issued_ms])
    mac = hmac.new(token_key, _TOKEN_CONTEXT + payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def _open_token(token_key: bytes, token: str) -> tuple[str, int, int]:
    if type(token) is not str or len(token) > TOKEN_MAX_BYTES or not token.isascii():
        raise Unauthenticated("malformed token")
    payload_text, dot, mac_text = token.partition(".")
    try:
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (ValueError, binascii.Error):
        raise Unauthenticated("malformed token") from None
    expected = hmac.new(token_key, _TOKEN_CONTEXT + payload, hashlib.sha256).digest()
    if not dot or not hmac.compare_digest(mac, expected):
        raise Unauthenticated("invalid token")
    # Signed by a member, so well formed; checked anyway (a bug must not crash apply).
    try:
        fields = msgpack.unpackb(payload, raw=False, max_map_len=0, max_ext_len=0)
    except (ValueError, TypeError, msgpack.UnpackException):
        raise Unauthenticated("malformed token") from None
    if (
        type(fields) is not list
        or len(fields) != 4
        or fields[0] != _TOKEN_VERSION
        or type(fields[1]) is not str
        or type(fields[2]) is not int
        or type(fields[3]) is not int
    ):
        raise Unauthenticated("malformed token")
    return fields[1], fields[2], fields[3]


def hash_password(password: str, salt: bytes) -> bytes:
    """``salt || scrypt(password, salt)``: slow on purpose (about 50 ms, 16 MiB)."""
    assert len(salt) == SALT_BYTES
    return salt + _scrypt(password, salt)


def password_matches(password_hash: bytes, password: str) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made from (slow, constant-time)."""
    if len(password_hash) != PASSWORD_HASH_BYTES:
        return False
    salt, derived = password_hash[:SALT_BYTES], password_hash[SALT_BYTES:]
    return hmac.compare_digest(_scrypt(password, salt), derived)


def check_password(password: object) -> str:
    if type(password) is not str or not password:
        raise BadRequest("password: expected a non-empty string")
    if len(password.encode(errors="replace")) > PASSWORD_MAX_BYTES:
        raise BadRequest(f"password: over {PASSWORD_MAX_BYTES} bytes")
    return password


def check_name(name: object, what: str) -> str:
    if (
        type(name) is not str
        or not 0 < len(name) <= NAME_MAX_BYTES
        or not name.isascii()
        or not name.isprintable()
        or " " in name
    ):
        raise BadRequest(
            f"{what}: expected 1 to {NAME_MAX_BYTES} printable ASCII characters, no spaces"
        )
    return name


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        password.encode(errors="surrogatepass"),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=64 * 1024 * 1024,
        dklen=DERIVED_BYTES,
    )


def _check_command(command: AuthCommand, key_max_bytes: int) -> None:
    match command:
        case AuthEnable(token_key):
            if type(token_key) is not bytes or len(token_key) != TOKEN_KEY_BYTES:
                raise BadRequest(f"auth enable: the token key must be {TOKEN_KEY_BYTES} bytes")
        case AuthDisable():
            pass
        case UserAdd(name, password_hash) | UserPasswd(name, password_hash):
            check_name(name, "user")
            if type(password_hash) is not bytes or len(password_hash) != PASSWORD_HASH_BYTES:
                raise BadRequest(f"password hash: expected {PASSWORD_HASH_BYTES} bytes")
        case UserDelete(name) | RoleAdd(name) | RoleDelete(name):
            check_name(name, "name")
        case UserGrantRole(name, role) | UserRevokeRole(name, role):
            check_name(name, "user")
            check_name(role, "role")
        case RoleGrant(name, prefix, mode):
            check_name(name, "role")
            _check_prefix(prefix, key_max_bytes)
            if mode not in MODES:
                raise BadRequest(f"permission: expected one of {MODES}, got {mode!r}")
        case RoleRevoke(name, prefix):
            check_name(name, "role")
            _check_prefix(prefix, key_max_bytes)


def _check_prefix(prefix: object, key_max_bytes: int) -> None:
    if type(prefix) is not str:
        raise BadRequest("prefix: expected a string")
    try:
        size = len(prefix.encode())
    except UnicodeEncodeError:
        raise BadRequest("prefix: not encodable as UTF-8") from None
    if size > key_max_bytes:
        raise BadRequest(f"prefix: {size} bytes > key_max_bytes {key_max_bytes}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if len(text) > TOKEN_MAX_BYTES:
        raise ValueError("too long")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ------------------------------------------------------------------ snapshots


def encode_auth_state(state: AuthState) -> list[object]:
    """``[enabled, token_key, revision, users, roles]`` with users
    ``[[name, password_hash, [role...], generation]...]`` and roles
    ``[[name, [[prefix, mode]...]]...]``, both sorted by name."""
    users = [
        [name, user.password_hash, list(user.roles), user.generation]
        for name, user in sorted(state.users.items())
    ]
    roles = [
        [name, [list(p) for p in permissions]] for name, permissions in sorted(state.roles.items())
    ]
    return [state.enabled, state.token_key, state.revision, users, roles]


def decode_auth_state(fields: object) -> AuthState:
    """The inverse of ``encode_auth_state`` for untrusted input: every field and
    every invariant checked (``ValueError`` naming what is wrong)."""
    if type(fields) is not list or len(fields) != 5:
        raise ValueError("expected [enabled, token_key, revision, users, roles]")
    enabled, token_key, revision, user_rows, role_rows = fields
    if type(enabled) is not bool or type(token_key) is not bytes:
        raise ValueError("enabled / token_key: wrong types")
    if len(token_key) != (TOKEN_KEY_BYTES if enabled else 0):
        raise ValueError("token_key: wrong length for the enabled flag")
    if type(revision) is not int or not 0 <= revision < 2**63:
        raise ValueError("revision: expected an integer >= 0")
    if type(user_rows) is not list or type(role_rows) is not list:
        raise ValueError("users / roles: expected arrays")
    if len(user_rows) > USERS_MAX or len(role_rows) > ROLES_MAX:
        raise ValueError("more users or roles than the limits")
    state = AuthState(enabled, token_key, revision)
    for row in role_rows:
        if type(row) is not list or len(row) != 2 or type(row[1]) is not list:
            raise ValueError("a role is not [name, [permission...]]")
        name = _checked(check_name, row[0], "role")
        if name == ROOT or name in state.roles or len(row[1]) > PERMISSIONS_PER_ROLE_MAX:
            raise ValueError(f"role {name!r}: repeated, built in, or too many permissions")
        permissions: list[tuple[str, Mode]] = []
        for item in row[1]:
            if type(item) is not list or len(item) != 2 or type(item[0]) is not str:
                raise ValueError(f"role {name!r}: a permission is not [prefix, mode]")
            if item[1] not in MODES:
                raise ValueError(f"role {name!r}: unknown mode")
            permissions.append((item[0], item[1]))
        if [p for p, _ in permissions] != sorted({p for p, _ in permissions}):
            raise ValueError(f"role {name!r}: permissions not sorted or repeated")
        state.roles[name] = permissions
    for row in user_rows:
        if type(row) is not list or len(row) != 4:
            raise ValueError("a user is not [name, password_hash, roles, generation]")
        name = _checked(check_name, row[0], "user")
        password_hash, roles, generation = row[1:]
        if type(password_hash) is not bytes or len(password_hash) != PASSWORD_HASH_BYTES:
            raise ValueError(f"user {name!r}: bad password hash")
        if type(roles) is not list or any(type(role) is not str for role in roles):
            raise ValueError(f"user {name!r}: roles are not strings")
        if type(generation) is not int or not 0 < generation <= revision:
            raise ValueError(f"user {name!r}: generation out of range")
        if name in state.users or len(roles) > ROLES_PER_USER_MAX + 1:
            raise ValueError(f"user {name!r}: repeated, or too many roles")
        state.users[name] = User(password_hash, list(roles), generation)
    problem = state.invariant_problem()
    if problem is not None:
        raise ValueError(problem)
    return state


def _checked(check: Callable[[object, str], str], value: object, what: str) -> str:
    try:
        return check(value, what)
    except BadRequest as error:
        raise ValueError(str(error)) from None
