"""The vocabulary of the key-value store: commands, queries, results and limits.

Commands (``Put``, ``Delete``, ``Txn``, ``Compact`` and the lease commands
``LeaseGrant``, ``LeaseKeepAlive``, ``LeaseRevoke``) change the store and go
through the log; the queries (``Get``, ``LeaseTimeToLive``, ``LeaseList``) only
read and are not logged. Every command is answered by one
result; a command that is malformed or over a limit is answered by an
``ErrorResult`` and changes nothing.

Checks happen in two places, cheapest first:
- construction: ``Compare`` checks its target, operator and operand type, since
  those decide how it is evaluated. The other types do not check themselves, so
  building the hot-path ``Put`` costs nothing extra.
- ``validate_command`` / ``validate_query``: every field against ``KvLimits``
  (key and value types and sizes, counts, integer ranges). The store runs them
  before it executes anything, so execution itself cannot fail half-way.

Keys are non-empty strings that encode to UTF-8 (no lone surrogates); sizes are
counted in UTF-8 bytes. The one exception: a prefix ``Get`` (or ``GetOp``) may
use the empty key, meaning "every key". Values are bytes.

Leases follow etcd, with time agreed through the log (``paxon.kv.leases``): a
lease has an id (from 1, counted by the store), a TTL in milliseconds of log
time and an expiry; a ``Put`` with ``lease`` attaches its key, and the key is
deleted when the lease expires or is revoked.

Revisions follow etcd: ``revision`` counts the commands that changed something.
``KeyValue.version`` is 1 when the key is created and grows by one per put;
``create_revision`` and ``mod_revision`` are the revisions of its creation and
of its last change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, NamedTuple, TypeAlias

from paxon.errors import ERROR_CLASSES, BadRequest, PaxonError, ValueTooLarge
from paxon.frozen import fast_init

INT_MAX: Final = 2**63 - 1
"""Every integer in a command or result fits a signed 64-bit integer."""

INT_MIN: Final = -(2**63)

CompareTarget: TypeAlias = Literal["version", "value", "mod_revision", "create_revision"]
CompareOp: TypeAlias = Literal["==", "!=", "<", ">"]

COMPARE_TARGETS: Final[tuple[CompareTarget, ...]] = (
    "version",
    "value",
    "mod_revision",
    "create_revision",
)
COMPARE_OPS: Final[tuple[CompareOp, ...]] = ("==", "!=", "<", ">")


@dataclass(frozen=True, slots=True)
class KvLimits:
    """Every bound of the store, in one place. Going over one is an error reply.

    ``history_max_revisions`` is the store's own hard cap on history: once
    ``revision - revision_compacted`` passes it (plus a step), the store
    compacts itself, whatever the leader's retention says (``paxon.kv.store``).
    The retention a user picks (``paxon serve --history-revisions``,
    ``--history-seconds``) is the leader's, carried out by ``Compact``
    commands in the log (``paxon.node.history``), and is bounded by this cap.
    ``history_max_bytes`` (512 MiB) caps the same history by size: each entry
    counts its key's characters, its value's bytes and
    ``HISTORY_ENTRY_OVERHEAD_BYTES`` (200, about what Python spends on it),
    so a store of large values is bounded too. ``leases_max`` (100,000) bounds
    the live leases; a grant past it is refused (``Busy``) until some expire.
    ``leases_per_user_max`` (10,000) bounds the live leases one user owns
    under auth, so no one user can fill the table and refuse everyone else's
    grants (``Busy`` too); without auth leases have no owner and only
    ``leases_max`` applies.
    Every replica must run with the same limits, since they decide which
    commands are refused and when history is compacted.
    """

    key_max_bytes: int = 4096
    value_max_bytes: int = 1_048_576
    txn_max_ops: int = 128
    history_max_revisions: int = 1_000_000
    history_max_bytes: int = 512 * 1024 * 1024
    leases_max: int = 100_000
    leases_per_user_max: int = 10_000

    def __post_init__(self) -> None:
        if self.key_max_bytes < 1:
            raise ValueError(f"key_max_bytes must be >= 1: {self}")
        if (
            min(
                self.value_max_bytes,
                self.txn_max_ops,
                self.history_max_revisions,
                self.history_max_bytes,
                self.leases_max,
                self.leases_per_user_max,
            )
            < 0
        ):
            raise ValueError(f"limits must be >= 0: {self}")


DEFAULT_LIMITS: Final = KvLimits()

HISTORY_ENTRY_OVERHEAD_BYTES: Final = 200
"""What a history entry counts toward ``history_max_bytes`` beyond its key and
value: 1M entries of 100-byte values took about 313 MiB, 328 bytes each."""

LEASE_TTL_MIN_MS: Final = 1_000
"""The shortest lease (1 s of log time): shorter ones would expire between a
client's keep-alives on a loaded cluster."""

