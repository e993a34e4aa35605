"""Watches held by a node until a change they ask for is applied
(``paxon.node.watches``): on a real 3-node loopback cluster, and the parking's
own rules (limits, stale deadlines, waking by key and prefix)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.node.test_node import eventually, free_ports, run

from paxon.client import Client
from paxon.kv.codec import decode_result, encode_query
from paxon.kv.model import Events, EventsResult, Put
from paxon.kv.store import KvStore
from paxon.node import Node
from paxon.node.watches import PARKED_MAX, WatchParking


class Trio:
    def __init__(self, root: Path) -> None:
        self.peers = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(free_ports(3))}
        self.nodes = {
            node_id: Node(node_id, self.peers, str(root / f"n{node_id}"), KvStore())
            for node_id in self.peers
        }

    async def __aenter__(self) -> Trio:
        for node in self.nodes.values():
            await node.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for node in self.nodes.values():
            await node.stop()

    def client(self) -> Client:
        return Client(list(self.peers.values()), timeout=10.0)

    def follower(self) -> Node:
        return next(node for node in self.nodes.values() if not node.is_leader)


async def watch(node: Node, query: Events) -> EventsResult:
    reply = await node.query(encode_query(query), linearizable=False)
    result = decode_result(reply)
    assert isinstance(result, EventsResult), result
    return result


def test_a_held_watch_is_answered_when_its_key_changes_on_that_node(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path) as trio, trio.client() as client:
            revision = await client.put("other", b"x")
            await eventually(lambda: trio.follower().machine.slot_applied > 0)
            follower = trio.follower()
            start = revision + 1
            held = asyncio.ensure_future(watch(follower, Events("k", False, start, wait_ms=10_000)))
            prefixed = asyncio.ensure_future(
                watch(follower, Events("dir/", True, start, wait_ms=10_000))
            )
            await asyncio.sleep(0.2)
            assert not held.done() and not prefixed.done(), "nothing changed yet"
            await client.put("unrelated", b"y")
            await asyncio.sleep(0.2)
            assert not held.done() and not prefixed.done(), "a change of another key wakes no one"
            sent = time.perf_counter()
            written = await client.put("k", b"v")
            page = await asyncio.wait_for(held, 5)
            took = time.perf_counter() - sent
            assert [(e.type, e.kv.key, e.kv.mod_revision) for e in page.events] == [
                ("put", "k", written)
            ]
            assert page.next_revision == written + 1
            assert took < 1.0, f"held watch answered {took:.2f} s after the write"
            written = await client.put("dir/a", b"1")
            prefix_page = await asyncio.wait_for(prefixed, 5)
            assert [e.kv.key for e in prefix_page.events] == ["dir/a"]

    run(scenario)


def test_a_held_watch_with_nothing_is_answered_empty_when_its_wait_ends(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path) as trio, trio.client() as client:
            revision = await client.put("k", b"v")
            node = trio.nodes[1]
            await eventually(lambda: node.machine.slot_applied > 0)
            started = time.perf_counter()
            page = await watch(node, Events("k", False, revision + 1, wait_ms=300))
            waited = time.perf_counter() - started
            assert page.events == () and page.next_revision == revision + 1
            assert 0.25 <= waited < 2.0, waited

    run(scenario)


# ------------------------------------------------------------------ the parking alone


class _Answers:
    def __init__(self) -> None:
        self.got: list[tuple[bytes | None, Exception | None]] = []

    def __call__(self, reply: bytes | None, error: Exception | None) -> None:
        self.got.append((reply, error))


def test_the_parking_is_bounded_and_forgets_answered_deadlines() -> None:
    store = KvStore()
    parking = WatchParking(lambda: store, store.query)
    payload = encode_query(Events("k", False, 1, wait_ms=30_000))
    empty = store.query(payload)
    answers = _Answers()
    for _ in range(PARKED_MAX):
        assert parking.park(payload, empty, 0.0, answers)
    assert not parking.park(payload, empty, 0.0, answers), "past PARKED_MAX: answered at once"
    store.execute(Put("k", b"v"))
    parking.on_applied()
    assert len(parking) == 0 and len(answers.got) == PARKED_MAX
    # Re-parked and answered many times, the deadline heap stays bounded.
    for _ in range(500):
        following = encode_query(Events("k", False, store.revision + 1, wait_ms=30_000))
        assert parking.park(following, store.query(following), 0.0, answers)
        store.execute(Put("k", b"v"))
        parking.on_applied()
    assert len(parking) == 0 and len(answers.got) == PARKED_MAX + 500
    assert len(parking._deadlines) <= 64


def test_a_query_that_does_not_ask_to_wait_or_has_events_is_not_parked() -> None:
    store = KvStore()
    store.execute(Put("k", b"v"))
    parking = WatchParking(lambda: store, store.query)
    answers = _Answers()
    with_events = encode_query(Events("k", False, 1, wait_ms=1_000))
    no_wait = encode_query(Events("k", False, 5))
    assert not parking.park(with_events, store.query(with_events), 0.0, answers)
    assert not parking.park(no_wait, store.query(no_wait), 0.0, answers)


def test_an_expired_wait_gets_its_empty_page_and_a_restored_store_wakes_everyone() -> None:
    store = KvStore()
    parking = WatchParking(lambda: store, store.query)
    answers = _Answers()
    payload = encode_query(Events("k", False, 1, wait_ms=1_000))
    parking.park(payload, store.query(payload), 10.0, answers)
    parking.on_tick(10.5)
    assert answers.got == []
    parking.on_tick(11.0)
    ((reply, error),) = answers.got
    assert error is None and reply is not None
    result = decode_result(reply)
    assert isinstance(result, EventsResult) and result.events == ()
    # After a restore the store cannot say what changed: every watch runs again.
    parking.park(payload, store.query(payload), 20.0, answers)
    source = KvStore()
    source.execute(Put("k", b"from a snapshot"))
    store.restore(source.snapshot())
    assert store.changed_since(1) is None
    parking.on_applied()
    assert len(answers.got) == 2 and answers.got[1][0] is not None
