"""The replicated key-value store: an etcd-like state machine with MVCC history.

Every replica applies the same commands in log order, so everything here is
deterministic: no clock, no randomness, no I/O, no iteration over a set or
dict whose order could differ between processes where the order matters.

Rules (etcd's model):
- ``revision`` starts at 0 and grows by exactly one per command that changes
  something. A txn writes all its keys at that one new revision; a failed CAS,
  a delete that finds nothing, or a txn branch without writes leaves it alone.
- A put creates a key at version 1 (``create_revision`` = ``mod_revision`` =
  the revision) or bumps its version; a delete removes it; a later put creates
  it afresh.
- A txn evaluates its compares against the state before it, then applies one
  branch in order; a ``GetOp`` sees the writes earlier in its branch. Commands
  are validated whole before anything runs, and running cannot fail, so a
  branch is applied entirely or (on a refused command) not at all.
- ``apply`` and ``query`` never raise: bad bytes or a bad command get an
  ``ErrorResult`` and change nothing.

State and invariants (``check_invariants`` asserts them):
- ``_current``: key -> its live ``KeyValue``. Reads at the current revision
  are one dict lookup.
- ``_keys``: the live keys in order (``SortedKeys``), for prefix scans in
  O(log n + k).
- ``_history``: key -> the values it had before, as ``(revision_end, kv)``
  with ``revision_end`` strictly increasing: ``kv`` was the key's value for
  revisions ``[kv.mod_revision, revision_end)``. The live value is not in it;
  a value written and overwritten within one revision (inside a txn) was never
  visible and is not kept either.
- ``_history_queue``: one ``(revision_end, key, size)`` per history entry, in
  order of ``revision_end`` across all keys, so compaction finds what to drop
  without looking at every key; ``size`` is what the entry counts toward
  ``history_max_bytes`` (``_entry_bytes``).
- ``_history_live_bytes``: the sizes of the entries not yet cut (ending after
  ``_revision_compacted``); ``_dead_pending``: how many cut entries still
  wait at the head of the queue to be freed.
- ``_revision_compacted`` <= ``revision``: reads at revisions below it are
  refused (``RevisionCompacted``). History entries that end at or before it
  are *dead*: no read can reach them (a read at R >= it bisects past them),
  no snapshot holds them, and they wait at the head of ``_history_queue`` to
  be freed, at most ``DROP_ENTRIES_PER_COMMIT`` per command (see below).

Compaction, three ways, all at a point of the log, so every replica cuts the
same history at the same command:
- ``Compact(R)``, a client's command (``paxon compact R``): history before R
  goes; R ahead of the store is ``BadRequest``, R at or below what is already
  compacted is ``RevisionCompacted`` (as etcd answers). It needs write access
  to the whole key space under auth. It moves no revision.
- ``compact_history(R)``, the leader's retention (``paxon.node.history``)
  through the runtime's system session: the same cut, answered to no one, a
  no-op when R is not above what is compacted or is ahead of the store.
- The hard cap, the store's own: once ``revision - _revision_compacted``
  reaches ``history_max_revisions + step`` (``step`` = an eighth of the
  window, at least 1), history is cut at ``revision - history_max_revisions``.
  ``history_max_revisions`` is 1,000,000 by default (``HISTORY_REVISIONS_MAX``),
  far above the leader's default retention (10,000), so it bounds memory
  only when no leader's retention does. And once the entries not yet cut
  count more than ``history_max_bytes`` (512 MiB), history is cut at the
  oldest revision that brings them to seven eighths of it: a store of large
  values stays bounded too, and then a read far back may find its revision
  cut sooner than ``history_max_revisions`` promises.
A cut is at once for reads and snapshots; the memory is freed in chunks: the
cut frees up to ``DROP_ENTRIES_PER_COMMIT`` (4,096) dead entries and each later
write as many again (or twice what it retired, if more), so no command stalls
the apply loop for long (freeing a million entries at once took 0.8 s, longer
than an election timeout). Each entry is dropped once, so the cost is
amortized O(1) per write, and a read at least ``history_max_revisions``
revisions back works unless the byte cap cut first. When entries are freed is not replicated state:
no read or snapshot can tell.

A read at an older revision R looks at the live value (if its mod_revision is
<= R) or bisects the key's history. A prefix read at R also scans the keys of
``_history``, which only holds keys changed within the retained window.
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any, Final, assert_never

import msgpack  # type: ignore[import-untyped]

from paxon.errors import (
    BadRequest,
    LeaseNotFound,
    PaxonError,
    PermissionDenied,
    RevisionCompacted,
    Unauthenticated,
)
from paxon.kv.auth import (
    Access,
    AuthCommand,
    AuthState,
    PasswordRequest,
    UserList,
    encode_auth_state,
)
from paxon.kv.authcodec import (
    AUTH_COMMAND_TAGS,
    TAG_PASSWORD_REQUEST,
    decode_auth_command,
    decode_auth_query,
    encode_auth_result,
    unwrap,
)
from paxon.kv.codec import (
    decode_command,
    decode_query,
    encode_result,
    unpack,
)
from paxon.kv.leases import LeaseTable
from paxon.kv.locks import LockDelays, decode_delay, encode_delay
from paxon.kv.model import (
    DEFAULT_LIMITS,
    HISTORY_ENTRY_OVERHEAD_BYTES,
    Command,
    Compact,
    CompactResult,
    Compare,
    Delete,
    DeleteOp,
    DeleteResult,
    ErrorResult,
    Event,
    Events,
    EventsResult,
    Get,
    GetOp,
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
    LockAcquireResult,
    LockState,
    LockStateResult,
    Put,
    PutOp,
    PutResult,
    Query,
    Result,
    Txn,
    TxnOp,
    TxnResponse,
    TxnResult,
    lock_key,
    lock_name,
    validate_command,
    validate_query,
)
from paxon.kv.sorted_keys import SortedKeys
from paxon.kv.store_snapshot import SNAPSHOT_FORMAT, HistoryEntry, decode_snapshot
from paxon.statemachine import StateMachine

_COMPARE_OPERATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}


_PACK_PIECE_ITEMS = 1000

CHANGES_KEPT: Final = 65_536
"""Recent (revision, key) changes a store remembers for the node's watches
(``changed_since``): about 6 MiB; past it a watch is woken to look anyway."""

DROP_ENTRIES_PER_COMMIT: Final = 4096
"""Dead history entries freed per compaction or write, at least (see the module docstring)."""


class KvStore(StateMachine):
    def __init__(self, limits: KvLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._compaction_step = max(1, limits.history_max_revisions // 8)
        self._revision = 0
        self._revision_compacted = 0
        self._current: dict[str, KeyValue] = {}
        self._keys = SortedKeys()
        self._history: dict[str, list[HistoryEntry]] = {}
        self._history_queue: deque[tuple[int, str, int]] = deque()
        self._history_live_bytes = 0
        self._dead_pending = 0
        self._retired_since_commit = 0  # history entries the command being applied made
        self.auth = AuthState()
        """Users, roles and permissions (``paxon.kv.auth``), replicated with the keys."""
        self.leases = LeaseTable(limits.leases_max, limits.leases_per_user_max)
        """Leases and the keys attached to them (``paxon.kv.leases``)."""
        self.lock_delays = LockDelays()
        """Locks whose holder's lease expired, blocked until (``paxon.kv.locks``)."""
        self._log_time_ms = 0  # as the runtime last told (``on_log_time``)
        # The keys each recent revision changed, for the node's watches
        # (``changed_since``); not replicated state, not in snapshots.
        self._changes: deque[tuple[int, str]] = deque(maxlen=CHANGES_KEPT)
        self._changes_from = 1  # the first revision ``_changes`` is complete from

    @property
    def revision(self) -> int:
        """The number of commands that changed the store."""
        return self._revision

    @property
    def revision_compacted(self) -> int:
        """The oldest revision a read can still ask for."""
        return self._revision_compacted

    @property
    def log_time_ms(self) -> int:
        """The log time leases are counted in (``on_log_time``)."""
        return self._log_time_ms

    def __len__(self) -> int:
        return len(self._current)

    # -------------------------------------------------------------- log time

    def changed_since(self, revision: int) -> list[str] | None:
        """The keys changed at revisions from ``revision`` on (repeats possible),
        or None if this store no longer remembers that far back (the last
        ``CHANGES_KEPT`` changes, since the last restore)."""
        if revision < self._changes_from:
            return None
        changes = self._changes
        if len(changes) == changes.maxlen and changes[0][0] >= revision:
            return None  # the deque may have dropped some
        found = []
        for changed_at, key in reversed(changes):
            if changed_at < revision:
                break
            found.append(key)
        return found

    def on_log_time(self, log_time_ms: int) -> None:
        """Log time moved: end every lease it passed, each deleting its keys at
        one revision, in order of (expiry, id)."""
        if log_time_ms <= self._log_time_ms:
            return
        self._log_time_ms = log_time_ms
        for lease_id in self.leases.expired(log_time_ms):
            self._end_lease(lease_id, expired=True)
        self.lock_delays.end_passed(log_time_ms)

    def on_leader_change(self, log_time_ms: int) -> None:
        """A new leader's first log time: every lease gets at least its TTL from it."""
        self.leases.renew_all(max(log_time_ms, self._log_time_ms))

    def next_deadline_ms(self) -> int | None:
        """The log time at which the next lease expires or lock-delay ends (the
        leader stamps then)."""
        deadlines = [self.leases.next_expiry_ms(), self.lock_delays.next_end_ms()]
        return min((each for each in deadlines if each is not None), default=None)

    # -------------------------------------------------------------- bytes API

    def apply(self, command: bytes) -> bytes:
        """Apply one command; with auth enabled, only under a token allowed to run it.

        The token is checked here again, on every replica, against the auth
        state at this point of the log: a revoked permission or a changed
        password refuses every command after it, whoever checked it earlier."""
        try:
            token, inner = unwrap(command)
            decoded = _decode_any_command(inner)
            # The user the token names, checked here on every replica: the
            # owner of a lease it grants (never a field the client wrote).
            user = self._authorize(token, decoded) if self.auth.enabled else None
            if type(decoded) is PasswordRequest:
                raise BadRequest("a password must be hashed by a node before it is logged")
            if not isinstance(decoded, _KV_COMMANDS):
                result = self.auth.apply(decoded, self.limits.key_max_bytes)  # type: ignore[arg-type]
                return encode_auth_result(result)
        except PaxonError as error:
            return encode_result(ErrorResult.from_error(error))
        return encode_result(self.execute(decoded, owner=user))

    def query(self, query: bytes) -> bytes:
        try:
            token, inner = unwrap(query)
            fields = unpack(inner, "query") if inner[1:2] in _AUTH_QUERY_TAGS else None
            auth_query = decode_auth_query(fields) if type(fields) is list else None
            if auth_query is not None:
                if self.auth.enabled:
                    self.auth.check_admin(self._user(token))
                listed = (
                    self.auth.list_users()
                    if type(auth_query) is UserList
                    else self.auth.list_roles()
                )
                return encode_auth_result(listed)
            decoded = decode_query(inner)
            if self.auth.enabled:
                user = self._user(token)
                if type(decoded) is Get or type(decoded) is Events:
                    self.auth.check(user, [("read", decoded.key, decoded.prefix)])
                elif type(decoded) is LeaseTimeToLive and decoded.keys:
                    # Listing a lease's keys needs read access to each (as
                    # etcd's PR 15656 closed the same hole).
                    lease = self.leases.leases.get(decoded.lease)
                    keys = [] if lease is None else lease.sorted_keys()
                    self.auth.check(user, [("read", key, False) for key in keys])
                elif type(decoded) is LockState:
                    self.auth.check(user, [("read", lock_key(decoded.name, 0)[:-16], True)])
        except PaxonError as error:
            return encode_result(ErrorResult.from_error(error))
        return encode_result(self.read(decoded))

    def authorize(self, token: str | None, command: bytes) -> str | None:
        """The user ``token`` names if it may run ``command`` now, else the typed error.

        What ``apply`` checks, without applying (the node's edge refuses early
        with it); None when auth is disabled."""
        if not self.auth.enabled:
            return None
        return self._authorize(token, _decode_any_command(command))

    def snapshot(self) -> bytes:
        return self.snapshot_later()()

    def snapshot_later(self) -> Callable[[], bytes]:
        """Capture the state now (shallow copies: every value is immutable) and
        encode it later, on any thread, while the store goes on changing."""
        current = dict(self._current)
        history = {key: list(entries) for key, entries in self._history.items()}
        revision, revision_compacted = self._revision, self._revision_compacted
        auth = self.auth.copy()
        leases = [
            self._log_time_ms,
            self.leases.next_id,
            self.leases.export(),
            self.lock_delays.export(),
        ]

        def encode() -> bytes:
            kvs = [current[key] for key in sorted(current)]  # named tuples pack as arrays
            live = (
                (key, _live_entries(history[key], revision_compacted)) for key in sorted(history)
            )
            kept = [
                [
                    key,
                    [
                        [end, kv.value, kv.version, kv.create_revision, kv.mod_revision]
                        for end, kv in entries
                    ],
                ]
                for key, entries in live
                if entries
            ]
            # Packed piece by piece, not in one call: the packer holds the GIL
            # while it runs, and the event loop must get it back often.
            packer = msgpack.Packer()
            pieces = [packer.pack_array_header(7)]
            pieces += [
                packer.pack(item) for item in (SNAPSHOT_FORMAT, revision, revision_compacted)
            ]
            for items in (kvs, kept):
                pieces.append(packer.pack_array_header(len(items)))
                for start in range(0, len(items), _PACK_PIECE_ITEMS):
                    pieces.append(
                        b"".join(map(packer.pack, items[start : start + _PACK_PIECE_ITEMS]))
                    )
            pieces.append(packer.pack(encode_auth_state(auth)))
            pieces.append(packer.pack(leases))
            return b"".join(pieces)

        return encode

    def check_snapshot(self, data: bytes) -> None:
        """Decode ``data`` as ``restore`` does and drop it (``KvDecodeError`` if bad)."""
        decode_snapshot(data, self.limits.leases_max)

    def restore(self, data: bytes) -> None:
        """Replace the state with a snapshot; on ``KvDecodeError`` the state is unchanged."""
        self.prepare_restore(data)()

    def prepare_restore(self, data: bytes) -> Callable[[], None]:
        """Decode and index ``data`` (any thread; ``KvDecodeError`` if bad) into
        new values; the returned function swaps them in, in constant time."""
        revision, revision_compacted, current, history, auth, leased = decode_snapshot(
            data, self.limits.leases_max
        )
        leases = LeaseTable(self.limits.leases_max, self.limits.leases_per_user_max)
        log_time_ms, next_id, lease_rows, delay_rows = leased
        leases.load(next_id, lease_rows)
        lock_delays = LockDelays()
        lock_delays.load(delay_rows)
        keys = SortedKeys(list(current))
        queue = deque(
            sorted(
                (end, key, _entry_bytes(kv))
                for key, entries in history.items()
                for end, kv in entries
            )
        )
        live_bytes = sum(size for _, _, size in queue)

        def install() -> None:
            self.auth = auth
            self.leases = leases
            self.lock_delays = lock_delays
            self._log_time_ms = log_time_ms
            self._revision = revision
            self._revision_compacted = revision_compacted
            self._current = current
            self._keys = keys
            self._history = history
            self._history_queue = queue
            self._history_live_bytes = live_bytes
            self._dead_pending = 0
            self._changes.clear()
            self._changes_from = revision + 1

        return install

    # -------------------------------------------------------------- typed API

    def execute(self, command: Command, *, owner: str | None = None) -> Result:
        """Validate and apply one command; a refused command changes nothing.

        ``owner``: the authenticated user running it (``apply`` passes the user
        its token names under auth), who owns a lease it grants and is held to
        ``KvLimits.leases_per_user_max``; None without auth."""
        try:
            validate_command(command, self.limits)
        except BadRequest as error:
            return ErrorResult.from_error(error)
        match command:
            case Put():
                return self._on_put(command)
            case Delete(key, prefix):
                return self._on_delete(key, prefix)
            case Txn():
                return self._on_txn(command)
            case Compact(revision):
                return self._on_compact(revision)
            case LeaseGrant() | LeaseKeepAlive() | LeaseRevoke() | LockAcquire():
                try:
                    if isinstance(command, LockAcquire):
                        return self._on_lock_acquire(command)
                    return self._on_lease(command, owner)
                except PaxonError as error:
                    return ErrorResult.from_error(error)
            case _:
                assert_never(command)

    def read(self, query: Query) -> Result:
        """What ``query`` asks for: keys now or at ``query.revision``, or a lease."""
        try:
            validate_query(query, self.limits)
            if not isinstance(query, Get):
                return self._read_lease(query)
            self._check_readable(query.revision)
        except PaxonError as error:
            return ErrorResult.from_error(error)
        revision = query.revision
        if revision is None or revision == self._revision:
            return GetResult(self._range_now(query.key, query.prefix), self._revision)
        return GetResult(self._range_at(query.key, query.prefix, revision), self._revision)

    def compact_history(self, revision: int) -> bool:
        """The leader's retention: drop the history before ``revision`` if that
        cuts anything new; whether it did. A revision ahead of the store, or
        not above the one already compacted to, changes nothing (a retention
        command may arrive after a client's ``Compact`` went further)."""
        if not self._revision_compacted < revision <= self._revision:
            return False
        self._compact(revision)
        return True

    def check_invariants(self) -> None:
        """Assert every invariant of the module docstring (for tests; O(state))."""
        assert 0 <= self._revision_compacted <= self._revision
        assert list(self._keys) == sorted(self._current)
        self._keys.check_invariants()
        for key, kv in self._current.items():
            assert kv.key == key and kv.version >= 1
            assert 1 <= kv.create_revision <= kv.mod_revision <= self._revision
        entries_total = 0
        for key, entries in self._history.items():
            assert entries, f"empty history for {key!r}"
            revision_end_before = 0  # dead entries (ended by revision_compacted) may wait
            for revision_end, kv in entries:
                assert kv.key == key and kv.version >= 1
                assert revision_end_before < revision_end <= self._revision
                assert kv.create_revision <= kv.mod_revision < revision_end
                revision_end_before = revision_end
            live = self._current.get(key)
            assert live is None or revision_end_before <= live.mod_revision
            entries_total += len(entries)
        assert len(self._history_queue) == entries_total
        ends = [end for end, _, _ in self._history_queue]
        assert ends == sorted(ends)
        dead = [item for item in self._history_queue if item[0] <= self._revision_compacted]
        assert len(dead) == self._dead_pending
        live_bytes = sum(size for _, _, size in self._history_queue) - sum(s for *_, s in dead)
        assert live_bytes == self._history_live_bytes
        assert live_bytes <= self.limits.history_max_bytes
        self.leases.check_invariants()
        assert all(key in self._current for key in self.leases.lease_of)

    # -------------------------------------------------------------- auth

    def _authorize(self, token: str | None, command: _AnyCommand) -> str:
        user = self._user(token)
        match command:
            case Put(key, lease=lease_id):
                self.auth.check(user, [("write", key, False)])
                self._check_lease_user(user, lease_id)
            case Delete(key, prefix):
                self.auth.check(user, [("write", key, prefix)])
            case Txn():
                self.auth.check(user, _txn_wants(command))
                for op in (*command.success, *command.failure):
                    if type(op) is PutOp:
                        self._check_lease_user(user, op.lease)
            case Compact():
                # It drops the history of every key: write on the whole key space.
                self.auth.check(user, [("write", "", True)])
            case LeaseGrant():
                pass  # any user may hold leases, up to leases_per_user_max
            case LeaseKeepAlive(lease_id):
                self._check_lease_user(user, lease_id)
            case LockAcquire(name, lease_id):
                self.auth.check(user, [("write", lock_key(name, lease_id), False)])
                self._check_lease_user(user, lease_id)
            case LeaseRevoke(lease_id):
                # Revoking deletes the lease's keys: write access to each.
                self._check_lease_user(user, lease_id)
                lease = self.leases.leases.get(lease_id)
                keys = [] if lease is None else lease.sorted_keys()
                self.auth.check(user, [("write", key, False) for key in keys])
            case _:
                self.auth.check_admin(user)
        return user

    def _check_lease_user(self, user: str, lease_id: int) -> None:
        """Under auth only a lease's owner, or a root user, may keep it alive,
        revoke it or attach a key to it (a lock waiter's too), else
        ``PermissionDenied``. A lease without an owner (granted before auth was
        enabled) and one that does not exist pass (the command answers
        ``LeaseNotFound``)."""
        lease = self.leases.leases.get(lease_id) if lease_id else None
        if lease is None or lease.owner is None or lease.owner == user:
            return
        if not self.auth.is_root(user):
            raise PermissionDenied(
                f"user {user!r} may not use lease {lease_id}: it is another user's"
            )

    def _user(self, token: str | None) -> str:
        if token is None:
            raise Unauthenticated("auth is enabled: log in first (a token is required)")
        return self.auth.verify_token(token)[0]

    # -------------------------------------------------------------- handlers

    def _on_put(self, put: Put) -> PutResult | ErrorResult:
        if put.lease and put.lease not in self.leases.leases:
            return ErrorResult.from_error(_no_lease(put.lease))
        old = self._current.get(put.key)
        if put.expect_version is not None:
            version = 0 if old is None else old.version
            if version != put.expect_version:
                return PutResult(False, self._revision, version)
        revision = self._revision + 1
        kv = self._write(put.key, put.value, revision, old, put.lease)
        self._commit(revision)
        return PutResult(True, revision, kv.version)

    def _on_delete(self, key: str, prefix: bool) -> DeleteResult:
        keys = self._matching(key, prefix)
        if not keys:
            return DeleteResult(0, self._revision)
        revision = self._revision + 1
        for each in keys:
            self._remove(each, revision)
        self._commit(revision)
        return DeleteResult(len(keys), revision)

    def _on_compact(self, revision: int) -> CompactResult | ErrorResult:
        if revision > self._revision:
            return ErrorResult.from_error(
                BadRequest(f"revision {revision} is ahead of the store ({self._revision})")
            )
        if revision <= self._revision_compacted:
            return ErrorResult.from_error(
                RevisionCompacted(
                    f"revision {revision} is already compacted; "
                    f"the oldest kept is {self._revision_compacted}"
                )
            )
        self._compact(revision)
        return CompactResult(self._revision_compacted, self._revision)

    def _on_lease(
        self, command: LeaseGrant | LeaseKeepAlive | LeaseRevoke, owner: str | None
    ) -> LeaseGrantResult | LeaseKeepAliveResult | LeaseRevokeResult:
        now_ms = self._log_time_ms
        match command:
            case LeaseGrant(ttl_ms):
                lease = self.leases.grant(ttl_ms, now_ms, owner)
                return LeaseGrantResult(lease.id, lease.ttl_ms)
            case LeaseKeepAlive(lease_id):
                lease = self.leases.keep_alive(lease_id, now_ms)
                return LeaseKeepAliveResult(lease.id, lease.expiry_ms - now_ms)
            case LeaseRevoke(lease_id):
                self.leases.get(lease_id)  # LeaseNotFound
                return self._end_lease(lease_id)
        assert_never(command)

    def _end_lease(self, lease_id: int, *, expired: bool = False) -> LeaseRevokeResult:
        """Remove a lease (revoked or expired) and delete its keys at one revision;
        an expiry that takes a lock's holder starts the holder's lock-delay."""
        if expired:
            for key in self.leases.get(lease_id).sorted_keys():
                name = lock_name(key)
                if name is not None and self._lock_holder(name) is self._current[key]:
                    delay_ms = decode_delay(self._current[key].value)
                    if delay_ms:
                        self.lock_delays.start(name, self._log_time_ms + delay_ms)
        keys = self.leases.remove(lease_id).sorted_keys()
        if not keys:
            return LeaseRevokeResult(0, self._revision)
        revision = self._revision + 1
        for key in keys:
            self._remove(key, revision)
        self._commit(revision)
        return LeaseRevokeResult(len(keys), revision)

    def _on_lock_acquire(self, command: LockAcquire) -> LockAcquireResult:
        name, lease_id = command.name, command.lease
        self.leases.get(lease_id)  # LeaseNotFound
        key = lock_key(name, lease_id)
        kv = self._current.get(key)
        if kv is None or self.leases.lease_of.get(key) != lease_id:
            revision = self._revision + 1
            kv = self._write(key, encode_delay(command.delay_ms), revision, kv, lease_id)
            self._commit(revision)
        return LockAcquireResult(key, kv.create_revision, self._lock_holder(name) is kv)

    def _events(self, query: Events) -> EventsResult:
        """The changes ``query`` asks for, derived from the MVCC history (a put at
        each value's mod revision; a delete where a value ended and no value
        followed at once). O(candidate keys x their kept history); for a prefix
        the candidates are the keys changed since ``from_revision`` when the
        recent changes reach back that far, else every key under it."""
        start = query.from_revision
        if start <= self._revision_compacted:
            raise RevisionCompacted(
                f"events from revision {start} were compacted: watch from "
                f"{self._revision_compacted + 1} on; the oldest kept is "
                f"{self._revision_compacted}"
            )
        if start > self._revision:
            # Nothing yet: no scan. The cursor is the query's own, ``after_key``
            # included: a watcher paging inside a revision that asks a member
            # still behind it must not be sent back to the revision's start.
            return EventsResult((), self._revision, start, query.after_key)
        changed = self.changed_since(start) if query.prefix else None
        if not query.prefix:
            keys = [query.key]
        elif changed is not None:
            # Every event from ``start`` on changed a key at its revision: the
            # recent changes name the candidates (a live watch costs O(changes)).
            keys = sorted({key for key in changed if key.startswith(query.key)})
        else:
            history = (key for key in self._history if key.startswith(query.key))
            keys = sorted({*self._keys.with_prefix(query.key), *history})
        events = [
            event
            for key in keys
            for event in self._key_events(key, start, query.prev_kv)
            if event.revision > start or key > query.after_key
        ]
        events.sort(key=_event_order)
        page = tuple(events[: query.limit])
        if len(events) > query.limit:
            last = page[-1]
            return EventsResult(page, self._revision, last.revision, last.kv.key)
        return EventsResult(page, self._revision, max(start, self._revision + 1), "")

    def _key_events(self, key: str, start: int, with_prev: bool) -> list[Event]:
        """``key``'s events at revisions from ``start`` on, oldest first."""
        history = self._history.get(key)
        entries = [] if history is None else _live_entries(history, self._revision_compacted)
        current = self._current.get(key)
        found: list[Event] = []
        before: KeyValue | None = None  # the value just before, if it was live then
        for index, (end, kv) in enumerate(entries):
            if kv.mod_revision >= start:
                found.append(Event("put", kv, before if with_prev else None))
            following = entries[index + 1][1] if index + 1 < len(entries) else current
            if following is None or following.mod_revision != end:
                if end >= start:
                    tombstone = KeyValue(key, b"", 0, 0, end)
                    found.append(Event("delete", tombstone, kv if with_prev else None))
                before = None
            else:
                before = kv
        if current is not None and current.mod_revision >= start:
            found.append(Event("put", current, before if with_prev else None))
        return found

    def _lock_waiters(self, name: str) -> list[KeyValue]:
        current = self._current
        return [current[key] for key in self._keys.with_prefix(lock_key(name, 0)[:-16])]

    def _lock_holder(self, name: str) -> KeyValue | None:
        """The waiter holding lock ``name``: the one that joined first, unless a
        lock-delay runs (``paxon.kv.locks``)."""
        if self.lock_delays.remaining_ms(name, self._log_time_ms):
            return None
        return min(self._lock_waiters(name), key=_create_revision, default=None)

    def _read_lease(self, query: LeaseTimeToLive | LeaseList | LockState | Events) -> Result:
        if type(query) is Events:
            return self._events(query)
        if type(query) is LockState:
            holder = self._lock_holder(query.name)
            return LockStateResult(
                "" if holder is None else holder.key,
                0 if holder is None else holder.create_revision,
                len(self._lock_waiters(query.name)),
                self.lock_delays.remaining_ms(query.name, self._log_time_ms),
            )
        if type(query) is LeaseList:
            return LeaseListResult(tuple(sorted(self.leases.leases)))
        assert type(query) is LeaseTimeToLive
        lease = self.leases.get(query.lease)
        keys = tuple(lease.sorted_keys()) if query.keys else ()
        remaining_ms = max(0, lease.expiry_ms - self._log_time_ms)
        return LeaseTimeToLiveResult(lease.id, lease.ttl_ms, remaining_ms, keys)

    def _on_txn(self, txn: Txn) -> TxnResult | ErrorResult:
        for op in (*txn.success, *txn.failure):
            if type(op) is PutOp and op.lease and op.lease not in self.leases.leases:
                return ErrorResult.from_error(_no_lease(op.lease))
        succeeded = all(self._holds(condition) for condition in txn.compare)
        branch = txn.success if succeeded else txn.failure
        revision = self._revision + 1 if self._writes(branch) else self._revision
        responses = [self._on_op(op, revision) for op in branch]
        if revision != self._revision:
            self._commit(revision)
        return TxnResult(succeeded, revision, tuple(responses))

    def _on_op(self, op: TxnOp, revision: int) -> TxnResponse:
        match op:
            case PutOp(key, value, lease):
                kv = self._write(key, value, revision, self._current.get(key), lease)
                return PutResult(True, revision, kv.version)
            case DeleteOp(key, prefix):
                keys = self._matching(key, prefix)
                for each in keys:
                    self._remove(each, revision)
                return DeleteResult(len(keys), revision)
            case GetOp(key, prefix):
                return GetResult(self._range_now(key, prefix), revision)
            case _:
                assert_never(op)

    # -------------------------------------------------------------- writes

    def _write(
        self, key: str, value: bytes, revision: int, old: KeyValue | None, lease: int = 0
    ) -> KeyValue:
        assert revision == self._revision + 1
        if lease:
            self.leases.attach(key, lease)
        elif self.leases.lease_of:
            self.leases.detach(key)
        if old is None:
            kv = KeyValue(key, value, 1, revision, revision)
            self._keys.add(key)
        else:
            kv = KeyValue(key, value, old.version + 1, old.create_revision, revision)
            self._retire(old, revision)
        self._current[key] = kv
        self._changes.append((revision, key))
        return kv

    def _remove(self, key: str, revision: int) -> None:
        assert revision == self._revision + 1
        self._retire(self._current.pop(key), revision)
        self._keys.remove(key)
        self._changes.append((revision, key))
        if self.leases.lease_of:
            self.leases.detach(key)

    def _retire(self, old: KeyValue, revision: int) -> None:
        """Keep ``old`` readable at the revisions before ``revision``."""
        if old.mod_revision == revision:
            return  # written and replaced within one txn: never visible
        entries = self._history.get(old.key)
        if entries is None:
            self._history[old.key] = [(revision, old)]
        else:
            entries.append((revision, old))
        size = _entry_bytes(old)
        self._history_queue.append((revision, old.key, size))
        self._history_live_bytes += size
        self._retired_since_commit += 1

    def _commit(self, revision: int) -> None:
        assert revision == self._revision + 1
        self._revision = revision
        history_max = self.limits.history_max_revisions
        if revision - self._revision_compacted >= history_max + self._compaction_step:
            self._compact(revision - history_max)
        if self._history_live_bytes > self.limits.history_max_bytes:
            self._compact(self._revision_cutting_bytes())
        retired, self._retired_since_commit = self._retired_since_commit, 0
        if self._dead_pending:
            self._drop_dead(max(DROP_ENTRIES_PER_COMMIT, 2 * retired))

    def _revision_cutting_bytes(self) -> int:
        """The oldest revision whose cut leaves at most seven eighths of
        ``history_max_bytes`` in the entries not yet cut."""
        target = self.limits.history_max_bytes - self.limits.history_max_bytes // 8
        live_bytes = self._history_live_bytes
        cut = self._revision_compacted
        for end, _, size in islice(self._history_queue, self._dead_pending, None):
            if live_bytes <= target and end > cut:
                break  # every entry ending at ``cut`` is counted; the next revision stays
            live_bytes -= size
            cut = end
        return cut

    def _compact(self, revision_compacted: int) -> None:
        """Cut the history no read at ``revision_compacted`` or later needs: at
        once for reads and snapshots (the entries it kills are only counted
        here, one pass over them); the first ``DROP_ENTRIES_PER_COMMIT`` dead
        entries are freed now, the rest by the writes after it."""
        assert self._revision_compacted < revision_compacted <= self._revision
        newly_dead = 0
        freed_bytes = 0
        for end, _, size in islice(self._history_queue, self._dead_pending, None):
            if end > revision_compacted:
                break
            newly_dead += 1
            freed_bytes += size
        self._dead_pending += newly_dead
        self._history_live_bytes -= freed_bytes
        self._revision_compacted = revision_compacted
        self._drop_dead(DROP_ENTRIES_PER_COMMIT)

    def _drop_dead(self, entries_max: int) -> None:
        """Free up to ``entries_max`` dead history entries, oldest first."""
        queue = self._history_queue
        dropped: dict[str, int] = {}
        count = min(entries_max, self._dead_pending)
        for _ in range(count):
            _, key, _ = queue.popleft()
            dropped[key] = dropped.get(key, 0) + 1
        self._dead_pending -= count
        for key, dropped_count in dropped.items():
            entries = self._history[key]
            if dropped_count == len(entries):
                del self._history[key]
            else:
                del entries[:dropped_count]

    # -------------------------------------------------------------- reads

    def _check_readable(self, revision: int | None) -> None:
        if revision is None:
            return
        if revision > self._revision:
            raise BadRequest(f"revision {revision} is ahead of the store ({self._revision})")
        if revision < self._revision_compacted:
            raise RevisionCompacted(
                f"revision {revision} was compacted; the oldest kept is {self._revision_compacted}"
            )

    def _holds(self, condition: Compare) -> bool:
        kv = self._current.get(condition.key)
        actual: int | bytes
        match condition.target:
            case "version":
                actual = 0 if kv is None else kv.version
            case "value":
                actual = b"" if kv is None else kv.value
            case "mod_revision":
                actual = 0 if kv is None else kv.mod_revision
            case "create_revision":
                actual = 0 if kv is None else kv.create_revision
            case _:
                assert_never(condition.target)
        return _COMPARE_OPERATORS[condition.op](actual, condition.operand)

    def _writes(self, branch: Iterable[TxnOp]) -> bool:
        """Whether applying ``branch`` now changes anything (decided before it runs)."""
        for op in branch:
            if type(op) is PutOp:
                return True
            if type(op) is DeleteOp and (
                self._keys.has_prefix(op.key) if op.prefix else op.key in self._current
            ):
                return True
        return False

    def _matching(self, key: str, prefix: bool) -> list[str]:
        if prefix:
            return self._keys.with_prefix(key)
        return [key] if key in self._current else []

    def _range_now(self, key: str, prefix: bool) -> tuple[KeyValue, ...]:
        if not prefix:
            kv = self._current.get(key)
            return () if kv is None else (kv,)
        current = self._current
        return tuple(current[each] for each in self._keys.with_prefix(key))

    def _range_at(self, key: str, prefix: bool, revision: int) -> tuple[KeyValue, ...]:
        if not prefix:
            kv = self._value_at(key, revision)
            return () if kv is None else (kv,)
        candidates = set(self._keys.with_prefix(key))
        candidates.update(each for each in self._history if each.startswith(key))
        found = (self._value_at(each, revision) for each in sorted(candidates))
        return tuple(kv for kv in found if kv is not None)

    def _value_at(self, key: str, revision: int) -> KeyValue | None:
        assert self._revision_compacted <= revision <= self._revision
        kv = self._current.get(key)
        if kv is not None and kv.mod_revision <= revision:
            return kv
        entries = self._history.get(key)
        if entries is None:
            return None
        index = bisect_right(entries, revision, key=_revision_end)
        if index < len(entries) and entries[index][1].mod_revision <= revision:
            return entries[index][1]
        return None


