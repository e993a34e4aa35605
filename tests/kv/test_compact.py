"""Compaction of the store's history: the ``Compact`` command, the leader's
``compact_history`` and the hard cap, each shown by what reads see afterwards."""

from __future__ import annotations

import pytest

from paxon.errors import RevisionCompacted
from paxon.kv.codec import decode_result, encode_command
from paxon.kv.model import (
    DEFAULT_LIMITS,
    HISTORY_REVISIONS_MAX,
    Compact,
    CompactResult,
    ErrorResult,
    Get,
    GetResult,
    KvLimits,
    Put,
)
from paxon.kv.store import DROP_ENTRIES_PER_COMMIT, KvStore


def store_with_history(writes: int = 10) -> KvStore:
    """Key ``a`` at values 1..writes, one revision each; ``b`` put once at revision 1."""
    store = KvStore()
    store.execute(Put("b", b"only"))
    for number in range(2, writes + 1):
        store.execute(Put("a", str(number).encode()))
    assert store.revision == writes
    return store


def value_at(store: KvStore, key: str, revision: int) -> bytes | None:
    result = store.read(Get(key, revision=revision))
    assert isinstance(result, GetResult), result
    return result.items[0].value if result.items else None


def refusal_at(store: KvStore, revision: int) -> RevisionCompacted:
    result = store.read(Get("a", revision=revision))
    assert isinstance(result, ErrorResult), result
    error = result.to_error()
    assert isinstance(error, RevisionCompacted)
    return error


def test_compact_drops_the_history_below_it_and_keeps_the_rest() -> None:
    store = store_with_history(10)
    assert value_at(store, "a", 3) == b"3"
    result = store.execute(Compact(6))
    assert result == CompactResult(revision_compacted=6, revision=10)
    store.check_invariants()
    assert store.revision == 10, "a compaction moves no revision"
    assert store.revision_compacted == 6
    for revision in range(6, 11):
        assert value_at(store, "a", revision) == str(revision).encode()
    assert value_at(store, "b", 6) == b"only"  # unchanged since revision 1: still readable
    error = refusal_at(store, 5)
    assert error.revision_compacted == 6
    assert "the oldest kept is 6" in str(error)
    assert error.exit_code == 1


def test_compact_ahead_of_the_store_is_a_bad_request_and_changes_nothing() -> None:
    store = store_with_history(5)
    before = store.snapshot()
    result = store.execute(Compact(6))
    assert isinstance(result, ErrorResult) and result.code == "bad_request"
    assert "ahead of the store (5)" in result.message
    assert store.snapshot() == before


def test_compact_at_or_below_what_is_compacted_is_refused_as_compacted() -> None:
    store = store_with_history(8)
    assert isinstance(store.execute(Compact(4)), CompactResult)
    before = store.snapshot()
    for revision in (4, 2, 0):
        result = store.execute(Compact(revision))
        assert isinstance(result, ErrorResult) and result.code == "compacted", revision
        error = result.to_error()
        assert isinstance(error, RevisionCompacted) and error.revision_compacted == 4
    assert store.snapshot() == before
    assert store.execute(Compact(8)) == CompactResult(8, 8)  # up to the present works
    assert value_at(store, "a", 8) == b"8"


def test_compact_through_the_bytes_api_is_logged_like_any_command() -> None:
    store = store_with_history(4)
    reply = decode_result(store.apply(encode_command(Compact(3))))
    assert reply == CompactResult(3, 4)
    assert store.revision_compacted == 3


def test_the_leaders_compaction_cuts_the_same_history_and_never_refuses() -> None:
    store, twin = store_with_history(10), store_with_history(10)
    assert store.compact_history(7)
    twin.execute(Compact(7))
    assert store.snapshot() == twin.snapshot()
    # Not above what is compacted, or ahead of the store: nothing changes.
    assert not store.compact_history(7)
    assert not store.compact_history(3)
    assert not store.compact_history(11)
    assert store.revision_compacted == 7
    store.check_invariants()


def test_a_snapshot_keeps_what_was_compacted() -> None:
    store = store_with_history(10)
    store.execute(Compact(6))
    restored = KvStore()
    restored.restore(store.snapshot())
    restored.check_invariants()
    assert restored.revision_compacted == 6
    assert refusal_at(restored, 5).revision_compacted == 6
    assert value_at(restored, "a", 6) == b"6"
    assert restored.snapshot() == store.snapshot()
    result = restored.execute(Compact(6))
    assert isinstance(result, ErrorResult) and result.code == "compacted"


