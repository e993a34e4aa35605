"""Faults aimed at membership changes (runtime engine, while the operator runs).

Three states the random faults almost never build, though the core has code
for each (mutation sample s13, #32 and #41, crashed there unseen; the third,
session 27):

- **a bare election**: a candidate's ``Prepare`` is lost to a minority of the
  voters of its newest configuration, so it leads on a bare majority of
  promises. A change of voters that then takes effect (a learner promoted, a
  voter that promised removed) is no longer prepared by the promises it
  holds: the leader asks the voters that have not promised
  (``Replica._prepare_configuration``) before it proposes where they decide.
  Only a candidate's Prepares are lost: the leader's own for a later
  configuration always go out, so a bare election never stalls a change.
- **a learner cut off**: a node the operator has just added as a learner is
  cut off from every node for longer than its election timeout. It may not
  stand, so at its timeout it asks a member it knows to catch it up
  (``Replica._start_probe``), once per timeout, in turn.
- **a voter cut off through its removal**: a voter (not the leader) the
  operator asks to remove is cut off from every node until its removal takes
  effect, so it misses the change and comes back holding itself a voter; the
  members that remember its removal must tell it
  (``Replica._tell_the_removed``, ``removed_learns``). The one cut that may
  outlast the heal: a removal chosen by then is carried into effect by the
  others (``heal-settles`` allows that change its time), and one not chosen
  by then ends the cut at the heal. At ``SimConfig.removed_cut_share`` of
  the removals: 0 in a fixed configuration unless asked (``--removed-cut``),
  drawn by a share of the swarm's seeds that change the members.

Contract: every draw comes from this module's own streams
(``{seed}:bare-election``, ``{seed}:learner-cut``, ``{seed}:removed-cut``),
and nothing is drawn unless the operator runs (``reconfig``, or ``wipe``
with a wipe planned), so every other seed runs exactly as before. Nothing
strikes after the heal (``end``); a cut still open is healed with every
other cut there, but for a removal's (above).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from paxon.net.peer_messages import PeerMessage
from paxon.protocol.messages import Prepare
from paxon.protocol.replica import Role

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster

# Share of the ballots a candidate stands with whose Prepares miss a minority.
BARE_ELECTION_SHARE = 0.5
# Share of the learners added whose links are all cut once they are added.
LEARNER_CUT_SHARE = 0.5
# How long a learner cut off may take to learn it is one (the cut waits for it).
_KNOW_WAIT_S = 1.0
# Ballots remembered (with the voters whose Prepares they lose) at most.
_BALLOTS_MAX = 256


class MembershipFaults:
    """The two faults of the module docstring, for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        config = cluster.config
        self.active = "reconfig" in config.faults or (
            "wipe" in config.faults and config.wipe_rate > 0
        )
        self._rng_bare = random.Random(f"{seed}:bare-election")
        self._rng_cut = random.Random(f"{seed}:learner-cut")
        self._rng_removed_cut = random.Random(f"{seed}:removed-cut")
        # (candidate, ballot) -> the voters its Prepares do not reach.
        self._missed: dict[tuple[int, object], frozenset[int]] = {}
        # What they built, for the trace and the tests: elections on a bare
        # majority, Prepares a leader sent for a later configuration, learners
        # cut off, and those whose election timeout came while cut off.
        self.bare_elections = 0
        self.leader_prepares = 0
        self.learners_cut = 0
        self.learners_timed_out = 0
        self.removed_cut = 0
        # Nodes cut off through their removal (``voter_removing``).
        self._removing: set[int] = set()

    def end(self) -> None:
        """The heal: nothing more is lost or cut, but a node whose removal is
        chosen and not yet in effect stays cut off until it is, unless the
        others cannot make it take effect without it."""
        self.active = False
        cluster = self._cluster
        configs = cluster.checker.configs
        prefix = configs.prefix_end
        # Gone for the rest of the run (disks recovery refused): with them and
        # the node cut off, a configuration may be short of a majority, and
        # then nobody can make the removal take effect (swarm seed 15000652).
        lost = {node_id for node_id, host in cluster.hosts.items() if host.dead is not None}
        for node_id in sorted(self._removing):
            chosen = node_id not in configs.newest_known_at(prefix).ids
            if not cluster.may_lose(node_id, lost):
                continue  # it heals, and votes until its removal takes effect
            if chosen and node_id in configs.at(prefix).ids:
                cut_id = cluster.network.cut_off(node_id, cluster.members)
                cluster.log(f"fault: n{node_id} stays cut off until its removal takes effect")
                self._heal_once_removed(node_id, cut_id)

    def _heal_once_removed(self, node_id: int, cut_id: int) -> None:
        cluster = self._cluster
        configs = cluster.checker.configs
        if node_id in configs.at(configs.prefix_end).ids:
            heartbeat = cluster.config.replica.heartbeat_interval_s
            cluster.later(heartbeat, lambda: self._heal_once_removed(node_id, cut_id))
            return
        cluster.network.heal(cut_id)
        cluster.log(f"n{node_id}'s removal took effect: its cut heals")

    def lose_prepare(self, src: int, message: PeerMessage) -> bool:
        """Whether ``message``, a candidate's Prepare, is lost for a bare election."""
        if not self.active or not isinstance(message, Prepare):
            return False
        node = self._cluster.node(src)
        if node is None:
            return False
        replica = node._replica
        if replica.role is Role.LEADER:
            self.leader_prepares += 1
        if replica.role is not Role.PREPARING or message.ballot != replica.ballot_own:
            return False
        key = (src, message.ballot)
        missed = self._missed.get(key)
        if missed is None:
            missed = frozenset()
            if self._rng_bare.random() < BARE_ELECTION_SHARE:
                voters = sorted(replica.configuration_newest.voters)
                others = [voter for voter in voters if voter != src]
                # A minority of the voters: the rest (itself counted) are a majority.
                missed = frozenset(self._rng_bare.sample(others, (len(voters) - 1) // 2))
                if missed:
                    self.bare_elections += 1
                    self._cluster.log(
                        f"fault: n{src}'s Prepares of {message.ballot} miss {sorted(missed)}"
                    )
            if len(self._missed) >= _BALLOTS_MAX:
                self._missed.pop(next(iter(self._missed)))
            self._missed[key] = missed
        return message.dst in missed

    def learner_added(self, node_id: int) -> float:
        """The operator added ``node_id`` as a learner: perhaps cut it off from every
        node past its election timeout, once it knows it is a learner (a spare
        holds its --peers guess, where it votes, until it reads the change).
        Returns how much longer the operator should wait to promote it (0: no cut)."""
        cluster = self._cluster
        if not self.active or self._rng_cut.random() >= LEARNER_CUT_SHARE:
            return 0.0
        node = cluster.node(node_id)
        if node is None:
            return 0.0
        self._cut_when_it_knows(node_id, cluster.time + _KNOW_WAIT_S)
        return _KNOW_WAIT_S + self._cut_length(node_id)

    def voter_removing(self, node_id: int) -> None:
        """The operator asks to remove ``node_id``: perhaps cut it off from every
        node until the heal, so that it misses the change (not the leader:
        its removal would never be chosen)."""
        cluster = self._cluster
        share = cluster.config.removed_cut_share
        if not self.active or self._rng_removed_cut.random() >= share:
            return
        if node_id == cluster.leader() or cluster.node(node_id) is None:
            return
        cut_id = cluster.network.cut_off(node_id, cluster.members)
        self._removing.add(node_id)
        self.removed_cut += 1
        cluster.log(f"fault: n{node_id}, being removed, cut off past the heal, cut #{cut_id}")

    def _cut_when_it_knows(self, node_id: int, until: float) -> None:
        cluster = self._cluster
        if not self.active or cluster.time > until:
            return
        node = cluster.node(node_id)
        if node is not None and node_id in node._replica.configuration_newest.learners:
            self._cut_off(node_id)
            return
        heartbeat = cluster.config.replica.heartbeat_interval_s
        cluster.later(heartbeat, lambda: self._cut_when_it_knows(node_id, until))

    def _cut_length(self, node_id: int) -> float:
        """Past ``node_id``'s election timeout: its timer restarted at the last
        heartbeat to reach it, which may still be on its way (stalled up to
        stall_max_s), and its clock may run slow."""
        cluster = self._cluster
        host = cluster.hosts[node_id]
        node = cluster.node_of(host)
        backoff = 1.0 if node is None else node._replica._backoff
        timing = cluster.config.replica
        timeout = timing.election_timeout_max_s * backoff / host.clock_rate
        return timeout + cluster.network.faults.stall_max_s + 2 * timing.heartbeat_interval_s

    def _cut_off(self, node_id: int) -> None:
        cluster = self._cluster
        host = cluster.hosts[node_id]
        node = cluster.node_of(host)
        assert node is not None
        replica = node._replica
        lasting = self._cut_length(node_id)
        cut_id = cluster.network.cut_off(node_id, cluster.members)
        self.learners_cut += 1
        cluster.log(f"fault: learner n{node_id} cut off for {lasting:.3f} s, cut #{cut_id}")
        deadline = replica._election_deadline

        def heal() -> None:
            cluster.network.heal(cut_id)
            if cluster.node_of(host) is node and replica.now >= deadline:
                self.learners_timed_out += 1

        cluster.later(lasting, heal)


__all__ = ["BARE_ELECTION_SHARE", "LEARNER_CUT_SHARE", "MembershipFaults"]
