"""A snapshot's last chunk stalled until its receiver stands: the moment where
a replica that is not a follower installs a snapshot (``Replica.install_snapshot``
steps down a prober, a candidate not catching up, or a leader: one that far
behind should not lead). Issue 9, point 4; docs/testing.md, "Coverage".

A node that follows its leader hears it every heartbeat, so its election timer
never fires while a snapshot from that leader comes in, and the swarm's random
faults almost never built the moment. In ``STALL_SHARE`` of the seeds with
partitions, the first time a leader sends the last chunk of a snapshot to a
follower of it that may stand, during the fault phase:

- the chunk stalls on the link (as the "stall" fault stalls a message: a
  frame stuck in a buffer, delivered long after it was sent), and
- the leader and the receiver are cut apart both ways (a partition: what
  either sends the other meanwhile is lost).

Cut off from its leader, the receiver's election timer fires and it probes
(``Role.PROBING``; its leader stays the one it followed, so the transfer is
not dropped). At the first tick where it no longer follows, the chunk gets
through; the cut heals once the receiver is done installing (at most
``_KEEP_S`` later). If it never stands within ``_WAIT_S`` (it learned the
slots elsewhere, or another leader rose), or at the heal, the chunk is let go
and the cut heals anyway; if the receiver's process is gone by then (crashed,
stopped), the chunk is lost with its connection.

Contract: every draw comes from this module's own stream, whose number was
searched so that no seed a test pins draws the stall (``_STREAM``), and
nothing is drawn unless the seed has partitions, so every other seed runs as
before; it strikes at most once a run. Reading a replica's role to aim is the
simulator's privilege.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from paxon.protocol.replica import Role

if TYPE_CHECKING:
    from paxon.net.peer_messages import SnapshotChunk
    from paxon.node.node import Node
    from paxon.sim.runtime import RuntimeCluster

# Share of the seeds with "partition" where the last chunk is stalled.
STALL_SHARE = 0.1
# How long the receiver may take to stand before the chunk is let go anyway.
_WAIT_S = 3.0
# How long the cut is kept, at most, once the chunk got through.
_KEEP_S = 0.5
# No seed a test pins (0-23, 30-32, 40, 46, 54, 55, 67, 85, 86, 97, 100-102,
# 108, 109, 113, 115, 126, 127, 144, 146, 172, 200, 241, 280, 445, 1307, 5034,
# 5049, 5057, 5090, 7809) draws the stall with this stream, whatever its faults.
_STREAM = 34485


class StalledChunk:
    """The stalled last chunk of the module docstring, for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self.active = False
        if "partition" in cluster.config.faults:
            rng = random.Random(f"{seed}:stalled-chunk-{_STREAM}")
            self.active = rng.random() < STALL_SHARE
        self._cut: int | None = None
        self._held: tuple[int, SnapshotChunk] | None = None
        self._until = 0.0
        # What it did, for the trace and the tests: chunks stalled, and let
        # through to a receiver that no longer followed.
        self.stalled = 0
        self.let_through_standing = 0

    def holds(self, src: int, chunk: SnapshotChunk) -> bool:
        """Whether ``chunk``, sent by ``src`` now, is the one to stall (True: kept)."""
        cluster = self._cluster
        if not self.active or self.stalled or not chunk.last or cluster.healed_at is not None:
            return False
        sender, receiver = cluster.node(src), cluster.node(chunk.dst)
        if sender is None or receiver is None or not sender.is_leader:
            return False
        replica = receiver._replica
        if (
            replica.role is not Role.FOLLOWER
            or replica.leader_hint != src
            or not replica._may_stand()
            or cluster.hosts[chunk.dst].paused_until > cluster.time
        ):
            return False
        self.stalled += 1
        self._held = (src, chunk)
        self._cut = cluster.network.cut({(src, chunk.dst), (chunk.dst, src)})
        self._until = cluster.time + _WAIT_S
        cluster.log(
            f"fault: n{src}'s last snapshot chunk to n{chunk.dst} stalls, the two cut apart "
            "(aimed: a snapshot installed by a node that stands)"
        )
        cluster.later(cluster.config.tick_s, lambda: self._watch(receiver))
        return True

    def _watch(self, receiver: Node) -> None:
        """Let the chunk through once the receiver stands (or the wait is over)."""
        cluster = self._cluster
        assert self._held is not None
        src, chunk = self._held
        up = cluster.node(chunk.dst) is receiver
        standing = up and receiver._replica.role is not Role.FOLLOWER
        if not standing and cluster.healed_at is None and cluster.time < self._until:
            cluster.later(cluster.config.tick_s, lambda: self._watch(receiver))
            return
        if not up:  # its connection died with the receiver's process: lost
            cluster.log(f"fault: n{src}'s stalled snapshot chunk to n{chunk.dst} is lost")
        else:
            if standing:
                self.let_through_standing += 1
            cluster.log(f"fault: n{src}'s stalled snapshot chunk to n{chunk.dst} gets through")
            cluster.deliver_peer(src, chunk, None)
        self._until = cluster.time + _KEEP_S
        cluster.later(cluster.config.tick_s, lambda: self._heal(receiver))

    def _heal(self, receiver: Node) -> None:
        """Heal the cut once the receiver is done installing (or at most ``_KEEP_S`` on)."""
        cluster = self._cluster
        if (
            cluster.node(receiver.node_id) is receiver
            and receiver._transfers.installing
            and cluster.healed_at is None
            and cluster.time < self._until
        ):
            cluster.later(cluster.config.tick_s, lambda: self._heal(receiver))
            return
        if self._cut is not None:
            cluster.network.heal(self._cut)
            self._cut = None


__all__ = ["STALL_SHARE", "StalledChunk"]
