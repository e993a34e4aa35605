"""KvStore: etcd semantics, MVCC history and compaction, snapshots, and never raising.

The property tests run random command sequences against a deliberately naive
reference (a full copy of the key space per revision) and compare every
answer, every historical read the store still keeps, and the snapshots.
"""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paxon.errors import BadRequest
from paxon.kv.codec import (
    KvDecodeError,
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
    KvLimits,
    Put,
    PutOp,
    PutResult,
    Result,
    Txn,
    TxnOp,
    TxnResponse,
    TxnResult,
    validate_command,
)
from paxon.kv.sorted_keys import SortedKeys
from paxon.kv.store import KvStore

PROPERTIES = settings(derandomize=True, deadline=None, max_examples=300)


def put(store: KvStore, key: str, value: bytes, expect_version: int | None = None) -> PutResult:
    result = store.execute(Put(key, value, expect_version))
    assert isinstance(result, PutResult), result
    return result


def delete(store: KvStore, key: str, prefix: bool = False) -> DeleteResult:
    result = store.execute(Delete(key, prefix))
    assert isinstance(result, DeleteResult), result
    return result


def txn(store: KvStore, command: Txn) -> TxnResult:
    result = store.execute(command)
    assert isinstance(result, TxnResult), result
    return result


def get(
    store: KvStore, key: str, prefix: bool = False, revision: int | None = None
) -> tuple[KeyValue, ...]:
    result = store.read(Get(key, prefix, revision))
    assert isinstance(result, GetResult), result
    assert result.revision == store.revision
    return result.items


def values(items: tuple[KeyValue, ...]) -> dict[str, bytes]:
    return {kv.key: kv.value for kv in items}


# ------------------------------------------------------------------ revisions and versions


def test_puts_count_revisions_and_versions() -> None:
    store = KvStore()
    assert store.revision == 0
    assert put(store, "a", b"1") == PutResult(True, 1, 1)
    assert put(store, "b", b"1") == PutResult(True, 2, 1)
    assert put(store, "a", b"2") == PutResult(True, 3, 2)
    assert get(store, "a") == (KeyValue("a", b"2", 2, 1, 3),)
    assert get(store, "missing") == ()
    assert store.revision == 3
    assert len(store) == 2
    store.check_invariants()


def test_delete_then_put_recreates_at_version_one() -> None:
    store = KvStore()
    put(store, "a", b"1")
    put(store, "a", b"2")
    assert delete(store, "a") == DeleteResult(1, 3)
    assert get(store, "a") == ()
    assert put(store, "a", b"3") == PutResult(True, 4, 1)
    assert get(store, "a") == (KeyValue("a", b"3", 1, 4, 4),)


def test_delete_of_nothing_keeps_the_revision() -> None:
    store = KvStore()
    put(store, "a", b"1")
    assert delete(store, "b") == DeleteResult(0, 1)
    assert delete(store, "b", prefix=True) == DeleteResult(0, 1)
    assert store.revision == 1


def test_delete_prefix_removes_exactly_the_prefix_at_one_revision() -> None:
    store = KvStore()
    for key in ("a", "ab", "abc", "abd", "ac", "b"):
        put(store, key, key.encode())
    assert delete(store, "ab", prefix=True) == DeleteResult(3, 7)
    assert [kv.key for kv in get(store, "", prefix=True)] == ["a", "ac", "b"]
    store.check_invariants()


def test_get_prefix_is_sorted_and_bounded() -> None:
    store = KvStore()
    for key in ("b/2", "a", "b/10", "b/1", "b", "c", "b0"):
        put(store, key, b"")
    assert [kv.key for kv in get(store, "b/", prefix=True)] == ["b/1", "b/10", "b/2"]
    assert [kv.key for kv in get(store, "b", prefix=True)] == ["b", "b/1", "b/10", "b/2", "b0"]
    assert [kv.key for kv in get(store, "", prefix=True)] == [
        "a",
        "b",
        "b/1",
        "b/10",
        "b/2",
        "b0",
        "c",
    ]
    assert get(store, "d", prefix=True) == ()


