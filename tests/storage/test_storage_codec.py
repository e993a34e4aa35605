"""The record codec: exact round trips, and every kind of damage classified."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import accept, log_batches, storage_records

from paxon.protocol.records import AcceptRecord, ChosenRecord, PromiseRecord, SnapshotRecord
from paxon.protocol.types import Ballot, Command, Entry, Value
from paxon.storage import ConfigRecord, RecordEncodingError, RecordTooLarge
from paxon.storage.codec import (
    TYPE_ACCEPT,
    TYPE_CHOSEN,
    Frame,
    FrameStop,
    MalformedPayload,
    StorageRecord,
    decode_record,
    encode_frame,
    encode_record,
    encode_records,
    scan_frame,
)

LIMIT = 1 << 20


def decode_all(data: bytes) -> tuple[list[StorageRecord], FrameStop]:
    view = memoryview(data)
    offset = 0
    records: list[StorageRecord] = []
    while True:
        found = scan_frame(view, offset, LIMIT)
        if isinstance(found, FrameStop):
            return records, found
        records.append(decode_record(found.frame_type, found.payload))
        offset = found.end


@settings(derandomize=True, max_examples=300)
@given(log_batches)
def test_round_trip_is_exact(records: list[StorageRecord]) -> None:
    pieces, total = encode_records(records, LIMIT)
    data = b"".join(pieces)
    assert len(data) == total
    decoded, stop = decode_all(data)
    assert decoded == records
    assert stop.kind == "end"


@settings(derandomize=True, max_examples=300)
@given(storage_records)
def test_fast_path_matches_general_encoding(record: StorageRecord) -> None:
    pieces, _ = encode_records([record], LIMIT)
    assert b"".join(pieces) == encode_record(record, LIMIT)


def test_every_record_type_round_trips() -> None:
    records: list[StorageRecord] = [
        PromiseRecord(Ballot(3, 2)),
        accept(5),
        AcceptRecord(Entry(6, Ballot(2, 1), Value())),
        AcceptRecord(Entry(7, Ballot(2, 1), Value((Command(1, 2, b"a"), Command(3, 4, b""))))),
        ChosenRecord(6),
        SnapshotRecord(4),
        ConfigRecord((3, 1, 2)),
    ]
    decoded, stop = decode_all(b"".join(encode_records(records, LIMIT)[0]))
    assert decoded == records and stop.kind == "end"


def test_every_cut_of_the_last_frame_is_torn() -> None:
    data = b"".join(encode_records([accept(1), accept(2, payload=b"xyz" * 10)], LIMIT)[0])
    first_end = len(encode_record(accept(1), LIMIT))
    for cut in range(first_end + 1, len(data)):
        records, stop = decode_all(data[:cut])
        assert records == [accept(1)], cut
        assert (stop.kind, stop.offset) == ("torn", first_end), cut


def test_every_flipped_bit_is_bad_never_torn_or_valid() -> None:
    frame = encode_record(accept(3, payload=b"payload"), LIMIT)
    for bit in range(len(frame) * 8):
        damaged = bytearray(frame)
        damaged[bit // 8] ^= 1 << (bit % 8)
        found = scan_frame(memoryview(bytes(damaged)), 0, LIMIT)
        assert isinstance(found, FrameStop) and found.kind == "bad", bit


def test_a_zero_filled_tail_is_torn() -> None:
    data = encode_record(accept(1), LIMIT) + bytes(100)
    records, stop = decode_all(data)
    assert records == [accept(1)]
    assert stop.kind == "torn" and "zero" in stop.reason


def test_every_cut_of_the_last_frame_then_zeros_is_torn() -> None:
    """A write cut at any byte whose file the file system then zero-filled (its size
    reached the media, the rest of its data did not) is torn, for any fill length."""
    data = b"".join(encode_records([accept(1), accept(2, payload=b"xyz" * 10)], LIMIT)[0])
    first_end = len(encode_record(accept(1), LIMIT))
    for cut in range(first_end, len(data)):
        for zeros in (1, 3, len(data) - cut, len(data) - cut + 40):
            records, stop = decode_all(data[:cut] + bytes(zeros))
            assert records == [accept(1)], (cut, zeros)
            assert (stop.kind, stop.offset) == ("torn", first_end), (cut, zeros)


def test_a_flipped_bit_before_zeros_is_still_bad() -> None:
    """Zeros after a whole frame do not excuse a bad checksum inside it."""
    frame = encode_record(accept(3, payload=b"payload"), LIMIT)
    for bit in range(len(frame) * 8):
        damaged = bytearray(frame)
        damaged[bit // 8] ^= 1 << (bit % 8)
        found = scan_frame(memoryview(bytes(damaged) + bytes(64)), 0, LIMIT)
        assert isinstance(found, FrameStop) and found.kind == "bad", bit


def test_a_length_over_the_limit_is_bad() -> None:
    frame = encode_frame(TYPE_CHOSEN, bytes(8))
    found = scan_frame(memoryview(frame), 0, 4)
    assert isinstance(found, FrameStop) and found.kind == "bad"


def test_records_over_the_limit_are_refused() -> None:
    with pytest.raises(RecordTooLarge):
        encode_records([accept(1, payload=bytes(200))], 100)
    big = AcceptRecord(Entry(1, Ballot(1, 1), Value((Command(1, 1, bytes(60)),) * 3)))
    with pytest.raises(RecordTooLarge):
        encode_records([big], 100)


def test_fields_over_64_bits_are_refused() -> None:
    with pytest.raises(RecordEncodingError):
        encode_records([accept(2**64)], LIMIT)
    with pytest.raises(RecordEncodingError):
        encode_records([ChosenRecord(2**64)], LIMIT)


@pytest.mark.parametrize(
    ("frame_type", "payload"),
    [
        (TYPE_CHOSEN, b"\x01"),  # too short
        (TYPE_ACCEPT, bytes(27)),  # shorter than the fixed part
        (TYPE_ACCEPT, bytes(24) + b"\x05\0\0\0"),  # five commands announced, none present
        (99, b""),  # unknown type
        (1, (0).to_bytes(8, "little") + (3).to_bytes(8, "little")),  # ballot round 0, node 3
    ],
)
def test_malformed_payloads_raise(frame_type: int, payload: bytes) -> None:
    found = scan_frame(memoryview(encode_frame(frame_type, payload)), 0, LIMIT)
    assert isinstance(found, Frame)
    with pytest.raises(MalformedPayload):
        decode_record(found.frame_type, found.payload)


@given(st.binary(max_size=64))
@settings(derandomize=True, max_examples=200)
def test_garbage_never_crashes_the_scanner(data: bytes) -> None:
    view = memoryview(data)
    found = scan_frame(view, 0, LIMIT)
    if isinstance(found, Frame):
        with contextlib.suppress(MalformedPayload):
            decode_record(found.frame_type, found.payload)
