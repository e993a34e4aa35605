"""``GET /health`` and ``GET /readyz`` against a fake KvService: open without a
token, 200 or 503 with the failing check named, nothing sensitive in the body."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.server.test_http import Client, FakeKv, serve

from paxon.errors import PermissionDenied
from paxon.node.readiness import DiskState, Facts, judge
from paxon.storage.backup import BackupMeta, decode_backup

SECRET_HEADERS = {"Authorization": "Bearer not-a-real-token"}


def report(**changes: Any) -> dict[str, Any]:
    facts = Facts(
        node_id=2,
        role="follower",
        leader=1,
        contact_age_s=0.05,
        contact_max_s=0.6,
        slot_applied=10,
        slot_chosen_heard=10,
        disk=DiskState(ok_at=99.5),
        now=100.0,
    )
    fields = {name: getattr(facts, name) for name in Facts.__dataclass_fields__}
    return judge(Facts(**(fields | changes)))


def test_health_answers_while_the_process_serves_without_a_token() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.get("/health")
        assert response.status == 200
        assert await response.json() == {"health": "ok", "node_id": None}
        assert response.headers["Cache-Control"] == "no-store"

    serve(service, scenario)


def test_readyz_is_200_when_ready_and_503_naming_the_failed_check() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        service.ready_report = report()
        response = await client.get("/readyz")
        assert response.status == 200
        body = await response.json()
        assert body["ready"] is True and body["failed"] is None
        assert body["checks"] == {"leader": "ok", "caught_up": "ok", "disk": "ok"}

        service.ready_report = report(contact_age_s=None, leader=None)
        response = await client.get("/readyz", headers=SECRET_HEADERS)  # a token is ignored
        assert response.status == 503
        body = await response.json()
        assert body["code"] == "not_ready" and body["failed"] == "leader"
        assert body["error"] == "not ready: leader: no leader known"
        assert set(body) == {
            "error",
            "code",
            "ready",
            "failed",
            "node_id",
            "role",
            "leader",
            "lag_slots",
            "checks",
        }

        service.ready_report = None  # a node that keeps no checks is never ready
        response = await client.get("/readyz")
        assert response.status == 503

    serve(service, scenario)


def test_readyz_refuses_unknown_query_parameters() -> None:
    async def scenario(client: Client) -> None:
        response = await client.get("/readyz?verbose=1")
        assert response.status == 400

    serve(FakeKv(), scenario)


def test_snapshot_streams_a_backup_and_passes_the_token() -> None:
    service = FakeKv()
    data = bytes(range(256)) * 9000  # over two chunks
    meta = BackupMeta(7, 3, 12, 1000, 1, "paxon", "2026-01-01T00:00:00Z", len(data))
    service.backup_answer = (meta, data)

    async def scenario(client: Client) -> None:
        response = await client.get("/v1/snapshot", headers=SECRET_HEADERS)
        assert response.status == 200
        assert response.headers["X-Paxon-Revision"] == "7"
        body = await response.read()
        assert int(response.headers["Content-Length"]) == len(body)
        backup = decode_backup(body, "answer")
        assert backup.meta == meta and backup.data == data
        assert service.backup_tokens == ["not-a-real-token"]

        service.fail_with = PermissionDenied("user 'alice' may not take a backup")
        response = await client.get("/v1/snapshot")
        assert response.status == 403

    serve(service, scenario)


def test_one_backup_at_a_time() -> None:
    service = FakeKv()
    meta = BackupMeta(1, 1, 1, 0, 1, "paxon", "2026-01-01T00:00:00Z", 3)
    release = asyncio.Event()
    started = asyncio.Event()

    active: list[None] = []

    async def slow_backup(*, token: str | None = None) -> tuple[Any, bytes]:
        if active:  # another came through while the first is being sent
            raise AssertionError("two backups at once")
        active.append(None)
        started.set()
        await release.wait()
        active.clear()
        return meta, b"abc"

    service.backup = slow_backup  # type: ignore[method-assign]

    async def scenario(client: Client) -> None:
        first = asyncio.ensure_future(client.get("/v1/snapshot"))
        await started.wait()
        second = await client.get("/v1/snapshot")
        assert second.status == 503 and (await second.json())["code"] == "busy"
        release.set()
        assert (await first).status == 200
        assert (await client.get("/v1/snapshot")).status == 200  # the slot is free again

    serve(service, scenario)
