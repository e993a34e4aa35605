"""A candidate behind its acceptor by nearly a window: Phase 1's far fill.

A new leader re-proposes and fills the slots its promises report, at most
``2 * slots_ahead_max`` (``W``) of them past its ``slot_from``; a promise
reporting a slot beyond that is refused as if lost (``Replica._on_promise``;
``docs/protocol.md``, "Phase 1"). The second half of that bound matters only
when a candidate stands while an acceptor holds entries ``W`` or more slots
past the candidate's chosen prefix, yet has chosen no more than ``W`` past it
(further, and the compacted-log rule sends the candidate to learn first):
a candidate behind by nearly a window, which no swarm seed of 0-59 built (a
core that filled only ``W`` slots survived every budget seed, s16 row 18;
``promised-leads`` in ``sim/reproposal.py`` names it here). In a run with
``SimConfig.lagging_candidate``, once, from a drawn time of the fault phase:

1. a follower (the *candidate*) is cut off from every node both ways, and
   falls behind while the others go on choosing;
2. at the first poll where the other follower (the *acceptor*) has chosen
   between ``W - pipeline_window_slots`` and ``W`` slots past the candidate's
   prefix and holds an entry ``W`` or more past it, the leader is cut off
   instead and the candidate's cut heals; the acceptor's ``Probe``s to the
   candidate are lost until the candidate leads or ``_STAND_LIMIT_S`` passes,
   so the candidate is the one to stand, and the acceptor's promise reports
   the far half of the window. The candidate's ``LearnRequest``s to the
   acceptor are lost as long: a prober the acceptor refuses (it heard the
   leader within ``election_timeout_min_s``) asks it for the log, and
   learning would take the lag apart.

A crash, pause or partition drawn at random between the stages would take the
construction apart, so it is a run of its own (``CONFIG``: 3 nodes, copies and
reordering only, a small window so the lag is a few slots; the mutation
budget's ``lag`` group, ``tests/mutate/budget.py``). The heal of the fault
phase ends it at whatever stage. Reading roles and logs to aim is the
simulator's privilege; the rules judge only what they see.

Contract: it draws only from its own stream (``{seed}:lagging-candidate``),
and only with ``lagging_candidate``, so every other run is as before.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from paxon.protocol.config import ReplicaConfig
from paxon.protocol.messages import LearnRequest, Probe
from paxon.protocol.replica import Replica, Role
from paxon.sim.config import SimConfig

if TYPE_CHECKING:
    from paxon.net.peer_messages import PeerMessage
    from paxon.sim.runtime import RuntimeCluster

# A window of 2 slots, 4 ahead (the smallest the limits allow: the factor is
# at least 2 and a Learn page fits inside): the lag wanted is 2 to 4 slots.
REPLICA = ReplicaConfig(
    backoff_max_factor=4.0, pipeline_window_slots=2, slots_ahead_factor=2, learn_max_entries=4
)
# The run the moment is built in: 3 nodes, only faults that leave it standing.
CONFIG = SimConfig(
    nodes=3,
    faults=frozenset({"duplicate", "reorder"}),
    lagging_candidate=True,
    replica=REPLICA,
)

# The span of the fault phase the candidate's cut may start in: early enough
# that the election after the leader's cut fits before the heal.
_CUT_AT = (0.05, 0.25)
# How often the lag is looked at while the candidate is cut off.
_POLL_S = 0.001
# After an overshoot, the time the candidate is given to catch up.
_RETRY_S = 0.2
# How long the acceptor's probes are lost once the leader is cut off: past it
# the acceptor may stand (the candidate's own backoff reaches
# ``backoff_max_factor * election_timeout_max_s``).
_STAND_LIMIT_S = 3.0


class LaggingCandidate:
    """The moment of the module docstring, for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self.active = cluster.config.lagging_candidate
        rng = random.Random(f"{seed}:lagging-candidate")
        self._from = rng.uniform(*_CUT_AT) * cluster.config.fault_phase_s if self.active else 0.0
        self._cut: int | None = None
        self._probes_lost_until = 0.0
        self.candidate: int | None = None
        self.acceptor: int | None = None
        self._leader: int | None = None
        # The stages reached (1: the candidate cut off; 2: the leader cut off
        # at the lag wanted), for the trace and the tests.
        self.stage = 0
        if self.active:
            cluster.later(self._from, self._cut_candidate)

    def drops(self, src: int, message: PeerMessage) -> bool:
        """Whether ``message``, leaving ``src`` now, is lost for the moment."""
        probe = (
            src == self.acceptor and message.dst == self.candidate and isinstance(message, Probe)
        )
        ask = (
            src == self.candidate
            and message.dst == self.acceptor
            and isinstance(message, LearnRequest)
        )
        if self.stage != 2 or not (probe or ask) or self._cluster.time >= self._probes_lost_until:
            return False
        candidate = self._replica(self.candidate)
        return candidate is None or candidate.role is not Role.LEADER

    def _replica(self, node_id: int | None) -> Replica | None:
        node = self._cluster.node(node_id) if node_id is not None else None
        return node._replica if node is not None else None

    def _cut_candidate(self) -> None:
        """Stage 1, once a leader leads 3 voters: cut a follower off."""
        cluster = self._cluster
        if cluster.healed_at is not None:
            return
        leader = next(
            (
                node_id
                for node_id in cluster.hosts
                if (replica := self._replica(node_id)) is not None
                and replica.role is Role.LEADER
                and len(replica.configuration.voters) == 3
            ),
            None,
        )
        if leader is None:
            cluster.later(_POLL_S * 10, self._cut_candidate)
            return
        replica = self._replica(leader)
        assert replica is not None  # found leading just now
        followers = sorted(replica.configuration.voters - {leader})
        self.candidate, self.acceptor = followers
        self._leader = leader
        self._cut = self._cut_off(self.candidate)
        self.stage = 1
        cluster.log(f"fault: n{self.candidate} cut off, to fall behind n{self.acceptor}")
        cluster.later(_POLL_S, self._poll)

    def _poll(self) -> None:
        """Stage 2, at the lag wanted: the leader cut off instead of the candidate."""
        cluster = self._cluster
        candidate, acceptor = self._replica(self.candidate), self._replica(self.acceptor)
        assert self._cut is not None  # stage 1 made it
        if cluster.healed_at is not None or candidate is None or acceptor is None:
            return  # a crash took the construction apart; the heal heals the cut
        window = acceptor.config.slots_ahead_max
        ahead = acceptor.slot_chosen - candidate.slot_chosen
        if ahead > window:
            # Overshot in one step (the compacted-log rule would send it to
            # learn first): let it catch up, and cut a follower off again.
            cluster.network.heal(self._cut)
            self.stage = 0
            cluster.log(f"fault: n{self.candidate} back, {ahead} slots behind: overshot")
            cluster.later(_RETRY_S, self._cut_candidate)
            return
        highest = max(acceptor._log, default=-1)
        wanted = ahead >= window - acceptor.config.pipeline_window_slots
        if not wanted or highest < candidate.slot_chosen + window:
            cluster.later(_POLL_S, self._poll)
            return
        assert self._leader is not None  # stage 1 found it
        cluster.network.heal(self._cut)
        self._cut_off(self._leader)  # healed with every other cut at the heal
        self._probes_lost_until = cluster.time + _STAND_LIMIT_S
        self.stage = 2
        cluster.log(
            f"fault: n{self._leader} cut off; n{self.candidate} at {candidate.slot_chosen} "
            f"rejoins n{self.acceptor}, which chose up to {acceptor.slot_chosen} and holds "
            f"slot {highest}"
        )

    def _cut_off(self, node_id: int) -> int:
        return self._cluster.network.cut_off(node_id, self._cluster.hosts)


__all__ = ["CONFIG", "REPLICA", "LaggingCandidate"]