def test_the_hard_cap_is_far_above_the_leaders_default_and_still_compacts() -> None:
    assert DEFAULT_LIMITS.history_max_revisions == HISTORY_REVISIONS_MAX == 1_000_000
    # Without any Compact, the store keeps 10,000+ revisions (the old default cut here).
    store = KvStore()
    for number in range(12_000):
        store.execute(Put("hot", number.to_bytes(4, "big")))
    assert store.revision_compacted == 0
    assert value_at(store, "hot", 1) == (0).to_bytes(4, "big")
    # The cap itself, made small: compacts with no command.
    capped = KvStore(KvLimits(history_max_revisions=10))
    for number in range(40):
        capped.execute(Put("hot", number.to_bytes(4, "big")))
    assert 40 - 10 - 10 // 8 - 1 <= capped.revision_compacted <= 40 - 10
    capped.check_invariants()


def test_a_large_cut_frees_memory_in_chunks_invisibly() -> None:
    """Reads and snapshots see the whole cut at once; the entries are freed a
    chunk per command (a million at once stalled the loop for 0.8 s)."""
    entries = 3 * DROP_ENTRIES_PER_COMMIT + 100
    store = KvStore()
    for number in range(entries + 7):  # the first put of each of 7 keys retires nothing
        store.execute(Put(f"k{number % 7}", str(number).encode()))
    assert len(store._history_queue) == entries
    store.execute(Compact(store.revision))
    store.check_invariants()
    assert len(store._history_queue) == entries - DROP_ENTRIES_PER_COMMIT, "one chunk now"
    refusal = store.read(Get("k0", revision=store.revision - 1))
    assert isinstance(refusal, ErrorResult) and refusal.code == "compacted"
    restored = KvStore()
    restored.restore(store.snapshot())  # it holds no dead entry: it would not decode
    assert restored.snapshot() == store.snapshot()
    assert len(restored._history_queue) == 0
    for _ in range(3):
        store.execute(Put("k0", b"later"))  # each write frees another chunk
        restored.execute(Put("k0", b"later"))
        store.check_invariants()
    assert len(store._history_queue) == 3  # only the three writes' own entries
    assert store.snapshot() == restored.snapshot()


def test_history_is_capped_by_bytes_as_well() -> None:
    """Large values: the revision cap alone bounds nothing (a million 1 MiB
    values), so the entries not yet cut are held under ``history_max_bytes``:
    past it, history is cut to seven eighths of it, oldest revisions first."""
    from paxon.kv.model import HISTORY_ENTRY_OVERHEAD_BYTES

    entry_bytes = len("a") + 1000 + HISTORY_ENTRY_OVERHEAD_BYTES
    limits = KvLimits(history_max_bytes=20 * entry_bytes)
    store = KvStore(limits)
    compacted_at = []
    for number in range(1, 101):
        store.execute(Put("a", bytes([number % 256]) * 1000))
        store.check_invariants()  # asserts the live bytes stay under the cap
        compacted_at.append(store.revision_compacted)
    assert compacted_at[20] == 0  # 21 puts, 20 history entries: at the cap
    assert compacted_at[21] > 0  # 21 entries are over it: cut
    kept = store.revision - store.revision_compacted
    assert 16 <= kept <= 21, kept  # between seven eighths of the cap and the cap
    assert value_at(store, "a", store.revision_compacted) is not None
    assert isinstance(refusal_at(store, store.revision_compacted - 1), RevisionCompacted)


def test_the_byte_cap_cuts_at_the_same_revisions_after_a_restore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cap is replicated state: a replica restored from a snapshot (whose
    dead entries are gone, not waiting to be freed) cuts exactly where one
    that applied every command does, cut entries still waiting there."""
    from paxon.kv import store as store_module

    monkeypatch.setattr(store_module, "DROP_ENTRIES_PER_COMMIT", 1)  # cut entries wait
    limits = KvLimits(history_max_bytes=50_000)
    applied = KvStore(limits)
    commands = [Put(f"k{n % 7}", bytes([n % 256]) * (100 + 37 * (n % 11))) for n in range(600)]
    restored: KvStore | None = None
    for index, command in enumerate(commands):
        applied.execute(command)
        if index == 250:
            # A large cut (the leader's retention): its entries wait to be freed,
            # and the snapshot taken now holds none of them.
            assert applied.compact_history(applied.revision - 3)
            assert applied._dead_pending > 10
            restored = KvStore(limits)
            restored.restore(applied.snapshot())
        elif restored is not None:
            restored.execute(command)
            assert restored.revision_compacted == applied.revision_compacted
    assert restored is not None and applied.revision_compacted > 0
    restored.check_invariants()
    applied.check_invariants()
    assert restored.snapshot() == applied.snapshot()
