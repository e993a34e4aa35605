"""Messages to frame bodies and back: msgpack arrays ``[type_code, field, ...]``.

The layouts are in ``docs/wire.md``; the encoders and decoders below are
written per type, by hand, because Accept and Learn carry tens of thousands of
commands a second and reflection (``dataclasses.asdict``, field loops) would
dominate the cost.

Rules:
- ``decode_body`` trusts nothing. Whatever the bytes, it returns a message that
  validated itself on construction or raises ``DecodeError`` naming the reason:
  not msgpack, not an array, an unknown type code, a wrong field count, a
  field of the wrong type, an id, slot or round outside ``[0, 2**63)``, or a
  message whose own checks fail (their ValueError/TypeError becomes a
  DecodeError). Nothing else escapes it.
- A body is refused before msgpack sees it unless it starts as ``encode_body``
  writes every message: a fixarray header (1..15 items) and a positive-fixint
  type code (all codes are < 128); the array's length must be the type's arity.
  Knowing the type, the body is then unpacked with that type's limits (the
  table below), so whatever the bytes, decoding costs at most a bounded
  multiple of what the largest legal message of that type costs.
- ``expected`` (optional) names the type codes the caller can use in its state
  (``PEER_CODES``, ``HANDSHAKE_CODES``, ``CLIENT_REQUEST_CODES``, ...): any other
  code is refused before unpacking, so a client connection never pays for
  decoding a Promise-shaped body.
- ``encode_body`` refuses (``FrameTooLarge``) a body over ``frame_max_bytes``:
  a frame the receiver must refuse is never sent.
- Integers are exact types: ``True`` is not an int here, ``1`` is not a bool.

Decode limits, per type (derived from the message layouts and the defaults of
``ReplicaConfig`` / ``NodeConfig``, with headroom for operators who raise them):

======================== ===================================================
``VALUE_COMMANDS_MAX``   4,096 commands in one Value (Accept, an Entry):
                         ``batch_max_commands`` is 512 by default, 8x room.
``RUNS_MAX``             1,024 ballot runs in a ChosenPrefix: ``runs_max`` is
                         64 by default, 16x room.
``LEARN_ENTRIES_MAX``    4,096 entries in a Learn: ``learn_max_entries`` is 256.
``LEARN_COMMANDS_MAX``   262,144 commands in one Learn, all entries together:
                         twice the 256 x 512 a default Learn can carry.
``PROMISE_ENTRIES_MAX``  65,536 entries in a Promise: a Promise carries the
                         uncompacted log, which holds at most two snapshot
                         intervals (2 x ``snapshot_interval_slots`` = 40,000).
``PROMISE_COMMANDS_MAX`` 1,048,576 commands in one Promise: 64 MiB of log
                         (2 x ``snapshot_interval_bytes``) in commands of 64
                         bytes. This is the loosest bound; only peers send it.
``STR_MAX_BYTES``        4,096 bytes for a string a node receives (cluster id,
                         Refused reason); responses a client receives (Failure,
                         Redirect, StatusReply) may use the whole body.
``STATUS_ITEMS_MAX``     65,536 items in a StatusReply (all maps and arrays).
``FIXED_BODY_MAX_BYTES`` 128 bytes for a message with no variable part (the
                         largest, HandoverPrepare, is 67 bytes at 9-byte integers).
``BUDGET_FROM_BYTES``    65,536: above this size, a hook counts every array's
                         items (and a map's) against the type's legal total;
                         below it the body's own size bounds the cost (about
                         30 bytes of memory per byte at worst), and the hook,
                         which doubles msgpack's time, is not paid.
======================== ===================================================

A type's ``max_array_len`` is the largest array it may hold (Accept and Learn
4,096, Promise 65,536, Heartbeat 1,024, StatusReply 65,536, any other 8); a
Heartbeat is at most 128 + 40 bytes per run. Maps are legal only in a
StatusReply; anywhere else the first map, even an empty one, stops the
unpacking. Binary fields exist only in Accept, Promise, Learn (payloads),
SnapshotChunk, Submit, Query, Reply (and StatusReply values); other types
unpack with ``max_bin_len=0``.

Measured with ``tests/fuzz/measure_decode_bomb.py`` (2 shared cores): a 63 MiB
body of one-item arrays took 7.7 s and 2.1 GB to refuse before these limits
and is now refused from its first byte; a Learn-shaped 63 MiB tree of them
took 3.5 s and 1.7 GB and now stops at the budget in 0.08 s; a Submit-shaped
55 MiB tree of empty maps took 24.7 s and 4.1 GB and now stops at the first map.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any, Final, NamedTuple

import msgpack  # type: ignore[import-untyped]

from paxon.errors import ProtocolError
from paxon.net.client_messages import (
    Authenticate,
    Challenge,
    ChangeMembers,
    ClientRequest,
    ClientResponse,
    Failure,
    HandshakeMessage,
    Hello,
    PeerProof,
    PeerWelcome,
    Query,
    Redirect,
    Refused,
    Reply,
    StatusReply,
    StatusRequest,
    Submit,
    Welcome,
)
from paxon.net.config import FRAME_MAX_LIMIT
from paxon.net.frames import FrameTooLarge, frame_prefix
from paxon.net.peer_messages import SnapshotChunk
from paxon.protocol.messages import (
    Accept,
    Accepted,
    ChosenPrefix,
    Heartbeat,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Message,
    Nack,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
    RemovedNotice,
    TimeoutNow,
)
from paxon.protocol.types import Ballot, BallotRun, Command, Entry, Value

WireMessage = Message | SnapshotChunk | HandshakeMessage | ClientRequest | ClientResponse

_INT_END: Final = 2**63
_STATUS_DEPTH_MAX: Final = 32
_SHOW_MAX: Final = 40


class DecodeError(ProtocolError):
    """A frame body that is not a valid message; the message says why."""


# ------------------------------------------------------------------ encoding


def encode(message: WireMessage, frame_max_bytes: int = FRAME_MAX_LIMIT) -> bytes:
    """The whole frame of ``message``: length prefix and body."""
    body = encode_body(message, frame_max_bytes)
    return frame_prefix(len(body)) + body


def encode_body(message: WireMessage, frame_max_bytes: int = FRAME_MAX_LIMIT) -> bytes:
    """The frame body of ``message``; FrameTooLarge if it is over ``frame_max_bytes``."""
    encoder = _ENCODERS.get(type(message))
    if encoder is None:
        raise TypeError(f"not a wire message: {type(message).__name__}")
    body: bytes = msgpack.packb(encoder(message))
    if len(body) > frame_max_bytes:
        raise FrameTooLarge(
            f"{type(message).__name__} encodes to {len(body)} bytes > {frame_max_bytes}"
        )
    return body


def _ballot_out(ballot: Ballot) -> list[int]:
    return [ballot.round, ballot.node_id]


def _value_out(value: Value) -> list[list[Any]]:
    return [[command.client_id, command.seq, command.payload] for command in value.commands]


def _entries_out(entries: tuple[Entry, ...]) -> list[list[Any]]:
    return [
        [entry.slot, [entry.ballot.round, entry.ballot.node_id], _value_out(entry.value)]
        for entry in entries
    ]


def _chosen_out(chosen: ChosenPrefix) -> list[Any]:
    runs = [
        [run.slot_start, run.slot_end, [run.ballot.round, run.ballot.node_id]]
        for run in chosen.runs
    ]
    return [chosen.slot_chosen, runs]


def _encode_probe(m: Probe) -> list[Any]:
    return [1, m.src, m.dst, _ballot_out(m.ballot)]


def _encode_probe_reply(m: ProbeReply) -> list[Any]:
    return [2, m.src, m.dst, _ballot_out(m.ballot), m.granted]


def _encode_prepare(m: Prepare) -> list[Any]:
    if m.handover_from is not None:  # a transfer's: a type of its own, so others stay as they were
        return [14, m.src, m.dst, _ballot_out(m.ballot), m.slot_from, _ballot_out(m.handover_from)]
    return [3, m.src, m.dst, _ballot_out(m.ballot), m.slot_from]


def _encode_promise(m: Promise) -> list[Any]:
    return [
        4,
        m.src,
        m.dst,
        _ballot_out(m.ballot),
        m.slot_from,
        _entries_out(m.entries),
        m.slot_chosen,
        m.log_start,
    ]


def _encode_timeout_now(m: TimeoutNow) -> list[Any]:
    return [13, m.src, m.dst, _ballot_out(m.ballot)]


def _encode_removed_notice(m: RemovedNotice) -> list[Any]:
    return [15, m.src, m.dst, m.epoch]


def _encode_nack(m: Nack) -> list[Any]:
    return [5, m.src, m.dst, _ballot_out(m.ballot), _ballot_out(m.ballot_promised)]


def _encode_accept(m: Accept) -> list[Any]:
    return [
        6,
        m.src,
        m.dst,
        _ballot_out(m.ballot),
        m.slot,
        _value_out(m.value),
        _chosen_out(m.chosen),
    ]


def _encode_accepted(m: Accepted) -> list[Any]:
    return [7, m.src, m.dst, _ballot_out(m.ballot), m.slot, m.slot_chosen]


def _encode_heartbeat(m: Heartbeat) -> list[Any]:
    return [8, m.src, m.dst, _ballot_out(m.ballot), _chosen_out(m.chosen), m.read_round]


def _encode_heartbeat_reply(m: HeartbeatReply) -> list[Any]:
    return [9, m.src, m.dst, _ballot_out(m.ballot), m.slot_chosen, m.read_round]


def _encode_learn_request(m: LearnRequest) -> list[Any]:
    return [10, m.src, m.dst, m.slot_from]


def _encode_learn(m: Learn) -> list[Any]:
    return [11, m.src, m.dst, _entries_out(m.entries)]


def _encode_snapshot_chunk(m: SnapshotChunk) -> list[Any]:
    return [12, m.src, m.dst, m.slot, m.offset, m.data, m.last]


def _encode_hello(m: Hello) -> list[Any]:
    return [32, m.cluster_id, m.node_id, m.version]


def _encode_welcome(m: Welcome) -> list[Any]:
    return [33, m.cluster_id, m.node_id]


def _encode_refused(m: Refused) -> list[Any]:
    return [34, m.reason]


def _encode_challenge(m: Challenge) -> list[Any]:
    return [35, m.nonce]


def _encode_peer_proof(m: PeerProof) -> list[Any]:
    return [36, m.nonce, m.proof, m.client_address, m.incarnation]


def _encode_peer_welcome(m: PeerWelcome) -> list[Any]:
    return [37, m.node_id, m.proof, m.client_address, m.incarnation]


def _encode_submit(m: Submit) -> list[Any]:
    return [64, m.request_id, m.client_id, m.seq, m.payload]


def _encode_query(m: Query) -> list[Any]:
    return [65, m.request_id, m.payload, m.linearizable]


def _encode_status_request(m: StatusRequest) -> list[Any]:
    return [66, m.request_id]


def _encode_authenticate(m: Authenticate) -> list[Any]:
    return [67, m.request_id, m.user, m.password]


def _encode_change_members(m: ChangeMembers) -> list[Any]:
    return [68, m.request_id, m.action, m.node_id, m.address, m.token]


def _encode_reply(m: Reply) -> list[Any]:
    return [80, m.request_id, m.payload]


def encode_reply_body(request_id: int, payload: bytes) -> bytes:
    """``encode_body(Reply(request_id, payload))`` without making the Reply: the
    answer to every write, on the leader's hot path. The caller checks the size
    (``frame_max_bytes``) and passes a ``request_id`` a decoded request carried."""
    body: bytes = msgpack.packb([80, request_id, payload])
    return body


def _encode_redirect(m: Redirect) -> list[Any]:
    return [81, m.request_id, m.leader_id, m.leader_address]


def _encode_failure(m: Failure) -> list[Any]:
    return [82, m.request_id, m.code, m.message]


def _encode_status_reply(m: StatusReply) -> list[Any]:
    return [83, m.request_id, m.status]


_ENCODERS: Final[dict[type, Callable[[Any], list[Any]]]] = {
    Probe: _encode_probe,
    ProbeReply: _encode_probe_reply,
    Prepare: _encode_prepare,
    Promise: _encode_promise,
    Nack: _encode_nack,
    TimeoutNow: _encode_timeout_now,
    RemovedNotice: _encode_removed_notice,
    Accept: _encode_accept,
    Accepted: _encode_accepted,
    Heartbeat: _encode_heartbeat,
    HeartbeatReply: _encode_heartbeat_reply,
    LearnRequest: _encode_learn_request,
    Learn: _encode_learn,
    SnapshotChunk: _encode_snapshot_chunk,
    Hello: _encode_hello,
    Welcome: _encode_welcome,
    Refused: _encode_refused,
    Challenge: _encode_challenge,
    PeerProof: _encode_peer_proof,
    PeerWelcome: _encode_peer_welcome,
    Submit: _encode_submit,
    Query: _encode_query,
    StatusRequest: _encode_status_request,
    Authenticate: _encode_authenticate,
    ChangeMembers: _encode_change_members,
    Reply: _encode_reply,
    Redirect: _encode_redirect,
    Failure: _encode_failure,
    StatusReply: _encode_status_reply,
}


# ------------------------------------------------------------------ decoding


def decode_body(body: bytes, expected: Container[int] | None = None) -> WireMessage:
    """The message in one frame body, or DecodeError saying why there is none.

    ``expected``, if given, holds the type codes the caller accepts; a body of
    any other type is refused before it is unpacked.
    """
    size = len(body)
    if size < 2 or not _FIXARRAY_FIRST <= body[0] <= _FIXARRAY_LAST:
        raise DecodeError(f"not msgpack of a message (fixarray, type code): {_show(body[:8])}")
    code = body[1]
    known = _DECODERS.get(code)
    if known is None:
        shown = code if code < 0x80 else f"byte {code:#04x}"
        raise DecodeError(f"unknown type code {shown}")
    name, arity, decoder, limits = known
    if expected is not None and code not in expected:
        raise DecodeError(f"{name} is not expected here")
    if body[0] - _FIXARRAY_EMPTY != arity:
        raise DecodeError(f"{name}: expected {arity - 1} fields, got {body[0] - _FIXARRAY_FIRST}")
    if limits.body_max_bytes is not None and size > limits.body_max_bytes:
        raise DecodeError(f"{name}: {size} bytes > {limits.body_max_bytes}")
    budget = (
        _Budget(name, limits.items_max)
        if limits.items_max is not None and size > BUDGET_FROM_BYTES
        else None
    )
    if limits.map_allowed:
        object_hook = None if budget is None else budget.count_map
    else:
        object_hook = _refuse_map
    try:
        fields = msgpack.unpackb(
            body,
            use_list=False,
            raw=False,
            strict_map_key=True,
            max_str_len=size if limits.str_max_bytes is None else limits.str_max_bytes,
            max_bin_len=size if limits.bin_allowed else 0,
            max_array_len=limits.array_max,
            max_map_len=size if limits.map_allowed else 0,
            max_ext_len=0,
            list_hook=None if budget is None else budget.count_array,
            object_hook=object_hook,
        )
    except _OverLimit as exc:
        raise DecodeError(f"{name}: {exc}") from None
    except (ValueError, msgpack.UnpackException) as exc:
        raise DecodeError(f"not msgpack within the limits of a {name}: {exc}") from None
    if type(fields) is not tuple or len(fields) != arity:  # pragma: no cover - header checked
        raise DecodeError(f"{name}: not an array of {arity} items")
    try:
        return decoder(fields)
    except (DecodeError, ValueError, TypeError) as exc:
        raise DecodeError(f"{name}: {exc}") from None


# ------------------------------------------------------------------ decode limits

_FIXARRAY_EMPTY: Final = 0x90
_FIXARRAY_FIRST: Final = 0x91
_FIXARRAY_LAST: Final = 0x9F

VALUE_COMMANDS_MAX: Final = 4096
RUNS_MAX: Final = 1024
LEARN_ENTRIES_MAX: Final = 4096
LEARN_COMMANDS_MAX: Final = 262_144
PROMISE_ENTRIES_MAX: Final = 65_536
PROMISE_COMMANDS_MAX: Final = 1_048_576
STR_MAX_BYTES: Final = 4096
STATUS_ITEMS_MAX: Final = 65_536
FIXED_BODY_MAX_BYTES: Final = 128
BUDGET_FROM_BYTES: Final = 65_536
_FIELDS_MAX: Final = 8

# Items counted by the budget: an array (or map) of n items counts n + 1.
_BALLOT_ITEMS: Final = 3
_COMMAND_ITEMS: Final = 1 + 4  # its place in the Value, then [client_id, seq, payload]
_ENTRY_ITEMS: Final = 1 + 4 + _BALLOT_ITEMS + 1  # its place, [slot, ballot, value], ballot, value


def _chosen_items(runs: int) -> int:
    return 3 + 1 + runs * (1 + 4 + _BALLOT_ITEMS)


def _log_items(entries: int, commands: int) -> int:
    return 1 + entries * _ENTRY_ITEMS + commands * _COMMAND_ITEMS


class _Limits(NamedTuple):
    """What one message type may hold; None means "as much as the body's size"."""

    array_max: int = _FIELDS_MAX
    str_max_bytes: int | None = 0
    bin_allowed: bool = False
    map_allowed: bool = False
    body_max_bytes: int | None = FIXED_BODY_MAX_BYTES
    items_max: int | None = None


_FIXED: Final = _Limits()
_BINARY: Final = _Limits(bin_allowed=True, body_max_bytes=None, items_max=_FIELDS_MAX)
_NAMED: Final = _Limits(
    str_max_bytes=STR_MAX_BYTES, body_max_bytes=FIXED_BODY_MAX_BYTES + STR_MAX_BYTES
)
# The peer handshake: nonces and proofs (bin, <= 64 bytes), a client address (<= 300 bytes).
_PROOF: Final = _Limits(
    str_max_bytes=STR_MAX_BYTES, bin_allowed=True, body_max_bytes=FIXED_BODY_MAX_BYTES + 512
)
# A login: user and password, each at most 1,024 characters (4 bytes each in UTF-8).
_AUTHENTICATE: Final = _Limits(
    str_max_bytes=STR_MAX_BYTES, body_max_bytes=FIXED_BODY_MAX_BYTES + 2 * STR_MAX_BYTES
)
_CHANGE_MEMBERS: Final = _Limits(
    str_max_bytes=STR_MAX_BYTES, body_max_bytes=FIXED_BODY_MAX_BYTES + 3 * STR_MAX_BYTES
)
_RESPONSE_TEXT: Final = _Limits(str_max_bytes=None, body_max_bytes=None, items_max=_FIELDS_MAX)
_ACCEPT: Final = _Limits(
    array_max=max(VALUE_COMMANDS_MAX, RUNS_MAX),
    bin_allowed=True,
    body_max_bytes=None,
    items_max=8 + _BALLOT_ITEMS + 1 + VALUE_COMMANDS_MAX * _COMMAND_ITEMS + _chosen_items(RUNS_MAX),
)
_HEARTBEAT: Final = _Limits(
    array_max=RUNS_MAX,
    body_max_bytes=FIXED_BODY_MAX_BYTES + RUNS_MAX * 40,  # a run is at most 38 bytes
)
_LEARN: Final = _Limits(
    array_max=max(LEARN_ENTRIES_MAX, VALUE_COMMANDS_MAX),
    bin_allowed=True,
    body_max_bytes=None,
    items_max=5 + _log_items(LEARN_ENTRIES_MAX, LEARN_COMMANDS_MAX),
)
_PROMISE: Final = _Limits(
    array_max=max(PROMISE_ENTRIES_MAX, VALUE_COMMANDS_MAX),
    bin_allowed=True,
    body_max_bytes=None,
    items_max=9 + _BALLOT_ITEMS + _log_items(PROMISE_ENTRIES_MAX, PROMISE_COMMANDS_MAX),
)
_STATUS: Final = _Limits(
    array_max=STATUS_ITEMS_MAX,
    str_max_bytes=None,
    bin_allowed=True,
    map_allowed=True,
    body_max_bytes=None,
    items_max=STATUS_ITEMS_MAX,
)


class _OverLimit(Exception):
    """Raised from inside msgpack's hooks to stop unpacking at once."""