def test_prefix_order_is_utf8_byte_order() -> None:
    store = KvStore()
    keys = ["k\u00e9", "k\U0001f600", "kz", "k\uffff", "k"]
    for key in keys:
        put(store, key, b"")
    found = [kv.key for kv in get(store, "k", prefix=True)]
    assert found == sorted(keys, key=str.encode)


# ------------------------------------------------------------------ compare-and-set


def test_cas_with_zero_means_must_not_exist() -> None:
    store = KvStore()
    assert put(store, "a", b"1", expect_version=0) == PutResult(True, 1, 1)
    assert put(store, "a", b"2", expect_version=0) == PutResult(False, 1, 1)
    assert get(store, "a")[0].value == b"1"


def test_a_put_result_is_true_exactly_when_the_put_happened() -> None:
    # docs/api.md: `ok = await kv.cas(...)`
    assert PutResult(True, 1, 1)
    assert not PutResult(False, 1, 1)


def test_cas_applies_only_on_the_current_version() -> None:
    store = KvStore()
    put(store, "a", b"1")
    put(store, "b", b"1")
    assert put(store, "a", b"x", expect_version=2) == PutResult(False, 2, 1)
    assert put(store, "a", b"x", expect_version=1) == PutResult(True, 3, 2)
    assert put(store, "missing", b"x", expect_version=1) == PutResult(False, 3, 0)
    assert store.revision == 3


# ------------------------------------------------------------------ transactions


def test_txn_writes_every_key_at_one_revision() -> None:
    store = KvStore()
    put(store, "a", b"1")
    result = txn(
        store,
        Txn(
            (Compare("a", "version", "==", 1),),
            (PutOp("a", b"2"), PutOp("b", b"1"), DeleteOp("a")),
            (),
        ),
    )
    assert result == TxnResult(
        True, 2, (PutResult(True, 2, 2), PutResult(True, 2, 1), DeleteResult(1, 2))
    )
    assert values(get(store, "", prefix=True)) == {"b": b"1"}
    assert get(store, "b")[0].mod_revision == 2
    store.check_invariants()


def test_txn_get_sees_earlier_writes_of_its_branch() -> None:
    store = KvStore()
    put(store, "a", b"old")
    result = txn(
        store,
        Txn(
            (),
            (GetOp("a"), PutOp("a", b"new"), GetOp("a"), DeleteOp("a"), GetOp("", prefix=True)),
        ),
    )
    assert result.revision == 2
    first, _, second, _, third = result.responses
    assert first == GetResult((KeyValue("a", b"old", 1, 1, 1),), 2)
    assert second == GetResult((KeyValue("a", b"new", 2, 1, 2),), 2)
    assert third == GetResult((), 2)


def test_txn_failure_branch_runs_when_a_compare_fails() -> None:
    store = KvStore()
    put(store, "a", b"1")
    result = txn(
        store,
        Txn(
            (Compare("a", "version", "==", 1), Compare("a", "value", "==", b"2")),
            (PutOp("a", b"success"),),
            (PutOp("a", b"failure"), GetOp("a")),
        ),
    )
    assert not result.succeeded
    assert result.revision == 2
    assert get(store, "a")[0].value == b"failure"


def test_txn_without_writes_keeps_the_revision() -> None:
    store = KvStore()
    put(store, "a", b"1")
    result = txn(store, Txn((), (GetOp("a"), DeleteOp("missing"), DeleteOp("z", prefix=True))))
    assert result == TxnResult(
        True,
        1,
        (GetResult((KeyValue("a", b"1", 1, 1, 1),), 1), DeleteResult(0, 1), DeleteResult(0, 1)),
    )
    assert store.revision == 1
    assert txn(store, Txn()) == TxnResult(True, 1, ())