LEASE_TTL_MAX_MS: Final = 30 * 24 * 3600 * 1000
"""The longest lease (30 days)."""

LOCK_PREFIX: Final = "_paxon/lock/"
"""Locks live in the key space: a waiter of lock N is the key
``_paxon/lock/N/<lease id, 16 hex digits>``, attached to the waiter's lease
(``lock_key``). Its create revision is the waiter's fence; the waiter with
the lowest holds the lock (unless a lock-delay runs)."""

LOCK_DELAY_MAX_MS: Final = 60_000
"""The longest lock-delay a waiter may ask for (1 minute, as Chubby caps it)."""

HISTORY_REVISIONS_MAX: Final = DEFAULT_LIMITS.history_max_revisions
"""The store's hard cap on history (1,000,000 revisions), a rule of the
replicated state; ``--history-revisions`` may not ask for more."""


# ------------------------------------------------------------------ values


class KeyValue(NamedTuple):
    """One key as of some revision.

    A named tuple rather than a dataclass: the store holds one per key and per
    kept revision, and a tuple of plain values is dropped from the garbage
    collector's watch list and packs into a snapshot at C speed.
    """

    key: str
    value: bytes
    version: int
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Compare:
    """A condition of a ``Txn``: ``key``'s ``target`` ``op`` ``operand``.

    ``operand`` is bytes when ``target`` is ``"value"`` (compared byte-wise),
    an integer otherwise. A missing key has version, create and mod revision 0
    and the value ``b""``, as in etcd.
    """

    key: str
    target: CompareTarget
    op: CompareOp
    operand: int | bytes

    def __post_init__(self) -> None:
        if self.target not in COMPARE_TARGETS:
            raise BadRequest(f"compare target must be one of {COMPARE_TARGETS}: {self.target!r}")
        if self.op not in COMPARE_OPS:
            raise BadRequest(f"compare op must be one of {COMPARE_OPS}: {self.op!r}")
        if self.target == "value":
            if type(self.operand) is not bytes:
                raise BadRequest("compare operand for target 'value' must be bytes")
        elif type(self.operand) is not int:
            raise BadRequest(f"compare operand for target {self.target!r} must be an integer")
        elif not INT_MIN <= self.operand <= INT_MAX:
            raise BadRequest(f"compare operand out of the 64-bit range: {self.operand}")


# ------------------------------------------------------------------ txn ops


@dataclass(frozen=True, slots=True)
class PutOp:
    """A put inside a txn; ``lease`` as in ``Put``."""

    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class DeleteOp:
    key: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class GetOp:
    """A read inside a txn: it sees the writes earlier in the same branch."""

    key: str
    prefix: bool = False


TxnOp: TypeAlias = PutOp | DeleteOp | GetOp
_TXN_OP_TYPES: Final = (PutOp, DeleteOp, GetOp)


# ------------------------------------------------------------------ commands


