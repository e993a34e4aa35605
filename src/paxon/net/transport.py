"""The node's network: one listening port for peers and clients, one link per peer pair.

Theory of operation:
- Every connection starts with a handshake. The side that dialed sends
  ``Hello(cluster_id, node_id, version)``; the side that accepted answers
  ``Welcome`` or ``Refused`` (and then closes). Nothing else is accepted
  before it, and a connection silent for ``handshake_timeout_s`` is dropped.
- Peers: the node with the smaller id dials the larger one, so each pair has
  exactly one connection, used both ways. The dialer reconnects forever with
  exponential backoff (``reconnect_min_s`` to ``reconnect_max_s``, jittered).
  An acceptor takes a peer's Hello only for the exact cluster id, a known peer
  id and an id smaller than its own. A new handshaken connection from a peer
  replaces the old one.
- Clients: ``Hello`` with ``node_id`` 0 and cluster id "" (any) or the exact
  one. Requests arrive in ``on_client_request(connection, request)``; the node
  answers with ``connection.send(response)`` in any order.
- Sending never blocks and never raises for a lost peer: a message to a peer
  that is down, whose queue holds ``peer_queue_max_bytes``, or that encodes
  over ``frame_max_bytes`` is dropped and counted (Paxos retries). A message
  to this node itself is delivered by ``on_peer_message`` from the event loop,
  never from inside ``send``. A client with ``client_queue_max_bytes`` queued
  when a response is due is not reading and is disconnected. (A frame is
  queued while the queue is under its limit, so a queue holds at most its
  limit plus one frame, and one frame larger than the limit still goes out.)
- Frames written to one connection during one event-loop iteration go out in a
  single ``transport.write``.

Bad input decision table (every case: one log line with the address and the
reason, the connection is dropped, the transport keeps serving):

| input                                       | where                 | counted            |
|---------------------------------------------|-----------------------|--------------------|
| length prefix 0 or over ``frame_max_bytes`` | any connection        | bad_frames         |
| body that does not decode                   | any connection        | bad_frames         |
| EOF inside a frame                          | any connection        | bad_frames         |
| anything but Hello first                    | accepted connection   | bad_frames         |
| anything but Welcome / Refused first        | dialed connection     | bad_frames         |
| Hello with wrong cluster, id or version     | accepted connection   | handshakes_refused |
| no Hello / Welcome in time                  | any connection        | -                  |
| a client request or handshake message      | peer connection       | bad_frames         |
| ``src`` not the peer, ``dst`` not this node | peer connection       | bad_frames         |
| a peer message or handshake message         | client connection     | bad_frames         |

Exceptions raised by ``on_peer_message`` and ``on_client_request`` are bugs in
the node and are not caught here: they leave ``Protocol.data_received``, so
asyncio closes that connection and reports the exception to the event loop's
exception handler, where the node decides to crash.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from paxon.net.client_messages import (
    ANY_CLUSTER,
    CLIENT_NODE_ID,
    CLIENT_REQUEST_TYPES,
    CLIENT_RESPONSE_TYPES,
    PROTOCOL_VERSION,
    ClientRequest,
    ClientResponse,
    Failure,
    Hello,
    Refused,
    Welcome,
)
from paxon.net.codec import DecodeError, decode_body, encode_body
from paxon.net.config import DEFAULT_NET_CONFIG, NetConfig
from paxon.net.frames import FrameDecoder, FrameTooLarge, FrameWriter
from paxon.net.peer_messages import PeerMessage, SnapshotChunk
from paxon.protocol.messages import MESSAGE_TYPES

PeerState = Literal["up", "connecting", "down"]
"""``up``: handshaken; ``connecting``: dialing or handshaking; ``down``: neither."""

_PEER_TYPES: Final = frozenset((*MESSAGE_TYPES, SnapshotChunk))
_CLIENT_REQUEST_TYPES: Final = frozenset(CLIENT_REQUEST_TYPES)
_CLIENT_RESPONSE_TYPES: Final = frozenset(CLIENT_RESPONSE_TYPES)

_State = Literal["hello", "welcome", "peer", "client", "closed"]
# hello: accepted, waiting for Hello; welcome: dialed, waiting for Welcome.


_DIAL_FAILURES_WARN: Final = 20
"""Consecutive failed dials to one peer before it is logged as a warning."""


@dataclass(frozen=True, slots=True)
class TransportStats:
    frames_in: int
    frames_out: int
    bytes_in: int
    bytes_out: int
    dropped_sends: int
    bad_frames: int
    handshakes_refused: int
    peers: Mapping[int, PeerState]
    clients_connected: int


@dataclass(slots=True)
class _Counters:
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    dropped_sends: int = 0
    bad_frames: int = 0
    handshakes_refused: int = 0


class Transport:
    """Peer links and client connections of one node; see the module docstring."""

    def __init__(
        self,
        *,
        node_id: int,
        cluster_id: str,
        listen: tuple[str, int],
        peers: Mapping[int, tuple[str, int]],
        on_peer_message: Callable[[PeerMessage], None],
        on_client_request: Callable[[ClientConnection, ClientRequest], None],
        config: NetConfig = DEFAULT_NET_CONFIG,
        logger: logging.Logger | None = None,
    ) -> None:
        if node_id <= 0:
            raise ValueError(f"node_id must be > 0, got {node_id}")
        if node_id in peers or any(peer <= 0 for peer in peers):
            raise ValueError(f"peers must be other nodes with ids > 0, got {sorted(peers)}")
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.config = config
        self._listen = listen
        self._peers = dict(peers)
        self._on_peer_message = on_peer_message
        self._on_client_request = on_client_request
        self._log = logger or logging.getLogger("paxon.net")
        self._counters = _Counters()
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._peer_connections: dict[int, _Connection] = {}
        self._dial_states: dict[int, PeerState] = {}
        self._dial_tasks: list[asyncio.Task[None]] = []
        self._closing = False

    # ------------------------------------------------------------ public API

    async def start(self) -> None:
        """Binds the listening socket (OSError, e.g. port in use, goes to the caller)
        and starts dialing every peer with a larger id."""
        loop = asyncio.get_running_loop()
        host, port = self._listen
        self._server = await loop.create_server(
            lambda: _Connection(self, dialed_peer=None), host, port, reuse_address=True
        )
        for peer, address in sorted(self._peers.items()):
            if peer > self.node_id:
                self._dial_states[peer] = "connecting"
                task = loop.create_task(self._dial_loop(peer, address), name=f"paxon-dial-{peer}")
                task.add_done_callback(self._on_dial_task_done)
                self._dial_tasks.append(task)

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the port is the real one when 0 was asked for."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the transport is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    def send(self, message: PeerMessage) -> None:
        """Queues ``message`` for ``message.dst``, or drops and counts it; never raises
        for a lost peer and never blocks."""
        dst = message.dst
        if dst == self.node_id:
            asyncio.get_running_loop().call_soon(self._on_peer_message, message)
            return
        connection = self._peer_connections.get(dst)
        if connection is None or connection.state != "peer":
            self._counters.dropped_sends += 1
            return
        try:
            body = encode_body(message, self.config.frame_max_bytes)
        except FrameTooLarge as exc:
            self._log.error("[node %d] dropping a message to node %d: %s", self.node_id, dst, exc)
            self._counters.dropped_sends += 1
            return
        if connection.buffered_bytes >= self.config.peer_queue_max_bytes:
            self._log.debug("[node %d] queue to node %d is full; dropping", self.node_id, dst)
            self._counters.dropped_sends += 1
            return
        connection.write(body)

    def backlog_bytes(self, peer: int) -> int:
        """Bytes queued for ``peer`` and not yet taken by the kernel (0 when down)."""
        connection = self._peer_connections.get(peer)
        return 0 if connection is None else connection.buffered_bytes

    def reachable(self, peer: int) -> bool:
        """A handshaken connection to ``peer`` is up."""
        connection = self._peer_connections.get(peer)
        return connection is not None and connection.state == "peer"

    def stats(self) -> TransportStats:
        counters = self._counters
        return TransportStats(
            frames_in=counters.frames_in,
            frames_out=counters.frames_out,
            bytes_in=counters.bytes_in,
            bytes_out=counters.bytes_out,
            dropped_sends=counters.dropped_sends,
            bad_frames=counters.bad_frames,
            handshakes_refused=counters.handshakes_refused,
            peers={peer: self._peer_state(peer) for peer in sorted(self._peers)},
            clients_connected=sum(c.state == "client" for c in self._connections),
        )

    async def close(self) -> None:
        """Stops dialing and listening, flushes and closes every connection."""
        self._closing = True
        for task in self._dial_tasks:
            task.cancel()
        await asyncio.gather(*self._dial_tasks, return_exceptions=True)
        self._dial_tasks.clear()
        if self._server is not None:
            self._server.close()
        connections = list(self._connections)
        for connection in connections:
            connection.close()
        if connections:
            waits = [connection.closed for connection in connections]
            _, pending = await asyncio.wait(waits, timeout=self.config.connect_timeout_s)
            for connection in connections:
                if not connection.closed.done():
                    connection.abort()
            if pending:
                await asyncio.wait(pending)
        if self._server is not None:
            await self._server.wait_closed()

    # ------------------------------------------------------------ handlers

    def _on_connection_made(self, connection: _Connection) -> bool:
        """Registers a new connection; False when closing (the caller aborts it)."""
        if self._closing:
            return False
        self._connections.add(connection)
        return True

    def _on_connection_lost(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        peer = connection.peer_id
        if peer is not None and self._peer_connections.get(peer) is connection:
            del self._peer_connections[peer]
            self._log.info("[node %d] link to node %d is down", self.node_id, peer)

    def _check_hello(self, hello: Hello) -> str | None:
        """Why ``hello`` is refused, or None to welcome it."""
        if hello.version != PROTOCOL_VERSION:
            return f"unsupported protocol version {hello.version}"
        if hello.node_id == CLIENT_NODE_ID:
            if hello.cluster_id not in (ANY_CLUSTER, self.cluster_id):
                return f"wrong cluster {hello.cluster_id!r}"
            return None
        if hello.cluster_id != self.cluster_id:
            return f"wrong cluster {hello.cluster_id!r}"
        if hello.node_id not in self._peers:
            return f"node {hello.node_id} is not a peer"
        if hello.node_id >= self.node_id:
            return f"node {hello.node_id} must wait for node {self.node_id} to dial it"
        return None

    def _on_peer_handshaken(self, connection: _Connection, peer: int) -> None:
        old = self._peer_connections.get(peer)
        self._peer_connections[peer] = connection
        self._log.info("[node %d] link to node %d is up (%s)", self.node_id, peer, connection.name)
        if old is not None and old is not connection:
            self._log.info("[node %d] replacing the old link to node %d", self.node_id, peer)
            old.abort()

    def _on_dial_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        task.get_loop().call_exception_handler(
            {
                "message": f"[node {self.node_id}] a peer dialer failed",
                "exception": task.exception(),
            }
        )

    # ------------------------------------------------------------ helpers

    async def _dial_loop(self, peer: int, address: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        host, port = address
        failures = 0
        while True:
            self._dial_states[peer] = "connecting"
            reason = await self._dial_once(loop, peer, host, port)
            if reason is None:
                failures = 0
            else:
                # Peers start one after another: a first failure is normal
                # (info); a peer still unreachable after many tries is news.
                if failures == 0 and reason.startswith("refused"):
                    log = self._log.warning  # a misconfiguration, not a start-up race
                elif failures == 0:
                    log = self._log.info
                elif failures == _DIAL_FAILURES_WARN:
                    log = self._log.warning
                else:
                    log = self._log.debug
                log(
                    "[node %d] cannot reach node %d at %s:%d: %s",
                    self.node_id,
                    peer,
                    host,
                    port,
                    reason,
                )
                failures += 1
            self._dial_states[peer] = "down"
            await asyncio.sleep(self._backoff_s(failures))

    async def _dial_once(
        self, loop: asyncio.AbstractEventLoop, peer: int, host: str, port: int
    ) -> str | None:
        """One connection's life; None if it got through the handshake, else why not."""
        try:
            async with asyncio.timeout(self.config.connect_timeout_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self, dialed_peer=peer), host, port
                )
        except (OSError, TimeoutError) as exc:
            return str(exc) or type(exc).__name__
        reason = await connection.handshaken
        if reason is not None:
            connection.abort()
            return reason
        await connection.closed
        return None

    def _backoff_s(self, failures: int) -> float:
        config = self.config
        delay = min(config.reconnect_max_s, config.reconnect_min_s * 2.0 ** min(failures, 32))
        return delay * random.uniform(0.5, 1.0)

    def _peer_state(self, peer: int) -> PeerState:
        if self.reachable(peer):
            return "up"
        return self._dial_states.get(peer, "down")


