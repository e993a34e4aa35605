"""Commands, queries and results to msgpack bytes and back.

Every object is one msgpack array whose first element is a type tag; fields
follow in declaration order (no field names on the wire)::

    tag  object        fields
    1    Put           key, value, expect_version | nil [, lease]   (lease only when not 0)
    2    Delete        key, prefix
    3    Txn           [compare...], [op...] success, [op...] failure
    4    Get           key, prefix, revision | nil
    6    Compact       revision
    7    LeaseGrant    ttl_ms
    8    LeaseKeepAlive lease
    9    LeaseRevoke   lease
    10   LeaseTimeToLive lease, keys                (a query)
    11   LeaseList                                  (a query)
    12   LockAcquire   name, lease, delay_ms
    13   LockState     name                         (a query)
    14   Events        key, prefix, from_revision, after_key, limit, prev_kv, wait_ms  (a query)
         Compare       [key, target, op, operand]   target and op as indexes into
                                                     COMPARE_TARGETS / COMPARE_OPS
    1    PutOp         [1, key, value [, lease]]    (txn ops reuse the command tags)
    2    DeleteOp      [2, key, prefix]
    4    GetOp         [4, key, prefix]
    16   PutResult     succeeded, revision, version
    17   DeleteResult  deleted, revision
    18   GetResult     revision, [[key, value, version, create_revision, mod_revision]...]
    19   TxnResult     succeeded, revision, [result...]
    20   ErrorResult   code, message
    24   CompactResult revision_compacted, revision
    25   LeaseGrantResult lease, ttl_ms
    26   LeaseKeepAliveResult lease, ttl_ms
    27   LeaseRevokeResult deleted, revision
    28   LeaseTimeToLiveResult lease, granted_ttl_ms, remaining_ms, [key...]
    29   LeaseListResult [lease...]
    30   LockAcquireResult key, fence, held
    31   LockStateResult holder_key, fence, waiters, delay_remaining_ms
    60   EventsResult  [[put?, kv, prev | nil]...], revision, next_revision, next_key
                       (kv as in GetResult; tags 32-59 are the auth codec's)

Rules:
- Decoding trusts nothing: any input either decodes to an object of the right
  types or raises ``KvDecodeError`` (a ``BadRequest``) saying why. Nothing else
  escapes. Decoding checks shapes and types only; the limits of the store are
  ``validate_command``'s job.
- msgpack runs with ``raw=False`` (strings must be UTF-8), no maps, no ext
  types, and every length capped by the input's own size, so a hostile input
  cannot make the decoder allocate much more than it is. How large an input
  may be at all is the transport's limit (frame size, HTTP body size).
- Commands and queries, which any client sends and every replica decodes,
  are held to what a legal one can hold: no array longer than
  ``COMMAND_ARRAY_MAX`` (1,024: the compares or ops of one Txn; ``txn_max_ops``
  is 128 by default, 8x room), and, for an input over ``BUDGET_FROM_BYTES``
  (65,536), at most ``COMMAND_ITEMS_MAX`` (18,440) array items in all, counted
  as msgpack builds them: a Txn of three full lists of 4-field entries. Without
  these a 1 MiB command of one-item arrays took 0.11 s of the event loop to
  refuse; now its array header refuses it (measured in the fuzz report).
- ``encode_*`` expects well-typed objects (build them through the model) and
  raises ``BadRequest`` if an integer does not fit msgpack.
"""

from __future__ import annotations

from typing import Final, NoReturn, TypeVar

import msgpack  # type: ignore[import-untyped]

from paxon.errors import BadRequest
from paxon.kv.model import (
    COMPARE_OPS,
    COMPARE_TARGETS,
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
)

ResultT = TypeVar(
    "ResultT",
    PutResult,
    DeleteResult,
    GetResult,
    TxnResult,
    CompactResult,
    LeaseGrantResult,
    LeaseKeepAliveResult,
    LeaseRevokeResult,
    LeaseTimeToLiveResult,
    LeaseListResult,
    LockAcquireResult,
    LockStateResult,
    EventsResult,
)


class KvDecodeError(BadRequest):
    """Bytes that are not a well-formed command, query, result or snapshot."""


