"""Clients of a paxon cluster: ``Client`` (asyncio) and ``SyncClient`` (blocking).

How a call travels:
- The client keeps one connection per node it talks to and remembers the
  leader. A request goes to the leader when it is known, else to the next
  endpoint in turn. A ``Redirect`` names the leader; the client follows it.
- A write carries a session ``(client_id, seq)``. Every retry of that write
  (after a lost connection, a leader change, a timed-out attempt) carries the
  same pair, so the cluster applies it once and answers the retry with the
  first reply. Concurrent calls use separate session lanes: a lane has its own
  client id and numbers its commands 1, 2, 3, ..., one at a time.
- Sessions expire on the cluster (``paxon.node.machine.SESSION_TTL_MS``, 5
  minutes of log time), so a lane idle longer than ``LANE_IDLE_MAX_S`` is
  dropped and the next command opens a new session; one command is retried
  for at most ``SESSION_RETRY_MAX_S``, far inside the expiry, so a retry never
  finds its session gone. A lane is reused only after a command on it
  succeeded: after any failure the next command opens a new session. When the
  cluster's session table is full, a new session is refused (nothing applied);
  ``submit`` makes up to ``SESSIONS_FULL_TRIES`` (5) tries in all, each on a
  new lane, with backoff (0.1 s doubling to 2 s), then raises ``SessionsFull``.
- Each attempt has its own deadline (``attempt_timeout_s``) inside the call's
  (``timeout``), so a node that hangs (SIGSTOP) costs one attempt, not the call.
- Between failed attempts the client pauses for half the time the call has
  waited so far, at least ``backoff_min_s`` (0.02 s) and at most
  ``backoff_max_s`` (0.5 s): a leader change of 0.1 s costs a call at most
  about 0.05 s more. (Doubling per failed attempt overshot: quick refusals
  from nodes that know no leader yet counted up the pause, and calls slept
  0.16-0.32 s after a 0.1 s handover.)
- A node that timed out, could not be reached, or could not serve
  (``no_quorum``, ``leader_unreachable``) is skipped for 1 s, doubling up to
  8 s while it keeps failing (``paxon.client_health``); a redirect to a
  skipped leader is not followed until then.
- TLS: ``tls=ClientTls(cacert=..., cert=..., key=...)`` makes every
  connection TLS, verifying each node's certificate against ``cacert`` for the
  endpoint's host and presenting ``cert`` when given (see
  ``paxon.security.client_tls``). Without it, connections are plain TCP. A
  failed handshake makes that node unreachable, with the reason.
- Auth: with ``user=`` and ``password=`` the client logs in once (an
  ``Authenticate`` request to any node), keeps the token and wraps every
  key-value command and read in it (``paxon.kv.authcodec``); a token that
  stops working (expired, password changed) is renewed once per call. On a
  cluster with auth disabled the login is skipped. ``auth_*``, ``user_*`` and
  ``role_*`` administer users and roles (``paxon.kv.auth``).
- Leases (``paxon.kv.leases``): ``grant_lease``, ``keep_alive``,
  ``revoke_lease``, ``lease_time_to_live``, ``leases``, and ``put(...,
  lease=ID)``; TTLs are seconds here, milliseconds on the wire. ``lease(ttl)``
  grants one and keeps it alive while a block runs (``paxon.client_lease``).
- Errors: ``Unavailable`` when no node could be reached at all, ``Timeout``
  when nodes were reached but no answer came in time (for a write: its outcome
  is unknown), and the request's own errors (``BadRequest``, ``ValueTooLarge``,
  ``RevisionCompacted``, ...) as the cluster reports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import ssl
import threading
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from paxon.client_health import EndpointHealth
from paxon.client_lease import KeptLease, SyncKeptLease
from paxon.election import Election
from paxon.errors import (
    ERROR_CLASSES,
    AuthNotEnabled,
    BadRequest,
    Busy,
    PaxonError,
    ProtocolError,
    SessionsFull,
    Timeout,
    Unauthenticated,
    Unavailable,
)
from paxon.kv.auth import (
    TOKEN_KEY_BYTES,
    AuthCommand,
    AuthDisable,
    AuthEnable,
    AuthResult,
    Mode,
    PasswordRequest,
    RoleAdd,
    RoleDelete,
    RoleGrant,
    RoleInfo,
    RoleList,
    RoleListResult,
    RoleRevoke,
    UserDelete,
    UserGrantRole,
    UserInfo,
    UserList,
    UserListResult,
    UserRevokeRole,
    check_name,
    check_password,
)
from paxon.kv.authcodec import (
    decode_auth_result,
    encode_auth_command,
    encode_auth_query,
    wrap,
)
from paxon.kv.codec import ResultT as _R  # the result types a call may expect
from paxon.kv.codec import decode_result_as, encode_command, encode_query
from paxon.kv.jsonforms import lease_ttl_ms
from paxon.kv.model import (
    Compact,
    CompactResult,
    Delete,
    DeleteResult,
    Event,
    Events,
    Get,
    GetResult,
    KeyValue,
    KvLimits,
    LeaseGrant,
    LeaseGrantResult,
    LeaseKeepAlive,
    LeaseKeepAliveResult,
    LeaseList,
    LeaseListResult,
    LeaseRevoke,
    LeaseRevokeResult,
    LeaseTimeToLive,
    LeaseTimeToLiveResult,
    LockAcquire,
    LockState,
    Put,
    PutResult,
    Txn,
    TxnResult,
    validate_command,
    validate_query,
)
from paxon.locking import Fence, Lock
from paxon.net.client_link import ClientLink, NotNativePort, TlsHandshakeFailed
from paxon.net.client_messages import (
    Authenticate,
    ChangeMembers,
    ClientRequest,
    ClientResponse,
    Failure,
    Query,
    Redirect,
    Reply,
    StatusReply,
    StatusRequest,
    Submit,
)
from paxon.protocol.membership import MEMBERS_MAX
from paxon.security.client_tls import ClientTls
from paxon.watching import WAIT_S as WATCH_WAIT_S
from paxon.watching import Watch

DEFAULT_ENDPOINTS = ("127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003")
_RETRY_CODES = frozenset({"busy", "unavailable", "not_leader", "no_quorum", "leader_unreachable"})
# A node answering these cannot serve anyone now: skipped for a while (``client_health``).
_CANNOT_SERVE = frozenset({"no_quorum", "leader_unreachable"})
_T = TypeVar("_T")
_WriteCommand = (
    Put | Delete | Txn | Compact | LeaseGrant | LeaseKeepAlive | LeaseRevoke | LockAcquire
)
_ReadQuery = Get | LeaseTimeToLive | LeaseList | LockState | Events


def parse_endpoints(endpoints: Sequence[str] | str | None) -> list[str]:
    """Endpoints as given, else ``$PAXON_ENDPOINTS``, else the ``paxon dev`` defaults.

    Each is ``HOST:PORT``, or the same as a person copies it from a browser:
    ``http://HOST:PORT`` or ``https://HOST:PORT``, with or without a trailing
    ``/``. The scheme is dropped (``endpoints_want_tls`` says whether it was
    ``https``); the port must still be a native one (``--listen``)."""
    result = [_without_scheme(endpoint)[0] for endpoint in _endpoint_list(endpoints)]
    if not result:
        raise BadRequest("no endpoints given")
    for endpoint in result:
        split_address(endpoint)
    return result


def endpoints_want_tls(endpoints: Sequence[str] | str | None) -> bool:
    """Whether ``endpoints`` are written ``https://...``: all of them or none
    (``BadRequest`` for a mix)."""
    schemes = {_without_scheme(endpoint)[1] for endpoint in _endpoint_list(endpoints)}
    if "https" in schemes and len(schemes) > 1:
        raise BadRequest("endpoints mix https:// with plain ones: give TLS to all or none")
    return schemes == {"https"}


def _endpoint_list(endpoints: Sequence[str] | str | None) -> list[str]:
    if endpoints is None:
        endpoints = os.environ.get("PAXON_ENDPOINTS") or ",".join(DEFAULT_ENDPOINTS)
    if isinstance(endpoints, str):
        endpoints = [part for part in endpoints.split(",") if part.strip()]
    return [endpoint.strip() for endpoint in endpoints]


def _without_scheme(endpoint: str) -> tuple[str, str]:
    """``(HOST:PORT, scheme)`` of ``scheme://HOST:PORT[/]``; scheme "" when none is written."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        return endpoint, ""
    if scheme.lower() not in ("http", "https"):
        raise BadRequest(f"bad address {endpoint!r}: expected HOST:PORT or http(s)://HOST:PORT")
    return rest.removesuffix("/"), scheme.lower()


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadRequest(f"bad address {address!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


LANE_IDLE_MAX_S = 60.0
"""A lane idle longer than this opens a new session rather than reuse one the
cluster may have expired (its expiry is 300 s of log time)."""

SESSION_RETRY_MAX_S = 60.0
"""One session's command is retried for at most this long (a longer call
timeout is cut to it): a retry must reach the cluster well before its session
can expire, or it could be taken for a new command."""

SESSIONS_FULL_TRIES = 5
SESSIONS_FULL_BACKOFF_MIN_S = 0.1
SESSIONS_FULL_BACKOFF_MAX_S = 2.0


class SessionLane:
    """One session: a client id and the number of its current command."""

    __slots__ = ("client_id", "released_at_s", "seq")

    def __init__(self) -> None:
        # Never 0: that client id is the log clock's (paxon.node.logclock).
        self.client_id = secrets.randbits(62) + 1
        self.seq = 0
        self.released_at_s = 0.0


class SessionLanes:
    """A pool of lanes, so concurrent commands never share a session.

    A lane goes back to the pool only after its command succeeded, and is
    taken from it only if it was released at most ``idle_max_s`` ago; else a
    new lane (a new session, seq 1) is made. ``clock_s`` is monotonic seconds.
    """

    def __init__(
        self,
        *,
        idle_max_s: float = LANE_IDLE_MAX_S,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_max_s = idle_max_s
        self._clock_s = clock_s
        self._free: list[SessionLane] = []  # released earliest first

    def acquire(self) -> SessionLane:
        lane = self._free.pop() if self._free else None
        if lane is not None and self._clock_s() - lane.released_at_s > self.idle_max_s:
            # The most recently released lane is too idle, so is every other.
            self._free.clear()
            lane = None
        if lane is None:
            lane = SessionLane()
        lane.seq += 1
        return lane

    def release(self, lane: SessionLane, *, succeeded: bool) -> None:
        """Give ``lane`` back; a lane whose command failed is dropped (its session
        may be unknown to the cluster, or its command's outcome unknown)."""
        if succeeded:
            lane.released_at_s = self._clock_s()
            self._free.append(lane)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    timeout_s: float = 10.0
    attempt_timeout_s: float = 2.0
    connect_timeout_s: float = 1.0
    backoff_min_s: float = 0.02
    backoff_max_s: float = 0.5
    backoff_fraction: float = 0.5  # of the time the call has waited so far


def retry_pause_s(options: ClientOptions, waited_s: float) -> float:
    """The pause before the next attempt of a call that began ``waited_s``
    seconds ago: proportional to the outage seen so far, so a short one (a
    leader change) is retried soon after it ends, a long one every 0.5 s."""
    pause = max(options.backoff_min_s, options.backoff_fraction * waited_s)
    return min(pause, options.backoff_max_s)


class Client:
    """An asyncio client of a paxon cluster; safe for concurrent use by many tasks."""

    def __init__(
        self,
        endpoints: Sequence[str] | str | None = None,
        *,
        timeout: float = 10.0,
        cluster_id: str = "",
        limits: KvLimits | None = None,
        tls: ClientTls | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.endpoints = parse_endpoints(endpoints)
        if tls is None and endpoints_want_tls(endpoints):
            tls = ClientTls()  # https://HOST:PORT: TLS, trusting the system's CAs
        if (user is None) != (password is None):
            raise BadRequest("give both user and password, or neither")
        if user is not None:
            check_name(user, "user")
            check_password(password)
        self.user = user
        self._password = password
        self._token: str | None = None
        self._logged_in = False
        self._login_lock = asyncio.Lock()
        self.tls = tls
        self._ssl_context: ssl.SSLContext | None = tls.context() if tls is not None else None
        self.options = ClientOptions(timeout_s=timeout)
        if timeout < self.options.attempt_timeout_s:
            self.options = ClientOptions(timeout_s=timeout, attempt_timeout_s=timeout)
        self.cluster_id = cluster_id
        self.limits = limits or KvLimits()
        self._lanes = SessionLanes()
        self._links: dict[str, ClientLink] = {}
        self._connecting: dict[str, asyncio.Future[ClientLink]] = {}
        self._leader: str | None = None
        self._health = EndpointHealth(self.endpoints)
        self._turn = 0
        self._request_id = 0
        self._closed = False
        self.status_problem: str | None = None
        """Why the last node that did not answer a status request did not (for messages)."""

    def prefer(self, address: str | None) -> None:
        """Send the next request to ``address`` first, one of ``endpoints``: a
        caller that knows the leader (a node forwarding to the leader it hears)."""
        if address is not None and address in self.endpoints:
            self._leader = address

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        links = list(self._links.values())
        self._links.clear()
        for link in links:
            link.close()
        for link in links:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.wait_closed(), 1.0)

    # ------------------------------------------------------------ key-value API

    async def put(self, key: str, value: bytes | str, *, lease: int = 0) -> int:
        """Write ``key``; the new revision. With ``lease`` (an id) the key is
        attached to that lease and deleted when it ends (``LeaseNotFound`` if it
        does not exist); without, a lease the key had is let go."""
        return (await self._write(Put(key, _as_bytes(value), None, lease), PutResult)).revision

    async def cas(
        self, key: str, value: bytes | str, *, expect_version: int, lease: int = 0
    ) -> PutResult:
        """Write ``key`` only if its version is ``expect_version`` (0: must not exist).

        The result is true when the write happened (``.succeeded``), so
        ``if await kv.cas(...)`` reads as docs/api.md writes it; ``.revision`` and
        ``.version`` tell the store's state either way. ``lease`` as in ``put``.
        """
        command = Put(key, _as_bytes(value), expect_version, lease)
        return await self._write(command, PutResult)

    async def get(
        self, key: str, *, serializable: bool = False, revision: int | None = None
    ) -> KeyValue | None:
        result = await self._read(Get(key, False, revision), serializable, GetResult)
        return result.items[0] if result.items else None

    async def get_prefix(
        self, prefix: str, *, serializable: bool = False, revision: int | None = None
    ) -> list[KeyValue]:
        result = await self._read(Get(prefix, True, revision), serializable, GetResult)
        return list(result.items)

    async def delete(self, key: str, *, prefix: bool = False) -> DeleteResult:
        return await self._write(Delete(key, prefix), DeleteResult)

    async def txn(self, txn: Txn) -> TxnResult:
        return await self._write(txn, TxnResult)

    async def compact(self, revision: int) -> CompactResult:
        """Drop the history before ``revision`` on every replica (a command in
        the log): reads below it then raise ``RevisionCompacted``. Raises
        ``BadRequest`` for a revision ahead of the store and ``RevisionCompacted``
        for one at or below what is already compacted (``.revision_compacted``)."""
        return await self._write(Compact(revision), CompactResult)

    # ------------------------------------------------------------ lease API

    async def grant_lease(self, ttl: float) -> LeaseGrantResult:
        """A new lease of ``ttl`` seconds of log time (1 s to 30 days, else
        ``BadRequest`` before anything is sent); ``.lease`` is its id and
        ``.ttl_ms`` its TTL in milliseconds. It expires unless kept alive."""
        return await self._write(LeaseGrant(lease_ttl_ms(ttl)), LeaseGrantResult)

    async def keep_alive(
        self, lease_id: int, *, timeout: float | None = None
    ) -> LeaseKeepAliveResult:
        """Give ``lease_id`` its whole TTL again (``.ttl_ms`` from now);
        ``LeaseNotFound`` if it has ended (revoked or expired: its keys are gone).
        ``timeout``: give up after this many seconds (the client's by default)."""
        command = LeaseKeepAlive(lease_id)
        return await self._write(command, LeaseKeepAliveResult, timeout=timeout)

    async def revoke_lease(self, lease_id: int) -> LeaseRevokeResult:
        """End ``lease_id`` now; its keys are deleted at one revision
        (``.deleted`` of them, at ``.revision``). ``LeaseNotFound`` if it has ended."""
        return await self._write(LeaseRevoke(lease_id), LeaseRevokeResult)

    async def lease_time_to_live(
        self, lease_id: int, *, keys: bool = False, serializable: bool = False
    ) -> LeaseTimeToLiveResult:
        """How long ``lease_id`` has left (``.remaining_ms`` of ``.granted_ttl_ms``)
        and, with ``keys``, the keys attached to it. Linearizable, like ``get``,
        unless ``serializable``. ``LeaseNotFound`` if it has ended."""
        query = LeaseTimeToLive(lease_id, keys)
        return await self._read(query, serializable, LeaseTimeToLiveResult)

    async def leases(self, *, serializable: bool = False) -> list[int]:
        """The ids of every live lease, in order (linearizable unless ``serializable``)."""
        return list((await self._read(LeaseList(), serializable, LeaseListResult)).leases)

    def lease(self, ttl: float, *, keep_alive_interval: float | None = None) -> KeptLease:
        """A lease kept alive while an ``async with`` block runs, revoked after it.

        ``async with client.lease(10) as lease:`` grants a lease of ``ttl``
        seconds, keeps it alive every ``keep_alive_interval`` seconds (``ttl``/3)
        in a background task, and revokes it when the block ends. If the lease
        is lost (it expired, or keep-alives failed for a whole TTL),
        ``lease.lost`` turns true and ``await lease.wait_lost()`` returns; see
        ``paxon.client_lease.KeptLease``.
        """
        return KeptLease(self, ttl, keep_alive_interval=keep_alive_interval)

    def lock(
        self, name: str, *, ttl: float = 10.0, timeout: float | None = None, delay: float = 0.0
    ) -> Lock:
        """Lock ``name``: ``async with kv.lock("jobs", ttl=10) as fence:``.

        Waiters are served in the order they came; ``fence`` is an ``int``
        that grows with every new holder (``fence.guard()`` is the txn compare
        that refuses a stale holder). ``ttl``: the lease behind the lock, kept
        alive while the block runs. ``timeout``: give up waiting after that
        long (``LockNotAcquired``; default: wait on). ``delay``: lock-delay in
        seconds (up to 60): if this holder's lease expires rather than being
        released, nobody gets the lock for that long. ``paxon.locking`` has
        the contract."""
        return Lock(self, name, ttl=ttl, timeout=timeout, delay=delay)

    def election(self, name: str, *, ttl: float = 10.0) -> Election:
        """Leader election among clients (``paxon.election``): ``campaign``,
        ``proclaim``, ``leader``, ``observe``, ``resign``, as etcd's."""
        return Election(self, name, ttl=ttl)

    def watch(
        self,
        key: str,
        *,
        prefix: bool = False,
        from_revision: int | None = None,
        prev_kv: bool = False,
        wait: float = WATCH_WAIT_S,
        on_progress: Callable[[int], None] | None = None,
    ) -> Watch:
        """Follow the changes to ``key`` (or every key under it, with ``prefix``):
        ``async for event in kv.watch("k"):`` gives ``Event``s (``.type`` "put"
        or "delete", ``.kv``, ``.prev`` with ``prev_kv``) in revision order,
        exactly once, from ``from_revision`` (default: after now) across
        reconnects and members. ``RevisionCompacted`` if that history is gone.
        ``paxon.watching`` has the contract."""
        return Watch(
            self,
            key,
            prefix=prefix,
            from_revision=from_revision,
            prev_kv=prev_kv,
            wait=wait,
            on_progress=on_progress,
        )

    async def status(self, *, discover: bool = True) -> dict[str, Any]:
        """The ``status --json`` object of docs/api.md: each node's own view of itself.

        ``discover``: also ask the members the answers name at client addresses
        not among ``endpoints`` (a node added since the endpoints were written
        shows its own row instead of "unreachable"); at most ``MEMBERS_MAX``."""
        views = await self.node_views()
        asked = [*self.endpoints]
        if discover:
            answered = {view.get("node_id") for view in views if view}
            named = {
                row["address"]
                for view in views
                if view
                for row in view.get("members", [])
                if row.get("id") not in answered and isinstance(row.get("address"), str)
            }
            more = sorted(named - set(asked))[:MEMBERS_MAX]
            views += await asyncio.gather(*(self._node_status(e) for e in more))
            asked += more
        return merge_status(asked, views)

    async def node_views(self) -> list[dict[str, Any] | None]:
        """Each endpoint's own status view, None where it did not answer."""
        return list(await asyncio.gather(*(self._node_status(e) for e in self.endpoints)))

    # ------------------------------------------------------------ members API

    async def change_members(
        self, action: str, node_id: int, address: str = "", *, token: str | None = None
    ) -> dict[str, Any]:
        """Add (``add``, ``add-learner``), ``promote`` or ``remove`` one member; the
        configuration (``{"epoch", "alpha", "members"}``) once the change is chosen.
        ``token``: use this one instead of logging in as ``user``.

        Safe to retry: a change already made answers at once. ``BadRequest`` for a
        change that cannot be; ``Busy``-like waits while another one is pending
        are retried within the timeout."""

        async def attempt(token: str | None) -> dict[str, Any]:
            response = await self._call(
                lambda request_id: ChangeMembers(request_id, action, node_id, address, token or ""),
                None,
            )
            assert isinstance(response, StatusReply)
            configuration: dict[str, Any] = response.status["configuration"]
            return configuration

        if token is not None:  # a caller's own token (the HTTP API passes it on)
            return await attempt(token)
        return await self._with_token(attempt)

    # ------------------------------------------------------------ auth API

    async def login(self) -> str | None:
        """Log in as ``user`` now (calls do it when needed); the token, None when
        the cluster's auth is disabled. ``Unauthenticated`` for a wrong password."""
        async with self._login_lock:
            self._token = None
            if self.user is not None and self._password is not None:
                user, password = self.user, self._password
                try:
                    response = await self._call(
                        lambda request_id: Authenticate(request_id, user, password), None
                    )
                except AuthNotEnabled:
                    pass
                else:
                    assert isinstance(response, Reply)
                    self._token = response.payload.decode()
            self._logged_in = True
            return self._token

    async def auth_enable(self) -> int:
        """Turn auth on (the user root must exist); the auth revision."""
        # The node that proposes it picks the real token key.
        return await self._auth_command(AuthEnable(b"\x00" * TOKEN_KEY_BYTES))

    async def auth_disable(self) -> int:
        return await self._auth_command(AuthDisable())

    async def user_add(self, name: str, password: str) -> int:
        """Add a user; the password is hashed by the node that receives it."""
        check_name(name, "user")
        return await self._auth_command(PasswordRequest(name, check_password(password), True))

    async def user_passwd(self, name: str, password: str) -> int:
        check_name(name, "user")
        return await self._auth_command(PasswordRequest(name, check_password(password), False))

    async def user_delete(self, name: str) -> int:
        return await self._auth_command(UserDelete(name))

    async def user_grant_role(self, name: str, role: str) -> int:
        return await self._auth_command(UserGrantRole(name, role))

    async def user_revoke_role(self, name: str, role: str) -> int:
        return await self._auth_command(UserRevokeRole(name, role))

    async def user_list(self) -> tuple[bool, list[UserInfo]]:
        """Whether auth is enabled, and every user with its roles."""
        result = await self._auth_query(UserList())
        assert isinstance(result, UserListResult)
        return result.enabled, list(result.users)

    async def role_add(self, name: str) -> int:
        return await self._auth_command(RoleAdd(name))

    async def role_delete(self, name: str) -> int:
        return await self._auth_command(RoleDelete(name))

    async def role_grant(self, name: str, prefix: str, mode: Mode) -> int:
        """Let role ``name`` read (``read``) or also write (``readwrite``) keys under ``prefix``."""
        return await self._auth_command(RoleGrant(name, prefix, mode))

    async def role_revoke(self, name: str, prefix: str) -> int:
        return await self._auth_command(RoleRevoke(name, prefix))

    async def role_list(self) -> list[RoleInfo]:
        result = await self._auth_query(RoleList())
        assert isinstance(result, RoleListResult)
        return list(result.roles)

    # ------------------------------------------------------------ generic API

    async def submit(self, payload: bytes, *, timeout: float | None = None) -> bytes:
        """Replicate one state-machine command; its reply. Applied once, whatever the retries.

        ``SessionsFull`` after ``SESSIONS_FULL_TRIES`` refusals of a new
        session (nothing applied); a timeout over ``SESSION_RETRY_MAX_S`` is
        cut to it.
        """
        loop = asyncio.get_running_loop()
        timeout_s = self.options.timeout_s if timeout is None else timeout
        deadline = loop.time() + timeout_s
        tries = 0
        while True:
            lane = self._lanes.acquire()
            succeeded = False
            try:
                remaining = max(0.0, deadline - loop.time())
                response = await self._call(
                    partial(Submit, client_id=lane.client_id, seq=lane.seq, payload=payload),
                    min(remaining, SESSION_RETRY_MAX_S),
                )
                assert isinstance(response, Reply)
                succeeded = True
                return response.payload
            except SessionsFull as error:
                tries += 1
                pause = min(
                    SESSIONS_FULL_BACKOFF_MIN_S * 2 ** (tries - 1), SESSIONS_FULL_BACKOFF_MAX_S
                )
                if tries >= SESSIONS_FULL_TRIES or loop.time() + pause >= deadline:
                    raise SessionsFull(f"{error} (refused {tries} times)") from error
            finally:
                self._lanes.release(lane, succeeded=succeeded)
            await asyncio.sleep(pause)

    async def submit_as(
        self, client_id: int, seq: int, payload: bytes, *, timeout: float | None = None
    ) -> bytes:
        """``submit`` under a session the caller manages (see ``SessionLanes``)."""
        response = await self._call(
            lambda request_id: Submit(request_id, client_id, seq, payload), timeout
        )
        assert isinstance(response, Reply)
        return response.payload

    async def query(
        self,
        payload: bytes,
        *,
        linearizable: bool = True,
        timeout: float | None = None,
        held_s: float = 0.0,
    ) -> bytes:
        """A read-only query; ``held_s``: how long a node may hold it on purpose
        (a watch's wait), added to each attempt's deadline."""
        response = await self._call(
            lambda request_id: Query(request_id, payload, linearizable), timeout, held_s
        )
        assert isinstance(response, Reply)
        return response.payload

    # ------------------------------------------------------------ helpers

    async def _write(
        self, command: _WriteCommand, kind: type[_R], *, timeout: float | None = None
    ) -> _R:
        validate_command(command, self.limits)
        payload = encode_command(command)
        if self.user is None:  # no token to wrap or renew: the hot path, one await less
            return decode_result_as(await self.submit(payload, timeout=timeout), kind)

        async def attempt(token: str | None) -> _R:
            reply = await self.submit(_wrapped(payload, token), timeout=timeout)
            return decode_result_as(reply, kind)

        return await self._with_token(attempt)

    async def _read(
        self,
        query: _ReadQuery,
        serializable: bool,
        kind: type[_R],
        *,
        timeout: float | None = None,
        held_s: float = 0.0,
    ) -> _R:
        if type(query) is not Get:  # a get's bounds are the cluster's to check, as before
            validate_query(query, self.limits)
        payload = encode_query(query)

        async def attempt(token: str | None) -> _R:
            reply = await self.query(
                _wrapped(payload, token),
                linearizable=not serializable,
                timeout=timeout,
                held_s=held_s,
            )
            return decode_result_as(reply, kind)

        return await self._with_token(attempt)

    async def _auth_command(self, command: AuthCommand | PasswordRequest) -> int:
        payload = encode_auth_command(command)

        async def attempt(token: str | None) -> int:
            result = decode_auth_result(await self.submit(_wrapped(payload, token)))
            assert isinstance(result, AuthResult)
            return result.revision

        return await self._with_token(attempt)

    async def _auth_query(self, query: UserList | RoleList) -> object:
        payload = encode_auth_query(query)

        async def attempt(token: str | None) -> object:
            return decode_auth_result(await self.query(_wrapped(payload, token)))

        return await self._with_token(attempt)

    async def _with_token(self, attempt: Callable[[str | None], Awaitable[_T]]) -> _T:
        """``attempt`` with this client's token; once more with a new one if refused.

        A refused token applied nothing, so trying again is safe."""
        if self.user is None:
            return await attempt(None)
        token = self._token if self._logged_in else await self.login()
        try:
            return await attempt(token)
        except Unauthenticated:
            renewed = await self.login()
            if renewed is None or renewed == token:
                raise
            return await attempt(renewed)

    async def _node_status(self, endpoint: str) -> dict[str, Any] | None:
        timeout = min(self.options.timeout_s, self.options.attempt_timeout_s)
        try:
            link = await self._link(endpoint, timeout)
            response = await asyncio.wait_for(
                link.request(StatusRequest(self._next_request_id())), timeout
            )
        except (OSError, ConnectionError, TimeoutError, PaxonError) as exc:
            self.status_problem = _problem(endpoint, exc)
            self._drop(endpoint)
            return None
        return response.status if isinstance(response, StatusReply) else None

    async def _call(
        self, build: Callable[[int], ClientRequest], timeout: float | None, held_s: float = 0.0
    ) -> ClientResponse:
        """``build``'s request, retried across nodes within ``timeout``; each
        attempt gets ``attempt_timeout_s`` plus ``held_s`` (the time a node may
        hold the request on purpose, as a watch's)."""
        if self._closed:
            raise Unavailable("the client is closed")
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + (timeout if timeout is not None else self.options.timeout_s)
        reached = False
        failures = 0
        last_problem = "no attempt made"
        untrusted: set[str] = set()  # endpoints whose TLS handshake cannot succeed
        while True:
            if self._closed:
                raise Unavailable("the client is closed")
            remaining = deadline - loop.time()
            if remaining <= 0:
                where = ", ".join(self.endpoints)
                if reached:
                    raise Timeout(f"no answer from the cluster in time ({last_problem})")
                raise Unavailable(f"could not reach any of {where} ({last_problem})") from None
            address = self._leader or self._health.pick(self._turn)
            attempt_s = min(remaining, self.options.attempt_timeout_s + held_s)
            try:
                link = self._links.get(address)  # the hot path: no coroutine to await
                if link is None or link.closed:
                    link = await self._link(address, min(attempt_s, self.options.connect_timeout_s))
                reached = True
                answer = link.request(build(self._next_request_id()))
                expiry = loop.call_later(attempt_s, _expire, answer)
                try:
                    response = await answer
                finally:
                    expiry.cancel()
            except (OSError, ConnectionError, ProtocolError) as exc:
                last_problem = _problem(address, exc)
                self._drop(address)
                self._rotate(address)
                self._health.failed(address)
                if isinstance(exc, TlsHandshakeFailed | NotNativePort) and exc.lasting:
                    untrusted.add(address)
                    if untrusted.issuperset(self.endpoints):
                        where = ", ".join(self.endpoints)
                        raise Unavailable(
                            f"could not reach any of {where} ({last_problem})"
                        ) from None
            except TimeoutError:
                last_problem = f"{address}: no answer in {attempt_s:.1f} s"
                self._rotate(address)
                self._health.failed(address)
            except Busy as exc:  # our own send queue to that node is full
                last_problem = f"{address}: {exc}"
                self._rotate(address)
            else:
                if not isinstance(response, Failure) or response.code not in _CANNOT_SERVE:
                    self._health.answered(address)
                match response:
                    case Reply() | StatusReply():
                        return response
                    case Redirect(leader_address=leader) if (
                        leader and leader != address and self._health.skipped(leader)
                    ):
                        last_problem = f"{address}: redirected to {leader}, which failed lately"
                        self._rotate(address)
                    case Redirect(leader_address=leader) if leader and leader != address:
                        self._leader = leader
                        last_problem = f"{address}: redirected to {leader}"
                        if failures < 2:
                            failures += 1
                            continue  # follow a fresh redirect at once
                    case Redirect():
                        last_problem = f"{address}: no leader known"
                        self._rotate(address)
                    case Failure(code=code, message=message) if code in _RETRY_CODES:
                        last_problem = f"{address}: {message}"
                        self._rotate(address)
                        if code in _CANNOT_SERVE:
                            self._health.failed(address)
                    case Failure(code=code, message=message):
                        raise ERROR_CLASSES.get(code, PaxonError)(message)
            failures += 1
            now = loop.time()
            pause = retry_pause_s(self.options, now - started)
            await asyncio.sleep(min(pause, max(0.0, deadline - now)))

    async def _link(self, address: str, timeout: float) -> ClientLink:
        link = self._links.get(address)
        if link is not None and not link.closed:
            return link
        pending = self._connecting.get(address)
        if pending is None:
            pending = asyncio.ensure_future(self._connect(address, timeout))
            self._connecting[address] = pending
            pending.add_done_callback(lambda _: self._connecting.pop(address, None))
        return await asyncio.shield(pending)

    async def _connect(self, address: str, timeout: float) -> ClientLink:
        host, port = split_address(address)
        link = await ClientLink.connect(
            host, port, cluster_id=self.cluster_id, timeout=timeout, ssl_context=self._ssl_context
        )
        if self._closed:
            link.close()
            raise ConnectionError("the client is closed")
        self._links[address] = link
        return link

    def _drop(self, address: str) -> None:
        link = self._links.pop(address, None)
        if link is not None:
            link.close()
        if self._leader == address:
            self._leader = None

    def _rotate(self, address: str) -> None:
        if self._leader == address:
            self._leader = None
        self._turn += 1

    def _next_request_id(self) -> int:
        self._request_id += 1
        return self._request_id


def _problem(address: str, exc: BaseException) -> str:
    """``address: what went wrong``, once (link errors already name their address)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"{address}: no answer in time"
    problem = str(exc) or type(exc).__name__
    return problem if problem.startswith(address) else f"{address}: {problem}"


def _expire(answer: asyncio.Future[ClientResponse]) -> None:
    """An attempt's deadline passed: its ``await`` raises ``TimeoutError``.

    A timer per request instead of ``asyncio.wait_for``: no extra task and no
    coroutine frame on the hot path; the link forgets the request when its
    future is done, so a late answer is dropped."""
    if not answer.done():
        answer.set_exception(TimeoutError())


def merge_status(
    endpoints: Sequence[str], views: Sequence[dict[str, Any] | None]
) -> dict[str, Any]:
    """Each member's row from its own answer; ``reachable`` is whether it answered."""
    own_rows: dict[int, dict[str, Any]] = {}
    members: dict[int, dict[str, Any]] = {}
    for view in views:
        if not view:
            continue
        for row in view.get("members", []):
            members.setdefault(int(row["id"]), dict(row))
        me = view.get("node_id")
        for row in view.get("members", []):
            if row.get("id") == me:
                # The configuration epoch it holds: a member behind on changes shows it.
                own_rows[int(me)] = dict(row) | {
                    "epoch": (view.get("configuration") or {}).get("epoch")
                }
    for node_id, row in own_rows.items():
        members[node_id] = row
    rows = []
    for node_id in sorted(members):
        row = dict(members[node_id])
        if node_id in own_rows:
            row["reachable"] = True
        else:
            row.update(
                role=None,
                ballot=None,
                commit_index=None,
                applied_index=None,
                log_start=None,
                snapshot_index=None,
                reachable=False,
                epoch=None,
            )
        rows.append(row)
    # The newest configuration any member reported: who is a member at all.
    configs = [view["configuration"] for view in views if view and view.get("configuration")]
    configuration = max(configs, key=lambda c: c.get("epoch", -1)) if configs else None
    if configuration is not None:
        ids = {member.get("id") for member in configuration.get("members", [])}
        for row in rows:
            if row["id"] not in ids:
                row["role"] = "removed"
    leaders = [row for row in rows if row.get("role") == "leader"]
    leader = max(leaders, key=lambda row: _ballot_key(row.get("ballot")))["id"] if leaders else None
    leader_commit = next((row.get("commit_index") for row in leaders if row["id"] == leader), None)
    for row in rows:  # slots chosen at the leader that this member has not applied
        applied = row.get("applied_index")
        row["lag"] = None
        if isinstance(leader_commit, int) and isinstance(applied, int):
            row["lag"] = max(0, leader_commit - applied)
    if not rows:
        rows = [
            {"id": None, "address": endpoint, "reachable": False, "role": None}
            for endpoint in endpoints
        ]
    merged: dict[str, Any] = {"members": rows, "leader": leader}
    if configuration is not None:
        merged["configuration"] = configuration
    return merged


def _ballot_key(ballot: object) -> tuple[int, int]:
    if isinstance(ballot, str) and "." in ballot:
        round_, _, node = ballot.partition(".")
        if round_.isdigit() and node.isdigit():
            return int(round_), int(node)
    return (0, 0)


def _wrapped(payload: bytes, token: str | None) -> bytes:
    return payload if token is None else wrap(token, payload)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


class SyncClient:
    """The blocking twin of ``Client``: the same calls, run on a private event loop."""

    def __init__(
        self,
        endpoints: Sequence[str] | str | None = None,
        *,
        timeout: float = 10.0,
        cluster_id: str = "",
        tls: ClientTls | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self._client = self._run_sync(
                _make_client(endpoints, timeout, cluster_id, tls, user, password)
            )
        except BaseException:
            self._stop_loop()
            raise

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            self._run_sync(self._client.close())
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def put(self, key: str, value: bytes | str, *, lease: int = 0) -> int:
        return self._run_sync(self._client.put(key, value, lease=lease))

    def cas(
        self, key: str, value: bytes | str, *, expect_version: int, lease: int = 0
    ) -> PutResult:
        call = self._client.cas(key, value, expect_version=expect_version, lease=lease)
        return self._run_sync(call)

    def get(
        self, key: str, *, serializable: bool = False, revision: int | None = None
    ) -> KeyValue | None:
        return self._run_sync(self._client.get(key, serializable=serializable, revision=revision))

    def get_prefix(
        self, prefix: str, *, serializable: bool = False, revision: int | None = None
    ) -> list[KeyValue]:
        call = self._client.get_prefix(prefix, serializable=serializable, revision=revision)
        return self._run_sync(call)

    def delete(self, key: str, *, prefix: bool = False) -> DeleteResult:
        return self._run_sync(self._client.delete(key, prefix=prefix))

    def txn(self, txn: Txn) -> TxnResult:
        return self._run_sync(self._client.txn(txn))

    def compact(self, revision: int) -> CompactResult:
        return self._run_sync(self._client.compact(revision))

    def grant_lease(self, ttl: float) -> LeaseGrantResult:
        return self._run_sync(self._client.grant_lease(ttl))

    def keep_alive(self, lease_id: int, *, timeout: float | None = None) -> LeaseKeepAliveResult:
        return self._run_sync(self._client.keep_alive(lease_id, timeout=timeout))

    def revoke_lease(self, lease_id: int) -> LeaseRevokeResult:
        return self._run_sync(self._client.revoke_lease(lease_id))

    def lease_time_to_live(
        self, lease_id: int, *, keys: bool = False, serializable: bool = False
    ) -> LeaseTimeToLiveResult:
        call = self._client.lease_time_to_live(lease_id, keys=keys, serializable=serializable)
        return self._run_sync(call)

    def leases(self, *, serializable: bool = False) -> list[int]:
        return self._run_sync(self._client.leases(serializable=serializable))

    def lease(self, ttl: float, *, keep_alive_interval: float | None = None) -> SyncKeptLease:
        """``Client.lease`` for a ``with`` block: the keep-alives run on this
        client's own event loop thread while the block runs."""
        kept = self._client.lease(ttl, keep_alive_interval=keep_alive_interval)
        return SyncKeptLease(kept, self._run_sync)

    def status(self) -> dict[str, Any]:
        return self._run_sync(self._client.status())

    def change_members(self, action: str, node_id: int, address: str = "") -> dict[str, Any]:
        return self._run_sync(self._client.change_members(action, node_id, address))

    def submit(self, payload: bytes, *, timeout: float | None = None) -> bytes:
        return self._run_sync(self._client.submit(payload, timeout=timeout))

    def query(self, payload: bytes, *, linearizable: bool = True) -> bytes:
        return self._run_sync(self._client.query(payload, linearizable=linearizable))

    def lock(
        self, name: str, *, ttl: float = 10.0, timeout: float | None = None, delay: float = 0.0
    ) -> SyncLock:
        """``Client.lock`` for ``with kv.lock("jobs", ttl=10) as fence:``; the
        lease is kept alive on this client's loop thread while the block runs."""
        return SyncLock(
            Lock(self._client, name, ttl=ttl, timeout=timeout, delay=delay), self._run_sync
        )

    def watch(
        self,
        key: str,
        *,
        prefix: bool = False,
        from_revision: int | None = None,
        prev_kv: bool = False,
        wait: float = WATCH_WAIT_S,
    ) -> Iterator[Event]:
        """``Client.watch`` as a blocking iterator: ``for event in kv.watch("k"):``."""
        watch = self._client.watch(
            key, prefix=prefix, from_revision=from_revision, prev_kv=prev_kv, wait=wait
        )
        while True:
            yield self._run_sync(watch.__anext__())

    def _run_sync(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


async def _make_client(
    endpoints: Sequence[str] | str | None,
    timeout: float,
    cluster_id: str,
    tls: ClientTls | None,
    user: str | None,
    password: str | None,
) -> Client:
    return Client(
        endpoints, timeout=timeout, cluster_id=cluster_id, tls=tls, user=user, password=password
    )


__all__ = [
    "Client",
    "ClientTls",
    "KeptLease",
    "SessionLanes",
    "SyncClient",
    "SyncKeptLease",
    "endpoints_want_tls",
    "merge_status",
    "parse_endpoints",
]


class SyncLock:
    """A ``Lock`` for ``SyncClient``: ``with kv.lock(name) as fence:``."""

    def __init__(self, lock: Lock, run_sync: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._lock = lock
        self._run_sync = run_sync

    @property
    def lost(self) -> bool:
        return self._lock.lost

    def __enter__(self) -> Fence:
        fence: Fence = self._run_sync(self._lock.acquire())
        return fence

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self._run_sync(self._lock.release(exc_type, exc, traceback))
