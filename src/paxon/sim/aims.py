"""Operator requests and a duplicate aimed at branches the swarm never reached.

With membership changes on (``reconfig``), the swarm's operator rarely has a
change chosen and in effect within the fault phase, so some moments of
``protocol/`` never came (issue 9, point 4; docs/testing.md, "Coverage"). In
``AIM_SHARE`` of those seeds the operator's next draws are aimed instead
(``Operator._next`` asks ``draw`` first), once each, at drawn times of the
fault phase, in this order:

- **a transfer to a node that is not a voter** (a learner, a spare, a removed
  node, or an id outside the cluster when there is none), as a mistaken
  operator asks: the leader must refuse it (``bad_request``), nothing moves.
- **a transfer under lease reads** (seeds with ``lease_reads``): the leader
  is asked to hand over to the voter it would wait longest for (one down, else
  the one furthest behind), cut off from it until past the transfer's limit,
  so the transfer runs while its readers keep reading, and reads reach a
  leader whose lease no longer holds (``Replica.lease_holds``: handing over,
  or forfeited once ``TimeoutNow`` left).
- **a late removal**: from ``_REMOVE_AT`` of the phase, a voter whose removal
  the leader's promises do not prepare (they are no majority of the voters
  left: an election on a bare majority, or a voter that never answered), so
  once the removal takes effect the leader asks the others for their
  promises before it proposes there (``Replica._prepare_configuration``).
  It waits for a turn with no change and no transfer in progress.
  Asked late, so that the heal, where no fault deposes the leader, usually
  comes before it takes effect. In lease-read seeds, half the time it is the
  leader itself that is removed: a leader whose removal is chosen holds no
  lease, and once it takes effect it proposes nothing more and hands over.

Once the leader is the only voter (now and in its newest configuration), it
is stopped as on SIGTERM: ``Node._hand_over`` finds nobody to hand over to.

In the seeds ``bare_reign`` picks (a stream of its own), the next request
comes from there: a change the leader's promises do not prepare, after
elections made bare (``bare_reign``; ``lose_prepare`` is its hook on the
network).

In the seeds ``lease_removal`` picks (a stream of its own; with lease reads),
a calm leader serving reads from its lease is asked to remove itself after
the heal; in those ``lone_voter`` picks, the voters other than the leader
are removed after the heal until it has nobody to hand over to, and it is
stopped as on SIGTERM.

Every ``TimeoutNow`` of an aimed seed is delivered twice (a duplicate, as the
"duplicate" fault makes): the second reaches a node that already stood, which
must refuse it (``Replica._on_timeout_now``).

Contract: every draw comes from this module's own stream, whose number was
searched so that no seed a test pins draws an aim (``_STREAM``), and nothing
is drawn unless the operator changes members, so every other seed runs as
before. Nothing is aimed after ``_LAST`` of the phase (but ``lease_removal``'s
one request and ``lone_voter``'s, after the heal); the operator keeps its rules
(``Operator._checked``: no change leaves lost disks a majority).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from paxon.net.peer_messages import PeerMessage
from paxon.sim import reconfig
from paxon.sim.bare_reign import BareReign
from paxon.sim.lease_removal import LeaseRemoval
from paxon.sim.lone_voter import LoneVoter

if TYPE_CHECKING:
    from paxon.protocol.membership import Configuration
    from paxon.sim.runtime import RuntimeCluster

# Share of the seeds with "reconfig" whose operator is aimed.
AIM_SHARE = 0.3
# Windows of the fault phase the aims draw their times from, and the last
# share of the phase any aim is asked in.
_MISDIRECT_AT = (0.05, 0.3)
_LEASE_TRANSFER_AT = (0.2, 0.5)
_REMOVE_AT = (0.5, 0.7)
_LAST = 0.9
# A transfer under lease reads: its target is cut off from the leader for this
# many of the leader's election_timeout_max_s (the transfer's own limit).
_TRANSFER_CUT = 1.5
# Lease-read seeds: share of the late removals that remove the leader.
_REMOVE_LEADER = 0.5
# A duplicate TimeoutNow arrives this much after the first, at most.
_DUPLICATE_LAG_S = (0.001, 0.02)
# No seed a test pins (0-23, 30-32, 40, 46, 54, 67, 85, 86, 97, 100-102, 108,
# 109, 115, 146, 172, 200, 1307, 5049, 5090) draws an aim with this stream.
_STREAM = 24045

# A drawn request: action, node id, address; and the operator's check of a
# change (``Operator._checked``: None when it may not be asked).
_Drawn = tuple[str, int, str]
_Check = Callable[[str, int, "Configuration"], _Drawn | None]


class Aims:
    """The aimed draws of the module docstring, for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        config = cluster.config
        self._rng = random.Random(f"{seed}:aims-{_STREAM}")
        self.active = "reconfig" in config.faults and self._rng.random() < AIM_SHARE
        phase = config.fault_phase_s
        self._misdirect_at = self._transfer_at = self._remove_at = float("inf")
        self._remove_leader = False
        if self.active:
            self._misdirect_at = self._rng.uniform(*_MISDIRECT_AT) * phase
            if config.lease_reads:
                self._transfer_at = self._rng.uniform(*_LEASE_TRANSFER_AT) * phase
                self._remove_leader = self._rng.random() < _REMOVE_LEADER
            self._remove_at = self._rng.uniform(*_REMOVE_AT) * phase
        self._last = _LAST * phase
        # What they asked, for the trace and the tests.
        self.misdirected = 0
        self.lease_transfers = 0
        self.removals_unprepared = 0
        self.leaders_removed = 0
        self.timeout_now_twice = 0
        self.lone_stopped = 0
        # A bare reign, from a stream of its own (``bare_reign``).
        self.bare_reign = BareReign(cluster, seed)
        # After the heal, a lease-read leader's own removal, from a stream of
        # its own (``lease_removal``).
        self.lease_removal = LeaseRemoval(cluster, seed)
        # After the heal, a leader left the only voter and stopped, from a
        # stream of its own (``lone_voter``; not where lease_removal aims).
        self.lone_voter = LoneVoter(cluster, seed, excluded=self.lease_removal.active)

    def draw(self, newest: Configuration, leader: int, checked: _Check) -> _Drawn | None:
        """The operator's next request, when an aim is due (else None; no draw).
        A change goes through ``checked``, the operator's own rules."""
        now = self._cluster.time
        if now > self._last:
            return None
        if self.active:
            drawn = self._aimed(newest, leader, checked)
            if drawn is not None:
                return drawn
        return self.bare_reign.draw(newest, leader, checked)

    def lose_prepare(self, src: int, message: PeerMessage) -> bool | None:
        """Whether ``message`` is a Prepare the bare reign's aimed ballot loses
        (None: not one of its ballots; ``bare_reign``)."""
        return self.bare_reign.lose_prepare(src, message)

    def _aimed(self, newest: Configuration, leader: int, checked: _Check) -> _Drawn | None:
        now = self._cluster.time
        if not self.lone_stopped and newest.voters == {leader}:
            self._stop_lone(leader)
        if now >= self._misdirect_at:
            self._misdirect_at = float("inf")
            self.misdirected += 1
            return "transfer-leader", self._not_a_voter(newest), ""
        if now >= self._transfer_at:
            target = self._slowest(newest, leader)
            if target is not None:
                self._transfer_at = float("inf")
                self.lease_transfers += 1
                self._cut_apart(leader, target)
                return "transfer-leader", target, ""
        if now >= self._remove_at:
            node_id = self._removal(newest, leader)
            drawn = None if node_id is None else checked("remove", node_id, newest)
            if node_id is not None and drawn is not None:
                self._remove_at = float("inf")
                if node_id == leader:
                    self.leaders_removed += 1
                else:
                    self.removals_unprepared += 1
                return drawn
        return None

    def timeout_now_lags(self) -> list[float]:
        """Extra delays for a ``TimeoutNow`` sent now: one duplicate when aimed."""
        if not self.active or self._cluster.healed_at is not None:
            return []
        self.timeout_now_twice += 1
        return [self._rng.uniform(*_DUPLICATE_LAG_S)]

    def _stop_lone(self, leader: int) -> None:
        """Stop ``leader``, the only voter now and in its newest configuration,
        as on SIGTERM: it has nobody to hand over to."""
        cluster = self._cluster
        node, host = cluster.node(leader), cluster.hosts[leader]
        if (
            node is None
            or node._replica.configuration.voters != {leader}
            or host.process is None
            or host.process.stopping
            or host.paused_until > cluster.time
        ):
            return
        self.lone_stopped += 1
        cluster.log(f"fault: a graceful stop aimed at n{leader}, the only voter")
        cluster.stop_gracefully(host)

    def _not_a_voter(self, newest: Configuration) -> int:
        members = self._cluster.members
        not_voters = sorted(set(newest.ids).union(members) - newest.voters)
        if not_voters:
            return self._rng.choice(not_voters)
        return max(members) + 1  # a node no configuration names

    def _cut_apart(self, leader: int, target: int) -> None:
        """Cut ``leader`` and ``target`` apart until past the transfer's time
        (``election_timeout_max_s``): the leader hands over nothing meanwhile."""
        cluster = self._cluster
        cut_id = cluster.network.cut({(leader, target), (target, leader)})
        cluster.log(f"fault: n{leader} and n{target} cut apart (aimed: a transfer under leases)")
        hold = _TRANSFER_CUT * cluster.config.replica.election_timeout_max_s
        cluster.later(hold, lambda: cluster.network.heal(cut_id))

    def _slowest(self, newest: Configuration, leader: int) -> int | None:
        """The other voter the leader would wait longest for: one down, else the
        one furthest behind (the transfer then runs until its time is up)."""
        node = self._cluster.node(leader)
        others = sorted(newest.voters - {leader})
        if node is None or not others:
            return None
        chosen = node._replica._peer_slot_chosen
        return min(others, key=lambda p: (self._cluster.node(p) is not None, chosen.get(p, -1), p))

    def _removal(self, newest: Configuration, leader: int) -> int | None:
        """A voter to remove as the module docstring says, or None (none fits yet:
        a change or a transfer in progress would only be refused)."""
        node = self._cluster.node(leader)
        if len(newest.members) - 1 < reconfig.MEMBERS_MIN or len(newest.voters) < 2:
            return None
        if node is None or node._replica.change_in_progress or node._replica.transferring_to:
            return None
        if self._remove_leader:
            return leader if leader in newest.voters else None
        promised = set(node._replica._promises)
        for voter in sorted(newest.voters & promised - {leader}):
            left = newest.voters - {voter}
            if len(left & promised) <= len(left) // 2:
                return voter
        return None


__all__ = ["AIM_SHARE", "Aims"]
