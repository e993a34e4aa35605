"""Deterministic state machines of the service: client sessions and the key-value store.

- ``model``: commands, queries, results and ``KvLimits`` (frozen dataclasses).
- ``store``: ``KvStore``, the etcd-like state machine with MVCC history.
- ``codec``: the compact msgpack encoding used on the wire and in the log.
- ``jsonforms``: the JSON shapes of docs/api.md, for the CLI and the HTTP server.
- ``sessions``: apply each ``(client_id, seq)`` once (used by the runtime).
"""

from paxon.kv.codec import (
    KvDecodeError,
    decode_command,
    decode_query,
    decode_result,
    encode_command,
    encode_query,
    encode_result,
)
from paxon.kv.jsonforms import keyvalue_to_json, result_to_json, txn_from_json
from paxon.kv.model import (
    Command,
    Compact,
    CompactResult,
    Compare,
    Delete,
    DeleteOp,
    DeleteResult,
    ErrorResult,
    Get,
    GetOp,
    GetResult,
    KeyValue,
    KvLimits,
    Put,
    PutOp,
    PutResult,
    Query,
    Result,
    Txn,
    TxnOp,
    TxnResponse,
    TxnResult,
    validate_command,
    validate_query,
)
from paxon.kv.sessions import SessionTable, SessionVerdict
from paxon.kv.store import KvStore

__all__ = [
    "Command",
    "Compact",
    "CompactResult",
    "Compare",
    "Delete",
    "DeleteOp",
    "DeleteResult",
    "ErrorResult",
    "Get",
    "GetOp",
    "GetResult",
    "KeyValue",
    "KvDecodeError",
    "KvLimits",
    "KvStore",
    "Put",
    "PutOp",
    "PutResult",
    "Query",
    "Result",
    "SessionTable",
    "SessionVerdict",
    "Txn",
    "TxnOp",
    "TxnResponse",
    "TxnResult",
    "decode_command",
    "decode_query",
    "decode_result",
    "encode_command",
    "encode_query",
    "encode_result",
    "keyvalue_to_json",
    "result_to_json",
    "txn_from_json",
    "validate_command",
    "validate_query",
]
