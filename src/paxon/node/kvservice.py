"""The key-value service over a ``Node``: what the HTTP API calls.

Commands and queries are validated here, at the edge, before they are
proposed or sent for a read (an oversize value is ``ValueTooLarge``, never a
log entry; an oversize key in a read costs no leader round trip); the
``Node`` forwards to the leader when this node is a follower.

``token`` is the caller's auth token (``Authorization: Bearer``), or None:
it is wrapped around the command (``paxon.kv.authcodec.wrap``) and travels
with it to the leader and into the log, where every replica checks it.
"""

from __future__ import annotations

from typing import Any

from paxon.kv.authcodec import wrap
from paxon.kv.codec import ResultT as _R  # the result types a call may expect
from paxon.kv.codec import decode_result_as, encode_command, encode_query
from paxon.kv.model import (
    Compact,
    CompactResult,
    Delete,
    DeleteResult,
    Events,
    EventsResult,
    Get,
    GetResult,
    KvLimits,
    LeaseGrant,
    LeaseGrantResult,
    LeaseKeepAlive,
    LeaseKeepAliveResult,
    LeaseList,
    LeaseListResult,
    LeaseRevoke,
    LeaseRevokeResult,
    LeaseTimeToLive,
    LeaseTimeToLiveResult,
    Put,
    PutResult,
    Txn,
    TxnResult,
    validate_command,
    validate_query,
)
from paxon.node.activity import ActivitySampler
from paxon.node.backup import take_backup
from paxon.node.node import Node
from paxon.storage.backup import BackupMeta

_Command = Put | Delete | Txn | Compact | LeaseGrant | LeaseKeepAlive | LeaseRevoke


class NodeKvService:
    def __init__(
        self,
        node: Node,
        limits: KvLimits | None = None,
        *,
        activity: ActivitySampler | None = None,
    ) -> None:
        self.node = node
        self.limits = limits or KvLimits()
        self._activity = activity

    async def put(
        self,
        key: str,
        value: bytes,
        *,
        expect_version: int | None,
        lease: int = 0,
        token: str | None = None,
    ) -> PutResult:
        return await self._write(Put(key, value, expect_version, lease), PutResult, token)

    async def get(
        self,
        key: str,
        *,
        prefix: bool,
        serializable: bool,
        revision: int | None,
        token: str | None = None,
    ) -> GetResult:
        return await self._read(Get(key, prefix, revision), serializable, GetResult, token)

    async def delete(self, key: str, *, prefix: bool, token: str | None = None) -> DeleteResult:
        return await self._write(Delete(key, prefix), DeleteResult, token)

    async def txn(self, txn: Txn, *, token: str | None = None) -> TxnResult:
        return await self._write(txn, TxnResult, token)

    async def compact(self, revision: int, *, token: str | None = None) -> CompactResult:
        return await self._write(Compact(revision), CompactResult, token)

    async def grant_lease(self, ttl_ms: int, *, token: str | None = None) -> LeaseGrantResult:
        return await self._write(LeaseGrant(ttl_ms), LeaseGrantResult, token)

    async def keep_alive(self, lease: int, *, token: str | None = None) -> LeaseKeepAliveResult:
        return await self._write(LeaseKeepAlive(lease), LeaseKeepAliveResult, token)

    async def revoke_lease(self, lease: int, *, token: str | None = None) -> LeaseRevokeResult:
        return await self._write(LeaseRevoke(lease), LeaseRevokeResult, token)

    async def lease_time_to_live(
        self, lease: int, *, keys: bool, serializable: bool, token: str | None = None
    ) -> LeaseTimeToLiveResult:
        query = LeaseTimeToLive(lease, keys)
        return await self._read(query, serializable, LeaseTimeToLiveResult, token)

    async def leases(self, *, serializable: bool, token: str | None = None) -> LeaseListResult:
        return await self._read(LeaseList(), serializable, LeaseListResult, token)

    async def events(self, query: Events, *, token: str | None = None) -> EventsResult:
        """A page of a watch from this node's applied state (held by the node
        until a change comes, for ``query.wait_ms``)."""
        return await self._read(query, True, EventsResult, token)

    async def authenticate(self, user: str, password: str) -> str:
        return await self.node.authenticate(user, password)

    def status(self) -> dict[str, Any]:
        return self.node.status()

    async def cluster_status(self) -> dict[str, Any]:
        return await self.node.cluster_status()

    async def change_members(
        self, action: str, node_id: int, address: str, *, token: str | None = None
    ) -> dict[str, Any]:
        return await self.node.change_members(action, node_id, address, token=token)

    def activity(self) -> dict[str, Any] | None:
        return None if self._activity is None else self._activity.to_json()

    def recent_slots(self, count: int) -> dict[str, Any]:
        return self.node.recent_slots(count)

    def metrics_text(self) -> tuple[bytes, str]:
        return self.node.metrics.render()

    async def backup(self, *, token: str | None = None) -> tuple[BackupMeta, bytes]:
        return await take_backup(self.node, token)

    def readiness(self) -> dict[str, Any] | None:
        report = self.node.health_report
        return None if report is None else report()

    async def _write(self, command: _Command, kind: type[_R], token: str | None) -> _R:
        validate_command(command, self.limits)
        payload = _wrapped(encode_command(command), token)
        return decode_result_as(await self.node.submit(payload), kind)

    async def _read(
        self,
        query: Get | LeaseTimeToLive | LeaseList | Events,
        serializable: bool,
        kind: type[_R],
        token: str | None,
    ) -> _R:
        validate_query(query, self.limits)
        payload = _wrapped(encode_query(query), token)
        reply = await self.node.query(payload, linearizable=not serializable)
        return decode_result_as(reply, kind)


def _wrapped(payload: bytes, token: str | None) -> bytes:
    return payload if token is None else wrap(token, payload)