def test_compare_on_a_missing_key_sees_zeros_and_empty_value() -> None:
    store = KvStore()
    conditions = (
        Compare("m", "version", "==", 0),
        Compare("m", "create_revision", "==", 0),
        Compare("m", "mod_revision", "<", 1),
        Compare("m", "value", "==", b""),
    )
    assert txn(store, Txn(conditions)).succeeded


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        (Compare("a", "value", "<", b"b"), True),
        (Compare("a", "value", ">", b"abc"), True),
        (Compare("a", "value", "!=", b"abd"), False),
        (Compare("a", "version", ">", 1), True),
        (Compare("a", "version", "<", 2), False),
        (Compare("a", "mod_revision", "==", 2), True),
        (Compare("a", "create_revision", "!=", 1), False),
        (Compare("a", "create_revision", ">", -1), True),
    ],
)
def test_compare_operators(condition: Compare, holds: bool) -> None:
    store = KvStore()
    put(store, "a", b"x")
    put(store, "a", b"abd")
    assert txn(store, Txn((condition,))).succeeded is holds


def test_a_key_written_twice_in_one_txn_keeps_only_the_visible_value() -> None:
    store = KvStore()
    put(store, "a", b"1")
    result = txn(
        store, Txn((), (PutOp("a", b"2"), PutOp("a", b"3"), PutOp("n", b"1"), DeleteOp("n")))
    )
    assert [response.version for response in result.responses[:2]] == [2, 3]  # type: ignore[union-attr]
    assert get(store, "a", revision=1)[0].value == b"1"
    assert get(store, "a", revision=2) == (KeyValue("a", b"3", 3, 1, 2),)
    assert get(store, "n", revision=2) == ()
    store.check_invariants()


# ------------------------------------------------------------------ history


def test_reads_at_a_past_revision() -> None:
    store = KvStore()
    put(store, "a", b"1")  # 1
    put(store, "b", b"1")  # 2
    put(store, "a", b"2")  # 3
    delete(store, "b")  # 4
    put(store, "b", b"2")  # 5
    assert get(store, "a", revision=0) == ()
    assert get(store, "a", revision=2) == (KeyValue("a", b"1", 1, 1, 1),)
    assert get(store, "a", revision=5) == (KeyValue("a", b"2", 2, 1, 3),)
    assert get(store, "b", revision=4) == ()
    assert get(store, "b", revision=5) == (KeyValue("b", b"2", 1, 5, 5),)
    assert values(get(store, "", prefix=True, revision=3)) == {"a": b"2", "b": b"1"}
    assert values(get(store, "", prefix=True, revision=4)) == {"a": b"2"}


def test_a_read_ahead_of_the_store_is_refused() -> None:
    store = KvStore()
    put(store, "a", b"1")
    result = store.read(Get("a", revision=2))
    assert isinstance(result, ErrorResult)
    assert result.code == "bad_request"
    assert "ahead" in result.message


def test_compaction_keeps_the_window_and_refuses_older_reads() -> None:
    store = KvStore(KvLimits(history_max_revisions=8))
    for number in range(1, 101):
        put(store, "a", str(number).encode())
        store.check_invariants()
        assert store.revision - store.revision_compacted < 8 + 1 + 1
        oldest = store.revision - 8
        for revision in range(max(oldest, 0), store.revision + 1):
            expected = (str(revision).encode(),) if revision else ()
            assert tuple(kv.value for kv in get(store, "a", revision=revision)) == expected
    assert store.revision_compacted > 0
    result = store.read(Get("a", revision=store.revision_compacted - 1))
    assert isinstance(result, ErrorResult)
    assert result.code == "compacted"
    assert result.to_error().exit_code == 1


def test_compaction_forgets_deleted_keys() -> None:
    store = KvStore(KvLimits(history_max_revisions=4))
    for number in range(50):
        put(store, f"k{number}", b"v")
    delete(store, "k", prefix=True)
    for _ in range(10):
        put(store, "other", b"v")
    store.check_invariants()
    assert get(store, "k", prefix=True, revision=store.revision - 4) == ()
    history = msgpack.unpackb(store.snapshot())[4]
    assert [key for key, _ in history] == ["other"]


def test_history_of_one_hot_key_stays_bounded() -> None:
    limits = KvLimits(history_max_revisions=1000)
    store = KvStore(limits)
    for number in range(10_000):
        put(store, "hot", number.to_bytes(4, "big"))
    entries = msgpack.unpackb(store.snapshot())[4][0][1]
    assert 1000 <= len(entries) <= 1000 + 1000 // 8
    store.check_invariants()


