"""Register operations carried out on the real key-value store.

The linearizability checker (``paxon.sim.linearizability``) knows registers:
``write(v)``, ``read() -> v`` and ``cas(expect, new) -> bool``, one register
per key, ``None`` before the first write. The simulated clients run them on
``KvStore`` through its own wire format, as a real client would:

| register op          | on the store                                                  |
|----------------------|---------------------------------------------------------------|
| ``write(k, v)``      | ``Put(k, v)``                                                 |
| ``read(k)``          | a linearizable ``Get(k)`` query; the value, or None if absent |
| ``cas(k, None, v)``  | ``Txn(if version(k) == 0: Put(k, v))``; succeeded             |
| ``cas(k, e, v)``     | ``Txn(if value(k) == e: Put(k, v))``; succeeded               |

Values are text (``"c1001.7"``: client 1001's 7th write); no value is ever
written twice, which the checker relies on. Deletes are not used, so "absent"
and "never written" are the same register state.
"""

from __future__ import annotations

from paxon.kv.codec import decode_result, encode_command, encode_query
from paxon.kv.model import Compare, Get, GetResult, Put, PutOp, PutResult, Txn, TxnResult
from paxon.sim.registers import Result


class UnexpectedReply(ValueError):
    """The store answered a register op with something no correct store sends."""


def write_command(key: str, value: str) -> bytes:
    return encode_command(Put(key, value.encode()))


def cas_command(key: str, expect: str | None, value: str) -> bytes:
    condition = (
        Compare(key, "version", "==", 0)
        if expect is None
        else Compare(key, "value", "==", expect.encode())
    )
    return encode_command(Txn(compare=(condition,), success=(PutOp(key, value.encode()),)))


def read_query(key: str) -> bytes:
    return encode_query(Get(key))


def decode_reply(kind: str, payload: bytes) -> Result | str:
    """The register result of a store reply to a ``kind`` op ("write", "read", "cas")."""
    result = decode_result(payload)
    if kind == "write" and isinstance(result, PutResult) and result.succeeded:
        return None
    if kind == "cas" and isinstance(result, TxnResult):
        return result.succeeded
    if kind == "read" and isinstance(result, GetResult):
        if not result.items:
            return None
        return result.items[0].value.decode()
    raise UnexpectedReply(f"a {kind} was answered with {result!r}")


__all__ = ["UnexpectedReply", "cas_command", "decode_reply", "read_query", "write_command"]
