"""Snapshots between members: offering ours to a peer behind the compacted log,
and taking one from the leader we follow (or the peer the core asked last).

The runtime's side of ``SnapshotRequest`` (the core says which peer needs one)
and of ``SnapshotChunk`` (wire code 12). Sending reads the newest snapshot on a
worker thread and paces its chunks to the link (``transfer.send_snapshot``);
a peer sent a whole snapshot is not sent the same one again for
``snapshot_resend_s`` while it installs. Receiving goes through
``SnapshotIntake`` (chunks only from the leader we follow or the peer the core
asked last, once asked), decodes the whole snapshot into scratch state on a
worker thread (``ReplicatedMachine.prepare_restore``), writes the file durably,
and only then swaps the decoded state in and tells the core, as recovery requires
(``docs/storage.md``). Anything refused is counted by reason
(``paxon_snapshots_refused_total``) and logged at the 1st, 2nd, 4th, ... time.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from paxon.net.peer_messages import SnapshotChunk
from paxon.node.machine import InvalidSnapshot
from paxon.node.transfer import SnapshotIntake, SnapshotTooLarge, send_snapshot
from paxon.protocol.types import Slot
from paxon.storage.snapshot import SnapshotMeta

if TYPE_CHECKING:
    from paxon.node.node import Node


class SnapshotTransfers:
    """One node's snapshot transfers, both ways; see the module docstring."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._sends: set[int] = set()  # peers a snapshot is being sent to now
        # peer -> (snapshot slot, when a whole transfer of it was queued)
        self._sent: dict[int, tuple[Slot, float]] = {}
        # Which chunks are taken, and the transfer being put together (transfer.py).
        self._intake = SnapshotIntake(node.config.snapshot_max_bytes)
        self._first_chunk_at: dict[int, float] = {}  # sender -> when its transfer began
        self.installing = False

    def asked(self, peer: int, now: float) -> None:
        """The core asked ``peer`` to catch us up: a snapshot from it may follow."""
        self._intake.asked(peer, now)

    def leader_changed(self) -> None:
        """A transfer from a node that no longer leads will not be finished."""
        self._intake.drop()

    def offer(self, peer: int) -> None:
        """Send our newest snapshot to ``peer``, which needs slots we compacted."""
        node = self._node
        if peer in self._sends or node._stopping:
            return
        sent = self._sent.get(peer)
        newest = node._storage.snapshots()
        if (
            sent is not None
            and newest
            and sent[0] == newest[-1].slot
            and node._loop.time() - sent[1] < node.config.snapshot_resend_s
        ):
            return  # the peer is still installing the copy it was just sent
        if not node._storage.snapshots():
            node.log.error(
                "[%d] node %d needs compacted slots, and no snapshot exists", node.node_id, peer
            )
            return
        self._sends.add(peer)
        task = node._loop.create_task(self._send(peer))
        node._snapshots.work.add(task)

        def done(task: asyncio.Task[None]) -> None:
            node._snapshots.work.discard(task)
            self._sends.discard(peer)
            if not task.cancelled() and task.exception() is not None:
                node.log.error(
                    "[%d] sending a snapshot to node %d failed: %s",
                    node.node_id,
                    peer,
                    task.exception(),
                )

        task.add_done_callback(done)

    async def _send(self, peer: int) -> None:
        node = self._node
        meta = node._storage.snapshots()[-1]
        data = await node._loop.run_in_executor(None, self._read, meta)
        chunk_bytes = node.config.snapshot_chunk_bytes
        node.log.info(
            "[%d] sending node %d the snapshot at slot %d (%d bytes)",
            node.node_id,
            peer,
            meta.slot,
            len(data),
        )
        sent = await send_snapshot(
            node._transport,
            node.node_id,
            peer,
            meta.slot,
            data,
            chunk_bytes=chunk_bytes,
            stopping=lambda: node._stopping,
        )
        if sent:
            self._sent[peer] = (meta.slot, node._loop.time())

    def _read(self, meta: SnapshotMeta) -> bytes:
        node = self._node
        with node._storage.open_snapshot(meta) as reader:
            return reader.read_all()

    def on_chunk(self, chunk: SnapshotChunk) -> None:
        """Take a chunk only from the leader or the peer asked last, once asked (transfer.py)."""
        node = self._node
        intake = self._intake
        leader = node._replica.leader_hint
        reason = intake.admit(
            chunk,
            leader=None if leader == node.node_id else leader,  # a leader takes none
            slot_chosen=node._replica.slot_chosen,
            installing=self.installing,
            now=node._loop.time(),
        )
        if reason is not None:
            if reason in ("installing", "stale"):  # routine: counted, not logged
                intake.refuse(reason)
            else:
                self._refuse(chunk.src, chunk.slot, reason)
            return
        if chunk.offset == 0:
            self._first_chunk_at[chunk.src] = node._loop.time()
        try:
            data = intake.add(chunk)
        except SnapshotTooLarge as error:
            self._refuse(chunk.src, chunk.slot, "too large", str(error))
            return
        if data is not None:
            self.installing = True
            received_s = node._loop.time() - self._first_chunk_at.pop(chunk.src, node._loop.time())
            install = node._loop.create_task(self._install(chunk.src, chunk.slot, data, received_s))
            node._snapshots.work.add(install)
            install.add_done_callback(node._snapshots.work.discard)

    async def _install(self, source: int, slot: Slot, data: bytes, received_s: float) -> None:
        """Install a peer's snapshot: file first, then state machine, then the core.

        The whole snapshot is decoded first, on a worker thread, into new
        values (``ReplicatedMachine.prepare_restore``): one that does not decode,
        or covers another slot than it was sent as, is dropped before anything
        is written. The file is durable before the core's ``SnapshotRecord`` is
        appended, as recovery requires (``docs/storage.md``)."""
        node = self._node
        try:
            if slot <= node._replica.slot_chosen:
                return
            began = node._loop.time()
            try:
                slot_found, install = await node._loop.run_in_executor(
                    None, node.machine.prepare_restore, data
                )
            except InvalidSnapshot as error:
                self._refuse(source, slot, "invalid", str(error))
                return
            if slot_found != slot:
                self._refuse(source, slot, "invalid", f"it holds the state below slot {slot_found}")
                return
            if slot <= node._replica.slot_chosen or node._stopping:
                return
            decoded = node._loop.time()
            writer = node._storage.begin_snapshot(slot)
            await node._loop.run_in_executor(None, writer.write, data)
            written = node._loop.time()
            if slot <= node._replica.slot_chosen or node._stopping:
                return  # caught up through the log meanwhile, or stopping
            # Decoded and checked above: installing swaps it in (no decoding on
            # the event loop, and the snapshot is decoded once).
            install()
            if node.machine.slot_applied != slot:
                raise AssertionError(f"restored slot {node.machine.slot_applied}, checked {slot}")
            node._note_snapshot_installed(slot)
            node.log.info(
                "[%d] installed the snapshot at slot %d from node %d "
                "(%d bytes: received in %.3f s, decoded in %.3f s, written durably in %.3f s)",
                node.node_id,
                slot,
                source,
                len(data),
                received_s,
                decoded - began,
                written - decoded,
            )
        except Exception as error:
            node._fatal(error)
        finally:
            self.installing = False

    def _refuse(self, source: int, slot: Slot, reason: str, detail: str = "") -> None:
        """Count a snapshot (or chunk) ignored; log the first few of each reason."""
        node = self._node
        node.metrics.snapshots_refused.labels(reason=reason).inc()
        if self._intake.refuse(reason):
            node.log.warning(
                "[%d %s %d] ignored a snapshot at slot %d from node %d: %s%s (%d so far)",
                node.node_id,
                node._replica.ballot_promised,
                node._replica.slot_chosen,
                slot,
                source,
                reason,
                f": {detail}" if detail else "",
                self._intake.refused[reason],
            )
