"""The client side of one native connection: handshake, then requests matched by id.

Used by ``paxon.Client`` and by followers forwarding requests to the leader.

- ``connect`` dials, sends ``Hello(cluster_id, 0, version)`` and waits for
  ``Welcome``, all within ``timeout``. It raises OSError / ConnectionError when
  the node cannot be reached or hangs up, ``ProtocolError`` when it refuses
  or answers garbage, TimeoutError when time runs out.
- With ``ssl_context`` the link speaks TLS, verifying the node's certificate
  for ``server_hostname`` (default: ``host``). TCP is connected first and
  the TLS handshake after, so that a failed handshake (wrong CA, a name the
  certificate lacks, a plain-TCP port, a node refusing our certificate) is a
  ``TlsHandshakeFailed`` (a ConnectionError) that says which, never a bare
  timeout or a traceback.
- ``request`` sends at once (coalesced with the other requests of this
  event-loop iteration) and returns a future for the response with the same
  ``request_id``; responses may arrive in any order. The caller picks the ids
  and keeps them unique among its requests in flight.
- The future fails with ConnectionError when the link drops or is closed,
  ``ValueTooLarge`` when the request is over ``frame_max_bytes``, and ``Busy``
  when ``client_queue_max_bytes`` are already waiting to be sent. Cancelling
  it (e.g. by ``asyncio.wait_for``) forgets the request; a late response to it
  is ignored.
- Anything from the node that is not a response (garbage, a peer message, a
  second Welcome) breaks the link: it is closed and every pending future fails.
- A port that answers the handshake with ``HTTP/`` is a paxon HTTP port (or
  another web server), not a native one: ``connect`` raises ``NotNativePort``
  at once, naming the node's native address when that port's ``GET /v1/status``
  tells it (one request, its answer read up to ``HTTP_PROBE_MAX_BYTES``,
  within what is left of ``timeout``). No frame error is logged for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
from typing import Final, cast

from paxon.errors import Busy, ProtocolError, ValueTooLarge
from paxon.net.client_messages import (
    CLIENT_NODE_ID,
    CLIENT_REQUEST_TYPES,
    CLIENT_RESPONSE_TYPES,
    PROTOCOL_VERSION,
    ClientRequest,
    ClientResponse,
    Hello,
    Refused,
    Welcome,
)
from paxon.net.codec import (
    CLIENT_RESPONSE_CODES,
    TYPE_CODES,
    DecodeError,
    decode_body,
    encode_body,
)
from paxon.net.config import DEFAULT_NET_CONFIG, NetConfig
from paxon.net.frames import FrameDecoder, FrameTooLarge, FrameWriter

_REQUEST_TYPES: Final = frozenset(CLIENT_REQUEST_TYPES)
_RESPONSE_TYPES: Final = frozenset(CLIENT_RESPONSE_TYPES)
_EXPECTED: Final = CLIENT_RESPONSE_CODES | {TYPE_CODES[Welcome], TYPE_CODES[Refused]}
"""What a node may send a client; anything else is refused before it is unpacked."""

_log = logging.getLogger("paxon.net.client")


class TlsHandshakeFailed(ConnectionError):
    """The TLS handshake with a node failed; the message says why.

    ``lasting`` is true when retrying cannot help (the node's certificate is
    not trusted, or the port does not speak TLS), false after a timeout or a
    hang-up, which may pass.
    """

    def __init__(self, message: str, *, lasting: bool) -> None:
        super().__init__(message)
        self.lasting = lasting


class NotNativePort(ConnectionError):
    """The port speaks HTTP, not paxon's native protocol; the message names the
    native address when the node told it. Retrying cannot help (``lasting``)."""

    lasting = True


HTTP_PROBE_MAX_BYTES: Final = 1 << 20
"""The most of an HTTP port's ``/v1/status`` answer read to find its native address."""

_HTTP_REPLY: Final = b"HTTP/"