class _Budget:
    """Counts the items of every array and map as msgpack builds them."""

    __slots__ = ("_items_left", "_name")

    def __init__(self, name: str, items_max: int) -> None:
        self._name = name
        self._items_left = items_max

    def count_array(self, items: tuple[Any, ...]) -> tuple[Any, ...]:
        self._items_left -= len(items) + 1
        if self._items_left < 0:
            raise _OverLimit("more arrays and items than a legal message holds")
        return items

    def count_map(self, items: dict[str, Any]) -> dict[str, Any]:
        self._items_left -= len(items) + 1
        if self._items_left < 0:
            raise _OverLimit("more maps and items than a legal message holds")
        return items


def _refuse_map(items: dict[str, Any]) -> dict[str, Any]:
    raise _OverLimit("a map, which only a StatusReply may hold")


def _show(raw: object) -> str:
    text = repr(raw)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def _uint(raw: object, name: str) -> int:
    if type(raw) is not int or not 0 <= raw < _INT_END:
        raise DecodeError(f"{name}: expected an int in [0, 2**63), got {_show(raw)}")
    return raw


def _typed(raw: object, kind: type, name: str) -> Any:
    if type(raw) is not kind:
        raise DecodeError(f"{name}: expected {kind.__name__}, got {_show(raw)}")
    return raw


