"""The node's network: a client port, an optional peer port, one link per peer pair.

Theory of operation:
- Ports. ``listen`` serves clients, and peers too unless ``peer_listen`` gives
  peers a port of their own. A peer Hello on a client-only port and a client
  Hello on the peer port are refused. TLS: the peer port (which must then be
  separate) uses mutual TLS from ``PeerSecurity``; the client port uses
  ``client_tls`` when given.
- Every connection starts with a handshake; nothing else is accepted before it,
  frames before it may be at most ``handshake_frame_max_bytes``, and a
  connection that has not finished it within ``handshake_timeout_s`` is dropped.
  A client sends ``Hello(cluster_id or "", 0, version)`` and gets ``Welcome``
  (which echoes the cluster id the client named: the node's own cluster id is
  never told to a dialer that has not proved it is a member). A peer goes
  through ``Hello``, ``Challenge``, ``PeerProof``, ``PeerWelcome``
  (``paxon.net.peer_auth``): with a certificate (TLS) or the cluster secret it
  proves it is that node id, and the acceptor proves the same back.
- Peers: the node with the smaller id dials the larger one, so each pair has
  exactly one connection, used both ways. The dialer reconnects forever with
  exponential backoff (``reconnect_min_s`` to ``reconnect_max_s``, jittered);
  a connection refused outright (nothing listens: the peer's process is
  starting, restarting, or was just added) backs off only to
  ``reconnect_refused_max_s``, so its link is up soon after it listens.
  An acceptor takes a peer's Hello only for the exact cluster id, a known peer
  id smaller than its own, and (TLS) a certificate naming that id. Only a
  connection that finished the whole handshake replaces a peer's link, so with
  TLS or a secret a stranger can never take a link over.
- Clients: requests arrive in ``on_client_request(connection, request)``; the
  node answers with ``connection.send(response)`` in any order.
- Bounds on every port (``NetConfig`` has the numbers): connections still in
  their handshake, handshaken clients per port and per address, requests in
  flight per client, an idle timeout for clients. Peers are not counted
  against the client bounds.
- Sending never blocks and never raises for a lost peer: a message to a peer
  that is down, whose queue holds ``peer_queue_max_bytes``, or that encodes
  over ``frame_max_bytes`` is dropped and counted (Paxos retries). A message
  to this node itself is delivered by ``on_peer_message`` from the event loop,
  never from inside ``send``. A client with ``client_queue_max_bytes`` queued
  when a response is due is not reading and is disconnected. (A frame is
  queued while the queue is under its limit, so a queue holds at most its
  limit plus one frame, and one frame larger than the limit still goes out.)
- Frames written to one connection during one event-loop iteration go out in a
  single ``transport.write`` (or every 16 KiB, see ``frames.py``).

Bad input decision table (every case: one log line with the address and the
reason, the connection is dropped, the transport keeps serving):

| input                                        | where                 | counted            |
|----------------------------------------------|-----------------------|--------------------|
| length prefix 0 or over the limit            | any connection        | bad_frames         |
| (``handshake_frame_max_bytes`` before the handshake, ``frame_max_bytes`` after) |  |   |
| body that does not decode                    | any connection        | bad_frames         |
| EOF inside a frame                           | any connection        | bad_frames         |
| anything but Hello first                     | accepted connection   | bad_frames         |
| anything but the next handshake message      | either side, handshake| bad_frames         |
| Hello with wrong cluster, id or version      | accepted connection   | handshakes_refused |
| peer Hello on the client port, or the reverse| accepted connection   | handshakes_refused |
| TLS certificate not naming the claimed node  | either side           | handshakes_refused |
| a wrong proof (cluster secret)               | either side           | handshakes_refused |
| an incarnation other than the bound one      | either side           | incarnations_refused|
| (``set_bound_incarnations``; the refused side is told why by ``Refused``; one warning per peer)  |
| no handshake in time                         | any connection        | -                  |
| over ``handshaking_max`` / client bounds     | accepted connection   | connections_refused|
| a client request or handshake message        | peer connection       | bad_frames         |
| ``src`` not the peer, ``dst`` not this node  | peer connection       | bad_frames         |
| a peer message or handshake message          | client connection     | bad_frames         |
| over ``client_requests_in_flight_max``       | client connection     | requests_refused   |
| (answered with a ``busy`` Failure, the connection stays)                                   |
| idle over ``client_idle_timeout_s``          | client connection     | - (closed quietly) |

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
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from paxon.net.client_messages import (
    ANY_CLUSTER,
    CLIENT_NODE_ID,
    CLIENT_REQUEST_TYPES,
    CLIENT_RESPONSE_TYPES,
    PROTOCOL_VERSION,
    Challenge,
    ClientRequest,
    ClientResponse,
    Failure,
    Hello,
    PeerProof,
    PeerWelcome,
    Refused,
    Reply,
    Welcome,
)
from paxon.net.codec import (
    CLIENT_REQUEST_CODES,
    PEER_CODES,
    DecodeError,
    decode_body,
    encode_body,
    encode_reply_body,
)
from paxon.net.config import DEFAULT_NET_CONFIG, NetConfig
from paxon.net.frames import FrameDecoder, FrameTooLarge, FrameWriter
from paxon.net.peer_auth import (
    INSECURE,
    HandshakeTranscript,
    PeerSecurity,
    new_nonce,
    proofs_match,
)
from paxon.net.peer_messages import PeerMessage, SnapshotChunk
from paxon.protocol.messages import MESSAGE_TYPES

PeerState = Literal["up", "connecting", "down"]
"""``up``: handshaken; ``connecting``: dialing or handshaking; ``down``: neither."""

PortRole = Literal["shared", "client", "peer"]
"""Who a listening port serves: both (no ``peer_listen``), clients only, peers only."""

_PEER_TYPES: Final = frozenset((*MESSAGE_TYPES, SnapshotChunk))
_CLIENT_REQUEST_TYPES: Final = frozenset(CLIENT_REQUEST_TYPES)
_CLIENT_RESPONSE_TYPES: Final = frozenset(CLIENT_RESPONSE_TYPES)

_State = Literal["hello", "proof", "challenge", "welcome", "peer", "client", "closed"]
# Accepted: hello -> (client | proof -> peer). Dialed: challenge -> welcome -> peer.
_HANDSHAKING: Final = frozenset(("hello", "proof", "challenge", "welcome"))
_EXPECTED: Final[dict[_State, frozenset[int]]] = {
    # Refused: a dialer that found this node's incarnation unbound tells it why.
    "peer": PEER_CODES | {34},
    "client": CLIENT_REQUEST_CODES,
}
"""Type codes decoded after the handshake; frames before it are 4 KiB at most."""

_DIAL_FAILURES_WARN: Final = 20
# How a dial refused outright (ECONNREFUSED) is reported; such a dial is retried
# within ``reconnect_refused_max_s``.
_NOT_LISTENING: Final = "nothing listens there"
"""Consecutive failed dials to one peer before it is logged as a warning."""
_SWEEP_INTERVAL_S: Final = 1.0
"""How often client connections are checked for idleness and forgotten requests."""


@dataclass(frozen=True, slots=True)
class TransportStats:
    frames_in: int
    frames_out: int
    bytes_in: int
    bytes_out: int
    dropped_sends: int
    bad_frames: int
    handshakes_refused: int
    connections_refused: int
    requests_refused: int
    peers: Mapping[int, PeerState]
    clients_connected: int
    incarnations_refused: int = 0


@dataclass(slots=True)
class _Counters:
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    dropped_sends: int = 0
    bad_frames: int = 0
    handshakes_refused: int = 0
    connections_refused: int = 0
    requests_refused: int = 0
    incarnations_refused: int = 0


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
        peer_listen: tuple[str, int] | None = None,
        security: PeerSecurity = INSECURE,
        client_tls: ssl.SSLContext | None = None,
        client_address: str = "",
        incarnation: int = 0,
        on_client_answer: Callable[[ClientRequest, ClientResponse, float], None] | None = None,
        on_client_reply: Callable[[ClientRequest, bytes, float], None] | None = None,
    ) -> None:
        """``incarnation``: this node's data directory (``storage.identity``), told to
        peers in the handshake. ``on_client_answer(request, response, seconds)`` is
        called as each client request is answered, with the seconds since its frame
        arrived (for metrics; a request forgotten unanswered is not reported);
        ``on_client_reply(request, payload, seconds)`` instead for an answer sent
        with ``ClientConnection.reply`` (a ``Reply`` that was never made)."""
        if node_id <= 0:
            raise ValueError(f"node_id must be > 0, got {node_id}")
        if node_id in peers or any(peer <= 0 for peer in peers):
            raise ValueError(f"peers must be other nodes with ids > 0, got {sorted(peers)}")
        if peer_listen is None and (security.mode == "tls" or client_tls is not None):
            raise ValueError("TLS needs a separate peer port (peer_listen)")
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.config = config
        self.security = security
        self.client_address = client_address
        """The address this node's clients use, told to peers in the handshake."""
        self._listen = listen
        self._peer_listen = peer_listen
        self._client_tls = client_tls
        self._peers = dict(peers)
        self._on_peer_message = on_peer_message
        self._on_client_request = on_client_request
        self._on_client_answer = on_client_answer
        self._on_client_reply = on_client_reply
        self._log = logger or logging.getLogger("paxon.net")
        self._counters = _Counters()
        self._servers: dict[PortRole, asyncio.Server] = {}
        self._connections: set[_Connection] = set()
        self._peer_connections: dict[int, _Connection] = {}
        self._peer_client_addresses: dict[int, str] = {}
        self.incarnation = incarnation
        self._peer_incarnations: dict[int, int] = {}  # from handshakes that got through
        self._bound_incarnations: dict[int, int] = {}  # what the newest configuration binds
        self._incarnations_logged: set[tuple[int, int]] = set()  # (peer, incarnation) refused
        self._dial_states: dict[int, PeerState] = {}
        self._dial_tasks: dict[int, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False

    # ------------------------------------------------------------ public API

    async def start(self) -> None:
        """Binds the listening sockets (OSError, e.g. port in use, goes to the caller)
        and starts dialing every peer with a larger id."""
        loop = asyncio.get_running_loop()
        handshake_s = self.config.handshake_timeout_s
        ports: list[tuple[PortRole, tuple[str, int], ssl.SSLContext | None]] = []
        if self._peer_listen is None:
            ports.append(("shared", self._listen, None))
        else:
            ports.append(("client", self._listen, self._client_tls))
            ports.append(("peer", self._peer_listen, self.security.tls_accept))
        try:
            for role, (host, port), context in ports:
                self._servers[role] = await loop.create_server(
                    lambda role=role: _Connection(self, dialed_peer=None, port_role=role),
                    host,
                    port,
                    reuse_address=True,
                    ssl=context,
                    ssl_handshake_timeout=handshake_s if context is not None else None,
                )
        except BaseException:
            for server in self._servers.values():
                server.close()
            raise
        for peer, address in sorted(self._peers.items()):
            self._start_dialing(peer, address)
        self._sweeper = loop.create_task(self._sweep_forever(), name="paxon-client-sweep")

    def set_peers(self, peers: Mapping[int, tuple[str, int]]) -> None:
        """The members changed: dial the new ones (those with a larger id), hang
        up on and stop dialing the ones gone or moved, refuse the gone from now on."""
        peers = {peer: address for peer, address in peers.items() if peer != self.node_id}
        for peer, address in list(self._peers.items()):
            if peers.get(peer) == address:
                continue
            task = self._dial_tasks.pop(peer, None)
            if task is not None:
                task.cancel()
            connection = self._peer_connections.pop(peer, None)
            if connection is not None:
                connection.close()
            self._dial_states.pop(peer, None)
            self._peer_client_addresses.pop(peer, None)
            self._peer_incarnations.pop(peer, None)
            del self._peers[peer]
        for peer, address in sorted(peers.items()):
            if peer not in self._peers:
                self._peers[peer] = address
                self._start_dialing(peer, address)

    def _start_dialing(self, peer: int, address: tuple[str, int]) -> None:
        if peer <= self.node_id:
            return  # the peer with the larger id dials
        self._dial_states[peer] = "connecting"
        task = asyncio.get_running_loop().create_task(
            self._dial_loop(peer, address), name=f"paxon-dial-{peer}"
        )
        task.add_done_callback(self._on_dial_task_done)
        self._dial_tasks[peer] = task

    @property
    def address(self) -> tuple[str, int]:
        """The bound client (host, port); the port is the real one when 0 was asked for."""
        return self._bound("shared" if self._peer_listen is None else "client")

    @property
    def peer_address(self) -> tuple[str, int]:
        """The bound (host, port) peers dial (the client port when they share it)."""
        return self._bound("shared" if self._peer_listen is None else "peer")

    def incarnation_of(self, peer: int) -> int | None:
        """The incarnation ``peer`` named in the handshake of its link, while it is up."""
        return self._peer_incarnations.get(peer)

    def set_bound_incarnations(self, bound: Mapping[int, int]) -> None:
        """From now on refuse a handshake of a peer in ``bound`` that names another
        incarnation, and drop the links of those that did."""
        self._bound_incarnations = dict(bound)
        for peer, incarnation in list(self._peer_incarnations.items()):
            if bound.get(peer, incarnation) != incarnation:
                connection = self._peer_connections.get(peer)
                if connection is not None:
                    connection.refuse_incarnation(peer, incarnation)

    def _incarnation_refusal(self, peer: int, incarnation: int) -> str | None:
        """Why ``peer``'s handshake naming ``incarnation`` is refused, or None."""
        bound = self._bound_incarnations.get(peer)
        if bound is None or bound == incarnation:
            return None
        return (
            f"node {peer}'s data directory is a new incarnation ({incarnation:#x}), not the one "
            f"the cluster bound ({bound:#x}): it was wiped or replaced and may have forgotten "
            f"promises. Remove it and add it back as a learner: paxon members remove {peer}; "
            f"paxon members add {peer}=PEER_HOST:PORT --learner; then start it on an empty data "
            "directory with --join (docs/membership.md, replace)"
        )

    def _note_incarnation_refused(self, peer: int, incarnation: int, reason: str) -> None:
        self._counters.incarnations_refused += 1
        first = (peer, incarnation) not in self._incarnations_logged
        self._incarnations_logged.add((peer, incarnation))
        (self._log.warning if first else self._log.debug)(
            "[node %d] refusing node %d: %s", self.node_id, peer, reason
        )

    def client_address_of(self, peer: int) -> str | None:
        """The client address ``peer`` announced in its last handshake, if any."""
        return self._peer_client_addresses.get(peer)

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
            connections_refused=counters.connections_refused,
            requests_refused=counters.requests_refused,
            incarnations_refused=counters.incarnations_refused,
            peers={peer: self._peer_state(peer) for peer in sorted(self._peers)},
            clients_connected=sum(c.state == "client" for c in self._connections),
        )

    async def close(self) -> None:
        """Stops dialing and listening, flushes and closes every connection."""
        self._closing = True
        tasks = [*self._dial_tasks.values(), *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._dial_tasks.clear()
        for server in self._servers.values():
            server.close()
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
        for server in self._servers.values():
            await server.wait_closed()

    # ------------------------------------------------------------ handlers

    def _on_connection_made(self, connection: _Connection) -> str | None:
        """Registers a new connection; why not when it must be closed at once."""
        if self._closing:
            return "closing"
        if connection.port_role is not None:
            handshaking = sum(
                c.state in _HANDSHAKING and c.port_role == connection.port_role
                for c in self._connections
            )
            if handshaking >= self.config.handshaking_max:
                self._counters.connections_refused += 1
                return f"over {self.config.handshaking_max} connections in their handshake"
        self._connections.add(connection)
        return None

    def _on_connection_lost(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        peer = connection.peer_id
        if peer is not None and self._peer_connections.get(peer) is connection:
            del self._peer_connections[peer]
            # Only a link that is up vouches for an incarnation (a leader binds
            # what it hears now, never what a wiped node's predecessor said).
            self._peer_incarnations.pop(peer, None)
            self._log.info("[node %d] link to node %d is down", self.node_id, peer)

    def _check_hello(self, hello: Hello, connection: _Connection) -> str | None:
        """Why ``hello`` is refused on ``connection``, or None to go on with it."""
        if hello.version != PROTOCOL_VERSION:
            return f"unsupported protocol version {hello.version}"
        role = connection.port_role
        if hello.node_id == CLIENT_NODE_ID:
            if role == "peer":
                return "this port is for peers; clients use the client port"
            if hello.cluster_id not in (ANY_CLUSTER, self.cluster_id):
                return f"wrong cluster {hello.cluster_id!r}"
            return self._check_client_room(connection)
        if role == "client":
            return "this port is for clients; peers use the peer port"
        if hello.cluster_id != self.cluster_id:
            return f"wrong cluster {hello.cluster_id!r}"
        if hello.node_id not in self._peers:
            return f"node {hello.node_id} is not a peer"
        if hello.node_id >= self.node_id:
            return f"node {hello.node_id} must wait for node {self.node_id} to dial it"
        return self._check_certificate(connection, hello.node_id)

    def _check_certificate(self, connection: _Connection, node_id: int) -> str | None:
        """With peer TLS: why the certificate does not name ``node_id`` of this cluster."""
        if self.security.mode != "tls":
            return None
        identity = connection.identity
        if identity is None:
            return "its certificate names no paxon node"
        if identity.cluster_id != self.cluster_id or identity.node_id != node_id:
            return (
                f"its certificate is for {identity.kind} {identity.name!r} of cluster "
                f"{identity.cluster_id!r}, not node {node_id}"
            )
        return None

    def _check_client_room(self, connection: _Connection) -> str | None:
        config = self.config
        clients = [c for c in self._connections if c.state == "client"]
        if sum(c.port_role == connection.port_role for c in clients) >= config.clients_max:
            return f"too many clients (over {config.clients_max} on this port)"
        same_host = sum(c.host == connection.host for c in clients)
        if same_host >= config.clients_per_address_max:
            limit = config.clients_per_address_max
            return f"too many clients from {connection.host} (over {limit})"
        return None

    def _on_peer_handshaken(
        self, connection: _Connection, peer: int, client_address: str, incarnation: int
    ) -> None:
        old = self._peer_connections.get(peer)
        self._peer_connections[peer] = connection
        self._peer_incarnations[peer] = incarnation
        if client_address:
            self._peer_client_addresses[peer] = client_address
        self._log.info(
            "[node %d] link to node %d is up (%s, %s)",
            self.node_id,
            peer,
            connection.name,
            self.security.mode if self.security.mode != "none" else "unauthenticated",
        )
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

    def _bound(self, role: PortRole) -> tuple[str, int]:
        server = self._servers.get(role)
        if server is None or not server.sockets:
            raise RuntimeError("the transport is not started")
        host, port = server.sockets[0].getsockname()[:2]
        return host, port

    async def _sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        while True:
            await asyncio.sleep(min(_SWEEP_INTERVAL_S, config.client_idle_timeout_s / 4))
            now = loop.time()
            for connection in list(self._connections):
                if connection.state == "client":
                    connection.sweep(now)

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
            not_listening = reason is not None and reason.startswith(_NOT_LISTENING)
            await asyncio.sleep(self._backoff_s(failures, not_listening=not_listening))

    async def _dial_once(
        self, loop: asyncio.AbstractEventLoop, peer: int, host: str, port: int
    ) -> str | None:
        """One connection's life; None if it got through the handshake, else why not."""
        context = self.security.tls_dial
        try:
            async with asyncio.timeout(self.config.connect_timeout_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self, dialed_peer=peer, port_role=None),
                    host,
                    port,
                    ssl=context,
                    ssl_handshake_timeout=(
                        self.config.handshake_timeout_s if context is not None else None
                    ),
                )
        except ConnectionRefusedError as exc:
            return f"{_NOT_LISTENING} ({exc})"
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            return str(exc) or type(exc).__name__
        reason = await connection.handshaken
        if reason is not None:
            connection.abort()
            return reason
        await connection.closed
        return None

    def _backoff_s(self, failures: int, *, not_listening: bool = False) -> float:
        config = self.config
        ceiling = config.reconnect_max_s
        if not_listening:
            ceiling = min(ceiling, config.reconnect_refused_max_s)
        delay = min(ceiling, config.reconnect_min_s * 2.0 ** min(failures, 32))
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

    def reply(self, request_id: int, payload: bytes) -> None:
        """``send(Reply(request_id, payload))``, the same bytes on the wire, without
        making the Reply (once per command on the leader)."""
        self._connection.send_reply(request_id, payload)

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

    def __init__(
        self, owner: Transport, *, dialed_peer: int | None, port_role: PortRole | None
    ) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._owner = owner
        self._log = owner._log
        self._counters = owner._counters
        self._dialed_peer = dialed_peer
        self.port_role = port_role
        """The port this connection was accepted on; None for one this node dialed."""
        config = owner.config
        self._decoder = FrameDecoder(min(config.handshake_frame_max_bytes, config.frame_max_bytes))
        self._transport: asyncio.Transport | None = None
        self._writer: FrameWriter | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._client: ClientConnection | None = None
        self._transcript: HandshakeTranscript | None = None
        self._nonce = b""
        # Client connections: when the last frame arrived; requests in flight by id.
        self._last_frame_at = loop.time()
        self._in_flight: dict[int, tuple[float, ClientRequest]] = {}
        self.state: _State = "hello" if dialed_peer is None else "challenge"
        self.peer_id: int | None = None
        self.identity: Any = None
        """The paxon identity in the other end's TLS certificate (``CertIdentity``), if any."""
        self.name = "?"
        self.host = "?"
        self.handshaken: asyncio.Future[str | None] = loop.create_future()
        """None once the handshake succeeds, else why it failed (dialed connections)."""
        self.closed: asyncio.Future[None] = loop.create_future()

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peername = transport.get_extra_info("peername")
        self.name = _format_address(peername)
        self.host = str(peername[0]) if isinstance(peername, tuple) and peername else self.name
        refusal = self._owner._on_connection_made(self)
        if refusal is not None:
            if refusal != "closing":
                self._log.warning(
                    "[node %d] closing connection %s: %s", self._owner.node_id, self.name, refusal
                )
            self.state = "closed"
            transport.abort()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = self._loop
        self._writer = FrameWriter(transport, loop)
        self._timer = loop.call_later(
            self._owner.config.handshake_timeout_s, self._on_handshake_timeout
        )
        owner = self._owner
        if owner.security.mode == "tls" and self.port_role != "client":
            from paxon.security.tls import identity_of_transport  # needs `cryptography`

            self.identity = identity_of_transport(transport)
        if self._dialed_peer is not None:
            reason = owner._check_certificate(self, self._dialed_peer)
            if reason is not None:
                self._refuse_quietly(f"the peer at {self.name}: {reason}")
                return
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
                # A type this state cannot use is refused before it is unpacked.
                message = decode_body(body, _EXPECTED.get(self.state))
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
                case "proof":
                    self._on_proof_frame(message)
                case "challenge":
                    self._on_challenge_frame(message)
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
        answered = self._in_flight.pop(response.request_id, None)
        observe = self._owner._on_client_answer
        if answered is not None and observe is not None:
            arrived_at, request = answered
            observe(request, response, self._loop.time() - arrived_at)
        config = self._owner.config
        try:
            body = encode_body(response, config.frame_max_bytes)
        except FrameTooLarge as exc:
            self._log.error("[node %d] response to %s: %s", self._owner.node_id, self.name, exc)
            failure = Failure(
                response.request_id, "too_large", "the response is over the frame limit"
            )
            body = encode_body(failure)
        self._write_response(body)

    def send_reply(self, request_id: int, payload: bytes) -> None:
        """``send_response(Reply(request_id, payload))``, built straight from its fields;
        anything but the common case (a live client, a frame within the limit) goes
        the general way."""
        if type(payload) is not bytes:
            raise TypeError(f"a reply payload must be bytes, got {type(payload).__name__}")
        body = encode_reply_body(request_id, payload)
        if self.state != "client" or len(body) > self._owner.config.frame_max_bytes:
            self.send_response(Reply(request_id, payload))
            return
        answered = self._in_flight.pop(request_id, None)
        observe = self._owner._on_client_reply
        if answered is not None and observe is not None:
            arrived_at, request = answered
            observe(request, payload, self._loop.time() - arrived_at)
        self._write_response(body)

    def _write_response(self, body: bytes) -> None:
        limit = self._owner.config.client_queue_max_bytes
        if self.buffered_bytes >= limit:
            self._log.warning(
                "[node %d] disconnecting client %s: over %d bytes queued (not reading)",
                self._owner.node_id,
                self.name,
                limit,
            )
            self.abort()
            return
        self.write(body)

    def sweep(self, now: float) -> None:
        """Forgets requests its client gave up on; closes the connection when idle."""
        config = self._owner.config
        if self._in_flight:
            forget_before = now - config.client_request_forget_s
            for request_id, (arrived_at, _) in list(self._in_flight.items()):
                if arrived_at < forget_before:
                    del self._in_flight[request_id]
        if not self._in_flight and now - self._last_frame_at > config.client_idle_timeout_s:
            self._log.info(
                "[node %d] closing client %s: idle for over %g s",
                self._owner.node_id,
                self.name,
                config.client_idle_timeout_s,
            )
            self.close()

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
        if type(message) is Refused:
            owner = self._owner
            key = (self.peer_id or 0, -1)  # logged once per peer
            first = key not in owner._incarnations_logged
            owner._incarnations_logged.add(key)
            (self._log.error if first else self._log.debug)(
                "[node %d] node %s refuses this node: %s",
                owner.node_id,
                self.peer_id,
                message.reason,
            )
            self.close()
            return
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
        now = self._last_frame_at = self._loop.time()
        request_id = message.request_id
        in_flight = self._in_flight
        limit = self._owner.config.client_requests_in_flight_max
        # An id the client reuses (it gave up on the first use) counts once.
        if len(in_flight) >= limit and request_id not in in_flight:
            self._counters.requests_refused += 1
            self.send_response(
                Failure(request_id, "busy", f"over {limit} requests in flight on one connection")
            )
            return
        in_flight[request_id] = (now, message)
        assert self._client is not None
        self._owner._on_client_request(self._client, message)

    def _on_hello_frame(self, message: Any) -> None:
        if type(message) is not Hello:
            self._drop_bad(f"{type(message).__name__} before Hello")
            return
        owner = self._owner
        reason = owner._check_hello(message, self)
        if reason is not None:
            self._refuse(reason)
            return
        if message.node_id == CLIENT_NODE_ID:
            self._end_handshake()
            # Echo what the client named: the cluster id is not told to strangers.
            self.write(encode_body(Welcome(message.cluster_id, owner.node_id)))
            self.state = "client"
            self._client = ClientConnection(self)
            self._log.debug("[node %d] client %s connected", owner.node_id, self.name)
            return
        self.peer_id = message.node_id
        self._nonce = new_nonce()
        self.state = "proof"
        self.write(encode_body(Challenge(self._nonce)))

    def _on_proof_frame(self, message: Any) -> None:
        if type(message) is not PeerProof:
            self._drop_bad(f"{type(message).__name__} instead of PeerProof")
            return
        owner = self._owner
        assert self.peer_id is not None
        transcript = HandshakeTranscript(
            owner.cluster_id,
            self.peer_id,
            owner.node_id,
            self._nonce,
            message.nonce,
            message.client_address,
            message.incarnation,
        )
        secret = owner.security.secret
        proof = b""
        if secret is not None:
            if not proofs_match(transcript.dialer_proof(secret), message.proof):
                self._refuse(f"node {self.peer_id} did not prove it holds the cluster secret")
                return
            proof = transcript.acceptor_proof(secret, owner.client_address, owner.incarnation)
        refusal = owner._incarnation_refusal(self.peer_id, message.incarnation)
        if refusal is not None:
            owner._note_incarnation_refused(self.peer_id, message.incarnation, refusal)
            self.write(encode_body(Refused(refusal)))
            self.close()
            return
        welcome = PeerWelcome(owner.node_id, proof, owner.client_address, owner.incarnation)
        self.write(encode_body(welcome))
        self._become_peer(self.peer_id, message.client_address, message.incarnation)

    def _on_challenge_frame(self, message: Any) -> None:
        if type(message) is Refused:
            self._drop(f"refused by the peer: {message.reason}")
            return
        if type(message) is not Challenge:
            self._drop_bad(f"{type(message).__name__} instead of Challenge")
            return
        owner = self._owner
        assert self._dialed_peer is not None
        self._nonce = new_nonce()
        self._transcript = HandshakeTranscript(
            owner.cluster_id,
            owner.node_id,
            self._dialed_peer,
            message.nonce,
            self._nonce,
            owner.client_address,
            owner.incarnation,
        )
        secret = owner.security.secret
        proof = b"" if secret is None else self._transcript.dialer_proof(secret)
        self.state = "welcome"
        self.write(
            encode_body(PeerProof(self._nonce, proof, owner.client_address, owner.incarnation))
        )

    def _on_welcome_frame(self, message: Any) -> None:
        if type(message) is Refused:
            self._drop(f"refused by the peer: {message.reason}")
            return
        if type(message) is not PeerWelcome:
            self._drop_bad(f"{type(message).__name__} instead of PeerWelcome")
            return
        if message.node_id != self._dialed_peer:
            self._drop_bad(f"expected node {self._dialed_peer}, got node {message.node_id}")
            return
        secret = self._owner.security.secret
        assert self._transcript is not None
        if secret is not None and not proofs_match(
            self._transcript.acceptor_proof(secret, message.client_address, message.incarnation),
            message.proof,
        ):
            self._refuse_quietly(
                f"the peer at {self.name} did not prove it holds the cluster secret"
            )
            return
        refusal = self._owner._incarnation_refusal(message.node_id, message.incarnation)
        if refusal is not None:
            # Tell the acceptor why (it holds no binding, so only we know).
            self._owner._note_incarnation_refused(message.node_id, message.incarnation, refusal)
            self.write(encode_body(Refused(refusal)))
            self.handshaken.set_result(f"refused node {message.node_id}: new incarnation")
            self.close()
            return
        self._become_peer(message.node_id, message.client_address, message.incarnation)
        self.handshaken.set_result(None)

    def _on_handshake_timeout(self) -> None:
        if self.state in _HANDSHAKING:
            timeout_s = self._owner.config.handshake_timeout_s
            self._drop(f"no handshake within {timeout_s} s")

    # ------------------------------------------------------------ helpers

    def _become_peer(self, peer: int, client_address: str, incarnation: int) -> None:
        self._end_handshake()
        self.state = "peer"
        self.peer_id = peer
        self._owner._on_peer_handshaken(self, peer, client_address, incarnation)

    def refuse_incarnation(self, peer: int, incarnation: int) -> None:
        """An up link whose peer's incarnation was bound to another one: close it."""
        reason = self._owner._incarnation_refusal(peer, incarnation)
        assert reason is not None
        self._owner._note_incarnation_refused(peer, incarnation, reason)
        self.write(encode_body(Refused(reason)))
        self.close()

    def _end_handshake(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._decoder.frame_max_bytes = self._owner.config.frame_max_bytes

    def _refuse(self, reason: str) -> None:
        owner = self._owner
        owner._counters.handshakes_refused += 1
        self._log.warning("[node %d] refusing %s: %s", owner.node_id, self.name, reason)
        self.write(encode_body(Refused(reason)))
        self.close()

    def _refuse_quietly(self, reason: str) -> None:
        """A dialed peer that failed to prove itself: drop it, and let the dialer log why."""
        self._owner._counters.handshakes_refused += 1
        self._drop(reason)

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