def test_zero_history_keeps_only_the_present() -> None:
    store = KvStore(KvLimits(history_max_revisions=0))
    put(store, "a", b"1")
    put(store, "a", b"2")
    assert store.revision_compacted == 2
    assert get(store, "a", revision=2)[0].value == b"2"
    assert isinstance(store.read(Get("a", revision=1)), ErrorResult)
    store.check_invariants()


# ------------------------------------------------------------------ refused commands


@pytest.mark.parametrize(
    ("command", "code", "reason"),
    [
        (Put("", b"v"), "bad_request", "key: must not be empty"),
        (Put("k" * 17, b"v"), "too_large", "key: 17 bytes > key_max_bytes 16"),
        (Put("\u00e9" * 9, b"v"), "too_large", "key: 18 bytes"),
        (Put("\ud800", b"v"), "bad_request", "not encodable as UTF-8"),
        (Put("k", b"v" * 33), "too_large", "value: 33 bytes > value_max_bytes 32"),
        (Put("k", b"v", expect_version=-1), "bad_request", "expect_version"),
        (Put("k", "v"), "bad_request", "value: expected bytes"),  # type: ignore[arg-type]
        (Delete(""), "bad_request", "key: must not be empty"),
        (Delete("", prefix=True), "bad_request", "key: must not be empty"),
        (Txn((), (PutOp("k", b""),) * 5), "bad_request", "success: 5 entries > txn_max_ops 4"),
        (Txn((Compare("", "version", "==", 1),)), "bad_request", "compare[0].key"),
        (Txn((), (), (GetOp("x"), DeleteOp(""))), "bad_request", "failure[1].key"),
        (Txn((), (PutOp("k", b"v" * 40),)), "too_large", "success[0].value"),
        (Txn((), (GetOp("", prefix=False),)), "bad_request", "success[0].key"),
    ],
)
def test_refused_commands_change_nothing(command: Command, code: str, reason: str) -> None:
    store = KvStore(KvLimits(key_max_bytes=16, value_max_bytes=32, txn_max_ops=4))
    put(store, "k", b"before")
    before = store.snapshot()
    result = store.execute(command)
    assert isinstance(result, ErrorResult)
    assert (result.code, reason in result.message) == (code, True), result.message
    assert store.snapshot() == before
    try:
        encoded = encode_command(command)
    except BadRequest:
        return  # not even encodable (a lone surrogate): it cannot reach apply
    reply = decode_result(store.apply(encoded))
    assert isinstance(reply, ErrorResult)
    assert reply.code == code
    assert store.snapshot() == before


def test_a_refused_query_is_an_error_result() -> None:
    store = KvStore()
    assert store.read(Get("")) == ErrorResult("bad_request", "key: must not be empty")
    assert isinstance(store.read(Get("a", revision=-1)), ErrorResult)
    reply = decode_result(store.query(b"\x93"))
    assert isinstance(reply, ErrorResult)
    assert reply.code == "bad_request"


def test_apply_answers_garbage_with_an_error() -> None:
    store = KvStore()
    for garbage in (b"", b"\xc1", msgpack.packb({"put": "k"}), msgpack.packb([9, "k"])):
        reply = decode_result(store.apply(garbage))
        assert isinstance(reply, ErrorResult)
        assert reply.code == "bad_request"
    assert store.revision == 0


@settings(derandomize=True, max_examples=500)
@given(st.binary(max_size=64))
def test_apply_and_query_never_raise(data: bytes) -> None:
    store = KvStore()
    put(store, "a", b"1")
    before = store.snapshot()
    reply = decode_result(store.apply(data))
    if isinstance(reply, ErrorResult):
        assert store.snapshot() == before
    decode_result(store.query(data))


