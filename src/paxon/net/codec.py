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
- msgpack limits are set from the body's own length, and extension types are
  refused, so a small body cannot ask for a large allocation.
- ``encode_body`` refuses (``FrameTooLarge``) a body over ``frame_max_bytes``:
  a frame the receiver must refuse is never sent.
- Integers are exact types: ``True`` is not an int here, ``1`` is not a bool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgpack  # type: ignore[import-untyped]

from paxon.errors import ProtocolError
from paxon.net.client_messages import (
    Authenticate,
    Challenge,
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
    return [36, m.nonce, m.proof, m.client_address]


def _encode_peer_welcome(m: PeerWelcome) -> list[Any]:
    return [37, m.node_id, m.proof, m.client_address]


def _encode_submit(m: Submit) -> list[Any]:
    return [64, m.request_id, m.client_id, m.seq, m.payload]


def _encode_query(m: Query) -> list[Any]:
    return [65, m.request_id, m.payload, m.linearizable]


def _encode_status_request(m: StatusRequest) -> list[Any]:
    return [66, m.request_id]


def _encode_authenticate(m: Authenticate) -> list[Any]:
    return [67, m.request_id, m.user, m.password]


def _encode_reply(m: Reply) -> list[Any]:
    return [80, m.request_id, m.payload]


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
    Reply: _encode_reply,
    Redirect: _encode_redirect,
    Failure: _encode_failure,
    StatusReply: _encode_status_reply,
}


# ------------------------------------------------------------------ decoding


def decode_body(body: bytes) -> WireMessage:
    """The message in one frame body, or DecodeError saying why there is none."""
    size = len(body)
    try:
        fields = msgpack.unpackb(
            body,
            use_list=False,
            raw=False,
            strict_map_key=True,
            max_str_len=size,
            max_bin_len=size,
            max_array_len=size,
            max_map_len=size,
            max_ext_len=0,
        )
    except (ValueError, msgpack.UnpackException) as exc:
        raise DecodeError(f"not msgpack: {exc}") from None
    if type(fields) is not tuple or not fields:
        raise DecodeError(f"not a non-empty array: {_show(fields)}")
    code = fields[0]
    known = _DECODERS.get(code) if type(code) is int else None
    if known is None:
        raise DecodeError(f"unknown type code {_show(code)}")
    name, arity, decoder = known
    if len(fields) != arity:
        raise DecodeError(f"{name}: expected {arity - 1} fields, got {len(fields) - 1}")
    try:
        return decoder(fields)
    except (DecodeError, ValueError, TypeError) as exc:
        raise DecodeError(f"{name}: {exc}") from None


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
        _typed(f[1], bytes, "nonce"), _typed(f[2], bytes, "proof"), _typed(f[3], str, "address")
    )


def _decode_peer_welcome(f: tuple[Any, ...]) -> PeerWelcome:
    return PeerWelcome(
        _uint(f[1], "node_id"), _typed(f[2], bytes, "proof"), _typed(f[3], str, "address")
    )


def _decode_submit(f: tuple[Any, ...]) -> Submit:
    return Submit(
        _uint(f[1], "request_id"),
        _uint(f[2], "client_id"),
        _uint(f[3], "seq"),
        _typed(f[4], bytes, "payload"),
    )


def _decode_query(f: tuple[Any, ...]) -> Query:
    return Query(
        _uint(f[1], "request_id"),
        _typed(f[2], bytes, "payload"),
        _typed(f[3], bool, "linearizable"),
    )


def _decode_status_request(f: tuple[Any, ...]) -> StatusRequest:
    return StatusRequest(_uint(f[1], "request_id"))


def _decode_authenticate(f: tuple[Any, ...]) -> Authenticate:
    return Authenticate(
        _uint(f[1], "request_id"), _typed(f[2], str, "user"), _typed(f[3], str, "password")
    )


def _decode_reply(f: tuple[Any, ...]) -> Reply:
    return Reply(_uint(f[1], "request_id"), _typed(f[2], bytes, "payload"))


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


_DECODERS: Final[dict[int, tuple[str, int, Callable[[tuple[Any, ...]], WireMessage]]]] = {
    1: ("Probe", 4, _decode_probe),
    2: ("ProbeReply", 5, _decode_probe_reply),
    3: ("Prepare", 5, _decode_prepare),
    4: ("Promise", 8, _decode_promise),
    5: ("Nack", 5, _decode_nack),
    6: ("Accept", 7, _decode_accept),
    7: ("Accepted", 6, _decode_accepted),
    8: ("Heartbeat", 6, _decode_heartbeat),
    9: ("HeartbeatReply", 6, _decode_heartbeat_reply),
    10: ("LearnRequest", 4, _decode_learn_request),
    11: ("Learn", 4, _decode_learn),
    12: ("SnapshotChunk", 7, _decode_snapshot_chunk),
    32: ("Hello", 4, _decode_hello),
    33: ("Welcome", 3, _decode_welcome),
    34: ("Refused", 2, _decode_refused),
    35: ("Challenge", 2, _decode_challenge),
    36: ("PeerProof", 4, _decode_peer_proof),
    37: ("PeerWelcome", 4, _decode_peer_welcome),
    64: ("Submit", 5, _decode_submit),
    65: ("Query", 4, _decode_query),
    66: ("StatusRequest", 2, _decode_status_request),
    67: ("Authenticate", 4, _decode_authenticate),
    80: ("Reply", 3, _decode_reply),
    81: ("Redirect", 4, _decode_redirect),
    82: ("Failure", 4, _decode_failure),
    83: ("StatusReply", 3, _decode_status_reply),
}
"""Type code -> (name, array length including the code, decoder)."""

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
    Reply: 80,
    Redirect: 81,
    Failure: 82,
    StatusReply: 83,
}
"""The wire type code of each message class (docs/wire.md has the table)."""