TAG_PUT: Final = 1
TAG_DELETE: Final = 2
TAG_TXN: Final = 3
TAG_GET: Final = 4
TAG_COMPACT: Final = 6
TAG_LEASE_GRANT: Final = 7
TAG_LEASE_KEEP_ALIVE: Final = 8
TAG_LEASE_REVOKE: Final = 9
TAG_LEASE_TIME_TO_LIVE: Final = 10
TAG_LEASE_LIST: Final = 11
TAG_LOCK_ACQUIRE: Final = 12
TAG_LOCK_STATE: Final = 13
TAG_EVENTS: Final = 14
TAG_PUT_RESULT: Final = 16
TAG_DELETE_RESULT: Final = 17
TAG_GET_RESULT: Final = 18
TAG_TXN_RESULT: Final = 19
TAG_ERROR_RESULT: Final = 20
TAG_COMPACT_RESULT: Final = 24
TAG_LEASE_GRANT_RESULT: Final = 25
TAG_LEASE_KEEP_ALIVE_RESULT: Final = 26
TAG_LEASE_REVOKE_RESULT: Final = 27
TAG_LEASE_TIME_TO_LIVE_RESULT: Final = 28
TAG_LEASE_LIST_RESULT: Final = 29
TAG_LOCK_ACQUIRE_RESULT: Final = 30
TAG_LOCK_STATE_RESULT: Final = 31
TAG_EVENTS_RESULT: Final = 60

_TARGET_INDEX: Final = {target: index for index, target in enumerate(COMPARE_TARGETS)}
_OP_INDEX: Final = {op: index for index, op in enumerate(COMPARE_OPS)}
_DECODE_ERRORS: Final = (ValueError, TypeError, msgpack.UnpackException)


# ------------------------------------------------------------------ encoding


def encode_command(command: Command) -> bytes:
    match command:
        case Put(key, value, expect_version, lease):
            if lease:
                return _pack([TAG_PUT, key, value, expect_version, lease])
            return _pack([TAG_PUT, key, value, expect_version])
        case Delete(key, prefix):
            return _pack([TAG_DELETE, key, prefix])
        case Txn(compare, success, failure):
            return _pack(
                [
                    TAG_TXN,
                    [_compare_fields(condition) for condition in compare],
                    [_op_fields(op) for op in success],
                    [_op_fields(op) for op in failure],
                ]
            )
        case Compact(revision):
            return _pack([TAG_COMPACT, revision])
        case LeaseGrant(ttl_ms):
            return _pack([TAG_LEASE_GRANT, ttl_ms])
        case LeaseKeepAlive(lease):
            return _pack([TAG_LEASE_KEEP_ALIVE, lease])
        case LeaseRevoke(lease):
            return _pack([TAG_LEASE_REVOKE, lease])
        case LockAcquire(name, lease, delay_ms):
            return _pack([TAG_LOCK_ACQUIRE, name, lease, delay_ms])
    raise BadRequest(f"not a command: {type(command).__name__}")


def encode_query(query: Query) -> bytes:
    if type(query) is Get:
        return _pack([TAG_GET, query.key, query.prefix, query.revision])
    if type(query) is LeaseTimeToLive:
        return _pack([TAG_LEASE_TIME_TO_LIVE, query.lease, query.keys])
    if type(query) is LeaseList:
        return _pack([TAG_LEASE_LIST])
    if type(query) is LockState:
        return _pack([TAG_LOCK_STATE, query.name])
    if type(query) is Events:
        return _pack(
            [
                TAG_EVENTS,
                query.key,
                query.prefix,
                query.from_revision,
                query.after_key,
                query.limit,
                query.prev_kv,
                query.wait_ms,
            ]
        )
    raise BadRequest(f"not a query: {type(query).__name__}")


