"""``kv.watch()`` on a real 3-node loopback cluster: every event once, in
order, across a member going away; resuming from ``watch.revision + 1``;
progress while idle; compacted history refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.node.test_history import Trio
from tests.node.test_node import eventually, run

from paxon.client import Client
from paxon.errors import RevisionCompacted
from paxon.kv.model import DeleteOp, Event, PutOp, Txn
from paxon.kv.store import KvStore
from paxon.node.history import HistoryRetention

DEFAULT_RETENTION = [HistoryRetention()] * 3


def described(events: list[Event]) -> list[tuple[str, str, int]]:
    return [(event.type, event.kv.key, event.revision) for event in events]


def test_a_watch_sees_every_change_once_in_order_while_a_member_stops(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as writer:
            follower = next(node for node in trio.nodes.values() if not node.is_leader)
            first_address = trio.peers[follower.node_id]
            others = [a for a in trio.peers.values() if a != first_address]
            # The watcher asks the follower first, then the others.
            async with Client([first_address, *others], timeout=5.0) as watcher:
                start = await writer.put("seed", b"0") + 1
                seen: list[Event] = []
                watch = watcher.watch("w/", prefix=True, from_revision=start, wait=0.5)

                async def follow(count: int) -> None:
                    async for event in watch:
                        seen.append(event)
                        if len(seen) == count:
                            return

                following = asyncio.ensure_future(follow(27))
                expected = []
                for number in range(10):
                    revision = await writer.put(f"w/{number % 3}", str(number))
                    expected.append(("put", f"w/{number % 3}", revision))
                revision = (
                    await writer.txn(Txn((), (PutOp("w/x", b"1"), PutOp("w/y", b"2"))))
                ).revision
                expected += [("put", "w/x", revision), ("put", "w/y", revision)]
                await writer.put("elsewhere", b"not watched")
                await asyncio.sleep(0.3)
                await follower.stop()  # the member the watcher reads from goes away
                for number in range(10, 20):
                    revision = await writer.put(f"w/{number % 3}", str(number))
                    expected.append(("put", f"w/{number % 3}", revision))
                deleted = await writer.delete("w/", prefix=True)
                deleting = ("w/0", "w/1", "w/2", "w/x", "w/y")
                expected += [("delete", key, deleted.revision) for key in deleting]
                await asyncio.wait_for(following, 20)
                assert described(seen) == expected
                assert watch.revision == deleted.revision, "every event through it handed out"

    run(scenario)


def test_resuming_from_revision_plus_one_neither_skips_nor_repeats(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            start = await client.put("k", b"0") + 1
            for number in range(1, 6):
                await client.put("k", str(number))
            await client.txn(Txn((), (DeleteOp("k"),)))
            first = client.watch("k", from_revision=start, wait=0.2)
            taken = [await first.__anext__() for _ in range(3)]
            resumed = client.watch("k", from_revision=first.revision + 1, wait=0.2)
            rest = [await resumed.__anext__() for _ in range(3)]
            assert [e.revision for e in taken + rest] == list(range(start, start + 6))
            assert rest[-1].type == "delete"
            # Inside a revision (a txn's two keys), the revision is not whole yet.
            both = (await client.txn(Txn((), (PutOp("t/a", b"1"), PutOp("t/b", b"2"))))).revision
            inside = client.watch("t/", prefix=True, from_revision=both, wait=0.2)
            assert (await inside.__anext__()).kv.key == "t/a"
            assert inside.revision == both - 1
            assert (await inside.__anext__()).kv.key == "t/b"
            assert inside.revision == both
            del trio

    run(scenario)


def test_an_idle_watch_reports_progress_and_a_compacted_start_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            for number in range(5):
                await client.put("k", str(number))
            progress: list[int] = []
            watch = client.watch("quiet", wait=0.2, on_progress=progress.append)
            waiting = asyncio.ensure_future(watch.__anext__())
            await asyncio.sleep(0.7)
            assert not waiting.done() and progress and progress[-1] == 5
            revision = await client.put("quiet", b"now")
            event = await asyncio.wait_for(waiting, 5)
            assert (event.type, event.revision) == ("put", revision)
            await client.compact(4)
            with pytest.raises(RevisionCompacted) as caught:
                await client.watch("k", from_revision=3).__anext__()
            assert caught.value.revision_compacted == 4
            del trio

    run(scenario)


def test_paxon_watch_prints_each_change_as_a_json_line(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            start = await client.put("cfg/a", b"1")
            await client.put("cfg/a", b"2")
            await client.delete("cfg/a")
            endpoints = ",".join(trio.peers.values())
            argv = [sys.executable, "-m", "paxon", "watch", "cfg/", "--prefix"]
            argv += ["--from-revision", str(start), "--json", "--prev", "--endpoints", endpoints]
            watcher = await asyncio.create_subprocess_exec(
                *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            assert watcher.stdout is not None
            lines = [json.loads(await asyncio.wait_for(watcher.stdout.readline(), 20))]
            lines += [json.loads(await asyncio.wait_for(watcher.stdout.readline(), 5))]
            lines += [json.loads(await asyncio.wait_for(watcher.stdout.readline(), 5))]
            await client.put("cfg/b", "live")
            lines += [json.loads(await asyncio.wait_for(watcher.stdout.readline(), 5))]
            watcher.terminate()
            await watcher.wait()
            assert [(line["type"], line["key"], line["mod_revision"]) for line in lines] == [
                ("put", "cfg/a", start),
                ("put", "cfg/a", start + 1),
                ("delete", "cfg/a", start + 2),
                ("put", "cfg/b", start + 3),
            ]
            assert lines[1]["value"] == "2" and lines[1]["prev"]["value"] == "1"
            assert "value" not in lines[2] and lines[2]["prev"]["value"] == "2"

    run(scenario)


def test_the_sync_client_watches_too(tmp_path: Path) -> None:
    from paxon.client import SyncClient

    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            start = await client.put("s", b"1")
            await client.put("s", b"2")

            def blocking() -> list[bytes]:
                with SyncClient(list(trio.peers.values()), timeout=5.0) as kv:
                    events = kv.watch("s", from_revision=start, wait=0.2)
                    return [next(events).kv.value, next(events).kv.value]

            assert await asyncio.to_thread(blocking) == [b"1", b"2"]

    run(scenario)


def test_the_http_watch_streams_json_lines_and_progress(tmp_path: Path) -> None:
    import json

    import aiohttp

    from paxon.node.kvservice import NodeKvService
    from paxon.server import http as http_module
    from paxon.server.http import start_http

    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            start = await client.put("h/a", b"1")
            runner = await start_http(NodeKvService(trio.nodes[2]), "127.0.0.1", 0)
            host, port = runner.addresses[0][:2]
            base = f"http://{host}:{port}"
            saved_wait = http_module.WATCH_WAIT_S
            http_module.WATCH_WAIT_S = 0.3  # a progress line soon
            try:
                async with aiohttp.ClientSession() as http:
                    url = f"{base}/v1/watch/h/?prefix=1&from_revision={start}&prev=1"
                    async with http.get(url) as stream:
                        assert stream.status == 200
                        assert stream.headers["Content-Type"] == "application/x-ndjson"

                        async def line() -> dict[str, object]:
                            raw = await asyncio.wait_for(stream.content.readline(), 5)
                            parsed: dict[str, object] = json.loads(raw)
                            return parsed

                        async def event_line() -> dict[str, object]:
                            found = await line()
                            while "progress" in found:  # this node may lag a little
                                found = await line()
                            return found

                        assert (await event_line())["key"] == "h/a"
                        progress = await line()  # idle now: progress at the revision
                        assert progress == {"progress": start}
                        written = await client.put("h/b", b"2")
                        event = await event_line()
                        assert (event["type"], event["key"], event["mod_revision"]) == (
                            "put",
                            "h/b",
                            written,
                        )
                    await client.compact(written)
                    served = trio.nodes[2].machine.machine
                    assert isinstance(served, KvStore)
                    await eventually(lambda: served.revision_compacted == written)
                    async with http.get(f"{base}/v1/watch/h/a?from_revision=1") as refused:
                        assert refused.status == 400
                        assert (await refused.json())["code"] == "compacted"
            finally:
                http_module.WATCH_WAIT_S = saved_wait
                await runner.cleanup()

    run(scenario)
