"""The HTTP endpoint against a fake KvService holding a dict.

Each test runs an aiohttp TestServer on loopback inside ``asyncio.run``; the
fake answers at once, so nothing waits on the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from paxon.errors import (
    Busy,
    LeaderUnreachable,
    LeaseNotFound,
    NoQuorum,
    NotLeader,
    PaxonError,
    RevisionCompacted,
    Timeout,
    Unauthenticated,
    Unavailable,
    ValueTooLarge,
)
from paxon.kv.model import (
    CompactResult,
    Compare,
    DeleteOp,
    DeleteResult,
    GetOp,
    GetResult,
    KeyValue,
    LeaseGrantResult,
    LeaseKeepAliveResult,
    LeaseListResult,
    LeaseRevokeResult,
    LeaseTimeToLiveResult,
    PutOp,
    PutResult,
    Txn,
    TxnResponse,
    TxnResult,
)
from paxon.node.metrics import NodeMetrics
from paxon.server.http import make_app, start_http

Client = TestClient[web.Request, web.Application]
Scenario = Callable[[Client], Awaitable[None]]

JSON = {"Content-Type": "application/json"}

STATUS = {
    "members": [
        {
            "id": 1,
            "address": "127.0.0.1:7001",
            "role": "leader",
            "ballot": "3.1",
            "commit_index": 9,
            "applied_index": 9,
            "log_start": 1,
            "snapshot_index": 0,
            "reachable": True,
        }
    ],
    "leader": 1,
}

COMPARE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}


class FakeKv:
    """A KvService over a dict; ``fail_with`` makes the next call raise it."""

    def __init__(self) -> None:
        self.items: dict[str, KeyValue] = {}
        self.revision = 0
        self.fail_with: BaseException | None = None
        self.gets: list[dict[str, Any]] = []
        self.puts: list[tuple[str, bytes, int | None]] = []
        self.lease_table: dict[int, tuple[int, set[str]]] = {}  # id -> (ttl_ms, keys)
        self.lease_calls: list[tuple[str, object, str | None]] = []
        self.txns: list[Txn] = []
        self.compactions: list[tuple[int, str | None]] = []
        self.member_changes: list[tuple[str, int, str, str | None]] = []
        self.metrics = NodeMetrics(node_id=1)
        self.ready_report: dict[str, Any] | None = None  # readiness(): None keeps none
        self.backup_answer: tuple[Any, bytes] | None = None  # backup(): (BackupMeta, data)
        self.backup_tokens: list[str | None] = []

    async def put(
        self,
        key: str,
        value: bytes,
        *,
        expect_version: int | None,
        lease: int = 0,
        token: str | None = None,
    ) -> PutResult:
        self._maybe_fail()
        self.puts.append((key, value, expect_version))
        if lease:
            self._lease(lease)[1].add(key)
        return self._put(key, value, expect_version)

    async def grant_lease(self, ttl_ms: int, *, token: str | None = None) -> LeaseGrantResult:
        self._maybe_fail()
        self.lease_calls.append(("grant", ttl_ms, token))
        lease = max(self.lease_table, default=0) + 1
        self.lease_table[lease] = (ttl_ms, set())
        return LeaseGrantResult(lease, ttl_ms)

    async def keep_alive(self, lease: int, *, token: str | None = None) -> LeaseKeepAliveResult:
        self._maybe_fail()
        self.lease_calls.append(("keep_alive", lease, token))
        return LeaseKeepAliveResult(lease, self._lease(lease)[0])

    async def revoke_lease(self, lease: int, *, token: str | None = None) -> LeaseRevokeResult:
        self._maybe_fail()
        self.lease_calls.append(("revoke", lease, token))
        _, keys = self._lease(lease)
        del self.lease_table[lease]
        deleted = sum(self._delete(key, False).deleted for key in sorted(keys))
        return LeaseRevokeResult(deleted, self.revision)

    async def lease_time_to_live(
        self, lease: int, *, keys: bool, serializable: bool, token: str | None = None
    ) -> LeaseTimeToLiveResult:
        self._maybe_fail()
        self.lease_calls.append(("ttl", (lease, keys, serializable), token))
        ttl_ms, attached = self._lease(lease)
        return LeaseTimeToLiveResult(lease, ttl_ms, ttl_ms - 1, tuple(sorted(attached)))

    async def leases(self, *, serializable: bool, token: str | None = None) -> LeaseListResult:
        self._maybe_fail()
        self.lease_calls.append(("list", serializable, token))
        return LeaseListResult(tuple(sorted(self.lease_table)))

    def _lease(self, lease: int) -> tuple[int, set[str]]:
        if lease not in self.lease_table:
            raise LeaseNotFound(f"lease {lease} does not exist")
        return self.lease_table[lease]

    async def get(
        self,
        key: str,
        *,
        prefix: bool,
        serializable: bool,
        revision: int | None,
        token: str | None = None,
    ) -> GetResult:
        self._maybe_fail()
        self.gets.append(
            {"key": key, "serializable": serializable, "revision": revision, "token": token}
        )
        return self._get(key, prefix)

    async def delete(self, key: str, *, prefix: bool, token: str | None = None) -> DeleteResult:
        self._maybe_fail()
        return self._delete(key, prefix)

    async def txn(self, txn: Txn, *, token: str | None = None) -> TxnResult:
        self._maybe_fail()
        self.txns.append(txn)
        succeeded = all(self._holds(condition) for condition in txn.compare)
        responses: list[TxnResponse] = []
        for op in txn.success if succeeded else txn.failure:
            match op:
                case PutOp(key, value):
                    responses.append(self._put(key, value, None))
                case DeleteOp(key, prefix):
                    responses.append(self._delete(key, prefix))
                case GetOp(key, prefix):
                    responses.append(self._get(key, prefix))
        return TxnResult(succeeded, self.revision, tuple(responses))

    async def compact(self, revision: int, *, token: str | None = None) -> CompactResult:
        self._maybe_fail()
        self.compactions.append((revision, token))
        return CompactResult(revision, self.revision)

    async def authenticate(self, user: str, password: str) -> str:
        if password != "pw":
            raise Unauthenticated("authentication failed: wrong user or password")
        return f"token-of-{user}"

    def status(self) -> dict[str, Any]:
        self._maybe_fail()
        return STATUS

    async def cluster_status(self) -> dict[str, Any]:
        self._maybe_fail()
        return {**STATUS, "members": [{**row, "ballot": "9.1"} for row in STATUS["members"]]}

    async def change_members(
        self, action: str, node_id: int, address: str, *, token: str | None = None
    ) -> dict[str, Any]:
        self._maybe_fail()
        self.member_changes.append((action, node_id, address, token))
        role = "learner" if action == "add-learner" else "voter"
        return {
            "epoch": 1,
            "alpha": 64,
            "members": [{"id": node_id, "address": address, "role": role}],
        }

    def metrics_text(self) -> tuple[bytes, str]:
        return self.metrics.render()

    def readiness(self) -> dict[str, Any] | None:
        return self.ready_report

    async def backup(self, *, token: str | None = None) -> tuple[Any, bytes]:
        self.backup_tokens.append(token)
        self._maybe_fail()
        assert self.backup_answer is not None
        return self.backup_answer

    def _maybe_fail(self) -> None:
        error, self.fail_with = self.fail_with, None
        if error is not None:
            raise error

    def _put(self, key: str, value: bytes, expect_version: int | None) -> PutResult:
        old = self.items.get(key)
        version = old.version if old else 0
        if expect_version is not None and expect_version != version:
            return PutResult(False, self.revision, version)
        self.revision += 1
        created = old.create_revision if old else self.revision
        self.items[key] = KeyValue(key, value, version + 1, created, self.revision)
        return PutResult(True, self.revision, version + 1)

    def _get(self, key: str, prefix: bool) -> GetResult:
        found = [kv for k, kv in self.items.items() if k == key or (prefix and k.startswith(key))]
        return GetResult(tuple(sorted(found, key=lambda kv: kv.key)), self.revision)

    def _delete(self, key: str, prefix: bool) -> DeleteResult:
        doomed = [k for k in self.items if k == key or (prefix and k.startswith(key))]
        for k in doomed:
            del self.items[k]
        if doomed:
            self.revision += 1
        return DeleteResult(len(doomed), self.revision)

    def _holds(self, condition: Compare) -> bool:
        kv = self.items.get(condition.key)
        actual = {
            "version": kv.version if kv else 0,
            "value": kv.value if kv else b"",
            "mod_revision": kv.mod_revision if kv else 0,
            "create_revision": kv.create_revision if kv else 0,
        }[condition.target]
        return bool(COMPARE_OPS[condition.op](actual, condition.operand))


def serve(service: FakeKv, scenario: Scenario, **kw: Any) -> None:
    async def main() -> None:
        async with TestClient(TestServer(make_app(service, **kw))) as client:
            await scenario(client)

    asyncio.run(main())


async def expect_error(response: aiohttp.ClientResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    return body


# ------------------------------------------------------------------ key-value routes


def test_put_then_get_answers_the_spec_json() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.put("/v1/kv/greeting", data=b"hello")
        assert response.status == 200
        assert await response.json() == {"revision": 1}
        response = await client.put("/v1/kv/greeting", data=b"hello again")
        assert await response.json() == {"revision": 2}

        response = await client.get("/v1/kv/greeting")
        assert response.status == 200
        assert await response.json() == {
            "key": "greeting",
            "value": "hello again",
            "version": 2,
            "create_revision": 1,
            "mod_revision": 2,
        }

    serve(service, scenario)
    assert service.puts == [("greeting", b"hello", None), ("greeting", b"hello again", None)]


def test_get_absent_key_is_404() -> None:
    async def scenario(client: Client) -> None:
        body = await expect_error(await client.get("/v1/kv/missing"), 404, "not_found")
        assert "missing" in body["error"]

    serve(FakeKv(), scenario)


def test_get_prefix_lists_keys_in_order_with_the_revision() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        for key in ("app/b", "app/a", "other"):
            await client.put(f"/v1/kv/{key}", data=key.encode())
        response = await client.get("/v1/kv/app/", params={"prefix": "1"})
        assert response.status == 200
        body = await response.json()
        assert body["revision"] == 3
        assert [kv["key"] for kv in body["kvs"]] == ["app/a", "app/b"]
        assert body["kvs"][0]["value"] == "app/a"

        response = await client.get("/v1/kv/nothing/", params={"prefix": "1"})
        assert await response.json() == {"revision": 3, "kvs": []}

        response = await client.get("/v1/kv/", params={"prefix": "1"})
        assert [kv["key"] for kv in (await response.json())["kvs"]] == ["app/a", "app/b", "other"]

    serve(service, scenario)


def test_get_passes_serializable_and_revision_to_the_service() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        await client.put("/v1/kv/k", data=b"v")
        await client.get("/v1/kv/k")
        await client.get("/v1/kv/k", params={"serializable": "1", "revision": "1"})
        await client.get("/v1/kv/k", params={"serializable": "true"})

    serve(service, scenario)
    assert [(g["serializable"], g["revision"]) for g in service.gets] == [
        (False, None),
        (True, 1),
        (True, None),
    ]


def test_value_that_is_not_utf8_comes_back_as_base64() -> None:
    async def scenario(client: Client) -> None:
        await client.put("/v1/kv/blob", data=b"\xff\x00")
        body = await (await client.get("/v1/kv/blob")).json()
        assert body["value_b64"] == "/wA="
        assert "value" not in body

    serve(FakeKv(), scenario)


def test_key_is_the_percent_decoded_utf8_path() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.put(URL("/v1/kv/a%2Fb%20%C3%A9%25+", encoded=True), data=b"v")
        assert response.status == 200
        body = await (await client.get(URL("/v1/kv/a/b%20%C3%A9%25+", encoded=True))).json()
        assert body["key"] == "a/b é%+"

        response = await client.get(URL("/v1/kv/%FF", encoded=True))
        await expect_error(response, 400, "bad_request")

    serve(service, scenario)
    assert list(service.items) == ["a/b é%+"]


def test_cas_put_applies_on_matching_version_and_is_412_otherwise() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.put("/v1/kv/k", data=b"one", params={"expect_version": "0"})
        assert await response.json() == {"revision": 1}

        response = await client.put("/v1/kv/k", data=b"two", params={"expect_version": "0"})
        body = await expect_error(response, 412, "compare_failed")
        assert body["revision"] == 1
        assert body["version"] == 1

        response = await client.put("/v1/kv/k", data=b"two", params={"expect_version": "1"})
        assert await response.json() == {"revision": 2}

    serve(service, scenario)
    assert service.items["k"].value == b"two"


def test_delete_one_key_and_a_prefix() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        for key in ("a/1", "a/2", "a/3", "b"):
            await client.put(f"/v1/kv/{key}", data=b"v")
        response = await client.delete("/v1/kv/b")
        assert await response.json() == {"deleted": 1, "revision": 5}
        response = await client.delete("/v1/kv/a/", params={"prefix": "1"})
        assert await response.json() == {"deleted": 3, "revision": 6}
        response = await client.delete("/v1/kv/gone")
        assert response.status == 200
        assert await response.json() == {"deleted": 0, "revision": 6}

    serve(service, scenario)
    assert service.items == {}


# ------------------------------------------------------------------ transactions


def test_txn_takes_the_spec_request_and_answers_the_spec_shape() -> None:
    service = FakeKv()
    request = {
        "compare": [{"key": "a", "target": "version", "op": "==", "operand": 1}],
        "success": [
            {"put": {"key": "a", "value": "x"}},
            {"delete": {"key": "b"}},
            {"get": {"key": "a"}},
        ],
        "failure": [{"get": {"key": "a"}}],
    }

    async def scenario(client: Client) -> None:
        await client.put("/v1/kv/a", data=b"first")
        await client.put("/v1/kv/b", data=b"doomed")

        response = await client.post("/v1/txn", json=request)
        assert response.status == 200
        body = await response.json()
        assert body["succeeded"] is True
        assert body["revision"] == 4
        assert len(body["responses"]) == 3

        response = await client.post("/v1/txn", json=request)
        body = await response.json()
        assert body["succeeded"] is False
        assert len(body["responses"]) == 1

    serve(service, scenario)
    assert service.txns[0].compare == (Compare("a", "version", "==", 1),)
    assert service.txns[0].success[0] == PutOp("a", b"x")
    assert service.items["a"].value == b"x"
    assert "b" not in service.items


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b"null", "JSON object"),
        (b'{"compare": [], "success": [], "failure": [], "x": NaN}', "NaN"),
        (b"[" * 100_000, "JSON"),
        (b'{"success": [{"put": {"key": "a"}}]}', "success"),
        (b'{"compare": [{"key": "a", "target": "version", "op": "~", "operand": 1}]}', "op"),
    ],
)
def test_txn_rejects_a_malformed_body_with_400(body: bytes, words: str) -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.post("/v1/txn", data=body, headers=JSON)
        message = (await expect_error(response, 400, "bad_request"))["error"]
        assert words in message

    serve(service, scenario)
    assert service.txns == []


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("PUT", "/v1/kv/k", {"expect_version": "abc"}),
        ("PUT", "/v1/kv/k", {"expect_version": "-1"}),
        ("PUT", "/v1/kv/k", {"expect_version": "1e3"}),
        ("PUT", "/v1/kv/k", {"expect_version": str(2**64)}),
        ("PUT", "/v1/kv/k", {"expect_versoin": "1"}),
        ("GET", "/v1/kv/k", {"prefix": "maybe"}),
        ("GET", "/v1/kv/k", {"revision": "soon"}),
        ("DELETE", "/v1/kv/k", {"serializable": "1"}),
        ("POST", "/v1/txn", {"prefix": "1"}),
        ("PUT", "/v1/kv/", {}),
        ("PUT", "/v1/kv", {}),
        ("DELETE", "/v1/kv/", {"prefix": "1"}),
        ("GET", "/v1/kv/", {}),
    ],
)
def test_bad_query_parameters_and_empty_keys_are_400(
    method: str, path: str, params: dict[str, str]
) -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.request(method, path, params=params, data=b"{}")
        await expect_error(response, 400, "bad_request")

    serve(service, scenario)
    assert service.items == {}
    assert service.txns == []


def test_repeated_query_parameter_is_400() -> None:
    async def scenario(client: Client) -> None:
        response = await client.put("/v1/kv/k", params=[("expect_version", "0")] * 2, data=b"v")
        body = await expect_error(response, 400, "bad_request")
        assert "more than once" in body["error"]

    serve(FakeKv(), scenario)


def test_body_over_the_limit_is_413_json() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.put("/v1/kv/k", data=b"x" * 101)
        body = await expect_error(response, 413, "too_large")
        assert "100 bytes" in body["error"]
        response = await client.post("/v1/txn", data=b" " * 101, headers=JSON)
        await expect_error(response, 413, "too_large")

        response = await client.put("/v1/kv/k", data=b"x" * 100)
        assert response.status == 200

    serve(service, scenario, body_max_bytes=100)
    assert service.puts == [("k", b"x" * 100, None)]


def test_unknown_route_is_404_json_and_wrong_method_is_405_json() -> None:
    async def scenario(client: Client) -> None:
        await expect_error(await client.get("/v2/nothing"), 404, "not_found")
        response = await client.post("/v1/kv/k", data=b"v")
        body = await expect_error(response, 405, "method_not_allowed")
        assert "POST" in body["error"]
        assert set(response.headers["Allow"].split(",")) >= {"GET", "PUT", "DELETE"}
        await expect_error(await client.get("/v1/txn"), 405, "method_not_allowed")

    serve(FakeKv(), scenario)


# ------------------------------------------------------------------ errors from the service


def test_not_leader_is_421_with_the_leader_and_its_address() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        service.fail_with = NotLeader(2, leader_address="127.0.0.1:8002")
        body = await expect_error(await client.put("/v1/kv/k", data=b"v"), 421, "not_leader")
        assert body["leader"] == 2
        assert body["leader_address"] == "127.0.0.1:8002"

        service.fail_with = NotLeader(None)
        body = await expect_error(await client.get("/v1/kv/k"), 421, "not_leader")
        assert body["leader"] is None

    serve(service, scenario)


def test_a_node_that_cannot_reach_its_leader_answers_503_with_the_leader_and_address() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        service.fail_with = LeaderUnreachable(
            "not heard within 0.3 s", leader_hint=2, leader_address="127.0.0.1:7002"
        )
        put = await client.put("/v1/kv/k", data=b"v")
        body = await expect_error(put, 503, "leader_unreachable")
        assert body["leader"] == 2 and body["leader_address"] == "127.0.0.1:7002"

        service.fail_with = NoQuorum("no majority within 0.3 s")
        body = await expect_error(await client.get("/v1/kv/k"), 503, "no_quorum")
        assert "leader" not in body

    serve(service, scenario)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (Unavailable("no quorum"), 503, "unavailable"),
        (Busy("queue full"), 503, "busy"),
        (Timeout("no answer in 10 s"), 504, "timeout"),
        (RevisionCompacted("revision 3 is compacted"), 400, "compacted"),
        (ValueTooLarge("value: 2000000 bytes > value_max_bytes 1048576"), 413, "too_large"),
    ],
)
def test_service_errors_map_to_their_status_and_code(
    error: PaxonError, status: int, code: str
) -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        service.fail_with = error
        body = await expect_error(await client.put("/v1/kv/k", data=b"v"), status, code)
        assert body["error"] == str(error)

    serve(service, scenario)


def test_compact_takes_a_revision_and_answers_the_oldest_kept() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        for number in range(5):
            await client.put("/v1/kv/k", data=str(number).encode())
        response = await client.post(
            "/v1/compact", json={"revision": 3}, headers={"Authorization": "Bearer t0k"}
        )
        assert response.status == 200
        assert await response.json() == {"revision": 5, "revision_compacted": 3}
        for body in ({}, {"revision": -1}, {"revision": "3"}, {"revision": 3, "x": 1}):
            response = await client.post("/v1/compact", json=body)
            assert "expected" in (await expect_error(response, 400, "bad_request"))["error"]
        response = await client.post("/v1/compact", data=b'{"revision": 3}')
        await expect_error(response, 415, "unsupported_media_type")
        service.fail_with = RevisionCompacted("revision 2 was compacted; the oldest kept is 3")
        response = await client.get("/v1/kv/k", params={"revision": "2"})
        body = await expect_error(response, 400, "compacted")
        assert body["revision_compacted"] == 3

    serve(service, scenario)
    assert service.compactions == [(3, "t0k")]


def test_unexpected_exception_is_500_logged_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        service.fail_with = RuntimeError("boom")
        body = await expect_error(await client.get("/v1/kv/k"), 500, "internal")
        assert "boom" not in body["error"]

        await client.put("/v1/kv/k", data=b"v")
        assert (await client.get("/v1/kv/k")).status == 200

    with caplog.at_level(logging.ERROR, logger="paxon.server.http"):
        serve(service, scenario)
    [record] = [r for r in caplog.records if r.name == "paxon.server.http"]
    assert record.exc_info is not None
    assert "boom" in str(record.exc_info[1])


# ------------------------------------------------------------------ status, metrics, dashboard


def test_status_is_the_services_view() -> None:
    async def scenario(client: Client) -> None:
        response = await client.get("/v1/status")
        assert response.status == 200
        assert await response.json() == STATUS

    serve(FakeKv(), scenario)


def test_cluster_is_the_services_merged_view() -> None:
    async def scenario(client: Client) -> None:
        response = await client.get("/v1/cluster")
        assert response.status == 200
        body = await response.json()
        assert [row["ballot"] for row in body["members"]] == ["9.1"] * len(STATUS["members"])

    serve(FakeKv(), scenario)


def test_members_change_goes_to_the_service_with_the_token() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        body = {"action": "add-learner", "id": 4, "address": "h4:7001"}
        headers = {"Authorization": "Bearer tok"}
        response = await client.post("/v1/members", json=body, headers=headers)
        assert response.status == 200
        answer = await response.json()
        assert answer["members"] == [{"id": 4, "address": "h4:7001", "role": "learner"}]
        assert service.member_changes == [("add-learner", 4, "h4:7001", "tok")]
        listed = await client.get("/v1/members")
        assert listed.status == 200
        assert set(await listed.json()) == {"configuration", "members"}

    serve(service, scenario)


@pytest.mark.parametrize(
    "body",
    [
        {"action": "grow", "id": 4},
        {"action": "remove", "id": "4"},
        {"action": "remove", "id": 0},
        {"action": "remove", "id": 4, "extra": 1},
        {"action": "add", "id": 4, "address": 7},
    ],
)
def test_a_malformed_members_change_is_400(body: dict[str, Any]) -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.post("/v1/members", json=body)
        assert response.status == 400
        await expect_error(response, 400, "bad_request")
        assert service.member_changes == []

    serve(service, scenario)


def test_metrics_is_prometheus_text() -> None:
    service = FakeKv()
    service.metrics.commits.inc(7)

    async def scenario(client: Client) -> None:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
        for name in ("paxon_commits_total 7.0", "paxon_fsync_seconds_bucket", "paxon_is_leader"):
            assert name in text

    serve(service, scenario)


def test_dashboard_is_a_self_contained_html_page_polling_status() -> None:
    async def scenario(client: Client) -> None:
        response = await client.get("/")
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
        assert page.lstrip().lower().startswith("<!doctype html>")
        assert "v1/cluster" in page
        # The only URL is the vendored uPlot's credit comment; nothing is loaded from
        # anywhere (test_http_dashboard.py checks every src, href, fetch and import).
        urls = re.findall(r"https?://[^\s\"')]*", page)
        assert urls == ["https://github.com/leeoniya/uPlot"]

    serve(FakeKv(), scenario)


# ------------------------------------------------------------------ start_http


def test_start_http_binds_serves_and_a_taken_port_raises_oserror() -> None:
    async def main() -> None:
        runner = await start_http(FakeKv(), "127.0.0.1", 0)
        try:
            host, port = runner.addresses[0][:2]
            url = f"http://{host}:{port}/v1/status"
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                assert await response.json() == STATUS
            with pytest.raises(OSError):
                await start_http(FakeKv(), host, port)
        finally:
            await runner.cleanup()

    asyncio.run(main())


# ------------------------------------------------------------------ auth


def test_login_gives_a_token_and_bearer_tokens_reach_the_service() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.post("/v1/auth/authenticate", json={"user": "al", "password": "pw"})
        assert response.status == 200
        token = (await response.json())["token"]
        assert token == "token-of-al"
        response = await client.get("/v1/kv/a", headers={"Authorization": f"Bearer {token}"})
        assert service.gets[-1]["token"] == token
        response = await client.get("/v1/kv/a")
        assert service.gets[-1]["token"] is None
        wrong = await client.post("/v1/auth/authenticate", json={"user": "al", "password": "x"})
        await expect_error(wrong, 401, "unauthenticated")
        assert wrong.headers["WWW-Authenticate"] == "Bearer"
        for body in (
            {"user": "al"},
            {"user": 1, "password": "pw"},
            {"user": "a", "password": "pw", "x": 1},
        ):
            await expect_error(
                await client.post("/v1/auth/authenticate", json=body), 400, "bad_request"
            )
        await expect_error(
            await client.get("/v1/kv/a", headers={"Authorization": "Token abc"}),
            401,
            "unauthenticated",
        )

    serve(service, scenario)
