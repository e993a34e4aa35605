"""A member restarted between a change's choice and its effect (runtime engine).

A change chosen at slot ``i`` takes effect at ``i + alpha``. A member that
takes a snapshot in between and restarts from it recovers a configuration
history that already holds the change, pending, with nothing of the moment it
was chosen. When its chosen prefix passes the effect it must still act on the
change as a member that lived through it does: remember the node a removal
dropped (``removed-remembered``), link to whom the change adds and hang up on
whom it drops (``links-follow``). Random crashes seldom land there: the window
is ``alpha`` slots, and the member must have taken its snapshot inside it.
Mutation sample s30 left a bug unseen there (``replica.py:1904``: a member
that refreshed its memory of the removed only when its members and its
newest configuration changed at once forgot every removal so restarted).

At ``SimConfig.change_restart_share`` of the changes of members the operator
sees chosen in the fault phase, a member (not the leader) seen holding a
snapshot at or past the change's slot, while its chosen prefix is short of
the effect, is crashed (its power lost, as any crash) and restarted
``RESTART_S`` later, as a service manager restarts it at once. It is looked
for every ``POLL_S`` for up to ``WATCH_S``.

Contract: every draw comes from ``{seed}:change-restart``, and nothing is
drawn, polled or crashed unless the share is above 0 (0 in a fixed
configuration unless asked: ``--change-restart``), so every other seed runs
as before. Nothing strikes after the heal.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paxon.node.node import Node
    from paxon.sim.runtime import RuntimeCluster

# How soon the crashed member is started again (seconds).
RESTART_S = 0.02
# How often a chosen change's members are looked at, and for how long.
POLL_S = 0.002
WATCH_S = 2.0


class ChangeRestarts:
    """The crashes of the module docstring, for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self._share = cluster.config.change_restart_share
        self._rng = random.Random(f"{seed}:change-restart")
        self.watched = 0  # changes whose members were watched
        self.restarted = 0  # members restarted inside a change's window

    def chosen(self, epoch: int) -> None:
        """The operator saw the change to configuration ``epoch`` chosen:
        perhaps watch for a member to restart inside its window."""
        cluster = self._cluster
        if self._share <= 0 or cluster.healed_at is not None:
            return
        if self._rng.random() >= self._share:
            return
        self.watched += 1
        self._look(epoch, cluster.time + WATCH_S)

    def _look(self, epoch: int, until: float) -> None:
        cluster = self._cluster
        if cluster.healed_at is not None or cluster.time > until:
            return
        leader = cluster.leader()
        inside = [
            host
            for host in cluster.hosts.values()
            if host.node_id != leader
            and (node := cluster.node_of(host)) is not None
            and _inside_the_window(node, epoch)
        ]
        if not inside:
            if any(_short_of_the_effect(node, epoch) for node in _nodes(cluster)):
                cluster.later(POLL_S, lambda: self._look(epoch, until))
            return
        host = self._rng.choice(inside)
        self.restarted += 1
        cluster.stats.faults["change-restart"] = self.restarted
        cluster.crash_host(
            host,
            f"between the choice of epoch {epoch} and its effect, from a snapshot past the choice",
            restart_in=RESTART_S,
        )


def _nodes(cluster: RuntimeCluster) -> list[Node]:
    return [node for host in cluster.hosts.values() if (node := cluster.node_of(host)) is not None]


def _short_of_the_effect(node: Node, epoch: int) -> bool:
    """``node`` does not hold configuration ``epoch`` in effect yet."""
    replica = node._replica
    return replica.configuration.epoch < epoch


def _inside_the_window(node: Node, epoch: int) -> bool:
    """``node`` holds the change to ``epoch`` pending in a snapshot it took or
    installed: its snapshot is at or past the change's slot, its prefix short
    of the effect."""
    replica = node._replica
    newest = replica.configuration_newest
    if newest.epoch != epoch or not _short_of_the_effect(node, epoch):
        return False
    chosen_at = replica._history.newest_effect - newest.alpha
    return node._snapshots.slot >= chosen_at


__all__ = ["POLL_S", "RESTART_S", "WATCH_S", "ChangeRestarts"]