def test_bytes_api_matches_the_typed_api() -> None:
    typed, raw = KvStore(), KvStore()
    commands: list[Command] = [
        Put("a", b"1"),
        Put("a", b"2", expect_version=1),
        Txn((Compare("a", "value", "==", b"2"),), (PutOp("b", b"x"), GetOp("", True))),
        Delete("a"),
    ]
    for command in commands:
        assert raw.apply(encode_command(command)) == encode_result(typed.execute(command))
    query = Get("", prefix=True, revision=2)
    assert raw.query(encode_query(query)) == encode_result(typed.read(query))


# ------------------------------------------------------------------ snapshots


def test_restore_replaces_the_state() -> None:
    source = KvStore()
    put(source, "a", b"1")
    put(source, "a", b"2")
    put(source, "b", b"\xff")
    target = KvStore()
    put(target, "zzz", b"gone")
    target.restore(source.snapshot())
    assert target.snapshot() == source.snapshot()
    assert target.revision == 3
    assert get(target, "zzz") == ()
    assert get(target, "a", revision=1)[0].value == b"1"
    target.check_invariants()


def test_restore_of_an_empty_store() -> None:
    store = KvStore()
    put(store, "a", b"1")
    store.restore(KvStore().snapshot())
    assert store.revision == 0
    assert get(store, "", prefix=True) == ()


@pytest.mark.parametrize(
    "state",
    [
        [2, 0, 0, [], []],
        [True, 0, 0, [], []],
        [1, 0, 1, [], []],
        [1, 1, 0, [["b", b"", 1, 1, 1], ["a", b"", 1, 1, 1]], []],
        [1, 1, 0, [["a", b"", 1, 1, 2]], []],
        [1, 1, 0, [["a", b"", 0, 1, 1]], []],
        [1, 2, 0, [], [["a", []]]],
        [1, 2, 0, [], [["a", [[1, b"", 1, 1, 1]]]]],
        [1, 3, 0, [["a", b"", 2, 1, 2]], [["a", [[3, b"", 1, 1, 1]]]]],
        [1, 3, 1, [], [["a", [[1, b"", 1, 1, 0]]]]],
        [1, 0, 0, "kvs", []],
        [1, 1, 0, [["a", b"", 1, 1, 1], ["a", b"", 1, 1, 1]], []],  # a key twice
        [1, 1, 0, [["a", "text", 1, 1, 1]], []],  # a value that is not bytes
        [1, 1, 0, [["a", b"", True, 1, 1]], []],  # a version that is not an integer
        [1, 1, 0, [[b"a", b"", 1, 1, 1]], []],  # a key that is not a string
        [1, 1, 0, [["a", b"", 1, 1]], []],  # a field missing
        [1, 1, 0, ["a"], []],
    ],
)
def test_restore_refuses_impossible_snapshots(state: list[object]) -> None:
    store = KvStore()
    put(store, "keep", b"me")
    before = store.snapshot()
    with pytest.raises(KvDecodeError, match="snapshot"):
        store.restore(msgpack.packb(state))
    with pytest.raises(KvDecodeError, match="snapshot"):
        store.prepare_restore(msgpack.packb(state))
    assert store.snapshot() == before


@settings(derandomize=True, max_examples=300)
@given(st.binary(max_size=64))
def test_restore_of_garbage_raises_only_kv_decode_error(data: bytes) -> None:
    store = KvStore()
    try:
        store.restore(data)
    except KvDecodeError:
        assert store.revision == 0
    else:
        store.check_invariants()


# ------------------------------------------------------------------ the sorted key index


def test_sorted_keys_across_many_buckets() -> None:
    index = SortedKeys()
    keys = [f"{(number * 7919) % 5000:05d}" for number in range(5000)]
    for key in keys:
        index.add(key)
    index.check_invariants()
    assert list(index) == sorted(keys)
    assert index.with_prefix("012") == [f"012{digit:02d}" for digit in range(100)]
    assert index.with_prefix("00") == sorted(keys)[:1000]
    for key in keys[::2]:
        index.remove(key)
    index.check_invariants()
    assert list(index) == sorted(keys[1::2])
    assert index.has_prefix("0")
    assert not index.has_prefix("9")
    assert index.with_prefix("5") == []
    for key in keys[1::2]:
        index.remove(key)
    assert list(index) == []
    assert not index.has_prefix("")
    assert SortedKeys(sorted(keys)).with_prefix("04999") == ["04999"]