@fast_init
@dataclass(frozen=True, slots=True)
class Put:
    """Set ``key`` to ``value``.

    With ``expect_version`` it is a compare-and-set: it applies only when the
    key's current version equals it, 0 meaning "the key must not exist".
    With ``lease`` (an id, not 0) the key is attached to that lease, which must
    exist (``LeaseNotFound``); without it, a key attached before is detached.
    """

    key: str
    value: bytes
    expect_version: int | None = None
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove ``key``, or with ``prefix`` every key that starts with it."""

    key: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Txn:
    """If every compare holds, apply ``success``, else ``failure``; one revision."""

    compare: tuple[Compare, ...] = ()
    success: tuple[TxnOp, ...] = ()
    failure: tuple[TxnOp, ...] = ()


@dataclass(frozen=True, slots=True)
class Compact:
    """Drop the history before ``revision``: reads below it get ``RevisionCompacted``.

    As etcd's: ``revision`` must not be ahead of the store (``BadRequest``),
    and one at or below the revision already compacted to is refused with
    ``RevisionCompacted`` naming the oldest revision kept. It changes no key
    and does not move the revision. Under auth it needs write access to the
    whole key space (``root``, or a role with ``readwrite`` on the prefix
    ``""``): it drops the history of every key.
    """

    revision: int


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """Grant a lease of ``ttl_ms`` milliseconds of log time
    (``LEASE_TTL_MIN_MS`` to ``LEASE_TTL_MAX_MS``)."""

    ttl_ms: int


@dataclass(frozen=True, slots=True)
class LeaseKeepAlive:
    """Give ``lease`` its whole TTL again, from the log time of this command."""

    lease: int


@dataclass(frozen=True, slots=True)
class LeaseRevoke:
    """End ``lease`` now and delete its keys, at one revision."""

    lease: int


@dataclass(frozen=True, slots=True)
class LockAcquire:
    """Join the queue of lock ``name`` with ``lease`` (which must live): the
    store puts ``lock_key(name, lease)`` with the lease, once (again with the
    same lease answers the same key and fence). ``delay_ms`` is this waiter's
    lock-delay: if its lease *expires* while it holds the lock, nobody holds
    the lock for that long after (a release or revoke frees it at once)."""

    name: str
    lease: int
    delay_ms: int = 0


Command: TypeAlias = (
    Put | Delete | Txn | Compact | LeaseGrant | LeaseKeepAlive | LeaseRevoke | LockAcquire
)


@fast_init
@dataclass(frozen=True, slots=True)
class Get:
    """Read ``key`` (or every key under the prefix ``key``), now or at ``revision``."""

    key: str
    prefix: bool = False
    revision: int | None = None


@dataclass(frozen=True, slots=True)
class LeaseTimeToLive:
    """How long ``lease`` has left (and, with ``keys``, which keys it holds)."""

    lease: int
    keys: bool = False


@dataclass(frozen=True, slots=True)
class LeaseList:
    """The ids of every live lease."""


@dataclass(frozen=True, slots=True)
class LockState:
    """Who holds lock ``name`` now, how many wait, and any lock-delay left."""

    name: str


EVENTS_PAGE_MAX: Final = 1000
"""Events one ``Events`` answer holds at most (the next page resumes at its cursor)."""

EVENTS_WAIT_MAX_MS: Final = 30_000
"""The longest a node holds an ``Events`` query that found nothing yet."""


@dataclass(frozen=True, slots=True)
class Events:
    """The changes to ``key`` (or, with ``prefix``, to every key under it) from
    ``from_revision`` on, in order of (revision, key): at most ``limit``
    (``EVENTS_PAGE_MAX``) per answer. ``after_key`` resumes inside
    ``from_revision`` (the cursor of the previous page). ``from_revision`` must
    be above the revision compacted to (``RevisionCompacted`` otherwise): the
    delete events of that revision are gone with its history.

    ``wait_ms`` is for the node, not the store: a node holds a query whose
    answer has no events for up to that long (``EVENTS_WAIT_MAX_MS``), and
    answers as soon as a change it asks for is applied (``paxon.node.watches``)."""

    key: str
    prefix: bool = False
    from_revision: int = 1
    after_key: str = ""
    limit: int = EVENTS_PAGE_MAX
    prev_kv: bool = False
    wait_ms: int = 0


Query: TypeAlias = Get | LeaseTimeToLive | LeaseList | LockState | Events


# ------------------------------------------------------------------ results


@fast_init
@dataclass(frozen=True, slots=True)
class PutResult:
    """``revision`` and ``version`` after the put; on a failed CAS, the current ones.

    True exactly when the put happened, so ``if await kv.cas(...):`` works.
    """

    succeeded: bool
    revision: int
    version: int

    def __bool__(self) -> bool:
        return self.succeeded


@dataclass(frozen=True, slots=True)
class DeleteResult:
    deleted: int
    revision: int


@fast_init
@dataclass(frozen=True, slots=True)
class GetResult:
    """The keys found, sorted by key; ``revision`` is the store's current revision."""

    items: tuple[KeyValue, ...]
    revision: int


