"""The KV command decoder's limits (kv/codec.py): what a client's command may hold."""

from __future__ import annotations

import msgpack
import pytest

from paxon.kv import codec
from paxon.kv.codec import KvDecodeError, decode_command, decode_query, encode_command
from paxon.kv.model import DEFAULT_LIMITS, Compare, PutOp, Txn
from paxon.kv.store import KvStore


def test_a_command_of_tiny_arrays_is_refused_at_its_array_header() -> None:
    body = msgpack.packb([[0]] * 2**19)  # 1 MiB: 0.11 s of the loop before the limit
    with pytest.raises(KvDecodeError, match="exceeds max_array_len"):
        decode_command(body)
    with pytest.raises(KvDecodeError, match="exceeds max_array_len"):
        decode_query(body)


def test_a_tree_of_short_arrays_is_cut_off_by_the_item_budget() -> None:
    tree = [[[[0]] * 1000] * 100] * 2  # every array short enough, 400 KB in all
    body = msgpack.packb([3, tree, [], []])
    assert len(body) > codec.BUDGET_FROM_BYTES
    with pytest.raises(KvDecodeError, match="more array items than a legal command"):
        decode_command(body)


def test_the_largest_legal_txn_decodes_and_applies() -> None:
    assert DEFAULT_LIMITS.txn_max_ops <= codec.COMMAND_ARRAY_MAX
    size = codec.COMMAND_ARRAY_MAX
    compares = tuple(Compare(f"key{i}", "version", ">", 0) for i in range(size))
    ops = tuple(PutOp(f"key{i}", b"v" * 32) for i in range(size))
    txn = Txn(compares, ops, ops)
    body = encode_command(txn)
    assert len(body) > codec.BUDGET_FROM_BYTES  # so the budget is counted
    assert decode_command(body) == txn
    # The store refuses it by its own (smaller) txn_max_ops, as a reply, not a crash.
    assert b"bad_request" in KvStore().apply(body)
