"""Shared pieces of the loopback network tests: fast timers, inboxes, raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from paxon.net import ClientConnection, ClientRequest, NetConfig, Reply, Transport, encode
from paxon.net.codec import WireMessage
from paxon.net.peer_auth import INSECURE, PeerSecurity
from paxon.protocol.messages import Message

FAST = NetConfig(
    handshake_timeout_s=1.0, reconnect_min_s=0.005, reconnect_max_s=0.05, connect_timeout_s=1.0
)
WAIT_S = 10.0
"""Upper bound for anything a test waits for; reached only when the test fails."""

CLUSTER = "test-cluster"
NOWHERE = ("127.0.0.1", 9)
"""The address of a peer that is never dialed (it has the smaller id)."""

T = TypeVar("T")


class Inbox(Generic[T]):
    """Collects items; ``wait_count`` wakes up on arrivals, never on a timer."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = asyncio.Event()

    def put(self, item: T) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_count(self, count: int) -> list[T]:
        async with asyncio.timeout(WAIT_S):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.items


class Node:
    """A Transport with inboxes for what it receives."""

    def __init__(
        self,
        node_id: int,
        peers: dict[int, tuple[str, int]],
        *,
        port: int = 0,
        cluster_id: str = CLUSTER,
        config: NetConfig = FAST,
        on_request: Callable[[ClientConnection, ClientRequest], None] | None = None,
        on_message: Callable[[Message], None] | None = None,
        peer_port: int | None = None,
        security: PeerSecurity = INSECURE,
    ) -> None:
        self.messages: Inbox[Message] = Inbox()
        self.requests: Inbox[tuple[ClientConnection, ClientRequest]] = Inbox()
        self.transport = Transport(
            node_id=node_id,
            cluster_id=cluster_id,
            listen=("127.0.0.1", port),
            peers=peers,
            on_peer_message=on_message or self.messages.put,
            on_client_request=on_request or (lambda c, r: self.requests.put((c, r))),
            config=config,
            peer_listen=None if peer_port is None else ("127.0.0.1", peer_port),
            security=security,
            client_address=f"client-of-{node_id}:1",
        )

    @property
    def address(self) -> tuple[str, int]:
        return self.transport.address

    @property
    def peer_address(self) -> tuple[str, int]:
        return self.transport.peer_address

    async def start(self) -> Node:
        await self.transport.start()
        return self

    async def close(self) -> None:
        await self.transport.close()


def answer_ok(connection: ClientConnection, request: ClientRequest) -> None:
    connection.send(Reply(request.request_id, b"ok"))


async def eventually(predicate: Callable[[], bool]) -> None:
    """Waits until ``predicate`` holds, checking each few milliseconds (bounded by WAIT_S).

    For state that has no event to wait on (a link coming up); the outcome does
    not depend on timing, only how long the wait takes.
    """
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


class Raw:
    """A raw TCP connection to poke a transport with arbitrary bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> Raw:
        reader, writer = await asyncio.open_connection(*address)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def send_message(self, message: WireMessage) -> None:
        self.writer.write(encode(message))

    async def read_until_closed(self) -> bytes:
        """Everything the other side sends until it closes the connection."""
        async with asyncio.timeout(WAIT_S):
            try:
                return await self.reader.read()
            except ConnectionResetError:
                return b""

    async def read_frames(self, count: int) -> list[bytes]:
        bodies = []
        async with asyncio.timeout(WAIT_S):
            for _ in range(count):
                size = int.from_bytes(await self.reader.readexactly(4), "big")
                bodies.append(await self.reader.readexactly(size))
        return bodies

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