def _array(raw: object, name: str) -> tuple[Any, ...]:
    if type(raw) is not tuple:
        raise DecodeError(f"{name}: expected an array, got {_show(raw)}")
    return raw


def _ballot(raw: object, name: str = "ballot") -> Ballot:
    if type(raw) is not tuple or len(raw) != 2:
        raise DecodeError(f"{name}: expected [round, node], got {_show(raw)}")
    return Ballot(_uint(raw[0], f"{name}.round"), _uint(raw[1], f"{name}.node"))


def _value(raw: object) -> Value:
    if type(raw) is not tuple:
        raise DecodeError(f"value: expected an array of commands, got {_show(raw)}")
    commands: list[Command] = []
    append = commands.append
    for item in raw:
        if type(item) is not tuple or len(item) != 3:
            raise DecodeError(f"command: expected [client_id, seq, payload], got {_show(item)}")
        client_id, seq, payload = item
        if (
            type(client_id) is not int
            or type(seq) is not int
            or type(payload) is not bytes
            or not 0 <= client_id < _INT_END
            or not 0 <= seq < _INT_END
        ):
            raise DecodeError(f"command: bad fields {_show(item)}")
        append(Command(client_id, seq, payload))
    return Value(tuple(commands))


def _entries(raw: object) -> tuple[Entry, ...]:
    entries: list[Entry] = []
    for item in _array(raw, "entries"):
        if type(item) is not tuple or len(item) != 3:
            raise DecodeError(f"entry: expected [slot, ballot, value], got {_show(item)}")
        entries.append(Entry(_uint(item[0], "entry.slot"), _ballot(item[1]), _value(item[2])))
    return tuple(entries)


