"""Exactly-once that load cannot break: a session flood on three ``paxon serve`` processes.

The attack (issue 8): one put is applied under session ``(V, 1)``; then more
fresh client ids than the session table holds (``SESSIONS_MAX`` + 500, each
a cheap command at seq 1) are sent straight to the leader over the native
protocol; then the put is retried with its original ``(V, 1)``. Before log
time, the flood evicted the whole table and the retry was applied again.

What must hold: the table fills up and then every further new session is
refused with ``sessions_full`` (nothing applied); the flood never evicts
``V``; the retry is answered with the first reply and the key shows one
application (version 1, the first revision) on every node.

The real limit is flooded (no test-only setting), with a few native links and
a window of requests in flight on each, so the flood takes seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from tests.cluster.harness import Cluster

from paxon.client import Client, split_address
from paxon.errors import SessionsFull
from paxon.kv.codec import decode_result_as, encode_command
from paxon.kv.model import Delete, Put, PutResult
from paxon.net.client_link import ClientLink
from paxon.net.client_messages import ClientResponse, Failure, Redirect, Reply, Submit
from paxon.node.machine import SESSIONS_MAX

pytestmark = pytest.mark.cluster

FLOOD_EXTRA = 500
FLOOD_LINKS = 4
FLOOD_WINDOW = 2_000  # requests in flight per link
FLOOD_DEADLINE_S = 120.0
VICTIM_CLIENT_ID = 7_777_777
FLOOD_FIRST_CLIENT_ID = 10**12


def test_a_session_flood_refuses_new_sessions_and_never_applies_a_retry_twice(
    cluster: Cluster,
) -> None:
    asyncio.run(_scenario(cluster))


async def _scenario(cluster: Cluster) -> None:
    async with Client(cluster.endpoints, timeout=20.0) as client:
        put = encode_command(Put("victim", b"applied once"))
        first = decode_result_as(await client.submit_as(VICTIM_CLIENT_ID, 1, put), PutResult)

        started = time.monotonic()
        outcomes = await _flood(cluster, SESSIONS_MAX + FLOOD_EXTRA)
        flood_s = time.monotonic() - started

        # One session is the victim's: the rest of the table went to the flood.
        assert outcomes == Counter(
            {"applied": SESSIONS_MAX - 1, "sessions_full": FLOOD_EXTRA + 1}
        ), f"flood outcomes {outcomes} in {flood_s:.1f} s"

        retry = decode_result_as(await client.submit_as(VICTIM_CLIENT_ID, 1, put), PutResult)
        assert retry == first
        # A new session is still refused: the table is full of live sessions.
        with pytest.raises(SessionsFull):
            await client.submit_as(VICTIM_CLIENT_ID + 1, 1, put)

    for node in cluster.nodes:
        cluster.wait_caught_up(node.node_id)
        with node.client() as reader:
            item = reader.get("victim", serializable=True)
        assert item is not None, f"node {node.node_id} lost the key"
        assert (item.value, item.version) == (b"applied once", 1), f"node {node.node_id}"
        assert item.mod_revision == first.revision == item.create_revision


async def _flood(cluster: Cluster, count: int) -> Counter[str]:
    """``count`` fresh sessions, one cheap command each, straight to the leader;
    a redirected or unanswered one is sent again (same session) until it is decided."""
    payload = encode_command(Delete("no such key", False))
    pending = list(range(FLOOD_FIRST_CLIENT_ID, FLOOD_FIRST_CLIENT_ID + count))
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + FLOOD_DEADLINE_S
    while pending:
        assert time.monotonic() < deadline, f"flood undecided: {len(pending)} left, {outcomes}"
        leader = cluster.node(await asyncio.to_thread(cluster.wait_for_leader))
        host, port = split_address(leader.endpoint)
        links = [
            await ClientLink.connect(host, port, cluster_id="paxon", timeout=5.0)
            for _ in range(FLOOD_LINKS)
        ]
        try:
            shares = [pending[i :: len(links)] for i in range(len(links))]
            results = await asyncio.gather(
                *(_send(link, share, payload) for link, share in zip(links, shares, strict=True))
            )
        finally:
            for link in links:
                link.close()
        pending = []
        for decided, undecided in results:
            outcomes.update(decided)
            pending.extend(undecided)
    return outcomes


async def _send(
    link: ClientLink, client_ids: list[int], payload: bytes
) -> tuple[Counter[str], list[int]]:
    """Sends one Submit per client id, ``FLOOD_WINDOW`` in flight; what was decided
    (``applied`` / ``sessions_full`` counts) and the ids to send again."""
    decided: Counter[str] = Counter()
    undecided: list[int] = []
    todo = iter(client_ids)

    async def worker() -> None:
        for client_id in todo:
            try:
                response: ClientResponse = await asyncio.wait_for(
                    link.request(Submit(client_id, client_id, 1, payload)), 30.0
                )
            except (OSError, ConnectionError, TimeoutError):
                undecided.append(client_id)
                continue
            match response:
                case Reply():
                    decided["applied"] += 1
                case Failure(code="sessions_full"):
                    decided["sessions_full"] += 1
                case Redirect() | Failure(code="unavailable" | "not_leader" | "busy" | "no_quorum"):
                    undecided.append(client_id)
                case _:
                    raise AssertionError(f"unexpected answer to a flood command: {response}")

    await asyncio.gather(*(worker() for _ in range(FLOOD_WINDOW)))
    return decided, undecided
