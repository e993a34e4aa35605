"""Leases end to end on three real ``Node`` objects on loopback (the ``Trio`` of
``test_history``): the client, the CLI and the HTTP API against the real store.

Time is a ``FakeWall`` the test moves (the leader's stamps follow it, as wall
and monotonic clock both), so a TTL passes without sleeping it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.node.test_history import START_S, Trio
from tests.node.test_node import eventually, run

from paxon import LeaseNotFound
from paxon.cli import main
from paxon.kv.model import Get, GetResult
from paxon.kv.store import KvStore
from paxon.node.history import HistoryRetention
from paxon.node.kvservice import NodeKvService
from paxon.server.http import start_http

DEFAULT_RETENTION = [HistoryRetention()] * 3


def keys_on(store: KvStore, prefix: str) -> list[str]:
    result = store.read(Get(prefix, True))
    assert isinstance(result, GetResult)
    return [kv.key for kv in result.items]


def test_a_lease_ends_on_every_node_at_one_revision_once_log_time_passes_its_ttl(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            granted = await client.grant_lease(2)
            assert granted.ttl_ms == 2000
            await client.put("svc/a", "1", lease=granted.lease)
            await client.put("svc/b", "2", lease=granted.lease)
            revision_before = await client.put("other", "3")
            alive = await client.lease_time_to_live(granted.lease, keys=True)
            assert (alive.granted_ttl_ms, alive.keys) == (2000, ("svc/a", "svc/b"))
            assert await client.leases() == [granted.lease]

            trio.wall.now_s = START_S + 1.5  # within the TTL: nothing ends
            await asyncio.sleep(0.3)
            left = await client.lease_time_to_live(granted.lease)
            assert 0 < left.remaining_ms <= 500
            assert all(keys_on(store, "svc/") == ["svc/a", "svc/b"] for store in trio.stores())

            trio.wall.now_s = START_S + 2.5  # past it: the idle leader stamps, it expires
            await eventually(lambda: all(not keys_on(s, "svc/") for s in trio.stores()))
            await eventually(lambda: {s.revision for s in trio.stores()} == {revision_before + 1})
            for store in trio.stores():
                assert keys_on(store, "") == ["other"]
            assert await client.get("svc/a") is None
            kept = await client.get("svc/a", revision=revision_before)
            assert kept is not None and kept.value == b"1"
            with pytest.raises(LeaseNotFound):
                await client.lease_time_to_live(granted.lease)
            with pytest.raises(LeaseNotFound):
                await client.keep_alive(granted.lease)
            with pytest.raises(LeaseNotFound):
                await client.put("svc/c", "late", lease=granted.lease)
            assert await client.leases() == []

    run(scenario)


def test_a_kept_lease_outlives_several_ttls_and_is_revoked_on_leaving(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            async with client.lease(2, keep_alive_interval=0.02) as lease:
                await client.put("lock/owner", "me", lease=lease.id)
                for step in range(1, 13):  # 6 s of log time: three TTLs
                    seen = lease.keep_alives
                    trio.wall.now_s = START_S + step * 0.5
                    await eventually(lambda seen=seen: lease.keep_alives >= seen + 2)
                    assert not lease.lost, lease.lost_reason
                left = await client.lease_time_to_live(lease.id)
                assert left.remaining_ms > 1000
                assert all(keys_on(s, "lock/") == ["lock/owner"] for s in trio.stores())
            assert not lease.lost
            await eventually(lambda: all(not keys_on(s, "lock/") for s in trio.stores()))
            assert await client.leases() == []

    run(scenario)


def test_a_kept_lease_is_lost_when_its_lease_ends_under_it(tmp_path: Path) -> None:
    """Another client revokes the lease: the keeper's next keep-alive finds it gone."""

    async def scenario() -> None:
        async with (
            Trio(tmp_path, DEFAULT_RETENTION) as trio,
            trio.client() as client,
            trio.client() as other,
            client.lease(2, keep_alive_interval=0.02) as lease,
        ):
            await other.revoke_lease(lease.id)
            await asyncio.wait_for(lease.wait_lost(), 5)
            assert lease.lost_reason is not None
            assert lease.lost_reason.startswith("LeaseNotFound: lease")

    run(scenario)