def _chosen(raw: object) -> ChosenPrefix:
    if type(raw) is not tuple or len(raw) != 2:
        raise DecodeError(f"chosen: expected [slot_chosen, runs], got {_show(raw)}")
    runs: list[BallotRun] = []
    for item in _array(raw[1], "chosen.runs"):
        if type(item) is not tuple or len(item) != 3:
            raise DecodeError(f"run: expected [slot_start, slot_end, ballot], got {_show(item)}")
        runs.append(
            BallotRun(
                _uint(item[0], "run.slot_start"), _uint(item[1], "run.slot_end"), _ballot(item[2])
            )
        )
    return ChosenPrefix(_uint(raw[0], "slot_chosen"), tuple(runs))


def _decode_probe(f: tuple[Any, ...]) -> Probe:
    return Probe(_uint(f[1], "src"), _uint(f[2], "dst"), _ballot(f[3]))


def _decode_probe_reply(f: tuple[Any, ...]) -> ProbeReply:
    return ProbeReply(
        _uint(f[1], "src"), _uint(f[2], "dst"), _ballot(f[3]), _typed(f[4], bool, "granted")
    )


def _decode_prepare(f: tuple[Any, ...]) -> Prepare:
    return Prepare(_uint(f[1], "src"), _uint(f[2], "dst"), _ballot(f[3]), _uint(f[4], "slot_from"))


