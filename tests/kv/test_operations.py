"""``operation_name``: the metrics label of a command or query's bytes; and error replies."""

from __future__ import annotations

import pytest

from paxon.kv.auth import AuthDisable, UserDelete
from paxon.kv.authcodec import encode_auth_command, wrap
from paxon.kv.codec import encode_command, encode_query, encode_result
from paxon.kv.model import (
    Compact,
    Compare,
    Delete,
    ErrorResult,
    Events,
    Get,
    LeaseGrant,
    LeaseKeepAlive,
    LeaseList,
    LeaseRevoke,
    LeaseTimeToLive,
    LockAcquire,
    LockState,
    Put,
    PutOp,
    PutResult,
    Txn,
)
from paxon.kv.operations import OPERATION_NAMES, error_code_of_reply, operation_name

CASES = [
    (encode_command(Put("k", b"v")), "put"),
    (encode_command(Put("k", b"v", 3, 7)), "put"),  # a CAS with a lease is still a put
    (encode_command(Delete("k", True)), "delete"),
    (encode_command(Txn((Compare("k", "version", "==", 0),), (PutOp("k", b"v"),))), "txn"),
    (encode_command(Compact(5)), "compact"),
    (encode_command(LeaseGrant(10_000)), "lease_grant"),
    (encode_command(LeaseKeepAlive(1)), "lease_keepalive"),
    (encode_command(LeaseRevoke(1)), "lease_revoke"),
    (encode_command(LockAcquire("jobs", 1, 0)), "lock"),
    (encode_query(Get("k")), "get"),
    (encode_query(LeaseTimeToLive(1)), "lease_ttl"),
    (encode_query(LeaseList()), "lease_list"),
    (encode_query(LockState("jobs")), "lock_state"),
    (encode_query(Events("k")), "watch"),
    (encode_auth_command(AuthDisable()), "auth"),
    (encode_auth_command(UserDelete("alice")), "auth"),
]


@pytest.mark.parametrize(("payload", "name"), CASES)
def test_each_command_and_query_is_named_alone_and_inside_an_auth_envelope(
    payload: bytes, name: str
) -> None:
    assert operation_name(payload) == name
    assert operation_name(wrap("token", payload)) == name
    assert name in OPERATION_NAMES


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x93", b'{"add": "hits"}', b"\x91\x7f", b"\x93\x05\xc1", wrap("t", b"not a command")],
)
def test_bytes_that_are_not_a_key_value_command_are_other(payload: bytes) -> None:
    assert operation_name(payload) == "other"


def test_error_code_of_reply_reads_only_error_results() -> None:
    assert error_code_of_reply(encode_result(ErrorResult("lease_not_found", "gone"))) == (
        "lease_not_found"
    )
    assert error_code_of_reply(encode_result(PutResult(False, 3, 1))) is None  # an answer
    assert error_code_of_reply(b"") is None
    assert error_code_of_reply(encode_result(ErrorResult("x" * 500, "long"))) == "x" * 40
