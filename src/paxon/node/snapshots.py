"""This node's own snapshots: when one falls due, taking it off the event loop,
and where the schedule stands after a restart or an installed snapshot.

A snapshot falls due after ``snapshot_interval_slots`` applied slots or
``snapshot_interval_bytes`` of applied commands, whichever comes first
(docs/architecture.md, "Snapshots"). The state is captured on the loop
(``StateMachine.snapshot_later``), encoded and written durably on a worker
thread; once written, the core's in-memory log is compacted to the *previous*
snapshot, so a peer one interval behind can still learn from the log.
Transfers between members are ``snapshot_transfer.py``'s.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from paxon.protocol.types import Slot

if TYPE_CHECKING:
    from paxon.node.node import Node


class LocalSnapshots:
    """One node's snapshot schedule and the snapshot it is taking; see the module docstring."""

    def __init__(self, node: Node) -> None:
        self._node = node
        config = node.config
        self.slot: Slot = 0  # the newest snapshot's slot, taken here or installed
        # Disk work on snapshots (writes, installs, sends): stop() lets it finish.
        self.work: set[asyncio.Future[Any]] = set()
        self._running = False
        self._next_slot: Slot = config.snapshot_interval_slots
        self._bytes_since = 0  # command payload applied since the last snapshot

    def applied(self, payload_bytes: int) -> None:
        """Commands of ``payload_bytes`` were applied: take a snapshot if one is due."""
        self._bytes_since += payload_bytes
        if (
            self._node.machine.slot_applied >= self._next_slot
            or self._bytes_since >= self._node.config.snapshot_interval_bytes
        ):
            self._take()

    def recovered(self, slot: Slot) -> None:
        """The node restarted from a snapshot at ``slot``: the next one falls due
        an interval after it (not at the first apply, which would write the
        recovered state again at every restart)."""
        self.slot = slot
        self._next_slot = slot + self._node.config.snapshot_interval_slots

    def installed(self, slot: Slot) -> None:
        """A peer's snapshot at ``slot`` is durable and restored."""
        self.slot = max(self.slot, slot)
        self._next_slot = slot + self._node.config.snapshot_interval_slots
        self._bytes_since = 0

    def _take(self) -> None:
        node = self._node
        if self._running or node._transfers.installing:
            return
        self._running = True
        slot = node.machine.slot_applied
        # Whatever happens, the next try is one interval on (a failing disk
        # must not make every apply serialize the whole state again).
        self._next_slot = slot + node.config.snapshot_interval_slots
        self._bytes_since = 0
        started = node._env.stopwatch()
        encode = node.machine.snapshot_later()  # a cheap capture; encoded off the loop
        writer = node._storage.begin_snapshot(slot)
        on_loop_s = node._env.stopwatch() - started
        size = [0]

        def write() -> Any:
            data = encode()
            size[0] = len(data)
            return writer.write(data)

        task = node._loop.run_in_executor(None, write)
        self.work.add(task)
        previous = self.slot

        def done(future: asyncio.Future[Any]) -> None:
            self.work.discard(future)
            self._running = False
            if node._closed:
                return
            error = future.exception()
            if error is not None:
                node.metrics.snapshot_failures.inc()
                node.log.error("[%d] snapshot at slot %d failed: %s", node.node_id, slot, error)
                return
            if slot <= self.slot:
                return  # an installed snapshot overtook this one
            self.slot = slot
            # Keep one interval of log in memory for peers that lag behind.
            if previous > node._replica.log_start:
                node._replica.compact(previous)
            node.log.info(
                "[%d] snapshot at slot %d written: %d bytes, %.1f ms on the loop, %.1f ms in all",
                node.node_id,
                slot,
                size[0],
                on_loop_s * 1000,
                (node._env.stopwatch() - started) * 1000,
            )

        task.add_done_callback(done)