def _decode_handover_prepare(f: tuple[Any, ...]) -> Prepare:
    return Prepare(
        _uint(f[1], "src"),
        _uint(f[2], "dst"),
        _ballot(f[3]),
        _uint(f[4], "slot_from"),
        _ballot(f[5], "handover_from"),
    )


def _decode_promise(f: tuple[Any, ...]) -> Promise:
    return Promise(
        _uint(f[1], "src"),
        _uint(f[2], "dst"),
        _ballot(f[3]),
        _uint(f[4], "slot_from"),
        _entries(f[5]),
        _uint(f[6], "slot_chosen"),
        _uint(f[7], "log_start"),
    )


def _decode_nack(f: tuple[Any, ...]) -> Nack:
    return Nack(
        _uint(f[1], "src"), _uint(f[2], "dst"), _ballot(f[3]), _ballot(f[4], "ballot_promised")
    )


def _decode_timeout_now(f: tuple[Any, ...]) -> TimeoutNow:
    return TimeoutNow(_uint(f[1], "src"), _uint(f[2], "dst"), _ballot(f[3]))


def _decode_removed_notice(f: tuple[Any, ...]) -> RemovedNotice:
    return RemovedNotice(_uint(f[1], "src"), _uint(f[2], "dst"), _uint(f[3], "epoch"))


