"""The HTTP endpoint against hostile browsers and clients: CSRF, DNS rebinding,
huge integers, unbounded range reads, floods, and TLS.

Each test serves the fake ``KvService`` of ``test_http`` on loopback inside
``asyncio.run``; nothing waits on the wall clock.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.server.test_http import JSON, Client, FakeKv, expect_error, serve

from paxon.errors import BadRequest
from paxon.kv.jsonforms import object_from_json
from paxon.kv.model import PutResult
from paxon.server.http import make_app, start_http

TXN_PUT = {"success": [{"put": {"key": "k", "value": "v"}}]}


def assert_no_cors_headers(response: aiohttp.ClientResponse) -> None:
    cors = [name for name in response.headers if name.lower().startswith("access-control-")]
    assert cors == [], cors


# ------------------------------------------------------------------ cross-site requests


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
def test_txn_body_not_declared_json_is_415_and_not_applied(content_type: str | None) -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = await client.post(
            "/v1/txn",
            data=json.dumps(TXN_PUT).encode(),
            headers=headers,
            skip_auto_headers=["Content-Type"],
        )
        body = await expect_error(response, 415, "unsupported_media_type")
        assert "application/json" in body["error"]

    serve(service, scenario)
    assert service.txns == [] and service.items == {}


def test_txn_with_json_content_type_and_charset_is_applied() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        for content_type in ("application/json", "Application/JSON; charset=UTF-8"):
            response = await client.post(
                "/v1/txn",
                data=json.dumps(TXN_PUT).encode(),
                headers={"Content-Type": content_type},
            )
            assert response.status == 200, await response.text()

    serve(service, scenario)
    assert len(service.txns) == 2


def test_a_cross_site_form_post_from_a_foreign_origin_is_refused_and_not_applied() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        # What <form enctype="text/plain"> on another site sends.
        response = await client.post(
            "/v1/txn",
            data=json.dumps(TXN_PUT).encode(),
            headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
        )
        body = await expect_error(response, 403, "origin_not_allowed")
        assert "evil.example" in body["error"]
        assert_no_cors_headers(response)
        # Even with a JSON content type (a fetch() that never got a preflight answer).
        response = await client.post(
            "/v1/txn", json=TXN_PUT, headers={"Origin": "http://evil.example"}
        )
        await expect_error(response, 403, "origin_not_allowed")
        for method in ("PUT", "DELETE", "GET"):
            response = await client.request(
                method, "/v1/kv/k", data=b"v", headers={"Origin": "https://evil.example"}
            )
            await expect_error(response, 403, "origin_not_allowed")

    serve(service, scenario)
    assert service.txns == [] and service.puts == [] and service.gets == []


def test_same_origin_and_allowed_origins_are_served() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        own = f"http://127.0.0.1:{client.port}"
        response = await client.post("/v1/txn", json=TXN_PUT, headers={"Origin": own})
        assert response.status == 200, await response.text()
        assert_no_cors_headers(response)
        headers = {"Origin": "https://ops.example.com"}
        response = await client.put("/v1/kv/k", data=b"w", headers=headers)
        assert response.status == 200, await response.text()
        assert_no_cors_headers(response)

    serve(service, scenario, allowed_origins=["https://ops.example.com"])
    assert service.items["k"].value == b"w"


def test_no_cors_headers_are_ever_sent_even_to_a_preflight() -> None:
    async def scenario(client: Client) -> None:
        preflight = {
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "PUT",
        }
        response = await client.options("/v1/kv/k", headers=preflight)
        assert response.status in (403, 405)
        assert_no_cors_headers(response)
        response = await client.options("/v1/kv/k")
        await expect_error(response, 405, "method_not_allowed")
        assert_no_cors_headers(response)
        for path in ("/", "/metrics", "/v1/status", "/v1/kv/k"):
            assert_no_cors_headers(await client.get(path))

    serve(FakeKv(), scenario)


# ------------------------------------------------------------------ Host (DNS rebinding)


def test_an_unknown_host_is_refused_on_every_route() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        rebound = {"Host": f"evil.example:{client.port}"}
        for method, path in [
            ("GET", "/"),
            ("GET", "/metrics"),
            ("GET", "/v1/status"),
            ("GET", "/v1/kv/k"),
            ("PUT", "/v1/kv/k"),
            ("GET", "/nowhere"),
        ]:
            response = await client.request(method, path, data=b"v", headers=rebound)
            body = await expect_error(response, 403, "host_not_allowed")
            assert "evil.example" in body["error"]
        response = await client.post("/v1/txn", json=TXN_PUT, headers=rebound)
        await expect_error(response, 403, "host_not_allowed")

    serve(service, scenario)
    assert service.puts == [] and service.txns == [] and service.gets == []


def test_dashboard_metrics_and_api_work_by_every_own_name() -> None:
    async def scenario(client: Client) -> None:
        for host in ("127.0.0.1", "localhost", "node-1.internal"):
            headers = {"Host": f"{host}:{client.port}"}
            for path in ("/", "/metrics", "/v1/status", "/v1/cluster"):
                response = await client.get(path, headers=headers)
                assert response.status == 200, (host, path, await response.text())
        headers = {"Host": "kv.example.com"}
        assert (await client.get("/", headers=headers)).status == 200

    serve(FakeKv(), scenario, listen_host="node-1.internal", allowed_hosts=["kv.example.com"])


# ------------------------------------------------------------------ integers


@pytest.mark.parametrize(
    "operand",
    ["9" * 5000, "-" + "9" * 5000, str(2**63), str(-(2**63) - 1), "1" + "0" * 25],
)
def test_huge_integers_in_a_txn_are_400_not_500(operand: str) -> None:
    service = FakeKv()
    body = (
        '{"compare": [{"key": "a", "target": "version", "op": "==", "operand": ' + operand + "}]}"
    ).encode()

    async def scenario(client: Client) -> None:
        response = await client.post("/v1/txn", data=body, headers=JSON)
        message = (await expect_error(response, 400, "bad_request"))["error"]
        assert "integer" in message or "64-bit" in message
        assert len(message) < 300

    serve(service, scenario)
    assert service.txns == []


def test_integers_at_the_64_bit_bounds_are_accepted() -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        for operand in (2**63 - 1, -(2**63)):
            request = {
                "compare": [{"key": "a", "target": "version", "op": "<", "operand": operand}]
            }
            response = await client.post("/v1/txn", json=request)
            assert response.status == 200, await response.text()

    serve(service, scenario)
    assert [txn.compare[0].operand for txn in service.txns] == [2**63 - 1, -(2**63)]


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/v1/kv/k", {"revision": "9" * 5000}),
        ("GET", "/v1/kv/k", {"revision": str(2**63)}),
        ("GET", "/v1/kv/", {"prefix": "1", "limit": "9" * 5000}),
        ("GET", "/v1/kv/", {"prefix": "1", "limit": "0"}),
        ("GET", "/v1/kv/", {"prefix": "1", "limit": "-1"}),
        ("GET", "/v1/kv/k", {"limit": "5"}),
        ("GET", "/v1/kv/k", {"after": "a"}),
        ("PUT", "/v1/kv/k", {"expect_version": "9" * 5000}),
        ("PUT", "/v1/kv/k", {"expect_version": "٣"}),  # a digit, but not ASCII
    ],
)
def test_bad_integer_query_parameters_are_400(
    method: str, path: str, params: dict[str, str]
) -> None:
    service = FakeKv()

    async def scenario(client: Client) -> None:
        response = await client.request(method, path, params=params, data=b"v")
        body = await expect_error(response, 400, "bad_request")
        assert len(body["error"]) < 300

    serve(service, scenario)
    assert service.puts == [] and service.gets == []


def test_object_from_json_bounds_integers_before_building_them() -> None:
    assert object_from_json(b'{"a": -9223372036854775808}') == {"a": -(2**63)}
    with pytest.raises(BadRequest, match=r"\(100000 digits\)"):
        object_from_json(b'{"a": ' + b"7" * 100_000 + b"}")
    with pytest.raises(BadRequest, match="Infinity"):
        object_from_json('{"a": -Infinity}')


json_documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=6)
    | st.binary(max_size=6).map(lambda data: data.decode("latin-1")),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "compare",
                    "success",
                    "failure",
                    "put",
                    "get",
                    "delete",
                    "key",
                    "value",
                    "value_b64",
                    "prefix",
                    "target",
                    "op",
                    "operand",
                    "operand_b64",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=16,
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.one_of(json_documents.map(json.dumps), st.text(max_size=40)))
def test_any_body_gives_a_dict_or_bad_request(document: str) -> None:
    try:
        assert isinstance(object_from_json(document.encode("utf-8", "surrogatepass")), dict)
    except BadRequest as error:
        assert str(error)


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(json_documents.map(json.dumps), min_size=1, max_size=5))
def test_random_json_bodies_never_give_a_500(documents: list[str]) -> None:
    service = FakeKv()
    statuses: list[int] = []

    async def scenario(client: Client) -> None:
        for document in documents:
            response = await client.post("/v1/txn", data=document.encode(), headers=JSON)
            await response.read()
            statuses.append(response.status)

    serve(service, scenario)
    assert all(status in (200, 400, 413) for status in statuses), statuses


# ------------------------------------------------------------------ range reads


def fill(service: FakeKv, count: int, value: bytes = b"v") -> None:
    for index in range(count):
        service._put(f"k{index:03}", value, None)


def test_prefix_read_is_cut_at_the_limit_with_more_and_pages_with_after() -> None:
    service = FakeKv()
    fill(service, 25)

    async def scenario(client: Client) -> None:
        response = await client.get("/v1/kv/", params={"prefix": "1", "limit": "10"})
        body = await response.json()
        assert [kv["key"] for kv in body["kvs"]] == [f"k{i:03}" for i in range(10)]
        assert body["more"] is True
        keys: list[str] = []
        after: str | None = None
        for _ in range(10):
            params = {"prefix": "1", "limit": "10"}
            if after is not None:
                params["after"] = after
            body = await (await client.get("/v1/kv/k", params=params)).json()
            keys += [kv["key"] for kv in body["kvs"]]
            if not body.get("more"):
                break
            after = keys[-1]
        assert keys == [f"k{i:03}" for i in range(25)]
        # Within the limit: docs/api.md's shape exactly, no "more".
        body = await (await client.get("/v1/kv/k02", params={"prefix": "1"})).json()
        assert set(body) == {"revision", "kvs"} and len(body["kvs"]) == 5

    serve(service, scenario)


def test_prefix_read_is_cut_at_the_servers_key_maximum_whatever_the_limit() -> None:
    service = FakeKv()
    fill(service, 12)

    async def scenario(client: Client) -> None:
        for params in ({"prefix": "1"}, {"prefix": "1", "limit": str(2**63 - 1)}):
            body = await (await client.get("/v1/kv/", params=params)).json()
            assert len(body["kvs"]) == 5
            assert body["more"] is True

    serve(service, scenario, range_max_keys=5)


def test_prefix_read_is_cut_at_the_byte_maximum_but_always_sends_one_key() -> None:
    service = FakeKv()
    fill(service, 4, value=b"x" * 96)  # 100 bytes each with the 4-byte key

    async def scenario(client: Client) -> None:
        body = await (await client.get("/v1/kv/", params={"prefix": "1"})).json()
        assert [kv["key"] for kv in body["kvs"]] == ["k000", "k001"]
        assert body["more"] is True
        service._put("big", b"y" * 1000, None)
        body = await (await client.get("/v1/kv/big", params={"prefix": "1"})).json()
        assert [kv["key"] for kv in body["kvs"]] == ["big"]
        assert "more" not in body

    serve(service, scenario, range_max_bytes=250)


def test_txn_gets_share_one_budget_and_say_more() -> None:
    service = FakeKv()
    fill(service, 6)
    get_all = {"get": {"key": "", "prefix": True}}

    async def scenario(client: Client) -> None:
        response = await client.post("/v1/txn", json={"success": [get_all, get_all]})
        body = await response.json()
        first, second = (item["get"] for item in body["responses"])
        assert len(first["kvs"]) == 4 and first["more"] is True
        assert second["kvs"] == [] and second["more"] is True
        response = await client.post("/v1/txn", json={"success": [{"get": {"key": "k001"}}]})
        only = (await response.json())["responses"][0]["get"]
        assert set(only) == {"revision", "kvs"} and len(only["kvs"]) == 1

    serve(service, scenario, range_max_keys=4)


# ------------------------------------------------------------------ floods


class BlockingKv(FakeKv):
    """Puts wait until ``release`` is set; ``entered`` counts puts in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def put(
        self,
        key: str,
        value: bytes,
        *,
        expect_version: int | None,
        lease: int = 0,
        token: str | None = None,
    ) -> PutResult:
        self.entered.set()
        await self.release.wait()
        return await super().put(key, value, expect_version=expect_version, lease=lease)


