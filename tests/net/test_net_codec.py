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
    codec,
    decode_body,
    encode,
    encode_body,
)
from paxon.net.client_messages import CLIENT_REQUEST_TYPES, CLIENT_RESPONSE_TYPES
from paxon.net.peer_messages import SnapshotChunk  # type: ignore[import-untyped]
from paxon.node.config import NodeConfig
from paxon.protocol.config import ReplicaConfig
from paxon.protocol.messages import MESSAGE_TYPES, Accept, ChosenPrefix, Learn, Prepare, Probe
from paxon.protocol.types import Ballot, BallotRun, Command, Entry, Value

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
    # A transfer's Prepare has a code of its own (14, HandoverPrepare).
    handover = isinstance(message, Prepare) and message.handover_from is not None
    expected = 14 if handover else TYPE_CODES[type(message)]
    assert msgpack.unpackb(encode_body(message))[0] == expected


def test_type_codes_follow_the_protocol_order() -> None:
    assert [TYPE_CODES[kind] for kind in MESSAGE_TYPES] == [*range(1, 12), 13, 15]
    assert TYPE_CODES[SnapshotChunk] == 12  # the runtime's own peer message (TimeoutNow came later)
    handshake = [TYPE_CODES[kind] for kind in CLIENT_REQUEST_TYPES + CLIENT_RESPONSE_TYPES]
    assert handshake == [64, 65, 66, 67, 68, 80, 81, 82, 83]
    assert len(set(TYPE_CODES.values())) == len(TYPE_CODES) == 29


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
    "ext type": (msgpack.packb([1, 1, 2, msgpack.ExtType(1, b"x")]), "not msgpack within"),
    "int map key": (msgpack.packb([83, 1, {1: 2}]), "not msgpack"),
    "array header larger than the body": (b"\xdd\x7f\xff\xff\xff", "not msgpack"),
    "a map": (msgpack.packb({"a": 1}), "not msgpack of a message"),
    "an int": (msgpack.packb(1), "not msgpack of a message"),
    "empty array": (_body(), "not msgpack of a message"),
    "unknown code": (_body(99, 1), "unknown type code 99"),
    "bool code": (_body(True, 1, 2, BALLOT), "unknown type code byte 0xc3"),
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
    "str payload": (_body(6, 1, 2, BALLOT, 0, [[1, 1, "text"]], [0, []]), "max_str_len"),
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
    "hello bytes cluster": (_body(32, b"c", 1, 1), "Hello: 1 exceeds max_bin_len"),
    "query int flag": (_body(65, 1, b"q", 0), "linearizable"),
    "redirect bytes address": (_body(81, 1, 2, b"addr"), "Redirect: 4 exceeds max_bin_len"),
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


# ------------------------------------------------------------------ decode limits


def _array_header(length: int) -> bytes:
    return bytes([0x90 + length]) if length < 16 else b"\xdd" + length.to_bytes(4, "big")