def _decode_accept(f: tuple[Any, ...]) -> Accept:
    return Accept(
        _uint(f[1], "src"),
        _uint(f[2], "dst"),
        _ballot(f[3]),
        _uint(f[4], "slot"),
        _value(f[5]),
        _chosen(f[6]),
    )


def _decode_accepted(f: tuple[Any, ...]) -> Accepted:
    return Accepted(
        _uint(f[1], "src"),
        _uint(f[2], "dst"),
        _ballot(f[3]),
        _uint(f[4], "slot"),
        _uint(f[5], "slot_chosen"),
    )


def _decode_heartbeat(f: tuple[Any, ...]) -> Heartbeat:
    return Heartbeat(
        _uint(f[1], "src"),
        _uint(f[2], "dst"),
        _ballot(f[3]),
        _chosen(f[4]),
        _uint(f[5], "read_round"),
    )


def _decode_heartbeat_reply(f: tuple[Any, ...]) -> HeartbeatReply:
    return HeartbeatReply(
        _uint(f[1], "src"),
        _uint(f[2], "dst"),
        _ballot(f[3]),
        _uint(f[4], "slot_chosen"),
        _uint(f[5], "read_round"),
    )


def _decode_learn_request(f: tuple[Any, ...]) -> LearnRequest:
    return LearnRequest(_uint(f[1], "src"), _uint(f[2], "dst"), _uint(f[3], "slot_from"))