def test_requests_over_the_in_flight_cap_are_503_busy_and_not_applied() -> None:
    async def main() -> None:
        service = BlockingKv()
        app = make_app(service, requests_in_flight_max=1)
        async with TestClient(TestServer(app)) as client:
            first = asyncio.ensure_future(client.put("/v1/kv/first", data=b"1"))
            await asyncio.wait_for(service.entered.wait(), 30)
            response = await asyncio.wait_for(client.put("/v1/kv/second", data=b"2"), 30)
            body = await expect_error(response, 503, "busy")
            assert "in flight" in body["error"]
            service.release.set()
            assert (await first).status == 200
            assert (await client.put("/v1/kv/third", data=b"3")).status == 200
        assert sorted(service.items) == ["first", "third"]

    asyncio.run(main())


def test_a_chunked_body_over_the_limit_is_413() -> None:
    service = FakeKv()

    async def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 10

    async def scenario(client: Client) -> None:
        response = await client.put("/v1/kv/k", data=chunks())
        await expect_error(response, 413, "too_large")

    serve(service, scenario, body_max_bytes=100)
    assert service.puts == []


async def http_exchange(port: int, reader_writer: Any = None) -> tuple[Any, Any, bytes]:
    reader, writer = reader_writer or await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    return reader, writer, head