_AnyCommand = Command | AuthCommand | PasswordRequest
_KV_COMMANDS: Final = (
    Put,
    Delete,
    Txn,
    Compact,
    LeaseGrant,
    LeaseKeepAlive,
    LeaseRevoke,
    LockAcquire,
)


def _no_lease(lease_id: int) -> LeaseNotFound:
    return LeaseNotFound(f"lease {lease_id} does not exist (never granted, or ended)")


_AUTH_TAGS: Final = frozenset((*AUTH_COMMAND_TAGS, TAG_PASSWORD_REQUEST))
_AUTH_QUERY_TAGS: Final = frozenset((bytes([50]), bytes([51])))


def _decode_any_command(data: bytes) -> _AnyCommand:
    """A key-value or auth command (the tag is the byte after a small array's header)."""
    if len(data) >= 2 and 0x91 <= data[0] <= 0x9F and data[1] in _AUTH_TAGS:
        fields = unpack(data, "command")
        assert type(fields) is list and fields  # the header says so
        return decode_auth_command(fields)
    return decode_command(data)


def _txn_wants(txn: Txn) -> list[tuple[Access, str, bool]]:
    wants: list[tuple[Access, str, bool]] = [("read", c.key, False) for c in txn.compare]
    for op in (*txn.success, *txn.failure):
        match op:
            case PutOp(key):
                wants.append(("write", key, False))
            case DeleteOp(key, prefix):
                wants.append(("write", key, prefix))
            case GetOp(key, prefix):
                wants.append(("read", key, prefix))
    return wants


def _event_order(event: Event) -> tuple[int, str]:
    return event.kv.mod_revision, event.kv.key


def _create_revision(kv: KeyValue) -> int:
    return kv.create_revision


def _revision_end(entry: HistoryEntry) -> int:
    return entry[0]


def _live_entries(entries: list[HistoryEntry], revision_compacted: int) -> list[HistoryEntry]:
    """``entries`` without the dead ones at their head (ended by ``revision_compacted``)."""
    if entries[0][0] > revision_compacted:
        return entries
    return entries[bisect_right(entries, revision_compacted, key=_revision_end) :]


# ------------------------------------------------------------------ snapshots


def _entry_bytes(kv: KeyValue) -> int:
    """What one history entry counts toward ``KvLimits.history_max_bytes``."""
    return len(kv.key) + len(kv.value) + HISTORY_ENTRY_OVERHEAD_BYTES