def _decode_learn(f: tuple[Any, ...]) -> Learn:
    return Learn(_uint(f[1], "src"), _uint(f[2], "dst"), _entries(f[3]))


def _decode_snapshot_chunk(f: tuple[Any, ...]) -> SnapshotChunk:
    return SnapshotChunk(
        _uint(f[1], "src"),
        _uint(f[2], "dst"),
        _uint(f[3], "slot"),
        _uint(f[4], "offset"),
        _typed(f[5], bytes, "data"),
        _typed(f[6], bool, "last"),
    )


def _decode_hello(f: tuple[Any, ...]) -> Hello:
    return Hello(_typed(f[1], str, "cluster_id"), _uint(f[2], "node_id"), _uint(f[3], "version"))


def _decode_welcome(f: tuple[Any, ...]) -> Welcome:
    return Welcome(_typed(f[1], str, "cluster_id"), _uint(f[2], "node_id"))


def _decode_refused(f: tuple[Any, ...]) -> Refused:
    return Refused(_typed(f[1], str, "reason"))


def _decode_challenge(f: tuple[Any, ...]) -> Challenge:
    return Challenge(_typed(f[1], bytes, "nonce"))


def _decode_peer_proof(f: tuple[Any, ...]) -> PeerProof:
    return PeerProof(
        _typed(f[1], bytes, "nonce"),
        _typed(f[2], bytes, "proof"),
        _typed(f[3], str, "address"),
        _typed(f[4], int, "incarnation"),
    )


def _decode_peer_welcome(f: tuple[Any, ...]) -> PeerWelcome:
    return PeerWelcome(
        _uint(f[1], "node_id"),
        _typed(f[2], bytes, "proof"),
        _typed(f[3], str, "address"),
        _typed(f[4], int, "incarnation"),
    )


def _decode_submit(f: tuple[Any, ...]) -> Submit:
    # Submit's own checks are these fields' (``check_uint``, bytes); checking them
    # here too cost a tenth of decoding the one frame every write sends. Their
    # ValueError or TypeError becomes a DecodeError in ``decode_body``.
    return Submit(f[1], f[2], f[3], f[4])


def _decode_query(f: tuple[Any, ...]) -> Query:
    return Query(f[1], f[2], f[3])  # checked by Query itself, as Submit


def _decode_status_request(f: tuple[Any, ...]) -> StatusRequest:
    return StatusRequest(_uint(f[1], "request_id"))


def _decode_authenticate(f: tuple[Any, ...]) -> Authenticate:
    return Authenticate(
        _uint(f[1], "request_id"), _typed(f[2], str, "user"), _typed(f[3], str, "password")
    )


def _decode_change_members(f: tuple[Any, ...]) -> ChangeMembers:
    return ChangeMembers(
        _uint(f[1], "request_id"),
        _typed(f[2], str, "action"),
        _uint(f[3], "node_id"),
        _typed(f[4], str, "address"),
        _typed(f[5], str, "token"),
    )


def _decode_reply(f: tuple[Any, ...]) -> Reply:
    return Reply(f[1], f[2])  # checked by Reply itself, as Submit


def _decode_redirect(f: tuple[Any, ...]) -> Redirect:
    leader_id = None if f[2] is None else _uint(f[2], "leader_id")
    leader_address = None if f[3] is None else _typed(f[3], str, "leader_address")
    return Redirect(_uint(f[1], "request_id"), leader_id, leader_address)


def _decode_failure(f: tuple[Any, ...]) -> Failure:
    return Failure(
        _uint(f[1], "request_id"), _typed(f[2], str, "code"), _typed(f[3], str, "message")
    )


def _decode_status_reply(f: tuple[Any, ...]) -> StatusReply:
    status = _typed(f[2], dict, "status")
    return StatusReply(_uint(f[1], "request_id"), _listify(status, 0))