def encode_result(result: Result) -> bytes:
    if result.__class__ is PutResult:  # the hot path first
        return _pack([TAG_PUT_RESULT, result.succeeded, result.revision, result.version])
    if type(result) is ErrorResult:
        return _pack([TAG_ERROR_RESULT, result.code, result.message])
    if type(result) is TxnResult:
        responses = [_result_fields(response) for response in result.responses]
        return _pack([TAG_TXN_RESULT, result.succeeded, result.revision, responses])
    if type(result) is CompactResult:
        return _pack([TAG_COMPACT_RESULT, result.revision_compacted, result.revision])
    if type(result) is LeaseGrantResult:
        return _pack([TAG_LEASE_GRANT_RESULT, result.lease, result.ttl_ms])
    if type(result) is LeaseKeepAliveResult:
        return _pack([TAG_LEASE_KEEP_ALIVE_RESULT, result.lease, result.ttl_ms])
    if type(result) is LeaseRevokeResult:
        return _pack([TAG_LEASE_REVOKE_RESULT, result.deleted, result.revision])
    if type(result) is LeaseTimeToLiveResult:
        return _pack(
            [
                TAG_LEASE_TIME_TO_LIVE_RESULT,
                result.lease,
                result.granted_ttl_ms,
                result.remaining_ms,
                list(result.keys),
            ]
        )
    if type(result) is LeaseListResult:
        return _pack([TAG_LEASE_LIST_RESULT, list(result.leases)])
    if type(result) is EventsResult:
        events = [
            [
                event.type == "put",
                keyvalue_fields(event.kv),
                None if event.prev is None else keyvalue_fields(event.prev),
            ]
            for event in result.events
        ]
        return _pack(
            [TAG_EVENTS_RESULT, events, result.revision, result.next_revision, result.next_key]
        )
    if type(result) is LockAcquireResult:
        return _pack([TAG_LOCK_ACQUIRE_RESULT, result.key, result.fence, result.held])
    if type(result) is LockStateResult:
        return _pack(
            [
                TAG_LOCK_STATE_RESULT,
                result.holder_key,
                result.fence,
                result.waiters,
                result.delay_remaining_ms,
            ]
        )
    return _pack(_result_fields(result))


def keyvalue_fields(kv: KeyValue) -> list[object]:
    """``kv`` as the array the codec (and the store's snapshot) writes."""
    return [kv.key, kv.value, kv.version, kv.create_revision, kv.mod_revision]


def _pack(fields: list[object]) -> bytes:
    try:
        return msgpack.packb(fields)  # type: ignore[no-any-return]
    except (OverflowError, ValueError, TypeError) as exc:
        raise BadRequest(f"cannot encode: {exc}") from None


def _compare_fields(condition: Compare) -> list[object]:
    return [
        condition.key,
        _TARGET_INDEX[condition.target],
        _OP_INDEX[condition.op],
        condition.operand,
    ]


def _op_fields(op: TxnOp) -> list[object]:
    match op:
        case PutOp(key, value, lease):
            return [TAG_PUT, key, value, lease] if lease else [TAG_PUT, key, value]
        case DeleteOp(key, prefix):
            return [TAG_DELETE, key, prefix]
        case GetOp(key, prefix):
            return [TAG_GET, key, prefix]
    raise BadRequest(f"not a txn op: {type(op).__name__}")


def _result_fields(result: Result) -> list[object]:
    match result:
        case PutResult(succeeded, revision, version):
            return [TAG_PUT_RESULT, succeeded, revision, version]
        case DeleteResult(deleted, revision):
            return [TAG_DELETE_RESULT, deleted, revision]
        case GetResult(items, revision):
            return [TAG_GET_RESULT, revision, [keyvalue_fields(kv) for kv in items]]
    raise BadRequest(f"not a txn response: {type(result).__name__}")


# ------------------------------------------------------------------ decoding


def unpack(
    data: bytes, what: str, array_max: int | None = None, items_max: int | None = None
) -> object:
    """msgpack-decode untrusted ``data`` with every limit on, or raise ``KvDecodeError``.

    ``array_max`` caps each array's length (default: the input's size);
    ``items_max`` caps all arrays' items together, counted for inputs over
    ``BUDGET_FROM_BYTES`` only (smaller ones are bounded by their size).
    """
    if type(data) is not bytes:
        raise KvDecodeError(f"{what}: expected bytes, got {type(data).__name__}")
    size = len(data)
    budget = _ItemBudget(items_max) if items_max is not None and size > BUDGET_FROM_BYTES else None
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_str_len=size,
            max_bin_len=size,
            max_array_len=size if array_max is None else array_max,
            max_map_len=0,
            max_ext_len=0,
            list_hook=None if budget is None else budget.count,
        )
    except _OverBudget:
        raise KvDecodeError(f"{what}: more array items than a legal {what} holds") from None
    except _DECODE_ERRORS as exc:
        raise KvDecodeError(f"{what}: not valid msgpack: {exc}") from None


COMMAND_ARRAY_MAX: Final = 1024
COMMAND_ITEMS_MAX: Final = 5 + 3 * (1 + COMMAND_ARRAY_MAX * 6)
BUDGET_FROM_BYTES: Final = 65_536


class _OverBudget(Exception):
    """Raised from msgpack's list hook to stop unpacking at once."""


class _ItemBudget:
    __slots__ = ("_items_left",)

    def __init__(self, items_max: int) -> None:
        self._items_left = items_max

    def count(self, items: list[object]) -> list[object]:
        self._items_left -= len(items) + 1
        if self._items_left < 0:
            raise _OverBudget
        return items