def test_connections_over_the_cap_are_closed_at_once() -> None:
    async def main() -> None:
        runner = await start_http(FakeKv(), "127.0.0.1", 0, connections_max=2)
        try:
            port = runner.addresses[0][1]
            held = [await http_exchange(port) for _ in range(2)]
            assert all(head.startswith(b"HTTP/1.1 200") for _, _, head in held)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            assert await asyncio.wait_for(reader.read(), 30) == b""
            writer.close()
            # The held connections still serve (keep-alive), and freeing one lets a new one in.
            _, _, head = await http_exchange(port, held[0][:2])
            assert head.startswith(b"HTTP/1.1 200")
            held[1][1].close()
            await held[1][1].wait_closed()
            server = runner.server
            assert server is not None
            for _ in range(10_000):
                if len(server.connections) < 2:
                    break
                await asyncio.sleep(0)
            _, late_writer, head = await http_exchange(port)
            assert head.startswith(b"HTTP/1.1 200")
            for connection_writer in (held[0][1], late_writer):
                connection_writer.close()
                await connection_writer.wait_closed()
        finally:
            await runner.cleanup()

    asyncio.run(main())


# ------------------------------------------------------------------ TLS


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_start_http_serves_https_with_an_ssl_context(tmp_path: Path) -> None:
    cert_path, key_path = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    client_context = ssl.create_default_context(cafile=str(cert_path))

    async def main() -> None:
        service = FakeKv()
        runner = await start_http(service, "127.0.0.1", 0, ssl_context=server_context)
        try:
            port = runner.addresses[0][1]
            base = f"https://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{base}/v1/status", ssl=client_context) as response:
                    assert response.status == 200
                    assert (await response.json())["leader"] == 1
                own = {"Origin": f"https://localhost:{port}", "Host": f"localhost:{port}"}
                async with session.post(
                    f"{base}/v1/txn", json=TXN_PUT, headers=own, ssl=client_context
                ) as response:
                    assert response.status == 200, await response.text()
                plain = {"Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"}
                async with session.post(
                    f"{base}/v1/txn", json=TXN_PUT, headers=plain, ssl=client_context
                ) as response:
                    assert response.status == 403
                with pytest.raises(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/v1/status") as response:
                        await response.read()
        finally:
            await runner.cleanup()
        assert len(service.txns) == 1

    asyncio.run(main())


def test_make_app_refuses_bad_limits_and_entries() -> None:
    for kw in (
        {"range_max_keys": 0},
        {"range_max_bytes": 0},
        {"requests_in_flight_max": 0},
        {"allowed_hosts": ["a b"]},
        {"allowed_origins": ["evil.example"]},
    ):
        with pytest.raises(ValueError):
            make_app(FakeKv(), **kw)


def test_app_is_a_web_application() -> None:
    assert isinstance(make_app(FakeKv()), web.Application)
