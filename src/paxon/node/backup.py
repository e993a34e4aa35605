"""Taking a backup on a running member (``GET /v1/snapshot``, ``paxon snapshot save``).

Rules:
- With auth enabled only a root user may take one: a backup holds every key,
  every value and the users table (password hashes, the token key). Without
  auth, anyone who reaches the HTTP port may, as with every other route.
- Fresh: a linearizable read goes first (through the leader, as any read), and
  the member waits until it has applied up to that read's revision, so the
  backup holds every write acknowledged before the request began.
- Consistent: the store is captured in one event-loop step
  (``KvStore.snapshot_later``: shallow copies), at one revision; encoding runs
  on a worker thread while the node goes on serving.
- Any member can take it; a follower's backup is its own applied state.
- The whole encoded state is held in memory while it is sent (as for the
  node's own snapshots): about the size of the store's snapshot file.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from paxon.errors import NotSupported, Timeout
from paxon.kv.authcodec import wrap
from paxon.kv.codec import decode_result_as, encode_query
from paxon.kv.model import Get, GetResult
from paxon.kv.store import KvStore
from paxon.node.node import Node
from paxon.storage.backup import BackupMeta

BARRIER_KEY: Final = "_paxon/backup"
"""The key the freshness read asks for (any key would do; it need not exist)."""
APPLY_WAIT_STEP_S: Final = 0.01


async def take_backup(node: Node, token: str | None) -> tuple[BackupMeta, bytes]:
    """This member's store at a revision at least as new as every write acknowledged
    before the call: its meta and its data (``paxon.storage.backup``).
    ``PermissionDenied``/``Unauthenticated`` under auth without a root token,
    ``NotSupported`` for a node whose machine is not the key-value store."""
    store = node.machine.machine
    if not isinstance(store, KvStore):
        raise NotSupported("this node's state machine is not the key-value store")
    if node._gate is not None:
        node._gate.check_admin(token, "take a backup")
    payload = encode_query(Get(BARRIER_KEY, False, None))
    reply = await node.query(payload if token is None else wrap(token, payload))
    revision = decode_result_as(reply, GetResult).revision
    loop = asyncio.get_running_loop()
    deadline = loop.time() + node.config.request_timeout_s
    while store.revision < revision:
        if loop.time() > deadline:
            raise Timeout(f"node {node.node_id} did not apply revision {revision} in time")
        await asyncio.sleep(APPLY_WAIT_STEP_S)
    slot, log_time_ms = node.machine.slot_applied, node.machine.clock.log_time_ms
    revision, keys = store.revision, len(store)
    encode = store.snapshot_later()
    data = await loop.run_in_executor(None, encode)
    meta = BackupMeta(
        revision=revision,
        keys=keys,
        slot=slot,
        log_time_ms=log_time_ms,
        node_id=node.node_id,
        cluster_id=node.config.cluster_id,
        taken_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        data_bytes=len(data),
    )
    return meta, data
