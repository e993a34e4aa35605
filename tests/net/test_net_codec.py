"""The wire codec: every message round-trips; every bad body is a DecodeError, nothing else."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.net.net_strategies import wire_messages

from paxon.errors import ProtocolError
from paxon.net import (
    TYPE_CODES,
    DecodeError,
    FrameTooLarge,
    Hello,
    StatusReply,
    Submit,
    decode_body,
    encode,
    encode_body,
)
from paxon.net.client_messages import CLIENT_REQUEST_TYPES, CLIENT_RESPONSE_TYPES
from paxon.net.peer_messages import SnapshotChunk  # type: ignore[import-untyped]
from paxon.protocol.messages import MESSAGE_TYPES, Accept, ChosenPrefix, Probe
from paxon.protocol.types import Ballot, BallotRun, Command, Value

# ------------------------------------------------------------------ round trips


@settings(max_examples=1000, deadline=None)
@given(wire_messages)
def test_every_message_round_trips(message: Any) -> None:
    body = encode_body(message)
    assert decode_body(body) == message
    frame = encode(message)
    assert frame[4:] == body
    assert int.from_bytes(frame[:4], "big") == len(body)


@given(wire_messages)
def test_the_first_field_is_the_type_code(message: Any) -> None:
    assert msgpack.unpackb(encode_body(message))[0] == TYPE_CODES[type(message)]


def test_type_codes_follow_the_protocol_order() -> None:
    assert [TYPE_CODES[kind] for kind in MESSAGE_TYPES] == list(range(1, 12))
    assert TYPE_CODES[SnapshotChunk] == 12  # the runtime's own peer message
    handshake = [TYPE_CODES[kind] for kind in CLIENT_REQUEST_TYPES + CLIENT_RESPONSE_TYPES]
    assert handshake == [64, 65, 66, 67, 80, 81, 82, 83]
    assert len(set(TYPE_CODES.values())) == len(TYPE_CODES) == 26


def test_status_arrays_decode_as_lists() -> None:
    reply = StatusReply(7, {"members": [{"id": 1, "tags": ["a", "b"]}], "leader": None})
    assert decode_body(encode_body(reply)) == reply


def test_encode_refuses_a_body_over_the_limit() -> None:
    message = Submit(1, 2, 3, b"x" * 1000)
    with pytest.raises(FrameTooLarge):
        encode_body(message, frame_max_bytes=1000)
    assert len(encode_body(message, frame_max_bytes=1100)) <= 1100


def test_encode_refuses_what_is_not_a_message() -> None:
    with pytest.raises(TypeError):
        encode_body(Ballot(1, 1))  # type: ignore[arg-type]


def test_decode_error_is_a_protocol_error() -> None:
    assert issubclass(DecodeError, ProtocolError)


# ------------------------------------------------------------------ rejections


def _body(*fields: Any) -> bytes:
    return msgpack.packb(list(fields))  # type: ignore[no-any-return]


BALLOT = [2, 1]
BAD_BODIES = {
    "unused msgpack byte": (b"\xc1", "not msgpack"),
    "truncated": (_body(1, 1, 2, BALLOT)[:-1], "not msgpack"),
    "trailing bytes": (_body(1, 1, 2, BALLOT) + b"\x00", "not msgpack"),
    "ext type": (msgpack.packb([1, msgpack.ExtType(1, b"x")]), "not msgpack"),
    "int map key": (msgpack.packb([83, 1, {1: 2}]), "not msgpack"),
    "array header larger than the body": (b"\xdd\x7f\xff\xff\xff", "not msgpack"),
    "a map": (msgpack.packb({"a": 1}), "not a non-empty array"),
    "an int": (msgpack.packb(1), "not a non-empty array"),
    "empty array": (_body(), "not a non-empty array"),
    "unknown code": (_body(99, 1), "unknown type code 99"),
    "bool code": (_body(True, 1, 2, BALLOT), "unknown type code True"),
    "string code": (_body("1", 1, 2, BALLOT), "unknown type code"),
    "too few fields": (_body(1, 1, 2), "Probe: expected 3 fields, got 2"),
    "too many fields": (_body(1, 1, 2, BALLOT, 5), "Probe: expected 3 fields, got 4"),
    "negative src": (_body(1, -1, 2, BALLOT), "src"),
    "src 2**63": (_body(1, 2**63, 2, BALLOT), "src"),
    "bool src": (_body(1, True, 2, BALLOT), "src"),
    "float dst": (_body(1, 1, 2.0, BALLOT), "dst"),
    "ballot not a pair": (_body(1, 1, 2, [1]), "ballot"),
    "ballot round 0 with a node": (_body(1, 1, 2, [0, 5]), "round 0"),
    "int granted": (_body(2, 1, 2, BALLOT, 1), "granted"),
    "nack below its ballot": (_body(5, 1, 2, [3, 1], [2, 1]), "nack"),
    "str payload": (_body(6, 1, 2, BALLOT, 0, [[1, 1, "text"]], [0, []]), "command"),
    "command arity": (_body(6, 1, 2, BALLOT, 0, [[1, 1]], [0, []]), "command"),
    "value not an array": (_body(6, 1, 2, BALLOT, 0, 5, [0, []]), "value"),
    "runs not contiguous": (
        _body(6, 1, 2, BALLOT, 0, [], [9, [[0, 3, BALLOT], [4, 9, BALLOT]]]),
        "contiguous",
    ),
    "empty run": (_body(8, 1, 2, BALLOT, [3, [[3, 3, BALLOT]]], 0), "run"),
    "promise log_start past slot_chosen": (_body(4, 1, 2, BALLOT, 0, [], 1, 2), "log_start"),
    "learn out of order": (
        _body(11, 1, 2, [[5, BALLOT, []], [4, BALLOT, []]]),
        "increasing slot order",
    ),
    "hello bytes cluster": (_body(32, b"c", 1, 1), "cluster_id"),
    "query int flag": (_body(65, 1, b"q", 0), "linearizable"),
    "redirect bytes address": (_body(81, 1, 2, b"addr"), "leader_address"),
    "status not a map": (_body(83, 1, [1]), "status"),
    "status bytes key": (msgpack.packb([83, 1, {b"k": 1}]), "status key"),
    "status too deep": (
        _body(83, 1, {"k": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}),
        "deeper",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_bodies_are_decode_errors_with_a_reason(case: str) -> None:
    body, reason = BAD_BODIES[case]
    with pytest.raises(DecodeError, match=reason):
        decode_body(body)


def test_the_limits_make_a_huge_array_header_cheap() -> None:
    # An array32 header claiming 2**32-1 items, in five bytes: refused before allocating.
    with pytest.raises(DecodeError):
        decode_body(b"\xdd\xff\xff\xff\xff")


# ------------------------------------------------------------------ fuzz

junk: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(),
        st.text(max_size=8),
        st.binary(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=4), st.binary(max_size=4)), inner, max_size=3),
    ),
    max_leaves=8,
)


def _decodes_or_refuses(body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_body(body)


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_decode_error(body: bytes) -> None:
    _decodes_or_refuses(body)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([*sorted(TYPE_CODES.values()), 0, 12, 99]), st.lists(junk, max_size=8))
def test_random_arrays_only_raise_decode_error(code: int, fields: list[Any]) -> None:
    _decodes_or_refuses(msgpack.packb([code, *fields]))


def _paths(tree: Any, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    found = [prefix] if prefix else []
    if isinstance(tree, list):
        for index, item in enumerate(tree):
            found.extend(_paths(item, (*prefix, index)))
    return found


@settings(max_examples=1500, deadline=None)
@given(wire_messages, st.data())
def test_a_valid_message_with_one_field_replaced_only_raises_decode_error(
    message: Any, data: st.DataObject
) -> None:
    tree = msgpack.unpackb(encode_body(message))
    path = data.draw(st.sampled_from(_paths(tree)))
    parent = tree
    for index in path[:-1]:
        parent = parent[index]
    if data.draw(st.booleans()):
        parent[path[-1]] = data.draw(junk)
    else:
        del parent[path[-1]]
    _decodes_or_refuses(msgpack.packb(tree))


@settings(max_examples=1000, deadline=None)
@given(wire_messages, st.data())
def test_a_valid_body_cut_or_flipped_only_raises_decode_error(
    message: Any, data: st.DataObject
) -> None:
    body = bytearray(encode_body(message))
    position = data.draw(st.integers(0, len(body) - 1))
    if data.draw(st.booleans()):
        body[position] ^= 1 << data.draw(st.integers(0, 7))
        _decodes_or_refuses(bytes(body))
    else:
        _decodes_or_refuses(bytes(body[:position]))


# ------------------------------------------------------------------ the hot message


def test_an_accept_of_64_commands_round_trips() -> None:
    commands = tuple(Command(7, seq, bytes([seq]) * 100) for seq in range(64))
    chosen = ChosenPrefix(1000, (BallotRun(990, 1000, Ballot(3, 1)),))
    accept = Accept(1, 2, Ballot(3, 1), 1000, Value(commands), chosen)
    body = encode_body(accept)
    assert decode_body(body) == accept
    assert len(body) < 64 * 110 + 50


def test_hello_and_probe_are_distinguished_by_code_alone() -> None:
    assert type(decode_body(encode_body(Hello("c", 1, 1)))) is Hello
    assert type(decode_body(encode_body(Probe(1, 2, Ballot(1, 1))))) is Probe
