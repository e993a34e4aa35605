"""The JSON shapes of docs/api.md, shared by the CLI and the HTTP server.

Input (``txn_from_json``) is untrusted: every field is checked, and a problem
raises ``BadRequest`` naming the exact path, e.g.
``success[1].put.value: expected a string``. Unknown fields are refused, so a
typo never silently turns into a default.

Transaction request::

    {"compare": [{"key", "target", "op", "operand" | "operand_b64"}],
     "success": [{"put": {"key", "value" | "value_b64", "lease"?}}
                 | {"delete": {"key", "prefix"?}} | {"get": {"key", "prefix"?}}],
     "failure": [...]}

All three lists are optional (empty). Values are UTF-8 text, or base64 under
``value_b64`` for binary. ``operand`` is an integer, or text when ``target`` is
``"value"`` (``operand_b64`` for binary). ``lease`` attaches the key to a
lease (an id; 0 or absent: none). Limits (sizes, op counts, id ranges) are
checked later by ``validate_command``.

Leases: TTLs are seconds in JSON (a number; ``lease_ttl_ms`` turns them into
the wire's milliseconds, 1 s to 30 days) and ids are integers from 1
(``lease_id_from_json``).

Parsing (``object_from_json``) is bounded too: every integer anywhere in the
document must lie in the signed 64-bit range (checked on its digits, before
Python builds it, so a 5,000-digit number costs nothing), ``NaN`` and
``Infinity`` are refused, and nesting too deep for the parser is a
``BadRequest``. Everything it raises is a ``BadRequest``.

Output: ``keyvalue_to_json`` and ``result_to_json`` give plain dicts ready for
``json.dumps``; a value that is not valid UTF-8 appears as ``value_b64``.
Lease results show their TTLs in seconds (``seconds_from_ms``: an integer when
whole): ``{"id", "ttl"}`` for a grant or keep-alive, ``{"deleted",
"revision"}`` for a revoke, ``{"id", "granted_ttl", "ttl", "keys"}`` for a
time-to-live and ``{"leases": [id...]}`` for the list.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any, Final, NoReturn

from paxon.errors import BadRequest
from paxon.kv.model import (
    COMPARE_OPS,
    COMPARE_TARGETS,
    INT_MAX,
    INT_MIN,
    LEASE_TTL_MAX_MS,
    LEASE_TTL_MIN_MS,
    CompactResult,
    Compare,
    CompareOp,
    CompareTarget,
    DeleteOp,
    DeleteResult,
    ErrorResult,
    Event,
    GetOp,
    GetResult,
    KeyValue,
    LeaseGrantResult,
    LeaseKeepAliveResult,
    LeaseListResult,
    LeaseRevokeResult,
    LeaseTimeToLiveResult,
    PutOp,
    PutResult,
    Result,
    Txn,
    TxnOp,
    TxnResult,
)

_TARGETS: Final[dict[str, CompareTarget]] = {target: target for target in COMPARE_TARGETS}
_OPS: Final[dict[str, CompareOp]] = {op: op for op in COMPARE_OPS}
_INT_DIGITS_MAX: Final = len(str(INT_MIN))
"""Characters of the longest integer in range, ``-9223372036854775808``."""


# ------------------------------------------------------------------ parsing


def object_from_json(document: bytes | str, what: str = "request body") -> dict[str, Any]:
    """The JSON object ``document`` holds, or ``BadRequest`` saying why it is not one
    (its messages call the document ``what``)."""
    try:
        text = document.decode("utf-8") if isinstance(document, bytes) else document
        obj = json.loads(text, parse_int=_bounded_int, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not UTF-8") from None
    except json.JSONDecodeError as error:
        raise BadRequest(f"{what} is not valid JSON: {error}") from None
    except RecursionError:
        raise BadRequest(f"{what} JSON is nested too deeply") from None
    except BadRequest as error:
        raise BadRequest(str(error).replace("request body", what, 1)) from None
    if type(obj) is not dict:
        raise BadRequest(f"{what} must be a JSON object, not {_kind(obj)}")
    return obj


def _bounded_int(digits: str) -> int:
    if len(digits) > _INT_DIGITS_MAX or not INT_MIN <= int(digits) <= INT_MAX:
        shown = digits if len(digits) <= 30 else f"{digits[:20]}... ({len(digits)} digits)"
        raise BadRequest(f"request body JSON holds the integer {shown}, outside -2**63 .. 2**63-1")
    return int(digits)


def _reject_constant(name: str) -> NoReturn:
    raise BadRequest(f"request body JSON holds {name}, which is not JSON")


# ------------------------------------------------------------------ input


def txn_from_json(obj: object) -> Txn:
    """The ``Txn`` a parsed JSON request stands for, or ``BadRequest`` naming the path."""
    fields = _object(obj, "request", required=(), optional=("compare", "success", "failure"))
    compare = tuple(
        _compare(item, f"compare[{index}]")
        for index, item in enumerate(_list(fields.get("compare", []), "compare"))
    )
    return Txn(compare, _branch(fields, "success"), _branch(fields, "failure"))


def _compare(obj: object, path: str) -> Compare:
    fields = _object(
        obj, path, required=("key", "target", "op"), optional=("operand", "operand_b64")
    )
    key = _key(fields["key"], f"{path}.key")
    target = _TARGETS.get(_str(fields["target"], f"{path}.target"))
    if target is None:
        _fail(f"{path}.target", f"expected one of {', '.join(COMPARE_TARGETS)}")
    op = _OPS.get(_str(fields["op"], f"{path}.op"))
    if op is None:
        _fail(f"{path}.op", f"expected one of {' '.join(COMPARE_OPS)}")
    operand: int | bytes
    if target == "value":
        operand = _value(fields, path, text="operand", binary="operand_b64")
    else:
        if "operand_b64" in fields:
            _fail(f"{path}.operand_b64", f"only for target 'value', not {target!r}")
        if "operand" not in fields:
            _fail(f"{path}.operand", "missing")
        operand = _integer(fields["operand"], f"{path}.operand")
    try:
        return Compare(key, target, op, operand)
    except BadRequest as error:
        raise BadRequest(f"{path}: {error}") from None


def _branch(fields: dict[str, object], name: str) -> tuple[TxnOp, ...]:
    items = _list(fields.get(name, []), name)
    return tuple(_op(item, f"{name}[{index}]") for index, item in enumerate(items))


def _op(obj: object, path: str) -> TxnOp:
    if type(obj) is not dict or len(obj) != 1:
        _fail(path, 'expected an object with one of "put", "delete", "get"')
    ((kind, body),) = obj.items()
    where = f"{path}.{kind}"
    if kind == "put":
        fields = _object(body, where, required=("key",), optional=("value", "value_b64", "lease"))
        key = _key(fields["key"], f"{where}.key")
        value = _value(fields, where, text="value", binary="value_b64")
        return PutOp(key, value, _integer(fields.get("lease", 0), f"{where}.lease"))
    if kind in ("delete", "get"):
        fields = _object(body, where, required=("key",), optional=("prefix",))
        prefix = _bool(fields.get("prefix", False), f"{where}.prefix")
        if kind == "delete":
            return DeleteOp(_key(fields["key"], f"{where}.key"), prefix)
        return GetOp(_key(fields["key"], f"{where}.key", empty_ok=prefix), prefix)
    _fail(path, f'unknown operation "{kind}" (expected "put", "delete" or "get")')


def lease_ttl_ms(seconds: object, what: str = "ttl") -> int:
    """The milliseconds of a lease TTL given in seconds (a number, not a boolean),
    or ``BadRequest`` outside ``LEASE_TTL_MIN_MS`` .. ``LEASE_TTL_MAX_MS``."""
    if type(seconds) not in (int, float):
        _fail(what, f"expected a number of seconds, got {_kind(seconds)}")
    assert isinstance(seconds, int | float)
    ttl_ms = round(seconds * 1000) if math.isfinite(seconds) else 0
    if not LEASE_TTL_MIN_MS <= ttl_ms <= LEASE_TTL_MAX_MS:
        _fail(
            what,
            f"a lease lasts from {LEASE_TTL_MIN_MS // 1000} to {LEASE_TTL_MAX_MS // 1000} "
            f"seconds, got {seconds!r}",
        )
    return ttl_ms


def lease_id_from_json(obj: object, what: str = "id") -> int:
    """A lease id (an integer from 1), or ``BadRequest`` naming ``what``."""
    lease_id = _integer(obj, what)
    if not 1 <= lease_id <= INT_MAX:
        _fail(what, f"a lease id is an integer from 1 to {INT_MAX}, got {lease_id}")
    return lease_id


def seconds_from_ms(milliseconds: int) -> int | float:
    """Milliseconds as seconds for JSON and text: ``2000`` -> ``2``, ``1500`` -> ``1.5``."""
    whole, rest = divmod(milliseconds, 1000)
    return whole if rest == 0 else milliseconds / 1000


def _object(
    obj: object, path: str, *, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, object]:
    if type(obj) is not dict:
        _fail(path, f"expected an object, got {_kind(obj)}")
    for name in obj:
        if name not in required and name not in optional:
            _fail(f"{path}.{name}", "unknown field")
    for name in required:
        if name not in obj:
            _fail(f"{path}.{name}", "missing")
    return obj


def _value(fields: dict[str, object], path: str, *, text: str, binary: str) -> bytes:
    """Exactly one of ``fields[text]`` (UTF-8 text) or ``fields[binary]`` (base64)."""
    if (text in fields) == (binary in fields):
        _fail(path, f'expected exactly one of "{text}" or "{binary}"')
    if text in fields:
        return _utf8(_str(fields[text], f"{path}.{text}"), f"{path}.{text}")
    encoded = _str(fields[binary], f"{path}.{binary}")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        _fail(f"{path}.{binary}", "not valid base64")


def _key(obj: object, path: str, *, empty_ok: bool = False) -> str:
    key = _str(obj, path)
    if not key and not empty_ok:
        _fail(path, "expected a non-empty string")
    _utf8(key, path)
    return key


def _utf8(text: str, path: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        _fail(path, "not valid Unicode text (a lone surrogate)")


def _list(obj: object, path: str) -> list[object]:
    if type(obj) is not list:
        _fail(path, f"expected a list, got {_kind(obj)}")
    return obj


def _str(obj: object, path: str) -> str:
    if type(obj) is not str:
        _fail(path, f"expected a string, got {_kind(obj)}")
    return obj


def _bool(obj: object, path: str) -> bool:
    if type(obj) is not bool:
        _fail(path, f"expected true or false, got {_kind(obj)}")
    return obj


def _integer(obj: object, path: str) -> int:
    if type(obj) is not int:
        _fail(path, f"expected an integer, got {_kind(obj)}")
    return obj


def _kind(obj: object) -> str:
    """The JSON name of ``obj``'s type, for error messages."""
    if obj is None:
        return "null"
    if type(obj) is bool:
        return "a boolean"
    if type(obj) in (int, float):
        return "a number"
    if type(obj) is str:
        return "a string"
    if type(obj) is list:
        return "a list"
    if type(obj) is dict:
        return "an object"
    return type(obj).__name__


