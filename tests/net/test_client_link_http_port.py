"""A native client pointed at an HTTP port: one clear, lasting error naming the native port.

A fake HTTP server on loopback answers as aiohttp does: ``400 Bad Request`` to
the native Hello, and (when it plays a paxon node) its ``/v1/status`` to a GET.
It counts the connections it gets, so a client that kept retrying shows.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from paxon import Client
from paxon.errors import Unavailable
from paxon.net.client_link import ClientLink, NotNativePort

STATUS = {
    "node_id": 2,
    "members": [
        {"id": 1, "address": "10.0.0.1:7001"},
        {"id": 2, "address": "10.0.0.2:7001"},
    ],
}


class FakeHttp:
    def __init__(self, *, paxon_status: bool) -> None:
        self.paxon_status = paxon_status
        self.connections = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        head = await reader.read(4096)
        if head.startswith(b"GET /v1/status ") and self.paxon_status:
            body = json.dumps(STATUS).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        else:
            writer.write(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()


@asynccontextmanager
async def fake_http(*, paxon_status: bool) -> AsyncIterator[FakeHttp]:
    fake = FakeHttp(paxon_status=paxon_status)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake


def test_connect_to_a_paxon_http_port_names_its_native_port(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        async with fake_http(paxon_status=True) as fake:
            with pytest.raises(NotNativePort) as refused:
                await ClientLink.connect("127.0.0.1", fake.port, timeout=5)
            assert str(refused.value) == (
                f"127.0.0.1:{fake.port} is an HTTP port; the native port is 10.0.0.2:7001"
            )
            assert refused.value.lasting

    with caplog.at_level(logging.WARNING, logger="paxon.net.client"):
        asyncio.run(main())
    assert not caplog.records  # no "bad frame" warnings


def test_connect_to_another_http_server_says_it_is_not_a_native_port() -> None:
    async def main() -> None:
        async with fake_http(paxon_status=False) as fake:
            with pytest.raises(NotNativePort, match="is an HTTP port; not a native paxon port"):
                await ClientLink.connect("127.0.0.1", fake.port, timeout=5)

    asyncio.run(main())


def test_a_client_gives_up_on_an_http_port_without_retrying() -> None:
    async def main() -> None:
        async with fake_http(paxon_status=True) as fake:
            async with Client([f"http://127.0.0.1:{fake.port}/"], timeout=30) as client:
                with pytest.raises(Unavailable, match=r"the native port is 10\.0\.0\.2:7001"):
                    await client.put("k", b"v")
            # One Hello, one /v1/status: a client that retried would keep dialing for 30 s.
            assert fake.connections == 2

    asyncio.run(main())