def _listify(raw: Any, depth: int) -> Any:
    """Arrays as lists (the decoder builds tuples), with nesting bounded."""
    if depth > _STATUS_DEPTH_MAX:
        raise DecodeError(f"status: nested deeper than {_STATUS_DEPTH_MAX}")
    if type(raw) is tuple:
        return [_listify(item, depth + 1) for item in raw]
    if type(raw) is dict:
        return {key: _listify(item, depth + 1) for key, item in raw.items()}
    return raw


_DECODERS: Final[dict[int, tuple[str, int, Callable[[tuple[Any, ...]], WireMessage], _Limits]]] = {
    1: ("Probe", 4, _decode_probe, _FIXED),
    2: ("ProbeReply", 5, _decode_probe_reply, _FIXED),
    3: ("Prepare", 5, _decode_prepare, _FIXED),
    4: ("Promise", 8, _decode_promise, _PROMISE),
    5: ("Nack", 5, _decode_nack, _FIXED),
    6: ("Accept", 7, _decode_accept, _ACCEPT),
    7: ("Accepted", 6, _decode_accepted, _FIXED),
    8: ("Heartbeat", 6, _decode_heartbeat, _HEARTBEAT),
    9: ("HeartbeatReply", 6, _decode_heartbeat_reply, _FIXED),
    10: ("LearnRequest", 4, _decode_learn_request, _FIXED),
    11: ("Learn", 4, _decode_learn, _LEARN),
    12: ("SnapshotChunk", 7, _decode_snapshot_chunk, _BINARY),
    13: ("TimeoutNow", 4, _decode_timeout_now, _FIXED),
    14: ("HandoverPrepare", 6, _decode_handover_prepare, _FIXED),
    15: ("RemovedNotice", 4, _decode_removed_notice, _FIXED),
    32: ("Hello", 4, _decode_hello, _NAMED),
    33: ("Welcome", 3, _decode_welcome, _NAMED),
    34: ("Refused", 2, _decode_refused, _NAMED),
    35: ("Challenge", 2, _decode_challenge, _PROOF),
    36: ("PeerProof", 5, _decode_peer_proof, _PROOF),
    37: ("PeerWelcome", 5, _decode_peer_welcome, _PROOF),
    64: ("Submit", 5, _decode_submit, _BINARY),
    65: ("Query", 4, _decode_query, _BINARY),
    66: ("StatusRequest", 2, _decode_status_request, _FIXED),
    67: ("Authenticate", 4, _decode_authenticate, _AUTHENTICATE),
    68: ("ChangeMembers", 6, _decode_change_members, _CHANGE_MEMBERS),
    80: ("Reply", 3, _decode_reply, _BINARY),
    81: ("Redirect", 4, _decode_redirect, _RESPONSE_TEXT),
    82: ("Failure", 4, _decode_failure, _RESPONSE_TEXT),
    83: ("StatusReply", 3, _decode_status_reply, _STATUS),
}
"""Type code -> (name, array length including the code, decoder, decode limits)."""

PEER_CODES: Final = frozenset(range(1, 16))
VARIANT_CODES: Final = frozenset((14,))
"""Codes that decode to a type ``TYPE_CODES`` lists under another code
(14, HandoverPrepare: a ``Prepare`` with ``handover_from``)."""
HANDSHAKE_CODES: Final = frozenset((32, 33, 34, 35, 36, 37))
CLIENT_REQUEST_CODES: Final = frozenset((64, 65, 66, 67, 68))
CLIENT_RESPONSE_CODES: Final = frozenset((80, 81, 82, 83))
"""The ``expected`` sets for ``decode_body``, by what a connection may carry."""

TYPE_CODES: Final[dict[type, int]] = {
    Probe: 1,
    ProbeReply: 2,
    Prepare: 3,
    Promise: 4,
    Nack: 5,
    Accept: 6,
    Accepted: 7,
    Heartbeat: 8,
    HeartbeatReply: 9,
    LearnRequest: 10,
    Learn: 11,
    SnapshotChunk: 12,
    TimeoutNow: 13,
    RemovedNotice: 15,
    Hello: 32,
    Welcome: 33,
    Refused: 34,
    Challenge: 35,
    PeerProof: 36,
    PeerWelcome: 37,
    Submit: 64,
    Query: 65,
    StatusRequest: 66,
    Authenticate: 67,
    ChangeMembers: 68,
    Reply: 80,
    Redirect: 81,
    Failure: 82,
    StatusReply: 83,
}
"""The wire type code of each message class (docs/wire.md has the table)."""
