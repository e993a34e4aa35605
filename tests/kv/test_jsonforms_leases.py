"""The JSON shapes of leases (``paxon.kv.jsonforms``): TTLs in seconds, ids from 1,
a txn put with a lease, and the lease results."""

from __future__ import annotations

import pytest

from paxon.errors import BadRequest
from paxon.kv.jsonforms import (
    lease_id_from_json,
    lease_ttl_ms,
    result_to_json,
    seconds_from_ms,
    txn_from_json,
)
from paxon.kv.model import (
    DEFAULT_LIMITS,
    LeaseGrantResult,
    LeaseKeepAliveResult,
    LeaseListResult,
    LeaseRevokeResult,
    LeaseTimeToLiveResult,
    PutOp,
    validate_command,
)


@pytest.mark.parametrize(
    ("seconds", "ms"),
    [(1, 1000), (2.5, 2500), (0.9996, 1000), (30 * 24 * 3600, 30 * 24 * 3600 * 1000)],
)
def test_ttl_seconds_become_milliseconds(seconds: float, ms: int) -> None:
    assert lease_ttl_ms(seconds) == ms


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (0.999, "ttl: a lease lasts from 1 to 2592000 seconds, got 0.999"),
        (0, "ttl: a lease lasts from 1 to 2592000 seconds, got 0"),
        (-5, "ttl: a lease lasts from 1"),
        (2592000.001, "ttl: a lease lasts from 1"),
        (float("inf"), "ttl: a lease lasts from 1"),
        (float("nan"), "ttl: a lease lasts from 1"),
        (True, "ttl: expected a number of seconds, got a boolean"),
        ("5", "ttl: expected a number of seconds, got a string"),
        (None, "ttl: expected a number of seconds, got null"),
    ],
)
def test_ttl_out_of_bounds_or_not_a_number(seconds: object, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        lease_ttl_ms(seconds)
    assert str(caught.value) == message or str(caught.value).startswith(message)


def test_lease_ids_are_integers_from_one() -> None:
    assert lease_id_from_json(1) == 1
    assert lease_id_from_json(2**63 - 1) == 2**63 - 1
    for bad in (0, -1, 2**63, 1.0, "1", True, None):
        with pytest.raises(BadRequest, match=r"^id: "):
            lease_id_from_json(bad)


def test_seconds_are_whole_when_they_can_be() -> None:
    assert seconds_from_ms(2000) == 2 and type(seconds_from_ms(2000)) is int
    assert seconds_from_ms(1500) == 1.5
    assert seconds_from_ms(0) == 0


def test_a_txn_put_may_carry_a_lease() -> None:
    leased = {"put": {"key": "a", "value": "1", "lease": 7}}
    txn = txn_from_json({"success": [leased, {"put": {"key": "b", "value": "2"}}]})
    assert txn.success == (PutOp("a", b"1", 7), PutOp("b", b"2", 0))
    with pytest.raises(BadRequest, match=r"^success\[0\]\.put\.lease: expected an integer"):
        txn_from_json({"success": [{"put": {"key": "a", "value": "1", "lease": "7"}}]})
    negative = txn_from_json({"success": [{"put": {"key": "a", "value": "1", "lease": -1}}]})
    with pytest.raises(BadRequest, match=r"^success\[0\]\.lease: must be between 0"):
        validate_command(negative, DEFAULT_LIMITS)


def test_lease_results() -> None:
    assert result_to_json(LeaseGrantResult(3, 10_000)) == {"id": 3, "ttl": 10}
    assert result_to_json(LeaseKeepAliveResult(3, 9_500)) == {"id": 3, "ttl": 9.5}
    assert result_to_json(LeaseRevokeResult(2, 41)) == {"deleted": 2, "revision": 41}
    assert result_to_json(LeaseTimeToLiveResult(3, 10_000, 4_250, ("a", "b"))) == {
        "id": 3,
        "granted_ttl": 10,
        "ttl": 4.25,
        "keys": ["a", "b"],
    }
    assert result_to_json(LeaseListResult((1, 3))) == {"leases": [1, 3]}