def decode_command(data: bytes) -> Command:
    fields = unpack(data, "command", COMMAND_ARRAY_MAX, COMMAND_ITEMS_MAX)
    if type(fields) is list and fields and type(fields[0]) is int:
        tag = fields[0]
        size = len(fields)
        if tag == TAG_PUT and size == 4:
            _, key, value, expect_version = fields
            if (
                type(key) is str
                and type(value) is bytes
                and (expect_version is None or type(expect_version) is int)
            ):
                return Put(key, value, expect_version)
            _fail("command: Put fields must be (str, bytes, int | nil)")
        if tag == TAG_PUT and size == 5:
            _, key, value, expect_version, lease = fields
            if (
                type(key) is str
                and type(value) is bytes
                and (expect_version is None or type(expect_version) is int)
                and type(lease) is int
            ):
                return Put(key, value, expect_version, lease)
            _fail("command: Put fields must be (str, bytes, int | nil, int)")
        if tag == TAG_DELETE and size == 3:
            return Delete(_str(fields[1], "Delete.key"), _bool(fields[2], "Delete.prefix"))
        if tag == TAG_TXN and size == 4:
            return Txn(_compares(fields[1]), _ops(fields[2], "success"), _ops(fields[3], "failure"))
        if tag == TAG_COMPACT and size == 2:
            return Compact(_count(fields[1], "Compact.revision"))
        if tag == TAG_LEASE_GRANT and size == 2:
            return LeaseGrant(_int(fields[1], "LeaseGrant.ttl_ms"))
        if tag == TAG_LEASE_KEEP_ALIVE and size == 2:
            return LeaseKeepAlive(_int(fields[1], "LeaseKeepAlive.lease"))
        if tag == TAG_LEASE_REVOKE and size == 2:
            return LeaseRevoke(_int(fields[1], "LeaseRevoke.lease"))
        if tag == TAG_LOCK_ACQUIRE and size == 4:
            return LockAcquire(
                _str(fields[1], "LockAcquire.name"),
                _int(fields[2], "LockAcquire.lease"),
                _int(fields[3], "LockAcquire.delay_ms"),
            )
    _fail(
        "command: expected [tag, fields...] of a Put, Delete, Txn, Compact or lease command, "
        f"got {_describe(fields)}"
    )


def decode_query(data: bytes) -> Query:
    fields = unpack(data, "query", COMMAND_ARRAY_MAX, COMMAND_ITEMS_MAX)
    if type(fields) is list and fields and type(fields[0]) is int:
        tag, size = fields[0], len(fields)
        if tag == TAG_GET and size == 4:
            _, key, prefix, revision = fields
            if revision is not None and type(revision) is not int:
                _fail("query: Get.revision: expected an integer or nil")
            return Get(_str(key, "Get.key"), _bool(prefix, "Get.prefix"), revision)
        if tag == TAG_LEASE_TIME_TO_LIVE and size == 3:
            return LeaseTimeToLive(
                _int(fields[1], "LeaseTimeToLive.lease"), _bool(fields[2], "LeaseTimeToLive.keys")
            )
        if tag == TAG_LEASE_LIST and size == 1:
            return LeaseList()
        if tag == TAG_LOCK_STATE and size == 2:
            return LockState(_str(fields[1], "LockState.name"))
        if tag == TAG_EVENTS and size == 8:
            return Events(
                _str(fields[1], "Events.key"),
                _bool(fields[2], "Events.prefix"),
                _int(fields[3], "Events.from_revision"),
                _str(fields[4], "Events.after_key"),
                _int(fields[5], "Events.limit"),
                _bool(fields[6], "Events.prev_kv"),
                _int(fields[7], "Events.wait_ms"),
            )
    _fail(f"query: expected [4, key, prefix, revision] or a lease query, got {_describe(fields)}")


def decode_result_as(data: bytes, kind: type[ResultT]) -> ResultT:
    """Decode a reply that must be a ``kind``; an ``ErrorResult`` raises its typed error."""
    result = decode_result(data)
    if isinstance(result, ErrorResult):
        raise result.to_error()
    if not isinstance(result, kind):
        raise KvDecodeError(f"expected a {kind.__name__}, got a {type(result).__name__}")
    return result


