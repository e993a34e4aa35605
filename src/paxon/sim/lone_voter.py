"""An aimed lone voter: a leader with nobody to hand over to, stopped as on SIGTERM.

``Replica.transfer_leadership()`` without a target refuses (``ValueError``)
when no other node votes both in the configuration in effect and in the
newest one, and ``Node._hand_over`` then stops at once: a one-voter cluster
shut down, or a leader whose last fellow voter's removal is chosen. The
swarm's operator never left a leader so in seeds 0-299: it has no demotion,
and it would take N-1 removals, N-2 of them in effect, in a fault phase
whose clusters choose a few slots (issue 9, point 4; docs/testing.md,
"Coverage", session 14). In ``SHARE`` of the seeds with "reconfig" (not those
``lease_removal`` aims at), after the heal, where changes take effect fast:

- **removals**: from a drawn time after the heal, every ``_WATCH_S``, once
  the cluster has settled (``heal-settles`` is judged on a cluster left
  alone) and the leader runs no change and no transfer, the operator is
  asked at once (``Operator.ask_after_heal``, through its own rules) to
  remove a voter other than the leader, or first to add a learner (a node
  outside the configuration) when a removal would leave fewer than
  ``reconfig.MEMBERS_MIN`` members; at most ``_CHANGES_MAX``;
- **the stop**: once a leader's core names no voter to hand over to (the
  configuration in effect and the newest share no voter but it), that leader
  is stopped gracefully, once; it starts again as any graceful stop does,
  the only voter, and leads again. The heal's liveness rules start over from
  the stop (``RuntimeCluster.heal_again``): the cluster must settle again
  within the bound, then keep quiet and serve.

Nothing is asked after ``_UNTIL_S`` past the heal, nor stopped
``_STOP_WAIT_S`` after that.

Contract: every draw comes from this module's own stream, whose number was
searched so that no seed a test pins draws the aim (``_STREAM``), and nothing
is drawn or scheduled unless the seed has "reconfig", so every other seed
runs as before.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from paxon.protocol.replica import Role
from paxon.sim import reconfig

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster

# Share of the seeds with "reconfig" whose leader is left the only voter.
SHARE = 0.1
# When the watch starts, after the heal (s), when it asks its last change,
# and how long after that it may still stop a leader left alone.
_FROM_S = (0.1, 0.6)
_UNTIL_S = 3.0
_STOP_WAIT_S = 1.0
# Changes asked, at most (six removals leave one voter of seven, and a
# learner may be added first).
_CHANGES_MAX = 7
# How often the leader is looked at.
_WATCH_S = 0.01
# No seed a test pins (lease_removal's list, and 55, 91, 152, 241, 280, 445, 5034,
# 5057) draws the aim with this stream at this share (none does at 0.2). Aimed
# in 0-299: 35, 61, 114, 137, 164, 177, 185, 210, 240, 243, 261, each left a
# leader alone and stopped it; tests/sim/test_aimed_moments.py replays 61.
_STREAM = 21107


class LoneVoter:
    """The aim of the module docstring, for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int, *, excluded: bool) -> None:
        self._cluster = cluster
        config = cluster.config
        self.active = False
        self._from = self._until = float("inf")
        if "reconfig" in config.faults and not excluded:
            self._rng = random.Random(f"{seed}:aims-lone-voter-{_STREAM}")
            self.active = self._rng.random() < SHARE
            self._from = config.fault_phase_s + self._rng.uniform(*_FROM_S)
            self._until = config.fault_phase_s + _UNTIL_S
        # What it asked and did, for the trace and the tests.
        self.changes = 0
        self.stopped = 0

    def start(self) -> None:
        """Schedule the watch (aimed seeds only)."""
        if self.active:
            self._cluster.push(self._from, self._watch)

    def _watch(self) -> None:
        """Every ``_WATCH_S`` from ``_from``: stop a leader with nobody to hand
        over to, or ask the next change once the leader runs none."""
        cluster = self._cluster
        if self.stopped:
            return
        leader = cluster.leader()
        node = None if leader is None else cluster.node(leader)
        if leader is not None and node is not None and node._replica.role is Role.LEADER:
            replica = node._replica
            if not replica._transfer_targets():
                self._stop(leader)
                return
            idle = not replica.change_in_progress and replica.transferring_to is None
            # Not before the cluster settled: a change ahead keeps it from
            # settling, and back-to-back changes (each in effect alpha slots
            # on) kept it so past the heal's bound (swarm seed 3001403).
            settled = cluster.healing.settled_at is not None
            if idle and settled and cluster.time <= self._until and self.changes < _CHANGES_MAX:
                self._ask(leader)
        if cluster.time <= self._until + _STOP_WAIT_S:
            cluster.later(_WATCH_S, self._watch)

    def _ask(self, leader: int) -> None:
        """The next change toward a lone voter, asked of ``leader`` now."""
        cluster = self._cluster
        node = cluster.node(leader)
        assert node is not None
        newest = node._replica.configuration_newest
        others = sorted(newest.voters - {leader})
        if leader not in newest.voters or not others:
            return
        if len(newest.members) - 1 >= reconfig.MEMBERS_MIN:
            action, node_id = "remove", self._rng.choice(others)
        else:
            lost = cluster.faults.disk.disks_refused | cluster.refused_members()
            outside = sorted(set(cluster.members) - set(newest.ids) - lost)
            if not outside:
                return
            action, node_id = "add-learner", self._rng.choice(outside)
        operator = cluster.operator
        drawn = operator._checked(action, node_id, newest)
        if drawn is not None and operator.ask_after_heal(drawn, leader):
            self.changes += 1
            cluster.log(f"aim: {action} n{node_id}, to leave n{leader} the only voter")

    def _stop(self, leader: int) -> None:
        """Stop ``leader`` as on SIGTERM (unless stopping or paused: later)."""
        cluster = self._cluster
        host = cluster.hosts[leader]
        if host.process is None or host.process.stopping or host.paused_until > cluster.time:
            cluster.later(_WATCH_S, self._watch)
            return
        self.stopped += 1
        cluster.log(f"fault: a graceful stop aimed at n{leader}, with nobody to hand over to")
        cluster.stop_gracefully(host, io_fault=False)  # no fault after the heal
        cluster.heal_again()


__all__ = ["SHARE", "LoneVoter"]
