"""``ReplDict``: a replicated dictionary of string keys and msgpack values.

Commands (through the log): ``set``, ``delete``, ``cas`` (set only if the
current value equals an expected one, ``None`` meaning absent), ``clear``.
Queries: ``get``, ``items`` (sorted by key), ``len``. Limits, the same on
every replica (they decide what is refused): ``keys_max`` entries (default
1,000,000; a ``set`` of a new key past it is refused), keys of at most
``KEY_MAX_BYTES`` (4,096) UTF-8 bytes; a value is bounded by the command's
size (the transport's frame limit).
"""

from __future__ import annotations

from typing import Any, Final

import msgpack  # type: ignore[import-untyped]

from paxon.repl.wire import Refused, Replicator, ok, pack, refused, result_of, unpack_request
from paxon.statemachine import StateMachine

KEY_MAX_BYTES: Final = 4096
KEYS_MAX: Final = 1_000_000
_ABSENT: Final = object()


class ReplDict(StateMachine):
    def __init__(self, *, keys_max: int = KEYS_MAX) -> None:
        self.keys_max = keys_max
        self.data: dict[str, Any] = {}

    def apply(self, command: bytes) -> bytes:
        try:
            op, args = unpack_request(command)
            return ok(self._apply(op, args))
        except Refused as error:
            return refused(error)

    def query(self, query: bytes) -> bytes:
        try:
            op, args = unpack_request(query)
            match op, args:
                case "get", [key]:
                    value = self.data.get(_key(key), _ABSENT)
                    return ok([False, None] if value is _ABSENT else [True, value])
                case "items", []:
                    return ok([[key, self.data[key]] for key in sorted(self.data)])
                case "len", []:
                    return ok(len(self.data))
            raise Refused(f"unknown query {op!r} with {len(args)} arguments")
        except Refused as error:
            return refused(error)

    def snapshot(self) -> bytes:
        return pack([[key, self.data[key]] for key in sorted(self.data)])

    def check_snapshot(self, data: bytes) -> None:
        self._decode(data)

    def restore(self, data: bytes) -> None:
        self.data = self._decode(data)

    def _apply(self, op: str, args: list[Any]) -> object:
        data = self.data
        match op, args:
            case "set", [key, value]:
                self._room_for(_key(key))
                data[key] = value
                return None
            case "delete", [key]:
                return data.pop(_key(key), _ABSENT) is not _ABSENT
            case "cas", [key, expected, value]:
                if data.get(_key(key)) != expected:
                    return False
                self._room_for(key)
                data[key] = value
                return True
            case "clear", []:
                count = len(data)
                data.clear()
                return count
        raise Refused(f"unknown command {op!r} with {len(args)} arguments")

    def _room_for(self, key: str) -> None:
        if key not in self.data and len(self.data) >= self.keys_max:
            raise Refused(f"the dict is full ({self.keys_max} keys): new key refused")

    def _decode(self, data: bytes) -> dict[str, Any]:
        rows = msgpack.unpackb(data, raw=False, strict_map_key=True)
        if type(rows) is not list or len(rows) > self.keys_max:
            raise ValueError(f"a ReplDict snapshot is a list of at most {self.keys_max} rows")
        decoded: dict[str, Any] = {}
        for row in rows:
            if type(row) is not list or len(row) != 2 or type(row[0]) is not str:
                raise ValueError("a ReplDict snapshot row is [key, value]")
            decoded[row[0]] = row[1]
        return decoded


def _key(key: object) -> str:
    if type(key) is not str or not key or len(key.encode(errors="replace")) > KEY_MAX_BYTES:
        raise Refused(f"a key is a non-empty string of at most {KEY_MAX_BYTES} bytes")
    return key


class DictHandle:
    """A ``ReplDict`` as seen through a node or a client."""

    def __init__(self, replicator: Replicator) -> None:
        self._via = replicator

    async def set(self, key: str, value: Any) -> None:
        await self._command("set", key, value)

    async def delete(self, key: str) -> bool:
        """Whether the key was there."""
        return bool(await self._command("delete", key))

    async def cas(self, key: str, expected: Any, value: Any) -> bool:
        """Set ``key`` to ``value`` if it holds ``expected`` (``None``: absent)."""
        return bool(await self._command("cas", key, expected, value))

    async def clear(self) -> int:
        return int(await self._command("clear"))

    async def get(self, key: str, default: Any = None, *, linearizable: bool = True) -> Any:
        found, value = await self._query(linearizable, "get", key)
        return value if found else default

    async def items(self, *, linearizable: bool = True) -> list[tuple[str, Any]]:
        return [(key, value) for key, value in await self._query(linearizable, "items")]

    async def len(self, *, linearizable: bool = True) -> int:
        return int(await self._query(linearizable, "len"))

    async def _command(self, *request: object) -> Any:
        return result_of(await self._via.submit(pack(list(request))))

    async def _query(self, linearizable: bool, *request: object) -> Any:
        return result_of(await self._via.query(pack(list(request)), linearizable=linearizable))