# ------------------------------------------------------------------ against a reference


class Reference:
    """The store's semantics the obvious way: one full copy of the keys per revision."""

    def __init__(self, history_max: int = 10_000) -> None:
        self.states: list[dict[str, KeyValue]] = [{}]
        self.history_max = history_max
        self.compacted = 0

    @property
    def revision(self) -> int:
        return len(self.states) - 1

    def execute(self, command: Command) -> Result:
        now = self.states[-1]
        match command:
            case Put(key, value, expect_version):
                version = now[key].version if key in now else 0
                if expect_version is not None and expect_version != version:
                    return PutResult(False, self.revision, version)
                (result,) = self._run((PutOp(key, value),))
                return result
            case Delete(key, prefix):
                (result,) = self._run((DeleteOp(key, prefix),))
                return result
            case Txn(compare, success, failure):
                succeeded = all(self._holds(condition, now) for condition in compare)
                responses = self._run(success if succeeded else failure)
                return TxnResult(succeeded, self.revision, responses)
            case Compact(revision):
                if revision > self.revision:
                    message = f"revision {revision} is ahead of the store ({self.revision})"
                    return ErrorResult("bad_request", message)
                if revision <= self.compacted:
                    message = (
                        f"revision {revision} is already compacted; "
                        f"the oldest kept is {self.compacted}"
                    )
                    return ErrorResult("compacted", message)
                self.compacted = revision
                return CompactResult(revision, self.revision)
        raise AssertionError(command)

    def read(self, key: str, prefix: bool, revision: int) -> tuple[KeyValue, ...]:
        state = self.states[revision]
        return tuple(state[each] for each in sorted(state) if _matches(each, key, prefix))

    def _run(self, branch: tuple[TxnOp, ...]) -> tuple[TxnResponse, ...]:
        state = dict(self.states[-1])
        revision = self.revision + 1
        wrote = False
        outcomes: list[tuple[str, object]] = []
        for op in branch:
            match op:
                case PutOp(key, value):
                    old = state.get(key)
                    if old is None:
                        state[key] = KeyValue(key, value, 1, revision, revision)
                    else:
                        state[key] = KeyValue(
                            key, value, old.version + 1, old.create_revision, revision
                        )
                    wrote = True
                    outcomes.append(("put", state[key].version))
                case DeleteOp(key, prefix):
                    doomed = [each for each in state if _matches(each, key, prefix)]
                    for each in doomed:
                        del state[each]
                    wrote = wrote or bool(doomed)
                    outcomes.append(("delete", len(doomed)))
                case GetOp(key, prefix):
                    found = tuple(
                        state[each] for each in sorted(state) if _matches(each, key, prefix)
                    )
                    outcomes.append(("get", found))
        if wrote:
            self.states.append(state)
            # The store's hard cap: cut at revision - history_max once a step past it.
            step = max(1, self.history_max // 8)
            if self.revision - self.compacted >= self.history_max + step:
                self.compacted = self.revision - self.history_max
        final = self.revision
        responses: list[TxnResponse] = []
        for kind, outcome in outcomes:
            if kind == "put":
                responses.append(PutResult(True, final, outcome))  # type: ignore[arg-type]
            elif kind == "delete":
                responses.append(DeleteResult(outcome, final))  # type: ignore[arg-type]
            else:
                responses.append(GetResult(outcome, final))  # type: ignore[arg-type]
        return tuple(responses)

    @staticmethod
    def _holds(condition: Compare, state: dict[str, KeyValue]) -> bool:
        kv = state.get(condition.key)
        fields: dict[str, int | bytes] = {
            "version": kv.version if kv else 0,
            "value": kv.value if kv else b"",
            "mod_revision": kv.mod_revision if kv else 0,
            "create_revision": kv.create_revision if kv else 0,
        }
        actual = fields[condition.target]
        match condition.op:
            case "==":
                return actual == condition.operand
            case "!=":
                return actual != condition.operand
            case "<":
                return actual < condition.operand  # type: ignore[operator]
            case ">":
                return actual > condition.operand  # type: ignore[operator]


def _matches(candidate: str, key: str, prefix: bool) -> bool:
    return candidate.startswith(key) if prefix else candidate == key


keys = st.text(alphabet="ab", min_size=1, max_size=3)
small_values = st.binary(max_size=2)


@st.composite
def compares(draw: st.DrawFn) -> Compare:
    target = draw(st.sampled_from(COMPARE_TARGETS))
    operand: int | bytes = draw(small_values) if target == "value" else draw(st.integers(-1, 6))
    return Compare(draw(keys), target, draw(st.sampled_from(COMPARE_OPS)), operand)


txn_ops = st.one_of(
    st.builds(PutOp, keys, small_values),
    st.builds(DeleteOp, keys, st.booleans()),
    st.builds(GetOp, keys, st.booleans()),
    st.builds(GetOp, st.just(""), st.just(True)),
)
commands = st.one_of(
    st.builds(Put, keys, small_values, st.none() | st.integers(0, 4)),
    st.builds(Delete, keys, st.booleans()),
    st.builds(
        Txn,
        st.lists(compares(), max_size=2).map(tuple),
        st.lists(txn_ops, max_size=4).map(tuple),
        st.lists(txn_ops, max_size=3).map(tuple),
    ),
    st.builds(Compact, st.integers(0, 45)),
)
command_lists = st.lists(commands, max_size=40)
history_windows = st.sampled_from([0, 1, 3, 8, 10_000])


@PROPERTIES
@given(command_lists, history_windows)
def test_store_matches_the_reference(sequence: list[Command], history_max: int) -> None:
    limits = KvLimits(history_max_revisions=history_max)
    store, reference = KvStore(limits), Reference(history_max)
    for command in sequence:
        validate_command(command, limits)
        assert store.execute(command) == reference.execute(command)
        assert store.revision == reference.revision
        assert store.revision_compacted == reference.compacted
        store.check_invariants()
    for revision in range(store.revision + 1):
        for key, prefix in (("", True), ("a", True), ("a", False), ("ab", False)):
            result = store.read(Get(key, prefix, revision))
            if revision < store.revision_compacted:
                assert isinstance(result, ErrorResult) and result.code == "compacted"
            else:
                assert result == GetResult(reference.read(key, prefix, revision), store.revision)


@PROPERTIES
@given(command_lists, command_lists, history_windows)
def test_snapshot_restore_is_identical_and_deterministic(
    before: list[Command], after: list[Command], history_max: int
) -> None:
    limits = KvLimits(history_max_revisions=history_max)
    original, twin = KvStore(limits), KvStore(limits)
    for command in before:
        original.apply(encode_command(command))
        twin.apply(encode_command(command))
    snapshot = original.snapshot()
    assert twin.snapshot() == snapshot
    restored = KvStore(limits)
    restored.restore(snapshot)
    restored.check_invariants()
    assert restored.snapshot() == snapshot
    assert (restored.revision, restored.revision_compacted) == (
        original.revision,
        original.revision_compacted,
    )
    for revision in range(original.revision_compacted, original.revision + 1):
        query = Get("", prefix=True, revision=revision)
        assert restored.read(query) == original.read(query)
    for command in after:
        assert restored.apply(encode_command(command)) == original.apply(encode_command(command))
    restored.check_invariants()
    assert restored.snapshot() == original.snapshot()


def test_validate_is_what_the_store_refuses() -> None:
    limits = KvLimits(key_max_bytes=4)
    with pytest.raises(BadRequest):
        validate_command(Put("toolong", b""), limits)
    assert isinstance(KvStore(limits).execute(Put("toolong", b"")), ErrorResult)


def test_a_later_snapshot_encodes_the_state_as_of_its_capture() -> None:
    store = KvStore()
    for i in range(2500):  # more than one packing piece
        put(store, f"k{i % 1200}", str(i).encode())
    before = store.snapshot()
    encode = store.snapshot_later()
    put(store, "k1", b"changed after the capture")
    put(store, "new", b"x")
    assert encode() == before
    restored = KvStore()
    restored.restore(before)
    assert restored.snapshot() == before