def test_the_cli_drives_a_lease_on_a_real_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio:
            endpoints = ",".join(trio.peers.values())

            errors: list[str] = []

            async def paxon(*argv: str) -> tuple[int, str]:
                code = await asyncio.to_thread(main, [*argv, "--endpoints", endpoints])
                captured = capsys.readouterr()
                errors.append(captured.err)
                return code, captured.out

            code, out = await paxon("lease", "grant", "5", "--json")
            assert code == 0
            granted = json.loads(out)
            assert granted["ttl"] == 5
            lease = str(granted["id"])
            assert await paxon("put", "job/1", "x", "--lease", lease) == (0, "1\n")
            code, out = await paxon("lease", "ttl", lease, "--keys", "--json")
            assert json.loads(out) == {
                "id": int(lease),
                "granted_ttl": 5,
                "ttl": 5,
                "keys": ["job/1"],
            }
            assert await paxon("lease", "ttl", lease) == (0, f"lease {lease}: 5 s left of 5 s\n")
            assert await paxon("lease", "keep-alive", lease, "--once") == (0, "5\n")
            assert await paxon("lease", "list") == (0, f"{lease}\n")
            assert await paxon("lease", "revoke", lease) == (0, "1\n")
            assert await paxon("get", "job/1") == (1, "")
            assert await paxon("lease", "ttl", lease) == (1, "")
            assert errors[-1].startswith(f"paxon lease ttl: lease {lease} does not exist")
            assert await paxon("lease", "keep-alive", lease) == (1, "")
            assert errors[-1].startswith("paxon lease keep-alive: lease")
            txn = json.dumps({"success": [{"put": {"key": "t", "value": "v", "lease": 99}}]})
            code = await asyncio.to_thread(_txn_with_stdin, txn, endpoints)
            assert code == 1
            assert "lease 99 does not exist" in capsys.readouterr().err

    run(scenario)


def _txn_with_stdin(request: str, endpoints: str) -> int:
    import io
    import sys

    stdin, sys.stdin = sys.stdin, io.StringIO(request)
    try:
        return main(["txn", "--endpoints", endpoints])
    finally:
        sys.stdin = stdin


def test_the_http_api_drives_a_lease_on_a_real_cluster(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio:
            runner = await start_http(NodeKvService(trio.nodes[2]), "127.0.0.1", 0)
            host, port = runner.addresses[0][:2]
            base = f"http://{host}:{port}"
            try:
                async with aiohttp.ClientSession() as http:

                    async def call(method: str, path: str, **kw: Any) -> tuple[int, Any]:
                        async with http.request(method, base + path, **kw) as response:
                            return response.status, await response.json()

                    status, granted = await call("POST", "/v1/lease/grant", json={"ttl": 2})
                    assert (status, granted["ttl"]) == (200, 2)
                    lease = granted["id"]
                    status, _ = await call("PUT", f"/v1/kv/a?lease={lease}", data=b"1")
                    assert status == 200
                    status, body = await call("GET", f"/v1/lease/{lease}?keys=1")
                    assert body == {"id": lease, "granted_ttl": 2, "ttl": 2, "keys": ["a"]}
                    status, body = await call("POST", "/v1/lease/keepalive", json={"id": lease})
                    assert body == {"id": lease, "ttl": 2}
                    assert await call("GET", "/v1/leases") == (200, {"leases": [lease]})
                    trio.wall.now_s = START_S + 3  # past the TTL
                    await eventually(lambda: all(not keys_on(s, "") for s in trio.stores()))
                    status, body = await call("GET", f"/v1/lease/{lease}")
                    assert (status, body["code"]) == (404, "lease_not_found")
                    status, body = await call("POST", "/v1/lease/revoke", json={"id": lease})
                    assert (status, body["code"]) == (404, "lease_not_found")
                    status, body = await call("PUT", f"/v1/kv/b?lease={lease}", data=b"1")
                    assert (status, body["code"]) == (404, "lease_not_found")
            finally:
                await runner.cleanup()

    run(scenario)


def test_a_kept_lease_without_a_quorum_is_retried_for_its_ttl_then_lost(tmp_path: Path) -> None:
    """Two of three nodes stop: every keep-alive fails, and is retried until the
    lease's TTL (2 s, counted from the last one that got through) has run out;
    then the lease is lost. Log time stands still here, so the cluster itself
    has not expired it: the client gives up first, never later."""

    async def scenario() -> None:
        async with Trio(tmp_path, DEFAULT_RETENTION) as trio, trio.client() as client:
            loop = asyncio.get_running_loop()
            async with client.lease(2, keep_alive_interval=0.1) as lease:
                await client.put("lock/owner", "me", lease=lease.id)
                await eventually(lambda: lease.keep_alives >= 2)
                for node_id in sorted(trio.nodes)[:2]:
                    await trio.nodes.pop(node_id).stop()
                stopped_s = loop.time()
                await asyncio.sleep(1.2)
                assert not lease.lost, "lost before its TTL could have run out"
                await asyncio.wait_for(lease.wait_lost(), 5)
                lost_after_s = loop.time() - stopped_s
                assert 1.5 < lost_after_s < 2.5, lost_after_s
                assert lease.lost_reason is not None
                assert "no keep-alive succeeded within its TTL" in lease.lost_reason
            (survivor,) = trio.stores()
            assert keys_on(survivor, "lock/") == ["lock/owner"]

    run(scenario)