class ClientConnection:
    """One client's connection, as the node sees it: answer its requests with ``send``."""

    __slots__ = ("_connection",)

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection

    def send(self, response: ClientResponse) -> None:
        """Queues ``response``; a closed connection drops it. Over
        ``client_queue_max_bytes`` buffered, the client is disconnected."""
        self._connection.send_response(response)

    @property
    def peer_name(self) -> str:
        return self._connection.name

    @property
    def closed(self) -> bool:
        return self._connection.state == "closed"

    def __repr__(self) -> str:
        return f"ClientConnection({self.peer_name}, closed={self.closed})"


class _Connection(asyncio.Protocol):
    """One TCP connection of a Transport, accepted or dialed, through its whole life."""

    def __init__(self, owner: Transport, *, dialed_peer: int | None) -> None:
        loop = asyncio.get_running_loop()
        self._owner = owner
        self._log = owner._log
        self._counters = owner._counters
        self._dialed_peer = dialed_peer
        self._decoder = FrameDecoder(owner.config.frame_max_bytes)
        self._transport: asyncio.Transport | None = None
        self._writer: FrameWriter | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._client: ClientConnection | None = None
        self.state: _State = "hello" if dialed_peer is None else "welcome"
        self.peer_id: int | None = None
        self.name = "?"
        self.handshaken: asyncio.Future[str | None] = loop.create_future()
        """None once the handshake succeeds, else why it failed (dialed connections)."""
        self.closed: asyncio.Future[None] = loop.create_future()

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self.name = _format_address(transport.get_extra_info("peername"))
        if not self._owner._on_connection_made(self):
            transport.abort()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = asyncio.get_running_loop()
        self._writer = FrameWriter(transport, loop)
        self._timer = loop.call_later(
            self._owner.config.handshake_timeout_s, self._on_handshake_timeout
        )
        if self._dialed_peer is not None:
            owner = self._owner
            self.write(encode_body(Hello(owner.cluster_id, owner.node_id, PROTOCOL_VERSION)))

    def data_received(self, data: bytes) -> None:
        counters = self._counters
        counters.bytes_in += len(data)
        try:
            bodies = self._decoder.feed(data)
        except FrameTooLarge as exc:
            self._drop_bad(str(exc))
            return
        for body in bodies:
            if self.state == "closed":
                return
            try:
                message = decode_body(body)
            except DecodeError as exc:
                self._drop_bad(f"undecodable frame: {exc}")
                return
            counters.frames_in += 1
            match self.state:
                case "peer":
                    self._on_peer_frame(message)
                case "client":
                    self._on_client_frame(message)
                case "hello":
                    self._on_hello_frame(message)
                case "welcome":
                    self._on_welcome_frame(message)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed = self.state == "closed"
        self.state = "closed"
        if self._timer is not None:
            self._timer.cancel()
        partial = self._decoder.buffered_bytes
        if partial and not was_closed:
            self._counters.bad_frames += 1
            self._log.warning(
                "[node %d] connection %s closed inside a frame (%d bytes of it received)",
                self._owner.node_id,
                self.name,
                partial,
            )
        if not self.handshaken.done():
            self.handshaken.set_result(f"connection lost during the handshake ({exc or 'EOF'})")
        self._owner._on_connection_lost(self)
        if not self.closed.done():
            self.closed.set_result(None)

    # ------------------------------------------------------------ writing

    @property
    def buffered_bytes(self) -> int:
        assert self._writer is not None
        return self._writer.buffered_bytes

    def write(self, body: bytes) -> None:
        assert self._writer is not None
        counters = self._counters
        counters.bytes_out += self._writer.write(body)
        counters.frames_out += 1

    def send_response(self, response: ClientResponse) -> None:
        if type(response) not in _CLIENT_RESPONSE_TYPES:
            raise TypeError(f"not a client response: {type(response).__name__}")
        if self.state != "client":
            self._log.debug(
                "[node %d] client %s is gone; dropping a response", self._owner.node_id, self.name
            )
            return
        config = self._owner.config
        try:
            body = encode_body(response, config.frame_max_bytes)
        except FrameTooLarge as exc:
            self._log.error("[node %d] response to %s: %s", self._owner.node_id, self.name, exc)
            failure = Failure(
                response.request_id, "too_large", "the response is over the frame limit"
            )
            body = encode_body(failure)
        if self.buffered_bytes >= config.client_queue_max_bytes:
            self._log.warning(
                "[node %d] disconnecting client %s: over %d bytes queued (not reading)",
                self._owner.node_id,
                self.name,
                config.client_queue_max_bytes,
            )
            self.abort()
            return
        self.write(body)

    def close(self) -> None:
        """Flushes what is queued, then closes."""
        self.state = "closed"
        if self._writer is not None:
            self._writer.flush()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Closes at once, discarding what is queued."""
        self.state = "closed"
        if self._transport is not None:
            self._transport.abort()

    # ------------------------------------------------------------ handlers

    def _on_peer_frame(self, message: Any) -> None:
        if type(message) not in _PEER_TYPES:
            self._drop_bad(f"{type(message).__name__} on a peer connection")
            return
        if message.src != self.peer_id or message.dst != self._owner.node_id:
            self._drop_bad(
                f"{type(message).__name__} from {message.src} to {message.dst} "
                f"on the link to node {self.peer_id}"
            )
            return
        self._owner._on_peer_message(message)

    def _on_client_frame(self, message: Any) -> None:
        if type(message) not in _CLIENT_REQUEST_TYPES:
            self._drop_bad(f"{type(message).__name__} on a client connection")
            return
        assert self._client is not None
        self._owner._on_client_request(self._client, message)

    def _on_hello_frame(self, message: Any) -> None:
        if type(message) is not Hello:
            self._drop_bad(f"{type(message).__name__} before Hello")
            return
        owner = self._owner
        reason = owner._check_hello(message)
        if reason is not None:
            owner._counters.handshakes_refused += 1
            self._log.warning("[node %d] refusing %s: %s", owner.node_id, self.name, reason)
            self.write(encode_body(Refused(reason)))
            self.close()
            return
        self._end_handshake()
        self.write(encode_body(Welcome(owner.cluster_id, owner.node_id)))
        if message.node_id == CLIENT_NODE_ID:
            self.state = "client"
            self._client = ClientConnection(self)
            self._log.debug("[node %d] client %s connected", owner.node_id, self.name)
        else:
            self.state = "peer"
            self.peer_id = message.node_id
            owner._on_peer_handshaken(self, message.node_id)

    def _on_welcome_frame(self, message: Any) -> None:
        owner = self._owner
        if type(message) is Refused:
            self._drop(f"refused by the peer: {message.reason}")
            return
        if type(message) is not Welcome:
            self._drop_bad(f"{type(message).__name__} before Welcome")
            return
        if message.node_id != self._dialed_peer or message.cluster_id != owner.cluster_id:
            self._drop_bad(
                f"expected node {self._dialed_peer} of cluster {owner.cluster_id!r}, "
                f"got node {message.node_id} of cluster {message.cluster_id!r}"
            )
            return
        self._end_handshake()
        self.state = "peer"
        self.peer_id = message.node_id
        owner._on_peer_handshaken(self, message.node_id)
        self.handshaken.set_result(None)

    def _on_handshake_timeout(self) -> None:
        if self.state in ("hello", "welcome"):
            timeout_s = self._owner.config.handshake_timeout_s
            self._drop(f"no handshake within {timeout_s} s")

    # ------------------------------------------------------------ helpers

    def _end_handshake(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _drop_bad(self, reason: str) -> None:
        self._counters.bad_frames += 1
        self._drop(reason)

    def _drop(self, reason: str) -> None:
        if self.handshaken.done() or self._dialed_peer is None:
            self._log.warning(
                "[node %d] dropping connection %s: %s", self._owner.node_id, self.name, reason
            )
        else:
            self.handshaken.set_result(reason)  # the dialer logs it
        self.abort()


def _format_address(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
