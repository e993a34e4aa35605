"""The operation a command or query's bytes ask for, as a metrics label.

``operation_name(payload)`` peeks at the msgpack header and tag of a key-value
command or query (``kv.codec``), looking inside an auth envelope
(``kv.authcodec``) once; it decodes nothing else, so it costs next to nothing
per request and never raises. Bytes that are not a key-value command (another
state machine's, or garbage the node will refuse) are ``"other"``. The names
are a fixed, small set (``OPERATION_NAMES``), so a label built from them
cannot grow without bound.
"""

from __future__ import annotations

from typing import Final

from paxon.kv import codec
from paxon.kv.authcodec import AUTH_COMMAND_TAGS, TAG_ENVELOPE, TAG_PASSWORD_REQUEST, unwrap

_BY_TAG: Final[dict[int, str]] = {
    codec.TAG_PUT: "put",
    codec.TAG_DELETE: "delete",
    codec.TAG_TXN: "txn",
    codec.TAG_GET: "get",
    codec.TAG_COMPACT: "compact",
    codec.TAG_LEASE_GRANT: "lease_grant",
    codec.TAG_LEASE_KEEP_ALIVE: "lease_keepalive",
    codec.TAG_LEASE_REVOKE: "lease_revoke",
    codec.TAG_LEASE_TIME_TO_LIVE: "lease_ttl",
    codec.TAG_LEASE_LIST: "lease_list",
    codec.TAG_LOCK_ACQUIRE: "lock",
    codec.TAG_LOCK_STATE: "lock_state",
    codec.TAG_EVENTS: "watch",
    TAG_PASSWORD_REQUEST: "auth",
    **dict.fromkeys(AUTH_COMMAND_TAGS, "auth"),
}

OPERATION_NAMES: Final = frozenset({*_BY_TAG.values(), "auth", "other"})

_FIXARRAY_MIN: Final = 0x91  # a msgpack array of 1 to 15 items, the tag first
_FIXARRAY_MAX: Final = 0x9F


def operation_name(payload: bytes) -> str:
    """``"put"``, ``"get"``, ``"txn"``, ... for a key-value command or query; else ``"other"``."""
    name = _peek(payload)
    if name is not None:
        return name
    if payload[1:2] == bytes([TAG_ENVELOPE]):
        try:
            _, inner = unwrap(payload)
        except codec.KvDecodeError:  # the node refuses such bytes; here they need only a label
            return "other"
        return _peek(inner) or "other"
    return "other"


def _peek(payload: bytes) -> str | None:
    if len(payload) < 2 or not _FIXARRAY_MIN <= payload[0] <= _FIXARRAY_MAX:
        return None
    return _BY_TAG.get(payload[1])


_ERROR_HEAD: Final = bytes([0x93, codec.TAG_ERROR_RESULT])  # [20, code, message]


def error_code_of_reply(reply: bytes) -> str | None:
    """The code of a key-value error reply (``ErrorResult``); None for any other reply.

    Only an error reply is decoded; its code is one the store wrote."""
    if not reply.startswith(_ERROR_HEAD):
        return None
    try:
        fields = codec.unpack(reply, "reply")
    except codec.KvDecodeError:
        return "other"
    if type(fields) is list and len(fields) == 3 and type(fields[1]) is str:
        return fields[1][:ERROR_CODE_MAX_CHARS]
    return "other"


ERROR_CODE_MAX_CHARS: Final = 40
"""A code longer than this is cut (codes are short names such as ``lease_not_found``)."""