def decode_result(data: bytes) -> Result:
    fields = unpack(data, "result")
    if type(fields) is list and fields and type(fields[0]) is int:
        tag = fields[0]
        if tag == TAG_ERROR_RESULT and len(fields) == 3:
            return ErrorResult(_str(fields[1], "code"), _str(fields[2], "message"))
        if tag == TAG_TXN_RESULT and len(fields) == 4:
            return TxnResult(
                _bool(fields[1], "TxnResult.succeeded"),
                _count(fields[2], "TxnResult.revision"),
                tuple(_response(item) for item in _list(fields[3], "responses")),
            )
        if tag == TAG_COMPACT_RESULT and len(fields) == 3:
            return CompactResult(
                _count(fields[1], "CompactResult.revision_compacted"),
                _count(fields[2], "CompactResult.revision"),
            )
        lease_result = _lease_result(fields)
        if lease_result is not None:
            return lease_result
        return _response(fields)
    _fail(f"result: expected [tag, fields...], got {_describe(fields)}")


def _lease_result(fields: list[object]) -> Result | None:
    """A lease result from its fields, or None if the tag is not a lease result's."""
    tag, size = fields[0], len(fields)
    if tag == TAG_LEASE_GRANT_RESULT and size == 3:
        return LeaseGrantResult(_count(fields[1], "lease"), _count(fields[2], "ttl_ms"))
    if tag == TAG_LEASE_KEEP_ALIVE_RESULT and size == 3:
        return LeaseKeepAliveResult(_count(fields[1], "lease"), _count(fields[2], "ttl_ms"))
    if tag == TAG_LEASE_REVOKE_RESULT and size == 3:
        return LeaseRevokeResult(_count(fields[1], "deleted"), _count(fields[2], "revision"))
    if tag == TAG_LEASE_TIME_TO_LIVE_RESULT and size == 5:
        keys = tuple(_str(key, "key") for key in _list(fields[4], "keys"))
        return LeaseTimeToLiveResult(
            _count(fields[1], "lease"),
            _count(fields[2], "granted_ttl_ms"),
            _count(fields[3], "remaining_ms"),
            keys,
        )
    if tag == TAG_EVENTS_RESULT and size == 5:
        return EventsResult(
            tuple(_event(item) for item in _list(fields[1], "events")),
            _count(fields[2], "revision"),
            _count(fields[3], "next_revision"),
            _str(fields[4], "next_key"),
        )
    if tag == TAG_LOCK_ACQUIRE_RESULT and size == 4:
        return LockAcquireResult(
            _str(fields[1], "key"), _count(fields[2], "fence"), _bool(fields[3], "held")
        )
    if tag == TAG_LOCK_STATE_RESULT and size == 5:
        return LockStateResult(
            _str(fields[1], "holder_key"),
            _count(fields[2], "fence"),
            _count(fields[3], "waiters"),
            _count(fields[4], "delay_remaining_ms"),
        )
    if tag == TAG_LEASE_LIST_RESULT and size == 2:
        return LeaseListResult(
            tuple(_count(lease, "lease") for lease in _list(fields[1], "leases"))
        )
    return None


def _event(fields: object) -> Event:
    if type(fields) is list and len(fields) == 3 and type(fields[0]) is bool:
        is_put, kv, prev = fields
        return Event(
            "put" if is_put else "delete",
            keyvalue_from_fields(kv),
            None if prev is None else keyvalue_from_fields(prev),
        )
    _fail(f"event: expected [put?, kv, prev | nil], got {_describe(fields)}")


def _response(fields: object) -> TxnResponse:
    if type(fields) is list and fields and type(fields[0]) is int:
        tag = fields[0]
        size = len(fields)
        if tag == TAG_PUT_RESULT and size == 4:
            return PutResult(
                _bool(fields[1], "PutResult.succeeded"),
                _count(fields[2], "PutResult.revision"),
                _count(fields[3], "PutResult.version"),
            )
        if tag == TAG_DELETE_RESULT and size == 3:
            return DeleteResult(
                _count(fields[1], "DeleteResult.deleted"),
                _count(fields[2], "DeleteResult.revision"),
            )
        if tag == TAG_GET_RESULT and size == 3:
            items = tuple(keyvalue_from_fields(item) for item in _list(fields[2], "items"))
            return GetResult(items, _count(fields[1], "GetResult.revision"))
    _fail(f"result: expected a Put, Delete or Get result, got {_describe(fields)}")