class ClientLink:
    """One handshaken connection to a node; build it with ``ClientLink.connect``."""

    __slots__ = ("_cluster_id", "_node_id", "_protocol")

    def __init__(self, protocol: _LinkProtocol, welcome: Welcome) -> None:
        self._protocol = protocol
        self._node_id = welcome.node_id
        self._cluster_id = welcome.cluster_id

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        cluster_id: str = "",
        timeout: float,
        config: NetConfig = DEFAULT_NET_CONFIG,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> ClientLink:
        loop = asyncio.get_running_loop()
        address = f"{host}:{port}"
        protocol = _LinkProtocol(config, address)
        handshaking = False
        try:
            async with asyncio.timeout(timeout):
                if ssl_context is None:
                    await loop.create_connection(lambda: protocol, host, port)
                else:
                    sock = await _connect_tcp(host, port)
                    handshaking = True
                    await loop.create_connection(
                        lambda: protocol,
                        sock=sock,
                        ssl=ssl_context,
                        server_hostname=server_hostname or host,
                    )
                    handshaking = False
                protocol.send_hello(cluster_id)
                welcome = await protocol.welcome
        except NotNativePort:
            protocol.abort()
            native = await _native_address(host, port, ssl_context, server_hostname, timeout)
            where = f"the native port is {native}" if native else "not a native paxon port"
            raise NotNativePort(f"{address} is an HTTP port; {where}") from None
        except BaseException as exc:
            protocol.welcome.cancel()
            protocol.abort()
            if handshaking and isinstance(exc, OSError):  # TimeoutError and SSLError too
                lasting = isinstance(exc, ssl.SSLError)
                problem = f"{address}: {describe_tls_error(exc)}"
                raise TlsHandshakeFailed(problem, lasting=lasting) from None
            if ssl_context is not None and type(exc) is ConnectionError:
                # TLS 1.3: a node checks our certificate after our side of the
                # handshake is done, so a refusal shows as a hang-up before Welcome.
                raise TlsHandshakeFailed(
                    f"{exc}; over TLS, the node may not accept this client's certificate",
                    lasting=False,
                ) from None
            raise
        return cls(protocol, welcome)

    def request(self, request: ClientRequest) -> asyncio.Future[ClientResponse]:
        """Sends ``request``; the future completes with its response (see module doc)."""
        return self._protocol.request(request)

    @property
    def node_id(self) -> int:
        """The node that welcomed this link."""
        return self._node_id

    @property
    def cluster_id(self) -> str:
        """The cluster that node belongs to (as it said in its Welcome)."""
        return self._cluster_id

    @property
    def address(self) -> str:
        return self._protocol.address

    @property
    def closed(self) -> bool:
        return self._protocol.closed

    def close(self) -> None:
        """Flushes queued requests, closes; pending futures fail with ConnectionError."""
        self._protocol.close()

    async def wait_closed(self) -> None:
        """Returns once the socket is closed (after ``close`` or a drop)."""
        await asyncio.shield(self._protocol.lost)

    def __repr__(self) -> str:
        return f"ClientLink({self.address}, node={self._node_id}, closed={self.closed})"


_NOT_TLS_REASONS: Final = frozenset(
    {"WRONG_VERSION_NUMBER", "UNEXPECTED_EOF_WHILE_READING", "RECORD_LAYER_FAILURE"}
)
"""OpenSSL's reasons when the other side does not speak TLS at all."""


