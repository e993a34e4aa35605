"""A minimal native-protocol node over TLS, for testing the client side of TLS.

It answers ``Hello`` with ``Welcome``, every ``Submit`` with a ``PutResult`` at
revision 7, and records the paxon identity of each client certificate it was
shown (None when the client showed none). The real node's TLS is the lead's
transport; this stands in for it with the standard library's ``ssl`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

from paxon.kv.codec import encode_result
from paxon.kv.model import PutResult
from paxon.net import Hello, Reply, Submit, Welcome, encode
from paxon.net.codec import decode_body
from paxon.security.certs import CertIdentity, identity_of_der

REVISION = 7


def server_context(cert_dir: Path, node_id: int = 1, *, client_ca: Path | None) -> ssl.SSLContext:
    """A context serving node ``node_id``'s certificate, verifying clients against ``client_ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_dir / f"node-{node_id}.pem", cert_dir / f"node-{node_id}-key.pem")
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class TlsNode:
    """Serves on 127.0.0.1 over TLS; ``identities`` holds each client's certificate identity."""

    def __init__(self, context: ssl.SSLContext, cluster_id: str, node_id: int = 1) -> None:
        self.context = context
        self.cluster_id = cluster_id
        self.node_id = node_id
        self.identities: list[CertIdentity | None] = []
        self.hellos: list[Hello] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
        self.identities.append(None if der is None else identity_of_der(der))
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(4), "big")
                message = decode_body(await reader.readexactly(length))
                if isinstance(message, Hello):
                    self.hellos.append(message)
                    writer.write(encode(Welcome(self.cluster_id, self.node_id)))
                elif isinstance(message, Submit):
                    result = encode_result(PutResult(True, REVISION, 1))
                    writer.write(encode(Reply(message.request_id, result)))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


@contextlib.contextmanager
def tls_node_in_thread(node: TlsNode) -> Iterator[tuple[str, int]]:
    """Runs ``node`` on its own event loop in a thread (for blocking callers: CLI, SyncClient)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        address = asyncio.run_coroutine_threadsafe(node.start(), loop).result(timeout=10)
        yield address
        asyncio.run_coroutine_threadsafe(node.close(), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
