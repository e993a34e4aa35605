"""The node's edge for auth: logins, token age, password hashing, the token key.

``paxon.kv.auth`` is deterministic, so what needs a clock, randomness or
slow work happens here, on the node that receives a request, before anything
is proposed:

- ``authenticate(user, password)``: checks the password against this node's
  applied users (scrypt, on a worker thread) and issues a token stamped with
  this node's wall clock. Any member can, and the token works on all of them.
- ``check(payload)`` / ``check_query(payload)``: refuse early what the store
  would refuse (no token, a bad one, no permission) and what only a clock can
  tell: a token older than ``TOKEN_TTL_MS``. The store checks the rest again
  at apply time, on every replica, so an early check that passes proves
  nothing by itself.
- ``prepare(payload)``: a ``user add`` / ``user passwd`` arrives with the
  password in clear; it is hashed here (random 16-byte salt, worker thread)
  and only the hash is proposed, so the password never reaches the log. An
  ``auth enable`` gets a fresh random token key here.

Bounds: at most ``HASHES_MAX`` (2) scrypt computations at once per node (each
takes about 50 ms and 16 MiB), on a private pool so they never take the
threads that write snapshots; at most ``HASHES_WAITING_MAX`` (64) waiting;
over that a login is answered ``busy`` at once, so a flood of logins costs a
node two threads and 32 MiB, never its event loop. A wrong password is
answered no faster for an unknown user (a dummy hash is computed) so logins
do not tell which users exist.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from paxon.errors import AuthNotEnabled, BadRequest, Busy, PermissionDenied, Unauthenticated
from paxon.kv.auth import (
    SALT_BYTES,
    TOKEN_KEY_BYTES,
    TOKEN_TTL_MS,
    AuthEnable,
    PasswordRequest,
    UserAdd,
    UserPasswd,
    check_name,
    check_password,
    hash_password,
    issue_token,
    password_matches,
)
from paxon.kv.authcodec import (
    TAG_PASSWORD_REQUEST,
    decode_auth_command,
    encode_auth_command,
    unwrap,
    wrap,
)
from paxon.kv.codec import unpack
from paxon.kv.store import KvStore

_T = TypeVar("_T")

HASHES_MAX = 2
HASHES_WAITING_MAX = 64
_TAG_AUTH_ENABLE = 32
_PREPARED_TAGS = frozenset((_TAG_AUTH_ENABLE, TAG_PASSWORD_REQUEST))


@functools.cache
def _dummy_hash() -> bytes:
    """Compared against when the user is unknown, so the answer takes as long."""
    return hash_password("paxon-no-such-user", b"\x00" * SALT_BYTES)


def _password_matches(password_hash: bytes | None, password: str) -> bool:
    """On a worker thread: ``password_matches``, as slow for an unknown user."""
    if password_hash is None:
        password_matches(_dummy_hash(), password)
        return False
    return password_matches(password_hash, password)


class AuthGate:
    """Auth at one node's edge, over its ``KvStore``'s applied auth state."""

    def __init__(self, store: KvStore, *, wall_time_s: Callable[[], float] = time.time) -> None:
        self._store = store
        self._wall_time_s = wall_time_s
        self._pool = ThreadPoolExecutor(HASHES_MAX, thread_name_prefix="paxon-scrypt")
        self._hashing = asyncio.Semaphore(HASHES_MAX)
        self._waiting = 0

    @property
    def enabled(self) -> bool:
        return self._store.auth.enabled

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -------------------------------------------------------------- requests

    async def authenticate(self, user: str, password: str) -> str:
        """A token for ``user``, or ``Unauthenticated`` (``AuthNotEnabled``, ``Busy``)."""
        if not self.enabled:
            raise AuthNotEnabled("auth is not enabled on this cluster: no login is needed")
        check_name(user, "user")
        check_password(password)
        found = self._store.auth.users.get(user)
        password_hash = None if found is None else found.password_hash
        generation = 0 if found is None else found.generation
        matches = await self._hash(_password_matches, password_hash, password)
        auth = self._store.auth  # again: it may have changed (or been restored) meanwhile
        found = auth.users.get(user)
        if not matches or found is None or found.generation != generation or not auth.enabled:
            raise Unauthenticated("authentication failed: wrong user or password")
        return issue_token(auth.token_key, user, generation, self._now_ms())

    def check(self, payload: bytes) -> None:
        """Refuse a command early: ``Unauthenticated`` / ``PermissionDenied`` / ``BadRequest``."""
        if not self.enabled:
            return
        token, inner = unwrap(payload)
        self._check_age(token)
        self._store.authorize(token, inner)

    def check_admin(self, token: str | None, what: str = "change the members") -> None:
        """Refuse a cluster administration request (membership, a backup) unless auth
        is off or ``token`` is a root user's: ``Unauthenticated`` / ``PermissionDenied``."""
        if not self.enabled:
            return
        self._check_age(token)
        assert token is not None
        user, _ = self._store.auth.verify_token(token)
        if not self._store.auth.is_root(user):
            raise PermissionDenied(f"user {user!r} may not {what} (needs role root)")

    def check_query(self, payload: bytes) -> None:
        """Refuse a query early if its token is missing, invalid or too old."""
        if not self.enabled:
            return
        token, _ = unwrap(payload)
        self._check_age(token)

    def needs_prepare(self, payload: bytes) -> bool:
        """Whether ``prepare`` changes ``payload``; never raises (bad bytes: False,
        and the store refuses them)."""
        try:
            _, inner = unwrap(payload)
        except BadRequest:
            return False
        return len(inner) >= 2 and 0x91 <= inner[0] <= 0x9F and inner[1] in _PREPARED_TAGS

    async def prepare(self, payload: bytes) -> bytes:
        """The command to propose for ``payload``: a password hashed, a token key chosen."""
        token, inner = unwrap(payload)
        fields = unpack(inner, "command")
        assert type(fields) is list and fields
        command = decode_auth_command(fields)
        match command:
            case PasswordRequest(name, password, new_user):
                check_name(name, "user")
                check_password(password)
                salt = os.urandom(SALT_BYTES)
                password_hash = await self._hash(hash_password, password, salt)
                prepared = encode_auth_command(
                    UserAdd(name, password_hash) if new_user else UserPasswd(name, password_hash)
                )
            case AuthEnable():
                prepared = encode_auth_command(AuthEnable(os.urandom(TOKEN_KEY_BYTES)))
            case _:
                return payload
        return prepared if token is None else wrap(token, prepared)

    # -------------------------------------------------------------- helpers

    def _check_age(self, token: str | None) -> None:
        if token is None:
            raise Unauthenticated("auth is enabled: log in first (a token is required)")
        _, issued_ms = self._store.auth.verify_token(token)
        if self._now_ms() - issued_ms > TOKEN_TTL_MS:
            raise Unauthenticated("the token has expired: log in again")

    async def _hash(self, function: Callable[..., _T], *args: object) -> _T:
        if self._waiting >= HASHES_WAITING_MAX:
            raise Busy(f"{HASHES_WAITING_MAX} password checks are waiting; retry later")
        self._waiting += 1
        try:
            async with self._hashing:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._pool, function, *args)
        finally:
            self._waiting -= 1

    def _now_ms(self) -> int:
        return int(self._wall_time_s() * 1000)
