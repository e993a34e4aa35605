"""The node's own client of the other members, over the client addresses it learned."""

from __future__ import annotations

import asyncio

import pytest

from paxon.errors import Unavailable
from paxon.node.forwarding import Forwarder


def test_no_known_member_is_a_clear_unavailable_and_a_learned_one_is_used() -> None:
    async def main() -> None:
        known: list[str] = []
        forwarder = Forwarder(lambda: list(known), timeout_s=1.0, cluster_id="c")
        assert not forwarder.ready
        with pytest.raises(Unavailable, match="no other member is reachable yet"):
            forwarder.client()
        known.append("127.0.0.1:9")
        assert forwarder.ready
        first = forwarder.client()
        assert first.endpoints == ["127.0.0.1:9"] and forwarder.client() is first
        known.append("127.0.0.1:10")  # a new member's address: a new client
        second = forwarder.client()
        assert second is not first and second.endpoints == ["127.0.0.1:9", "127.0.0.1:10"]
        await forwarder.close()

    asyncio.run(main())