@dataclass(frozen=True, slots=True)
class CompactResult:
    """History before ``revision_compacted`` is gone; ``revision`` is the store's current one."""

    revision_compacted: int
    revision: int


@dataclass(frozen=True, slots=True)
class LeaseGrantResult:
    """The new lease's id and TTL; it expires ``ttl_ms`` of log time after the grant."""

    lease: int
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class LeaseKeepAliveResult:
    """``lease`` has ``ttl_ms`` of log time left, counted from the keep-alive."""

    lease: int
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class LeaseRevokeResult:
    """The lease is gone; ``deleted`` keys went with it at ``revision``."""

    deleted: int
    revision: int


@dataclass(frozen=True, slots=True)
class LeaseTimeToLiveResult:
    """``remaining_ms`` of log time left of ``granted_ttl_ms``; ``keys`` if asked for."""

    lease: int
    granted_ttl_ms: int
    remaining_ms: int
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeaseListResult:
    """The ids of the live leases, in order."""

    leases: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LockAcquireResult:
    """The waiter's ``key`` and ``fence`` (its create revision), and whether it
    holds the lock now (else it waits: ask ``LockState`` until it does)."""

    key: str
    fence: int
    held: bool


@dataclass(frozen=True, slots=True)
class LockStateResult:
    """The holder's key and fence ("" and 0 when nobody holds the lock, as
    while a lock-delay runs), the waiters in the queue (the holder included),
    and the lock-delay left in milliseconds of log time."""

    holder_key: str
    fence: int
    waiters: int
    delay_remaining_ms: int


@dataclass(frozen=True, slots=True)
class Event:
    """One change: a put (``kv`` is the new value) or a delete (``kv`` has the
    key, an empty value, version 0 and the deleting revision as ``mod_revision``,
    as etcd reports it); ``prev`` is the value before, when asked for."""

    type: Literal["put", "delete"]
    kv: KeyValue
    prev: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class EventsResult:
    """A page of events, the store's current ``revision``, and the cursor to
    ask from next (``next_revision``, ``next_key``): after the last event, or
    ``revision + 1`` when the page holds everything up to now."""

    events: tuple[Event, ...]
    revision: int
    next_revision: int
    next_key: str


LeaseResult: TypeAlias = (
    LeaseGrantResult
    | LeaseKeepAliveResult
    | LeaseRevokeResult
    | LeaseTimeToLiveResult
    | LeaseListResult
    | LockAcquireResult
    | LockStateResult
    | EventsResult
)

TxnResponse: TypeAlias = PutResult | DeleteResult | GetResult


@dataclass(frozen=True, slots=True)
class TxnResult:
    """Whether the compares held, the revision after the txn, one response per op."""

    succeeded: bool
    revision: int
    responses: tuple[TxnResponse, ...]


