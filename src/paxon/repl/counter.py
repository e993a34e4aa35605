"""``ReplCounter``: replicated named counters.

Command: ``add(name, by)`` answers the new value. Query: ``get(name)``
(0 for a name never added to), ``all()``. Limits, the same on every replica:
at most ``names_max`` names (default 100,000), names of at most 256 bytes,
values kept within a signed 64-bit integer (an ``add`` that would leave it
is refused).
"""

from __future__ import annotations

from typing import Any, Final

import msgpack  # type: ignore[import-untyped]

from paxon.repl.wire import Refused, Replicator, ok, pack, refused, result_of, unpack_request
from paxon.statemachine import StateMachine

NAME_MAX_BYTES: Final = 256
NAMES_MAX: Final = 100_000
_INT64: Final = range(-(2**63), 2**63)


class ReplCounter(StateMachine):
    def __init__(self, *, names_max: int = NAMES_MAX) -> None:
        self.names_max = names_max
        self.counts: dict[str, int] = {}

    def apply(self, command: bytes) -> bytes:
        try:
            op, args = unpack_request(command)
            if op != "add" or len(args) != 2 or type(args[1]) is not int:
                raise Refused("a command is ['add', name, by]")
            name, by = _name(args[0]), args[1]
            value = self.counts.get(name, 0) + by
            if value not in _INT64:
                raise Refused(f"{name}: {value} leaves the 64-bit range")
            if name not in self.counts and len(self.counts) >= self.names_max:
                raise Refused(f"too many counters ({self.names_max}): new name refused")
            self.counts[name] = value
            return ok(value)
        except Refused as error:
            return refused(error)

    def query(self, query: bytes) -> bytes:
        try:
            op, args = unpack_request(query)
            match op, args:
                case "get", [name]:
                    return ok(self.counts.get(_name(name), 0))
                case "all", []:
                    return ok([[name, self.counts[name]] for name in sorted(self.counts)])
            raise Refused(f"unknown query {op!r}")
        except Refused as error:
            return refused(error)

    def snapshot(self) -> bytes:
        return pack([[name, self.counts[name]] for name in sorted(self.counts)])

    def check_snapshot(self, data: bytes) -> None:
        self._decode(data)

    def restore(self, data: bytes) -> None:
        self.counts = self._decode(data)

    def _decode(self, data: bytes) -> dict[str, int]:
        rows = msgpack.unpackb(data, raw=False, strict_map_key=True)
        if type(rows) is not list or len(rows) > self.names_max:
            raise ValueError(f"a ReplCounter snapshot is a list of at most {self.names_max}")
        counts = {}
        for row in rows:
            if type(row) is not list or len(row) != 2 or type(row[1]) is not int:
                raise ValueError("a ReplCounter snapshot row is [name, value]")
            counts[_name(row[0])] = row[1]
        return counts


def _name(name: object) -> str:
    if type(name) is not str or not name or len(name.encode(errors="replace")) > NAME_MAX_BYTES:
        raise Refused(f"a counter name is a non-empty string of at most {NAME_MAX_BYTES} bytes")
    return name


class CounterHandle:
    """A ``ReplCounter`` as seen through a node or a client."""

    def __init__(self, replicator: Replicator) -> None:
        self._via = replicator

    async def add(self, name: str, by: int = 1) -> int:
        """Add ``by`` (may be negative); the new value."""
        return int(result_of(await self._via.submit(pack(["add", name, by]))))

    async def get(self, name: str, *, linearizable: bool = True) -> int:
        reply = await self._via.query(pack(["get", name]), linearizable=linearizable)
        return int(result_of(reply))

    async def all(self, *, linearizable: bool = True) -> dict[str, int]:
        reply = await self._via.query(pack(["all"]), linearizable=linearizable)
        rows: list[Any] = result_of(reply)
        return {name: value for name, value in rows}