def keyvalue_from_fields(fields: object) -> KeyValue:
    """The inverse of ``keyvalue_fields``, for untrusted input."""
    if type(fields) is list and len(fields) == 5:
        key, value, version, create_revision, mod_revision = fields
        return KeyValue(
            _str(key, "KeyValue.key"),
            _bytes(value, "KeyValue.value"),
            _count(version, "KeyValue.version"),
            _count(create_revision, "KeyValue.create_revision"),
            _count(mod_revision, "KeyValue.mod_revision"),
        )
    _fail(f"expected [key, value, version, create_revision, mod_revision], got {_describe(fields)}")


def _compares(fields: object) -> tuple[Compare, ...]:
    # Paths like "compare[3].op" are formatted only when a check fails.
    compares: list[Compare] = []
    for index, item in enumerate(_list(fields, "compare")):
        try:
            compares.append(_compare(item))
        except BadRequest as error:
            raise KvDecodeError(f"compare[{index}]{error}") from None
    return tuple(compares)


def _compare(fields: object) -> Compare:
    if type(fields) is not list or len(fields) != 4:
        _fail(f": expected [key, target, op, operand], got {_describe(fields)}")
    key, target, op, operand = fields
    if type(key) is not str:
        _fail(f".key: expected a string, got {_describe(key)}")
    if type(target) is not int or not 0 <= target < len(COMPARE_TARGETS):
        _fail(f".target: expected an index below {len(COMPARE_TARGETS)}")
    if type(op) is not int or not 0 <= op < len(COMPARE_OPS):
        _fail(f".op: expected an index below {len(COMPARE_OPS)}")
    if type(operand) is not int and type(operand) is not bytes:
        _fail(f".operand: expected an integer or bytes, got {_describe(operand)}")
    try:
        return Compare(key, COMPARE_TARGETS[target], COMPARE_OPS[op], operand)
    except BadRequest as error:
        raise KvDecodeError(f": {error}") from None


def _ops(fields: object, what: str) -> tuple[TxnOp, ...]:
    ops: list[TxnOp] = []
    for index, item in enumerate(_list(fields, what)):
        if type(item) is list and len(item) == 4 and item[0] == TAG_PUT:
            _, key, value, lease = item
            if type(key) is str and type(value) is bytes and type(lease) is int:
                ops.append(PutOp(key, value, lease))
                continue
            _fail(f"{what}[{index}]: expected [1, key, value, lease], got bad field types")
        if type(item) is list and len(item) == 3 and type(item[0]) is int:
            tag, key, argument = item
            if type(key) is str:
                if tag == TAG_PUT and type(argument) is bytes:
                    ops.append(PutOp(key, argument))
                    continue
                if tag == TAG_DELETE and type(argument) is bool:
                    ops.append(DeleteOp(key, argument))
                    continue
                if tag == TAG_GET and type(argument) is bool:
                    ops.append(GetOp(key, argument))
                    continue
        _fail(f"{what}[{index}]{_op_problem(item)}")
    return tuple(ops)


def _op_problem(item: object) -> str:
    """Why ``item`` is not an encoded txn op (the slow path, for the error message)."""
    if type(item) is not list or len(item) != 3 or type(item[0]) is not int:
        return f": expected [tag, key, value | prefix], got {_describe(item)}"
    tag, key, argument = item
    if tag not in (TAG_PUT, TAG_DELETE, TAG_GET):
        return f": unknown op tag {tag}"
    if type(key) is not str:
        return f".key: expected a string, got {_describe(key)}"
    if tag == TAG_PUT:
        return f".value: expected bytes, got {_describe(argument)}"
    return f".prefix: expected a boolean, got {_describe(argument)}"


def _list(value: object, what: str) -> list[object]:
    if type(value) is not list:
        _fail(f"{what}: expected an array, got {_describe(value)}")
    return value


def _str(value: object, what: str) -> str:
    if type(value) is not str:
        _fail(f"{what}: expected a string, got {_describe(value)}")
    return value


def _bytes(value: object, what: str) -> bytes:
    if type(value) is not bytes:
        _fail(f"{what}: expected bytes, got {_describe(value)}")
    return value


def _bool(value: object, what: str) -> bool:
    if type(value) is not bool:
        _fail(f"{what}: expected a boolean, got {_describe(value)}")
    return value


def _int(value: object, what: str) -> int:
    if type(value) is not int:
        _fail(f"{what}: expected an integer, got {_describe(value)}")
    return value


def _count(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        _fail(f"{what}: expected an integer >= 0, got {_describe(value)}")
    return value


def _describe(value: object) -> str:
    if type(value) is list:
        return f"an array of {len(value)}"
    return type(value).__name__


def _fail(reason: str) -> NoReturn:
    raise KvDecodeError(reason)