def _fail(path: str, reason: str) -> NoReturn:
    raise BadRequest(f"{path}: {reason}")


# ------------------------------------------------------------------ output


def keyvalue_to_json(kv: KeyValue) -> dict[str, Any]:
    """``{"key", "value" | "value_b64", "version", "create_revision", "mod_revision"}``."""
    fields: dict[str, Any] = {"key": kv.key}
    try:
        fields["value"] = kv.value.decode()
    except UnicodeDecodeError:
        fields["value_b64"] = base64.b64encode(kv.value).decode("ascii")
    fields["version"] = kv.version
    fields["create_revision"] = kv.create_revision
    fields["mod_revision"] = kv.mod_revision
    return fields


def event_to_json(event: Event) -> dict[str, Any]:
    """A watch event as ``paxon watch --json`` and ``/v1/watch`` write it:
    ``{"type", "key", "value" | "value_b64", "version", "create_revision",
    "mod_revision"}`` for a put, ``{"type", "key", "mod_revision"}`` for a
    delete, and ``"prev"`` (the value before) when it was asked for."""
    fields: dict[str, Any] = {"type": event.type, **keyvalue_to_json(event.kv)}
    if event.type == "delete":
        for absent in ("value", "value_b64", "version", "create_revision"):
            fields.pop(absent, None)
    if event.prev is not None:
        fields["prev"] = keyvalue_to_json(event.prev)
    return fields


