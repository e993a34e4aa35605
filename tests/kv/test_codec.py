"""The kv codec: round trips, compactness, and untrusted bytes never escaping as anything
but KvDecodeError (a BadRequest)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paxon.errors import BadRequest, RevisionCompacted
from paxon.kv.codec import (
    KvDecodeError,
    decode_command,
    decode_query,
    decode_result,
    encode_command,
    encode_query,
    encode_result,
)
from paxon.kv.model import (
    COMPARE_OPS,
    COMPARE_TARGETS,
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
    Put,
    PutOp,
    PutResult,
    Result,
    Txn,
    TxnResult,
)

FUZZ = settings(derandomize=True, max_examples=1000)
ROUND_TRIPS = settings(derandomize=True, max_examples=300)

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)
counts = st.integers(0, 2**63 - 1)
blobs = st.binary(max_size=16)


@st.composite
def compares(draw: st.DrawFn) -> Compare:
    target = draw(st.sampled_from(COMPARE_TARGETS))
    operand: int | bytes = (
        draw(blobs) if target == "value" else draw(st.integers(-(2**63), 2**63 - 1))
    )
    return Compare(draw(texts), target, draw(st.sampled_from(COMPARE_OPS)), operand)


txn_ops = st.one_of(
    st.builds(PutOp, texts, blobs),
    st.builds(DeleteOp, texts, st.booleans()),
    st.builds(GetOp, texts, st.booleans()),
)
commands = st.one_of(
    st.builds(Put, texts, blobs, st.none() | counts),
    st.builds(Delete, texts, st.booleans()),
    st.builds(
        Txn,
        st.lists(compares(), max_size=3).map(tuple),
        st.lists(txn_ops, max_size=3).map(tuple),
        st.lists(txn_ops, max_size=3).map(tuple),
    ),
    st.builds(Compact, counts),
)
queries = st.builds(Get, texts, st.booleans(), st.none() | counts)
keyvalues = st.builds(KeyValue, texts, blobs, counts, counts, counts)
responses = st.one_of(
    st.builds(PutResult, st.booleans(), counts, counts),
    st.builds(DeleteResult, counts, counts),
    st.builds(GetResult, st.lists(keyvalues, max_size=3).map(tuple), counts),
)
results = st.one_of(
    responses,
    st.builds(TxnResult, st.booleans(), counts, st.lists(responses, max_size=3).map(tuple)),
    st.builds(ErrorResult, texts, texts),
    st.builds(CompactResult, counts, counts),
)
plausible_leaves = st.sampled_from(
    [None, True, False, -1, 0, 1, 2, 3, 2**64 - 1, "", "k", b"", b"v"]
)
msgpack_values = st.one_of(
    plausible_leaves,
    plausible_leaves,
    st.lists(plausible_leaves | st.lists(plausible_leaves, max_size=5), max_size=3),
    st.floats(allow_nan=False) | texts | blobs,
)


def encode_any(obj: Command | Get | Result) -> bytes:
    if isinstance(obj, Put | Delete | Txn | Compact):
        return encode_command(obj)
    if isinstance(obj, Get):
        return encode_query(obj)
    return encode_result(obj)


def mutate(node: object, draw: st.DrawFn, *, root: bool = True) -> object:
    """``node`` with one random element replaced, dropped or added, somewhere in the tree."""
    if type(node) is not list or not node or not (root or draw(st.booleans())):
        return draw(msgpack_values)
    changed = list(node)
    index = draw(st.integers(0, len(changed) - 1))
    action = draw(st.sampled_from(["descend", "drop", "add"]))
    if action == "descend":
        changed[index] = mutate(changed[index], draw, root=False)
    elif action == "drop":
        del changed[index]
    else:
        changed.insert(index, draw(msgpack_values))
    return changed


@st.composite
def mutated_encodings(draw: st.DrawFn) -> bytes:
    encoded = encode_any(draw(st.one_of(commands, queries, results)))
    return msgpack.packb(mutate(msgpack.unpackb(encoded), draw))  # type: ignore[no-any-return]


@ROUND_TRIPS
@given(commands)
def test_command_round_trip(command: Command) -> None:
    assert decode_command(encode_command(command)) == command


@ROUND_TRIPS
@given(queries)
def test_query_round_trip(query: Get) -> None:
    assert decode_query(encode_query(query)) == query


@ROUND_TRIPS
@given(results)
def test_result_round_trip(result: Result) -> None:
    assert decode_result(encode_result(result)) == result


def test_encodings_are_compact_tagged_arrays() -> None:
    assert encode_command(Put("k", b"v")) == msgpack.packb([1, "k", b"v", None])
    assert len(encode_command(Put("k", b"v", expect_version=3))) == 8
    assert encode_query(Get("k")) == msgpack.packb([4, "k", False, None])
    assert encode_result(PutResult(True, 5, 1)) == bytes([0x94, 16, 0xC3, 5, 1])
    condition = Compare("k", "value", "!=", b"x")
    assert msgpack.unpackb(encode_command(Txn((condition,), (GetOp("k"),)))) == [
        3,
        [["k", 1, 1, b"x"]],
        [[4, "k", False]],
        [],
    ]


@FUZZ
@given(st.binary(max_size=48))
def test_random_bytes_decode_or_raise_bad_request(data: bytes) -> None:
    for decode in (decode_command, decode_query, decode_result):
        try:
            decode(data)
        except KvDecodeError as error:
            assert str(error)


@settings(FUZZ, max_examples=500)
@given(mutated_encodings())
def test_mutated_encodings_decode_to_valid_objects_or_raise(data: bytes) -> None:
    decoders: tuple[Callable[[bytes], Command | Get | Result], ...] = (
        decode_command,
        decode_query,
        decode_result,
    )
    for decode in decoders:
        try:
            decoded = decode(data)
        except KvDecodeError:
            continue
        assert encode_any(decoded) == data


@FUZZ
@given(commands, st.data())
def test_mangled_encodings_never_escape_as_other_errors(
    command: Command, data: st.DataObject
) -> None:
    encoded = bytearray(encode_command(command))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    for mangled in (bytes(encoded), bytes(encoded[:cut])):
        with contextlib.suppress(KvDecodeError):
            decode_command(mangled)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not valid msgpack"),
        (b"\xc1", "not valid msgpack"),
        (msgpack.packb([1, "k", b"v", None]) + b"\x00", "not valid msgpack"),
        (b"\x94\x01\xa1\xff\xc4\x00\xc0", "not valid msgpack"),  # invalid UTF-8 key
        (msgpack.packb({"k": 1}), "not valid msgpack"),
        (msgpack.packb(msgpack.ExtType(1, b"x")), "not valid msgpack"),
        (msgpack.packb([1, "k", "text", None]), "Put fields"),
        (msgpack.packb([1, "k", b"v", 1.5]), "Put fields"),
        (msgpack.packb([True, "k", b"v", None]), "expected [tag"),
        (msgpack.packb([2, "k", 1]), "Delete.prefix: expected a boolean"),
        (msgpack.packb([3, [["k", 9, 0, 1]], [], []]), "compare[0].target"),
        (msgpack.packb([3, [["k", 1, 0, 1]], [], []]), "compare[0]: compare operand"),
        (msgpack.packb([3, [["k", 0, 0, 2**64 - 1]], [], []]), "64-bit range"),
        (msgpack.packb([3, [], [[7, "k", b""]], []]), "success[0]: unknown op tag 7"),
        (msgpack.packb([3, [], [[1, "k"]], []]), "success[0]: expected [tag, key"),
        (msgpack.packb([3, [], [[2, 5, True]], []]), "success[0].key: expected a string"),
        (msgpack.packb([3, [], [[4, "k", None]], []]), "success[0].prefix: expected a boolean"),
        (msgpack.packb([3, [["k", 0, 0]], [], []]), "compare[0]: expected [key, target"),
        (msgpack.packb([3, [[b"k", 0, 0, 1]], [], []]), "compare[0].key: expected a string"),
        (msgpack.packb([3, [["k", 0, 4, 1]], [], []]), "compare[0].op: expected an index"),
        (msgpack.packb([3, [["k", 0, 0, None]], [], []]), "compare[0].operand: expected"),
        (msgpack.packb([3, [], [], [[1, "k", "v"]]]), "failure[0].value: expected bytes"),
        (msgpack.packb([3, [], [], 5]), "failure: expected an array"),
        (msgpack.packb([4, "k", False, None]), "expected [tag"),
        (msgpack.packb(7), "got int"),
        (msgpack.packb([6, -1]), "Compact.revision: expected an integer >= 0"),
        (msgpack.packb([6, "5"]), "Compact.revision: expected an integer >= 0"),
        (msgpack.packb([6, 5, 6]), "of a Put, Delete, Txn, Compact or lease command"),
    ],
)
def test_decode_command_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(KvDecodeError) as caught:
        decode_command(data)
    assert reason in str(caught.value)
    assert isinstance(caught.value, BadRequest)
    assert caught.value.code == "bad_request"


def test_decode_query_and_result_say_why() -> None:
    with pytest.raises(KvDecodeError, match=r"Get.revision"):
        decode_query(msgpack.packb([4, "k", False, "1"]))
    with pytest.raises(KvDecodeError, match=r"PutResult.revision: expected an integer >= 0"):
        decode_result(msgpack.packb([16, True, -1, 1]))
    with pytest.raises(KvDecodeError, match=r"KeyValue.value: expected bytes"):
        decode_result(msgpack.packb([18, 1, [["k", "v", 1, 1, 1]]]))
    with pytest.raises(KvDecodeError, match=r"expected a Put, Delete or Get result"):
        decode_result(msgpack.packb([19, True, 1, [[19, True, 1, []]]]))


def test_error_results_carry_typed_errors() -> None:
    result = ErrorResult.from_error(RevisionCompacted("revision 3 was compacted"))
    decoded = decode_result(encode_result(result))
    assert decoded == ErrorResult("compacted", "revision 3 was compacted")
    assert isinstance(decoded, ErrorResult)
    error = decoded.to_error()
    assert isinstance(error, RevisionCompacted)
    assert str(error) == "revision 3 was compacted"
    assert type(ErrorResult("no-such-code", "x").to_error()).__name__ == "PaxonError"


def test_compaction_encodes_as_small_tagged_arrays() -> None:
    assert encode_command(Compact(7)) == msgpack.packb([6, 7])
    assert encode_result(CompactResult(7, 9)) == msgpack.packb([24, 7, 9])
    assert decode_result(msgpack.packb([24, 7, 9])) == CompactResult(7, 9)
    with pytest.raises(KvDecodeError, match=r"CompactResult\.revision: expected an integer"):
        decode_result(msgpack.packb([24, 7, None]))


def test_a_compacted_error_names_the_oldest_revision_kept_across_the_wire() -> None:
    message = "revision 3 was compacted; the oldest kept is 12"
    decoded = decode_result(encode_result(ErrorResult.from_error(RevisionCompacted(message))))
    assert isinstance(decoded, ErrorResult)
    error = decoded.to_error()
    assert isinstance(error, RevisionCompacted)
    assert error.revision_compacted == 12
    assert RevisionCompacted("no number here").revision_compacted is None
    assert RevisionCompacted("x", revision_compacted=4).revision_compacted == 4


def test_unencodable_objects_raise_bad_request() -> None:
    with pytest.raises(BadRequest, match="cannot encode"):
        encode_command(Put("\ud800", b""))
    with pytest.raises(BadRequest, match="cannot encode"):
        encode_command(Put("k", b"", expect_version=2**64))
    with pytest.raises(BadRequest, match="not a command"):
        encode_command(Get("k"))  # type: ignore[arg-type]
