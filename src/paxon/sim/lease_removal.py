"""An aimed removal of a leader that serves reads from its lease.

``Replica.lease_holds`` refuses the lease of a leader whose newest
configuration does not have it as a voter (its removal chosen, in effect or
not yet), and ``ConfigHistory.voter_since`` breaks off there; no other path
calls it. The swarm's operator removes a leader now and then, but only in the
fault phase, where the seeds with lease reads seldom have a leader serving
(their clients complete next to nothing there), and a removed leader leads on
a few round trips only: no read ever reached one (issue 9, point 4;
docs/testing.md, "Coverage", session 14). In ``SHARE`` of the seeds with
"reconfig" and lease reads, after the heal, when the clients read again:

- **a calm leader, watched**: from a drawn time after the heal, every
  ``_WATCH_S`` the leader is looked at; once its lease holds (a majority
  acknowledged a heartbeat round lately), it runs no change and no transfer,
  and it has two other voters at least, the operator asks it at once
  (``Operator.ask_after_heal``, through the operator's own rules) to
  **remove itself**. The clients read on from it until it hands over: once
  its removal is in effect and a majority of the voters left know it. The
  heal's liveness rules start over from the ask (``RuntimeCluster.heal_again``):
  the cluster must settle again within the bound, then keep quiet and serve.

One removal is asked, and none after ``_UNTIL_S`` past the heal.

Contract: every draw comes from this module's own stream, whose number was
searched so that no seed a test pins draws the aim (``_STREAM``), and nothing
is drawn or scheduled unless the seed has "reconfig" and lease reads, so every
other seed runs as before.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from paxon.protocol.replica import Role
from paxon.sim import reconfig

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster

# Share of the seeds with "reconfig" and lease reads whose leader is removed.
SHARE = 0.5
# When the watch starts, after the heal (s), and when it gives up.
_FROM_S = (0.1, 0.6)
_UNTIL_S = 2.0
# How often the leader is looked at until it is calm.
_WATCH_S = 0.01
# No seed a test pins (0-23, 30-33, 40, 44, 46, 50, 54, 60, 63, 67, 75, 85, 86,
# 91, 97, 100-102, 107-109, 113, 115, 127, 144, 146, 172, 200, 219, 268, 299,
# 300, 1307, 5049, 5090, 7809; of those with "reconfig" and lease reads: 46,
# 127, 300) draws the aim with this stream. Aimed in 0-299: 24, 37, 95, 106,
# 230, 238, 254, 272, 293 (of 23 with both); tests/sim/test_aimed_moments.py
# replays 230.
_STREAM = 10008


class LeaseRemoval:
    """The aim of the module docstring, for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        config = cluster.config
        self.active = False
        self._from = self._until = float("inf")
        if "reconfig" in config.faults and config.lease_reads:
            rng = random.Random(f"{seed}:aims-lease-removal-{_STREAM}")
            self.active = rng.random() < SHARE
            self._from = config.fault_phase_s + rng.uniform(*_FROM_S)
            self._until = config.fault_phase_s + _UNTIL_S
        # The leader asked to remove itself, once asked.
        self.asked: int | None = None

    def start(self) -> None:
        """Schedule the watch (aimed seeds only)."""
        if self.active:
            self._cluster.push(self._from, self._watch)

    def _watch(self) -> None:
        """Every ``_WATCH_S`` from ``_from``: once the leader is calm, the
        operator asks its removal."""
        cluster = self._cluster
        if self.asked is not None or cluster.time > self._until:
            return
        leader = cluster.leader()
        node = None if leader is None else cluster.node(leader)
        if leader is not None and node is not None:
            replica = node._replica
            newest = replica.configuration_newest
            calm = (
                replica.role is Role.LEADER
                and replica.lease_holds
                and not replica.change_in_progress
                and replica.transferring_to is None
                and len(newest.voters) >= 3
                and len(newest.members) - 1 >= reconfig.MEMBERS_MIN
            )
            operator = cluster.operator
            drawn = operator._checked("remove", leader, newest) if calm else None
            if drawn is not None and operator.ask_after_heal(drawn, leader):
                self.asked = leader
                cluster.log(f"aim: n{leader} serves reads from its lease: remove n{leader}")
                # The settled leader goes: the cluster must settle again. Its
                # voters may stand before it hands over, when they learn the
                # removal from a snapshot past it and stop hearing it (swarm
                # seed 6001689), so the quiet rules start over from here.
                cluster.heal_again()
                return
        cluster.later(_WATCH_S, self._watch)


__all__ = ["SHARE", "LeaseRemoval"]
