"""The HTTP lease routes against the fake ``KvService`` of ``test_http``: shapes,
seconds on the outside and milliseconds inside, 404 ``lease_not_found``, bad
input refused before the service is called, and the token passed on."""

from __future__ import annotations

from typing import Any

import pytest
from tests.server.test_http import JSON, Client, FakeKv, expect_error, serve

from paxon.kv.model import PutOp

BEARER = {"Authorization": "Bearer tok"}


def test_grant_put_with_the_lease_read_it_and_revoke_it() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.post("/v1/lease/grant", json={"ttl": 2.5}, headers=BEARER)
        assert response.status == 200
        assert await response.json() == {"id": 1, "ttl": 2.5}
        response = await client.put("/v1/kv/svc/a", data=b"up", params={"lease": "1"})
        assert await response.json() == {"revision": 1}
        response = await client.post("/v1/lease/keepalive", json={"id": 1})
        assert await response.json() == {"id": 1, "ttl": 2.5}
        response = await client.get("/v1/lease/1", params={"keys": "1"})
        assert await response.json() == {
            "id": 1,
            "granted_ttl": 2.5,
            "ttl": 2.499,
            "keys": ["svc/a"],
        }
        response = await client.get("/v1/lease/1", params={"serializable": "1"})
        assert await response.json() == {"id": 1, "granted_ttl": 2.5, "ttl": 2.499}
        response = await client.get("/v1/leases", headers=BEARER)
        assert await response.json() == {"leases": [1]}
        response = await client.post("/v1/lease/revoke", json={"id": 1}, headers=BEARER)
        assert await response.json() == {"deleted": 1, "revision": 2}
        await expect_error(await client.get("/v1/kv/svc/a"), 404, "not_found")
        response = await client.get("/v1/leases")
        assert await response.json() == {"leases": []}

    serve(service, scenario)
    assert service.lease_calls == [
        ("grant", 2500, "tok"),
        ("keep_alive", 1, None),
        ("ttl", (1, True, False), None),
        ("ttl", (1, False, True), None),
        ("list", False, "tok"),
        ("revoke", 1, "tok"),
        ("list", False, None),
    ]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/lease/keepalive", {"id": 9}),
        ("post", "/v1/lease/revoke", {"id": 9}),
        ("get", "/v1/lease/9", None),
        ("put", "/v1/kv/k?lease=9", None),
    ],
)
def test_a_lease_that_does_not_exist_is_404(method: str, path: str, body: Any) -> None:
    async def scenario(client: Client) -> None:
        kw: dict[str, Any] = {"json": body} if body is not None else {"data": b"v"}
        if method == "get":
            kw = {}
        response = await getattr(client, method)(path, **kw)
        answer = await expect_error(response, 404, "lease_not_found")
        assert "lease 9" in answer["error"]

    serve(FakeKv(), scenario)


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("post", "/v1/lease/grant", {"ttl": 0.5}, "ttl: a lease lasts from 1 to 2592000"),
        ("post", "/v1/lease/grant", {"ttl": "5"}, "ttl: expected a number of seconds"),
        ("post", "/v1/lease/grant", {"ttl": 5, "id": 3}, 'expected {"ttl": SECONDS}'),
        ("post", "/v1/lease/grant", {}, 'expected {"ttl": SECONDS}'),
        ("post", "/v1/lease/keepalive", {"id": 0}, "id: a lease id is an integer from 1"),
        ("post", "/v1/lease/keepalive", {"id": "1"}, "id: expected an integer"),
        ("post", "/v1/lease/revoke", {"lease": 1}, 'expected {"id": ID}'),
        ("get", "/v1/lease/0", None, "a lease id is an integer from 1"),
        ("get", "/v1/lease/grant", None, "a lease id is an integer from 1"),
        ("get", "/v1/lease/1?limit=3", None, "unknown query parameter 'limit'"),
        ("get", "/v1/leases?keys=1", None, "unknown query parameter 'keys'"),
        ("put", "/v1/kv/k?lease=0", None, "query parameter 'lease' must be an integer from 1"),
        ("put", "/v1/kv/k?lease=x", None, "query parameter 'lease' must be an integer from 1"),
    ],
)
def test_bad_lease_input_is_400_and_never_reaches_the_service(
    method: str, path: str, body: Any, message: str
) -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        kw: dict[str, Any] = {"json": body} if body is not None else {}
        if method == "put":
            kw = {"data": b"v"}
        answer = await expect_error(await getattr(client, method)(path, **kw), 400, "bad_request")
        assert answer["error"].startswith(message), answer

    serve(service, scenario)
    assert service.lease_calls == [] and service.puts == []


def test_lease_bodies_must_be_json() -> None:
    async def scenario(client: Client) -> None:
        response = await client.post(
            "/v1/lease/grant", data=b'{"ttl": 5}', headers={"Content-Type": "text/plain"}
        )
        await expect_error(response, 415, "unsupported_media_type")

    serve(FakeKv(), scenario)


def test_a_txn_put_with_a_lease_reaches_the_service() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        body = {"success": [{"put": {"key": "a", "value": "1", "lease": 4}}]}
        response = await client.post("/v1/txn", json=body, headers=JSON)
        assert response.status == 200, await response.text()

    serve(service, scenario)
    assert service.txns[0].success == (PutOp("a", b"1", 4),)


def test_lease_routes_pass_the_bearer_token_and_refuse_a_bad_header() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.post(
            "/v1/lease/grant", json={"ttl": 3}, headers={"Authorization": "Basic x"}
        )
        answer = await expect_error(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "Bearer TOKEN" in answer["error"]
        await expect_error(
            await client.get("/v1/leases", headers={"Authorization": "Bearer"}),
            401,
            "unauthenticated",
        )

    serve(service, scenario)
    assert service.lease_calls == []