def _tree(leaf: bytes, width: int, size_bytes: int) -> bytes:
    """An array of ``width``-wide subtrees of ``leaf``, about ``size_bytes`` long."""
    level = leaf
    while len(level) * width < size_bytes:
        level = _array_header(width) + level * width
    count = max(1, size_bytes // len(level))
    return _array_header(count) + level * count


def test_a_body_of_tiny_arrays_is_refused_from_its_first_byte() -> None:
    # The attack of issue 8 (there 63 MiB; 2 MiB here): one array of [0], [0], ...
    body = msgpack.packb([[0]] * 2**20)
    with pytest.raises(DecodeError, match="not msgpack of a message"):
        decode_body(body)


def test_an_array_longer_than_its_type_allows_is_refused() -> None:
    value = [[1, seq, b""] for seq in range(codec.VALUE_COMMANDS_MAX + 1)]
    with pytest.raises(DecodeError, match="exceeds max_array_len"):
        decode_body(_body(6, 1, 2, BALLOT, 0, value, [0, []]))


def test_a_learn_shaped_tree_of_tiny_arrays_is_cut_off_by_the_budget() -> None:
    # Every array is short enough; the total is what a legal Learn cannot hold.
    body = b"\x94\x0b\x01\x02" + _tree(b"\x91\x00", 512, 4 * 2**20)
    with pytest.raises(DecodeError, match="Learn: more arrays and items than a legal message"):
        decode_body(body)


def test_a_submit_holding_arrays_is_cut_off_by_the_budget() -> None:
    body = b"\x95\x40\x01\x02\x03" + _tree(b"\x91\x00", 8, 2 * codec.BUDGET_FROM_BYTES)
    with pytest.raises(DecodeError, match="Submit: more arrays"):
        decode_body(body)


def test_an_empty_map_outside_a_status_reply_is_refused() -> None:
    with pytest.raises(DecodeError, match="Submit: a map"):
        decode_body(_body(64, 1, 2, 3, {}))
    with pytest.raises(DecodeError, match="Accept: a map"):
        decode_body(_body(6, 1, 2, BALLOT, 0, [{}], [0, []]))


def test_a_fixed_shape_message_longer_than_any_legal_one_is_refused() -> None:
    body = b"\x94\x01" + b"\x00" * codec.FIXED_BODY_MAX_BYTES
    with pytest.raises(DecodeError, match=f"Probe: {len(body)} bytes > 128"):
        decode_body(body)


def test_a_type_the_caller_does_not_expect_is_refused_before_unpacking() -> None:
    probe = encode_body(Probe(1, 2, Ballot(1, 1)))
    with pytest.raises(DecodeError, match="Probe is not expected here"):
        decode_body(probe, expected=codec.CLIENT_REQUEST_CODES)
    assert decode_body(probe, expected=codec.PEER_CODES) == Probe(1, 2, Ballot(1, 1))
    submit = Submit(1, 2, 3, b"x")
    assert decode_body(encode_body(submit), expected=codec.CLIENT_REQUEST_CODES) == submit
    expected_sets = (
        codec.PEER_CODES,
        codec.HANDSHAKE_CODES,
        codec.CLIENT_REQUEST_CODES,
        codec.CLIENT_RESPONSE_CODES,
    )
    assert frozenset().union(*expected_sets) == frozenset(TYPE_CODES.values()) | codec.VARIANT_CODES


def test_the_limits_hold_what_the_default_config_sends() -> None:
    config = ReplicaConfig()
    assert config.batch_max_commands <= codec.VALUE_COMMANDS_MAX
    assert config.runs_max <= codec.RUNS_MAX
    assert config.learn_max_entries <= codec.LEARN_ENTRIES_MAX
    assert config.learn_max_entries * config.batch_max_commands <= codec.LEARN_COMMANDS_MAX
    assert 2 * NodeConfig().snapshot_interval_slots <= codec.PROMISE_ENTRIES_MAX


def test_the_largest_legal_learn_and_accept_still_decode() -> None:
    # Over BUDGET_FROM_BYTES, so the budget is counted, and at the per-array maxima.
    ballot = Ballot(3, 1)
    commands = tuple(Command(7, seq, b"") for seq in range(codec.VALUE_COMMANDS_MAX))
    slots_per_entry = codec.LEARN_COMMANDS_MAX // codec.VALUE_COMMANDS_MAX
    entries = tuple(Entry(slot, ballot, Value(commands)) for slot in range(slots_per_entry))
    learn = Learn(1, 2, entries)
    body = encode_body(learn)
    assert len(body) > codec.BUDGET_FROM_BYTES
    assert decode_body(body) == learn
    runs = tuple(BallotRun(slot, slot + 1, ballot) for slot in range(codec.RUNS_MAX))
    accept = Accept(1, 2, ballot, 5000, Value(commands), ChosenPrefix(codec.RUNS_MAX, runs))
    assert decode_body(encode_body(accept)) == accept


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


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ((64, -1, 2, 3, b"x"), "Submit: request_id must be in"),
        ((64, 1, True, 3, b"x"), "Submit: client_id must be an int"),
        ((64, 1, 2, 2**63, b"x"), "Submit: seq must be in"),
        ((64, 1, 2, 3, None), "Submit: payload must be bytes"),
        ((65, 1, b"p", 1), "Query: linearizable must be bool"),
        ((65, 1.5, b"p", True), "Query: request_id must be an int"),
        ((80, -2, b"r"), "Reply: request_id must be in"),
        ((80, 1, None), "Reply: payload must be bytes"),
    ],
)
def test_a_request_or_reply_with_a_bad_field_is_refused_naming_it(
    fields: tuple[object, ...], refusal: str
) -> None:
    """Submit, Query and Reply are checked once, by their own constructors
    (the hot path decodes each field once); a bad field is still a DecodeError."""
    with pytest.raises(DecodeError, match=refusal):
        decode_body(_body(*fields))