def result_to_json(result: Result) -> dict[str, Any]:
    """A result as docs/api.md shows it; an ``ErrorResult`` as ``{"error", "code"}``."""
    match result:
        case PutResult(succeeded, revision, version):
            return {"revision": revision, "succeeded": succeeded, "version": version}
        case DeleteResult(deleted, revision):
            return {"deleted": deleted, "revision": revision}
        case GetResult(items, revision):
            return {"revision": revision, "kvs": [keyvalue_to_json(kv) for kv in items]}
        case TxnResult(succeeded, revision, responses):
            return {
                "succeeded": succeeded,
                "revision": revision,
                "responses": [_response_to_json(response) for response in responses],
            }
        case CompactResult(revision_compacted, revision):
            return {"revision": revision, "revision_compacted": revision_compacted}
        case LeaseGrantResult(lease, ttl_ms) | LeaseKeepAliveResult(lease, ttl_ms):
            return {"id": lease, "ttl": seconds_from_ms(ttl_ms)}
        case LeaseRevokeResult(deleted, revision):
            return {"deleted": deleted, "revision": revision}
        case LeaseTimeToLiveResult(lease, granted_ttl_ms, remaining_ms, keys):
            return {
                "id": lease,
                "granted_ttl": seconds_from_ms(granted_ttl_ms),
                "ttl": seconds_from_ms(remaining_ms),
                "keys": list(keys),
            }
        case LeaseListResult(leases):
            return {"leases": list(leases)}
        case ErrorResult(code, message):
            return {"error": message, "code": code}
    raise TypeError(f"not a result: {type(result).__name__}")


def _response_to_json(response: PutResult | DeleteResult | GetResult) -> dict[str, Any]:
    kind = {PutResult: "put", DeleteResult: "delete", GetResult: "get"}[type(response)]
    return {kind: result_to_json(response)}
