"""The per-user lease quota on three real ``Node``s under auth: each user has
its own quota, one cannot use up another's, every replica counts the same
owners, and a client cannot make a grant count against someone else.

Users as in ``tests.node.test_node_auth`` (``reader``, ``writer``, ``root``);
the quota is cut to ``QUOTA`` so the test stays cheap (about 2 s)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgpack  # type: ignore[import-untyped]
import pytest
from tests.node.test_node import eventually, run
from tests.node.test_node_auth import AuthCluster, set_up_users, settled

from paxon.errors import BadRequest, Busy, PermissionDenied
from paxon.kv.auth import issue_token
from paxon.kv.authcodec import wrap
from paxon.kv.model import KvLimits
from paxon.kv.store import KvStore
from paxon.node import Node
from paxon.node.kvservice import NodeKvService
from paxon.server.http import start_http

QUOTA = 3
LIMITS = KvLimits(leases_per_user_max=QUOTA)


class QuotaCluster(AuthCluster):
    async def start(self, node_id: int) -> Node:
        path = str(self.root / f"n{node_id}")
        node = Node(node_id, self.peers, path, KvStore(LIMITS), config=self.config)
        await node.start()
        self.nodes[node_id] = node
        self.http[node_id] = await start_http(NodeKvService(node, LIMITS), "127.0.0.1", 0)
        return node


def quota_test(tmp_path: Path, body: Callable[[AuthCluster], Awaitable[None]]) -> None:
    async def scenario() -> None:
        cluster = QuotaCluster(tmp_path)
        await cluster.start_all()
        try:
            await cluster.leader()
            await set_up_users(cluster)
            await settled(cluster)
            await body(cluster)
        finally:
            await cluster.stop_all()

    run(scenario)


def test_each_user_has_its_own_quota_on_every_replica(tmp_path: Path) -> None:
    async def body(cluster: AuthCluster) -> None:
        async with cluster.client("writer") as writer, cluster.client("reader") as reader:
            granted = [(await writer.grant_lease(60)).lease for _ in range(QUOTA)]
            with pytest.raises(Busy, match="'writer' holds 3 live leases"):
                await writer.grant_lease(60)
            # The writer used up its own quota, not the reader's.
            for _ in range(QUOTA):
                await reader.grant_lease(60)
            with pytest.raises(Busy):
                await reader.grant_lease(60)
            # Nor may the reader free or hold the writer's leases.
            with pytest.raises(PermissionDenied):
                await reader.revoke_lease(granted[0])
            with pytest.raises(PermissionDenied):
                await reader.keep_alive(granted[0])
            await writer.revoke_lease(granted[0])
            await writer.grant_lease(60)
        counts = {"writer": QUOTA, "reader": QUOTA}
        await eventually(
            lambda: all(cluster.store(n).leases.owned == counts for n in cluster.nodes)
        )

    quota_test(tmp_path, body)


def test_a_client_cannot_charge_its_grant_to_another_user(tmp_path: Path) -> None:
    async def body(cluster: AuthCluster) -> None:
        leader_id = await cluster.leader()
        leader = cluster.nodes[leader_id]
        store = cluster.store(leader_id)
        users = store.auth.users
        writer = issue_token(
            store.auth.token_key, "writer", users["writer"].generation, int(time.time() * 1000)
        )
        # A LeaseGrant with an owner field of its own is refused at the edge
        # (and at apply, tests/kv/test_lease_quota.py): the owner is only
        # ever the user the token names.
        forged = wrap(writer, msgpack.packb([7, 60_000, "reader"]))
        with pytest.raises(BadRequest, match="got an array of 3"):
            await leader.submit(forged)
        async with cluster.client("writer") as client:
            lease = (await client.grant_lease(60)).lease
        await eventually(
            lambda: all(
                cluster.store(n).leases.owned == {"writer": 1}
                and cluster.store(n).leases.get(lease).owner == "writer"
                for n in cluster.nodes
            )
        )

    quota_test(tmp_path, body)