@dataclass(frozen=True, slots=True)
class ErrorResult:
    """The command or query was refused and changed nothing; ``code`` is a paxon error code."""

    code: str
    message: str

    @classmethod
    def from_error(cls, error: PaxonError) -> ErrorResult:
        return cls(error.code, str(error))

    def to_error(self) -> PaxonError:
        """The typed error this result stands for (``PaxonError`` for an unknown code)."""
        return ERROR_CLASSES.get(self.code, PaxonError)(self.message)


Result: TypeAlias = (
    PutResult | DeleteResult | GetResult | TxnResult | CompactResult | LeaseResult | ErrorResult
)


# ------------------------------------------------------------------ validation


def validate_command(command: Command, limits: KvLimits) -> None:
    """Raise ``BadRequest`` (or ``ValueTooLarge``) unless ``command`` is within ``limits``."""
    match command:
        case Put():
            _check_key(command.key, limits, "key")
            _check_value(command.value, limits, "value")
            if command.expect_version is not None:
                _check_count(command.expect_version, "expect_version")
            _check_count(command.lease, "lease")
        case Delete(key, prefix):
            _check_key(key, limits, "key")
            _check_flag(prefix, "prefix")
        case Txn(compare, success, failure):
            _check_txn(compare, success, failure, limits)
        case Compact(revision):
            _check_count(revision, "revision")
        case LeaseGrant(ttl_ms):
            _check_ttl(ttl_ms)
        case LeaseKeepAlive(lease) | LeaseRevoke(lease):
            _check_lease_id(lease)
        case LockAcquire(name, lease, delay_ms):
            _check_lock_name(name, limits)
            _check_lease_id(lease)
            if type(delay_ms) is not int or not 0 <= delay_ms <= LOCK_DELAY_MAX_MS:
                raise BadRequest(f"delay_ms: from 0 to {LOCK_DELAY_MAX_MS}, got {delay_ms!r}")
        case _:
            raise BadRequest(f"not a command: {type(command).__name__}")


def validate_query(query: Query, limits: KvLimits) -> None:
    """Raise ``BadRequest`` unless ``query`` is well formed (the revision bound is the store's)."""
    if type(query) is LeaseTimeToLive:
        _check_lease_id(query.lease)
        _check_flag(query.keys, "keys")
        return
    if type(query) is LeaseList:
        return
    if type(query) is LockState:
        _check_lock_name(query.name, limits)
        return
    if type(query) is Events:
        _check_flag(query.prefix, "prefix")
        _check_flag(query.prev_kv, "prev_kv")
        _check_key(query.key, limits, "key", empty_ok=query.prefix)
        _check_count(query.from_revision, "from_revision")
        if query.after_key:
            _check_key(query.after_key, limits, "after_key")
        if type(query.limit) is not int or not 1 <= query.limit <= EVENTS_PAGE_MAX:
            raise BadRequest(f"limit: from 1 to {EVENTS_PAGE_MAX}, got {query.limit!r}")
        if type(query.wait_ms) is not int or not 0 <= query.wait_ms <= EVENTS_WAIT_MAX_MS:
            raise BadRequest(f"wait_ms: from 0 to {EVENTS_WAIT_MAX_MS}, got {query.wait_ms!r}")
        return
    if type(query) is not Get:
        raise BadRequest(f"not a query: {type(query).__name__}")
    _check_flag(query.prefix, "prefix")
    _check_key(query.key, limits, "key", empty_ok=query.prefix)
    if query.revision is not None:
        _check_count(query.revision, "revision")


def _check_txn(
    compare: tuple[Compare, ...],
    success: tuple[TxnOp, ...],
    failure: tuple[TxnOp, ...],
    limits: KvLimits,
) -> None:
    for name, part in (("compare", compare), ("success", success), ("failure", failure)):
        if type(part) is not tuple:
            raise BadRequest(f"{name}: expected a tuple")
        if len(part) > limits.txn_max_ops:
            raise BadRequest(f"{name}: {len(part)} entries > txn_max_ops {limits.txn_max_ops}")
    # Paths like "success[3].value" are formatted only when a check fails.
    for index, condition in enumerate(compare):
        if type(condition) is not Compare:
            raise BadRequest(f"compare[{index}]: not a Compare")
        try:
            _check_key(condition.key, limits, "key")
        except BadRequest as error:
            raise type(error)(f"compare[{index}].{error}") from None
    for name, branch in (("success", success), ("failure", failure)):
        for index, op in enumerate(branch):
            if type(op) not in _TXN_OP_TYPES:
                raise BadRequest(f"{name}[{index}]: not a txn op: {type(op).__name__}")
            try:
                _check_op(op, limits)
            except BadRequest as error:
                raise type(error)(f"{name}[{index}].{error}") from None


