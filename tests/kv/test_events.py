"""Events (the watch's source): every change derived from the MVCC history
equals the change seen live when it was applied, in (revision, key) order,
paged without gaps or repeats, and refused below the compacted revision."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paxon.errors import RevisionCompacted
from paxon.kv.codec import decode_query, decode_result, encode_query, encode_result
from paxon.kv.model import (
    Compact,
    Delete,
    DeleteOp,
    ErrorResult,
    Event,
    Events,
    EventsResult,
    Get,
    GetResult,
    KeyValue,
    Put,
    PutOp,
    Txn,
)
from paxon.kv.store import KvStore

KEYS = ["a", "a/1", "a/2", "b"]


def snapshot_state(store: KvStore) -> dict[str, KeyValue]:
    result = store.read(Get("", prefix=True))
    assert isinstance(result, GetResult)
    return {kv.key: kv for kv in result.items}


def live_events(store: KvStore, command: object) -> list[Event]:
    """Apply ``command``; the events a watcher of everything must see, with prev."""
    before = snapshot_state(store)
    store.execute(command)  # type: ignore[arg-type]
    after = snapshot_state(store)
    events = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if new is not None and new != old:
            previous = old if old is not None and old.mod_revision != new.mod_revision else None
            events.append(Event("put", new, previous))
        elif new is None and old is not None:
            events.append(Event("delete", KeyValue(key, b"", 0, 0, store.revision), old))
    return events


def read_events(store: KvStore, query: Events) -> EventsResult:
    result = store.read(query)
    assert isinstance(result, EventsResult), result
    return result


def all_pages(store: KvStore, key: str, prefix: bool, start: int, limit: int) -> list[Event]:
    events: list[Event] = []
    cursor = (start, "")
    for _ in range(1000):
        page = read_events(store, Events(key, prefix, cursor[0], cursor[1], limit, True))
        events.extend(page.events)
        if not page.next_key:
            assert page.next_revision == max(cursor[0], store.revision + 1)
            return events
        cursor = (page.next_revision, page.next_key)
    raise AssertionError("paging did not end")


commands = st.one_of(
    st.builds(Put, st.sampled_from(KEYS), st.sampled_from([b"x", b"y", b"z"])),
    st.builds(Delete, st.sampled_from(KEYS)),
    st.builds(Delete, st.sampled_from(["a", "a/", ""]), st.just(True)),
    st.builds(
        lambda ops: Txn((), tuple(ops), ()),
        st.lists(
            st.one_of(
                st.builds(PutOp, st.sampled_from(KEYS), st.sampled_from([b"1", b"2"])),
                st.builds(DeleteOp, st.sampled_from(KEYS)),
            ),
            max_size=4,
        ),
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(commands, max_size=40),
    st.integers(0, 45),
    st.sampled_from([("", True), ("a", True), ("a/", True), ("a", False), ("b", False)]),
    st.integers(1, 5),
    st.integers(0, 20),
)
def test_events_from_history_equal_the_events_seen_live(
    script: list[object],
    start: int,
    watched: tuple[str, bool],
    limit: int,
    compact_back: int,
) -> None:
    store = KvStore()
    seen: list[Event] = []
    for command in script:
        seen.extend(live_events(store, command))
    key, prefix = watched
    compacted = max(0, store.revision - compact_back)
    if compacted > 0:
        store.execute(Compact(compacted))
    start = max(1, start)

    def matches(event: Event) -> bool:
        wanted = event.kv.key.startswith(key) if prefix else event.kv.key == key
        return wanted and event.revision >= start

    expected = [event for event in seen if matches(event)]
    if start <= store.revision_compacted:
        read_events_error(store, Events(key, prefix, start))
        return
    assert all_pages(store, key, prefix, start, limit) == expected
    # A store restored from a snapshot has no recent changes: the full scan.
    restored = KvStore()
    restored.restore(store.snapshot())
    assert restored.changed_since(start) is None or start > store.revision
    assert all_pages(restored, key, prefix, start, limit) == expected


def read_events_error(store: KvStore, query: Events) -> RevisionCompacted:
    result = store.read(query)
    assert isinstance(result, ErrorResult) and result.code == "compacted", result
    error = result.to_error()
    assert isinstance(error, RevisionCompacted)
    assert error.revision_compacted == store.revision_compacted
    return error


def test_a_watch_past_the_present_gets_nothing_and_a_cursor_at_the_next_revision() -> None:
    store = KvStore()
    store.execute(Put("k", b"v"))
    page = read_events(store, Events("k", from_revision=5))
    assert page == EventsResult((), 1, 5, "")
    page = read_events(store, Events("k", from_revision=1))
    assert [e.type for e in page.events] == ["put"] and page.next_revision == 2


def test_a_member_behind_the_cursor_keeps_the_cursor_inside_its_revision() -> None:
    # Found by the simulator's watch check (swarm seed 18): a watcher that had
    # paged to (240, "k1") asked a member still at revision 0, was given the
    # cursor (240, ""), and got the events of revision 240 up to k1 again.
    behind = KvStore()
    page = read_events(behind, Events("", True, 240, "k1", 4))
    assert page == EventsResult((), 0, 240, "k1")


def test_a_prefix_delete_of_many_keys_pages_inside_its_revision() -> None:
    store = KvStore()
    for index in range(7):
        store.execute(Put(f"p/{index}", b"v"))
    store.execute(Delete("p/", prefix=True))
    pages = []
    cursor = (8, "")
    while True:
        page = read_events(store, Events("p/", True, cursor[0], cursor[1], 3))
        pages.append([event.kv.key for event in page.events])
        if not page.next_key:
            break
        cursor = (page.next_revision, page.next_key)
    assert pages == [["p/0", "p/1", "p/2"], ["p/3", "p/4", "p/5"], ["p/6"]]


@pytest.mark.parametrize(
    "query", [Events("k"), Events("", True, 7, "a", 10, True, 500), Events("p/", True, 3)]
)
def test_events_queries_and_results_round_trip(query: Events) -> None:
    assert decode_query(encode_query(query)) == query
    store = KvStore()
    store.execute(Put("k", b"v"))
    store.execute(Delete("k"))
    result = read_events(store, Events("k", prev_kv=True))
    assert decode_result(encode_result(result)) == result


@pytest.mark.parametrize(
    "query",
    [Events("", False), Events("k", limit=0), Events("k", limit=1001), Events("k", after_key="")],
)
def test_bad_events_queries_are_refused(query: Events) -> None:
    result = KvStore().read(query)
    if query.after_key == "" and query.limit == 1000 and query.key:
        assert isinstance(result, EventsResult)  # the control: a good query is answered
    else:
        assert isinstance(result, ErrorResult) and result.code == "bad_request"
