"""What the replicated structures share: msgpack commands, error replies, and
the ``Replicator`` a handle talks through (a ``paxon.Node`` or ``paxon.Client``).

A command or query is a msgpack array ``[op, args...]``; a reply is
``[True, result]`` or ``[False, message]``. ``apply`` never raises: bytes that
do not decode, or break a limit, get ``[False, why]`` and change nothing, the
same on every replica. Values are what msgpack carries (None, bool, int,
float, str, bytes, lists, maps with string keys); ``strict_map_key`` and the
input's own size bound what a decoder allocates.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgpack  # type: ignore[import-untyped]

from paxon.errors import BadRequest


class Replicator(Protocol):
    """What a handle needs: a ``paxon.Node`` or a ``paxon.Client`` has both."""

    async def submit(self, payload: bytes, *, timeout: float | None = None) -> bytes: ...

    async def query(
        self, payload: bytes, *, linearizable: bool = True, timeout: float | None = None
    ) -> bytes: ...


class Refused(ValueError):
    """A command the structure refuses (the reply says why); raised inside
    ``apply`` and turned into an error reply there."""


def pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def unpack_request(data: bytes) -> tuple[str, list[Any]]:
    """``(op, args)`` of a command or query, or ``Refused``."""
    try:
        fields = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_ext_len=0,
            max_map_len=len(data),
            max_array_len=len(data),
            max_str_len=len(data),
            max_bin_len=len(data),
        )
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise Refused(f"not a msgpack request: {error}") from None
    if type(fields) is not list or not fields or type(fields[0]) is not str:
        raise Refused("a request is [op, args...]")
    return fields[0], fields[1:]


def ok(result: object) -> bytes:
    return pack([True, result])


def refused(error: Exception) -> bytes:
    return pack([False, str(error)])


def result_of(reply: bytes) -> Any:
    """The result of a reply; ``BadRequest`` with the structure's reason if refused."""
    fields = msgpack.unpackb(reply, raw=False, strict_map_key=True)
    if type(fields) is not list or len(fields) != 2 or type(fields[0]) is not bool:
        raise BadRequest(f"not a reply of a replicated structure: {fields!r:.80}")
    if not fields[0]:
        raise BadRequest(str(fields[1]))
    return fields[1]
