"""The JSON shapes of docs/api.md: txn requests in, key-values and results out."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paxon.errors import BadRequest
from paxon.kv.jsonforms import keyvalue_to_json, result_to_json, txn_from_json
from paxon.kv.model import (
    Compare,
    DeleteOp,
    DeleteResult,
    ErrorResult,
    GetOp,
    GetResult,
    KeyValue,
    PutOp,
    PutResult,
    Txn,
    TxnResult,
)

API_EXAMPLE = """
{"compare": [{"key": "a", "target": "version", "op": "==", "operand": 3}],
 "success": [{"put": {"key": "a", "value": "x"}}, {"delete": {"key": "b"}},
             {"get": {"key": "c"}}],
 "failure": [{"get": {"key": "a"}}]}
"""


def test_the_spec_example() -> None:
    assert txn_from_json(json.loads(API_EXAMPLE)) == Txn(
        (Compare("a", "version", "==", 3),),
        (PutOp("a", b"x"), DeleteOp("b"), GetOp("c")),
        (GetOp("a"),),
    )


def test_every_part_is_optional() -> None:
    assert txn_from_json({}) == Txn()
    assert txn_from_json({"success": [{"put": {"key": "k", "value": ""}}]}) == Txn(
        (), (PutOp("k", b""),)
    )


def test_values_text_and_binary() -> None:
    request = {
        "compare": [
            {"key": "t", "target": "value", "op": "!=", "operand": "h\u00e9"},
            {"key": "b", "target": "value", "op": "<", "operand_b64": "/wA="},
            {"key": "n", "target": "mod_revision", "op": ">", "operand": -1},
        ],
        "success": [
            {"put": {"key": "t", "value": "h\u00e9"}},
            {"put": {"key": "b", "value_b64": "/wA="}},
            {"delete": {"key": "d/", "prefix": True}},
            {"get": {"key": "", "prefix": True}},
        ],
    }
    assert txn_from_json(request) == Txn(
        (
            Compare("t", "value", "!=", "h\u00e9".encode()),
            Compare("b", "value", "<", b"\xff\x00"),
            Compare("n", "mod_revision", ">", -1),
        ),
        (PutOp("t", b"h\xc3\xa9"), PutOp("b", b"\xff\x00"), DeleteOp("d/", True), GetOp("", True)),
    )


def _put(**fields: Any) -> dict[str, Any]:
    return {"success": [{"get": {"key": "ok"}}, {"put": fields}]}


@pytest.mark.parametrize(
    ("request_json", "message"),
    [
        ([], "request: expected an object, got a list"),
        ({"compares": []}, "request.compares: unknown field"),
        ({"compare": {}}, "compare: expected a list, got an object"),
        ({"success": None}, "success: expected a list, got null"),
        (_put(key="k", value=1), "success[1].put.value: expected a string, got a number"),
        (_put(key="k"), 'success[1].put: expected exactly one of "value" or "value_b64"'),
        (
            _put(key="k", value="a", value_b64=""),
            'success[1].put: expected exactly one of "value" or "value_b64"',
        ),
        (_put(key="k", value_b64="not base64!"), "success[1].put.value_b64: not valid base64"),
        (_put(key="k", value_b64="\u00e9"), "success[1].put.value_b64: not valid base64"),
        (_put(value="v"), "success[1].put.key: missing"),
        (_put(key="", value="v"), "success[1].put.key: expected a non-empty string"),
        (_put(key=["k"], value="v"), "success[1].put.key: expected a string, got a list"),
        (_put(key="k", value="\ud800"), "success[1].put.value: not valid Unicode text"),
        (_put(key="k", value="v", ttl=1), "success[1].put.ttl: unknown field"),
        ({"failure": [{"get": {"key": "k", "prefix": 1}}]}, "failure[0].get.prefix: expected true"),
        ({"failure": [{"delete": {"key": ""}}]}, "failure[0].delete.key: expected a non-empty"),
        ({"failure": [{"get": {"key": ""}}]}, "failure[0].get.key: expected a non-empty"),
        ({"failure": [{"range": {"key": "k"}}]}, 'failure[0]: unknown operation "range"'),
        ({"failure": [{}]}, 'failure[0]: expected an object with one of "put", "delete", "get"'),
        (
            {"failure": [{"get": {"key": "a"}, "put": {"key": "a", "value": ""}}]},
            "failure[0]: expected an object with one of",
        ),
        ({"failure": ["get"]}, "failure[0]: expected an object with one of"),
        (
            {"compare": [{"key": "a", "target": "version", "op": "=="}]},
            "compare[0].operand: missing",
        ),
        (
            {"compare": [{"key": "a", "target": "lease", "op": "==", "operand": 1}]},
            "compare[0].target: expected one of version, value, mod_revision, create_revision",
        ),
        (
            {"compare": [{"key": "a", "target": "version", "op": "<=", "operand": 1}]},
            "compare[0].op: expected one of == != < >",
        ),
        (
            {"compare": [{"key": "a", "target": "version", "op": "==", "operand": "1"}]},
            "compare[0].operand: expected an integer, got a string",
        ),
        (
            {"compare": [{"key": "a", "target": "version", "op": "==", "operand": 1.0}]},
            "compare[0].operand: expected an integer, got a number",
        ),
        (
            {"compare": [{"key": "a", "target": "version", "op": "==", "operand": True}]},
            "compare[0].operand: expected an integer, got a boolean",
        ),
        (
            {"compare": [{"key": "a", "target": "version", "op": "==", "operand": 2**64}]},
            "compare[0]: compare operand out of the 64-bit range",
        ),
        (
            {"compare": [{"key": "a", "target": "version", "op": "==", "operand_b64": ""}]},
            "compare[0].operand_b64: only for target 'value'",
        ),
        (
            {"compare": [{"key": "a", "target": "value", "op": "==", "operand": 1}]},
            "compare[0].operand: expected a string, got a number",
        ),
        (
            {"compare": [{"key": "a", "target": "value", "op": "=="}]},
            'compare[0]: expected exactly one of "operand" or "operand_b64"',
        ),
    ],
)
def test_bad_requests_name_the_path(request_json: object, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        txn_from_json(request_json)
    assert str(caught.value).startswith(message), str(caught.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["compare", "success", "put", "get", "key", "value", "op", "x"]),
            children,
            max_size=3,
        )
    ),
    max_leaves=12,
)


@settings(derandomize=True, max_examples=500)
@given(json_values)
def test_any_json_gives_a_txn_or_bad_request(request_json: object) -> None:
    try:
        assert isinstance(txn_from_json(request_json), Txn)
    except BadRequest as error:
        assert ": " in str(error)


def test_keyvalue_text_and_binary() -> None:
    assert keyvalue_to_json(KeyValue("k", "h\u00e9".encode(), 2, 1, 5)) == {
        "key": "k",
        "value": "h\u00e9",
        "version": 2,
        "create_revision": 1,
        "mod_revision": 5,
    }
    binary = keyvalue_to_json(KeyValue("k", b"\xff\xfe", 1, 3, 3))
    assert list(binary) == ["key", "value_b64", "version", "create_revision", "mod_revision"]
    assert base64.b64decode(binary["value_b64"]) == b"\xff\xfe"


def test_results() -> None:
    kv = KeyValue("a", b"1", 1, 2, 2)
    assert result_to_json(PutResult(True, 7, 2)) == {"revision": 7, "succeeded": True, "version": 2}
    assert result_to_json(DeleteResult(3, 8)) == {"deleted": 3, "revision": 8}
    assert result_to_json(GetResult((kv,), 9)) == {"revision": 9, "kvs": [keyvalue_to_json(kv)]}
    assert result_to_json(ErrorResult("compacted", "gone")) == {
        "error": "gone",
        "code": "compacted",
    }
    txn = TxnResult(False, 4, (PutResult(True, 4, 1), DeleteResult(0, 4), GetResult((kv,), 4)))
    assert result_to_json(txn) == {
        "succeeded": False,
        "revision": 4,
        "responses": [
            {"put": {"revision": 4, "succeeded": True, "version": 1}},
            {"delete": {"deleted": 0, "revision": 4}},
            {"get": {"revision": 4, "kvs": [keyvalue_to_json(kv)]}},
        ],
    }
    json.dumps(result_to_json(txn))
