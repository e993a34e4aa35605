"""Where a member's clients reach it, and the node's own client of the other members.

With a separate peer port (``--peer-listen``) the addresses in ``--peers`` are
peer addresses, which clients cannot use. Each member tells the others its
client address during the peer handshake (``PeerProof`` / ``PeerWelcome``), so
a follower can redirect a client to the leader's client port, and calls made on
the ``Node`` object itself (the HTTP API, library users) can be forwarded there.
Without a separate peer port, one address serves both and nothing is learned.

The forwarding ``Client`` is rebuilt when the set of known client addresses
changes; the old one is closed once the calls it may still carry have had
their time (``request_timeout_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from paxon.client import Client
from paxon.errors import Unavailable
from paxon.security.client_tls import ClientTls


class Forwarder:
    """The node's client of the other members, over their client ports."""

    def __init__(
        self,
        endpoints: Callable[[], list[str]],
        *,
        timeout_s: float,
        cluster_id: str,
        tls: ClientTls | None = None,
    ) -> None:
        self._endpoints = endpoints
        self._timeout_s = timeout_s
        self._cluster_id = cluster_id
        self._tls = tls
        self._client: Client | None = None
        self._client_endpoints: list[str] = []
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def ready(self) -> bool:
        """Some other member's client address is known (a peer link has come up)."""
        return bool(self._endpoints())

    def client(self) -> Client:
        """A client of the members whose client address is known now; ``Unavailable``
        while none is (no peer link has come up yet)."""
        endpoints = self._endpoints()
        if not endpoints:
            raise Unavailable(
                "no other member is reachable yet (no peer link is up, so no client "
                "address is known to forward to); retry shortly"
            )
        if self._client is None or endpoints != self._client_endpoints:
            if self._client is not None:
                self._retire(self._client)
            self._client = Client(
                endpoints,
                timeout=self._timeout_s,
                cluster_id=self._cluster_id,
                tls=self._tls,
            )
            self._client_endpoints = endpoints
        return self._client

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._retiring, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _retire(self, client: Client) -> None:
        async def close_later() -> None:
            try:
                await asyncio.sleep(self._timeout_s)
            finally:
                await client.close()

        task = asyncio.get_running_loop().create_task(close_later())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