def describe_tls_error(exc: BaseException) -> str:
    """One line on why a TLS handshake or session failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the node's certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, TimeoutError):
        return "TLS: no handshake in time (is the port serving TLS?)"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if reason in (
            "WRONG_VERSION_NUMBER",
            "UNEXPECTED_EOF_WHILE_READING",
            "RECORD_LAYER_FAILURE",
        ):
            return f"TLS: handshake failed ({reason}; is the port serving TLS?)"
        return f"TLS: handshake failed ({reason})"
    if isinstance(exc, ConnectionError):
        return "TLS: the node hung up during the handshake (is the port serving TLS?)"
    return f"TLS: handshake failed ({exc})"


async def _native_address(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
    timeout: float,
) -> str | None:
    """The native address an HTTP port's node gives in its ``/v1/status``; None if it
    does not answer that within ``timeout`` (it may not be paxon at all)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=ssl_context,
                server_hostname=(server_hostname or host) if ssl_context else None,
            )
            try:
                name = f"[{host}]" if ":" in host else host
                writer.write(
                    f"GET /v1/status HTTP/1.1\r\nHost: {name}:{port}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                answer = await reader.read(HTTP_PROBE_MAX_BYTES)
                while len(answer) < HTTP_PROBE_MAX_BYTES and (more := await reader.read(65536)):
                    answer += more
            finally:
                writer.close()
    except (OSError, TimeoutError, ValueError):
        return None
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    try:
        status = json.loads(body)
        rows = [row for row in status["members"] if row["id"] == status["node_id"]]
        address = rows[0]["address"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return address if isinstance(address, str) and address else None


async def _connect_tcp(host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket to the first address of ``host`` that answers."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    problem: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, sockaddr)
        except OSError as exc:
            sock.close()
            problem = exc
        except BaseException:
            sock.close()
            raise
        else:
            return sock
    raise problem


class _LinkProtocol(asyncio.Protocol):
    def __init__(self, config: NetConfig, address: str) -> None:
        loop = asyncio.get_running_loop()
        self._config = config
        self.address = address
        self._decoder = FrameDecoder(config.frame_max_bytes)
        self._transport: asyncio.Transport | None = None
        self._writer: FrameWriter | None = None
        self._pending: dict[int, asyncio.Future[ClientResponse]] = {}
        self._failure = "the link is closed"
        self.closed = False
        self.welcome: asyncio.Future[Welcome] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()

    # ------------------------------------------------------------ public

    def send_hello(self, cluster_id: str) -> None:
        self._write(encode_body(Hello(cluster_id, CLIENT_NODE_ID, PROTOCOL_VERSION)))

    def request(self, request: ClientRequest) -> asyncio.Future[ClientResponse]:
        if type(request) not in _REQUEST_TYPES:
            raise TypeError(f"not a client request: {type(request).__name__}")
        request_id = request.request_id
        in_flight = self._pending.get(request_id)
        if in_flight is not None and not in_flight.done():
            raise ValueError(f"request_id {request_id} is already in flight")
        future: asyncio.Future[ClientResponse] = asyncio.get_running_loop().create_future()
        if self.closed or self._writer is None:
            future.set_exception(ConnectionError(f"{self.address}: {self._failure}"))
            return future
        try:
            body = encode_body(request, self._config.frame_max_bytes)
        except FrameTooLarge as exc:
            future.set_exception(ValueTooLarge(str(exc)))
            return future
        if self._writer.buffered_bytes >= self._config.client_queue_max_bytes:
            future.set_exception(Busy(f"{self.address}: the send queue is full"))
            return future
        self._pending[request_id] = future
        future.add_done_callback(lambda done: self._forget(request_id, done))
        self._write(body)
        return future

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
        self._fail("the link is closed")
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self._fail("the link is closed")
        if self._transport is not None:
            self._transport.abort()

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writer = FrameWriter(transport, asyncio.get_running_loop())

    def data_received(self, data: bytes) -> None:
        if not self.welcome.done() and data.startswith(_HTTP_REPLY):
            # No frame starts so: its length would be over 1 GiB, far past any limit.
            self.welcome.set_exception(NotNativePort(f"{self.address}: an HTTP port"))
            self._fail("an HTTP port")
            return
        try:
            bodies = self._decoder.feed(data)
            for body in bodies:
                if self.closed:
                    return
                self._on_message(decode_body(body, _EXPECTED))
        except (FrameTooLarge, DecodeError) as exc:
            self._break(f"bad frame from the node: {exc}")

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, ssl.SSLError):  # e.g. the node refused our certificate
            self._fail(f"the connection was lost ({describe_tls_error(exc)})")
        else:
            self._fail(f"the connection was lost ({exc or 'EOF'})")
        if not self.lost.done():
            self.lost.set_result(None)

    # ------------------------------------------------------------ handlers

    def _on_message(self, message: object) -> None:
        if not self.welcome.done():
            if type(message) is Welcome:
                self.welcome.set_result(message)
            elif type(message) is Refused:
                self._break(f"refused: {message.reason}")
            else:
                self._break(f"{type(message).__name__} before Welcome")
            return
        if type(message) not in _RESPONSE_TYPES:
            self._break(f"{type(message).__name__} on a client connection")
            return
        assert isinstance(message, ClientResponse)
        future = self._pending.pop(message.request_id, None)
        if future is None:
            _log.debug("%s: response to unknown request %d", self.address, message.request_id)
            return
        if not future.done():
            future.set_result(message)

    # ------------------------------------------------------------ helpers

    def _write(self, body: bytes) -> None:
        assert self._writer is not None
        self._writer.write(body)

    def _forget(self, request_id: int, future: asyncio.Future[ClientResponse]) -> None:
        if self._pending.get(request_id) is future:
            del self._pending[request_id]

    def _break(self, reason: str) -> None:
        """The node broke the protocol: log, fail everything, drop the connection."""
        _log.warning("dropping connection to %s: %s", self.address, reason)
        if not self.welcome.done():
            self.welcome.set_exception(ProtocolError(f"{self.address}: {reason}"))
        self._fail(reason)
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, reason: str) -> None:
        """Marks the link closed and fails every pending future with ConnectionError."""
        if self.closed:
            return
        self.closed = True
        self._failure = reason
        if not self.welcome.done():
            self.welcome.set_exception(ConnectionError(f"{self.address}: {reason}"))
        pending = list(self._pending.values())
        self._pending.clear()
        for future in pending:
            if not future.done():
                future.set_exception(ConnectionError(f"{self.address}: {reason}"))