def _check_op(op: TxnOp, limits: KvLimits) -> None:
    match op:
        case PutOp(key, value, lease):
            _check_key(key, limits, "key")
            _check_value(value, limits, "value")
            _check_count(lease, "lease")
        case DeleteOp(key, prefix):
            _check_key(key, limits, "key")
            _check_flag(prefix, "prefix")
        case GetOp(key, prefix):
            _check_flag(prefix, "prefix")
            _check_key(key, limits, "key", empty_ok=prefix)


def _check_key(key: object, limits: KvLimits, what: str, *, empty_ok: bool = False) -> None:
    if type(key) is not str:
        raise BadRequest(f"{what}: expected a string")
    if not key and not empty_ok:
        raise BadRequest(f"{what}: must not be empty")
    if key.isascii():
        size = len(key)
    else:
        try:
            size = len(key.encode())
        except UnicodeEncodeError:
            raise BadRequest(f"{what}: not encodable as UTF-8") from None
    if size > limits.key_max_bytes:
        raise ValueTooLarge(f"{what}: {size} bytes > key_max_bytes {limits.key_max_bytes}")


def _check_value(value: object, limits: KvLimits, what: str) -> None:
    if type(value) is not bytes:
        raise BadRequest(f"{what}: expected bytes")
    if len(value) > limits.value_max_bytes:
        raise ValueTooLarge(
            f"{what}: {len(value)} bytes > value_max_bytes {limits.value_max_bytes}"
        )


def _check_count(number: object, what: str) -> None:
    if type(number) is not int:
        raise BadRequest(f"{what}: expected an integer")
    if not 0 <= number <= INT_MAX:
        raise BadRequest(f"{what}: must be between 0 and 2**63-1, got {number}")


def lock_key(name: str, lease: int) -> str:
    """The key a waiter of lock ``name`` holds with ``lease``."""
    return f"{LOCK_PREFIX}{name}/{lease:016x}"


def lock_name(key: str) -> str | None:
    """The lock a waiter's key belongs to, or None for any other key."""
    if not key.startswith(LOCK_PREFIX):
        return None
    name, _, _ = key[len(LOCK_PREFIX) :].rpartition("/")
    return name or None


def _check_lock_name(name: object, limits: KvLimits) -> None:
    if type(name) is not str or not name:
        raise BadRequest("lock name: expected a non-empty string")
    if "/" in name:
        raise BadRequest(f"lock name: must not contain '/': {name!r:.80}")
    _check_key(lock_key(name, 1), limits, "lock name")


def _check_ttl(ttl_ms: object) -> None:
    if type(ttl_ms) is not int:
        raise BadRequest("ttl_ms: expected an integer")
    if not LEASE_TTL_MIN_MS <= ttl_ms <= LEASE_TTL_MAX_MS:
        raise BadRequest(
            f"ttl_ms: a lease lasts from {LEASE_TTL_MIN_MS} to {LEASE_TTL_MAX_MS} ms, got {ttl_ms}"
        )


def _check_lease_id(lease: object) -> None:
    if type(lease) is not int:
        raise BadRequest("lease: expected an integer")
    if not 1 <= lease <= INT_MAX:
        raise BadRequest(f"lease: an id is from 1 to 2**63-1, got {lease}")


def _check_flag(flag: object, what: str) -> None:
    if type(flag) is not bool:
        raise BadRequest(f"{what}: expected a boolean")
