"""Moments the random faults almost never build, each aimed at what judges it.

``LeaderStop``: a graceful stop aimed at the running leader, as SIGTERM under
``paxon serve`` does: it hands leadership over first (``Node._hand_over``,
``transfer_leadership()`` without a target; coverage, issue 9 point 4). In
``_STOP_LEADER`` of the seeds with crash faults, once, at a drawn time of the
fault phase; with no leader running then (a paused one would only stop once
it runs again, led by another), it looks again every ``_STOP_LEADER_RETRY_S``
until ``_STOP_LEADER_UNTIL`` of the phase. It draws from its own stream, whose
number was searched so that no seed a test pins draws it.

``UnheardMoment``: ``transfer-recent`` (``docs/protocol.md``, "Every rule, checked as a
property"; ``paxon.sim.failfast``) judges a leader handing over with no
target named (a graceful stop's ``transfer_leadership()``) while a voter it
may hand to went unheard past ``election_timeout_min_s`` and, by slot alone,
is the one it would pick (the furthest along, the lowest id among equals).
No swarm seed met that moment by chance (mutation sample s14, row 14), so it
is built where the operator runs (``reconfig``), as an operator's rolling
restart meets it: the leader stops hearing from its clients (their links to
it cut, so its log stands still and every voter reports the same chosen
prefix), then, ``_SETTLE_S`` later, from the voter it would pick by slot
(cut both ways); at the first tick where that voter went unheard past the
bound while another was heard, and the leader still counts it furthest
along, the leader is stopped gracefully (``Node.stop``, as on SIGTERM). It
must hand to the voter it heard. If the leader is lost first (crashed,
paused, deposed), the cuts heal and the moment is tried again at the next
leader, up to ``_UNHEARD_LAST`` of the fault phase.

Contract: it draws only from its own stream (``{seed}:moment-unheard``), and
nothing is drawn unless the operator changes members (``reconfig``), so every
other seed runs exactly as before; a seed where the moment strikes runs
otherwise from there on. It is built at most once a run, nothing strikes
after the heal (``end``), and a cut still open is healed with every other cut
there. Reading a replica's state to aim is the simulator's privilege; the
rule judges only what it sees.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from paxon.protocol.replica import Role
from paxon.sim.network import CLIENT_BASE

if TYPE_CHECKING:
    from paxon.node.node import Node
    from paxon.sim.runtime import RuntimeCluster

# With "crash", this share of the seeds stops the node that leads gracefully
# once (``LeaderStop``), at a drawn share of the fault phase.
_STOP_LEADER = 0.3
_STOP_LEADER_AT = (0.2, 0.7)
_STOP_LEADER_UNTIL = 0.9
_STOP_LEADER_RETRY_S = 0.05
# No swarm seed a test pins (0-23, 30-32, 40, 46, 85, 86, 97, 100-102, 108,
# 109, 115, 146, 172, 200, 5049, 5090) draws the stop with this stream.
_STOP_LEADER_STREAM = 48767

# Share of the seeds with the operator where the moment is built, and the
# window of the fault phase its first try draws from.
UNHEARD_SHARE = 0.5
_UNHEARD_AT = (0.05, 0.3)
# It strikes at the first tick a leader may hand over, up to this share of the phase.
_UNHEARD_LAST = 0.85
# From the clients' cut to the voter's: in-flight commands are chosen and
# every voter has reported the last of them.
_SETTLE_S = 0.15
# How long the leader is watched for the moment, once the voter is cut off.
_UNHEARD_WAIT_S = 1.5
# How long the voter stays cut off once the leader stops (past the transfer's
# own limit, election_timeout_max_s, with the defaults).
_UNHEARD_HOLD_S = 1.0
# A margin for two readings of one clock (as the rule's checker keeps).
_EPSILON_S = 1e-6


class LeaderStop:
    """The graceful stop aimed at the leader (module docstring), for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self._rng = random.Random(f"{seed}:stop-leader-{_STOP_LEADER_STREAM}")
        # Counted for the tests: leaders stopped with another voter to hand
        # over to, and with none.
        self.stopped = 0
        self.lone_stopped = 0

    def start(self) -> None:
        """Perhaps plan the stop (drawn from this stream, only with crash faults)."""
        config = self._cluster.config
        if "crash" in config.faults and self._rng.random() < _STOP_LEADER:
            at = self._rng.uniform(*_STOP_LEADER_AT) * config.fault_phase_s
            self._cluster.push(at, self._stop_leader)

    def _stop_leader(self) -> None:
        cluster = self._cluster
        if cluster.healed_at is not None:
            return
        leaders = [
            host
            for host in cluster.hosts.values()
            if host.process
            and host.process.started
            and not host.process.stopping
            and host.paused_until <= cluster.time
            and (node := cluster.node_of(host)) is not None
            and node.is_leader
        ]
        if not leaders:
            if cluster.time < _STOP_LEADER_UNTIL * cluster.config.fault_phase_s:
                cluster.later(_STOP_LEADER_RETRY_S, self._stop_leader)
            return
        host = leaders[0]
        node = cluster.node_of(host)
        assert node is not None
        if node._replica._transfer_targets():
            self.stopped += 1
        else:  # no other voter: it stops without a handover
            self.lone_stopped += 1
        cluster.log(f"fault: a graceful stop aimed at leader n{host.node_id}")
        cluster.stop_gracefully(host)


class UnheardMoment:
    """The moment of the module docstring, for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self._rng = random.Random(f"{seed}:moment-unheard")
        self.active = "reconfig" in cluster.config.faults
        self._last = 0.0
        self._cuts: list[int] = []
        # What it built, for the trace and the tests.
        self.leader: int | None = None
        self.unheard: int | None = None
        self.built = False

    def start(self) -> None:
        """Perhaps plan the moment's first try (drawn from this module's stream)."""
        cluster = self._cluster
        if not self.active or self._rng.random() >= UNHEARD_SHARE:
            return
        phase = cluster.config.fault_phase_s
        at = self._rng.uniform(*_UNHEARD_AT) * phase
        self._last = _UNHEARD_LAST * phase
        cluster.push(at, self._strike)

    def end(self) -> None:
        """The heal: nothing more is cut (the cuts heal with every other)."""
        self.active = False

    def _running(self, node: Node) -> list[int]:
        """The voters ``node`` may hand to that run, unpaused."""
        cluster = self._cluster
        return [
            peer
            for peer in _eligible(node)
            if cluster.node(peer) is not None and cluster.hosts[peer].paused_until <= cluster.time
        ]

    def _heal(self) -> None:
        for cut_id in self._cuts:
            self._cluster.network.heal(cut_id)
        self._cuts.clear()

    def _again(self) -> None:
        """The moment fell through (the leader lost, crashed, paused): heal, try again."""
        self._heal()
        self._cluster.later(config_tick(self._cluster), self._strike)

    def _strike(self) -> None:
        cluster = self._cluster
        if not self.active or self.built or cluster.time > self._last:
            return
        leader = cluster.leader()
        node = cluster.node(leader) if leader is not None else None
        host = cluster.hosts[leader] if leader is not None else None
        if (
            leader is None
            or node is None
            or host is None
            or host.process is None
            or host.process.stopping
            or host.paused_until > cluster.time
            or len(self._running(node)) < 2
        ):
            cluster.later(config_tick(cluster), self._strike)  # no leader to aim at yet
            return
        self.leader = leader
        config = cluster.config
        ends = config.clients + 1 + config.lease_clients + config.lock_clients
        clients = range(CLIENT_BASE, CLIENT_BASE + ends + 2 * config.watch_clients + 8)
        self._cuts.append(cluster.network.cut({(client, leader) for client in clients}))
        cluster.log(f"fault: n{leader}'s clients cannot reach it (aimed: an unheard voter)")
        cluster.later(_SETTLE_S, lambda: self._cut_voter(leader, node))

    def _cut_voter(self, leader: int, node: Node) -> None:
        cluster = self._cluster
        replica = node._replica
        eligible = _eligible(node)
        if not self.active or cluster.node(leader) is not node or len(eligible) < 2:
            self._again()
            return
        voter = max(eligible, key=lambda p: (replica._peer_slot_chosen.get(p, -1), -p))
        self.unheard = voter
        self._cuts.append(cluster.network.cut({(voter, leader), (leader, voter)}))
        cluster.log(f"fault: n{leader} and n{voter} cut apart (aimed: an unheard voter)")
        until = cluster.time + _UNHEARD_WAIT_S
        cluster.later(config_tick(cluster), lambda: self._watch(leader, node, until))

    def _watch(self, leader: int, node: Node, until: float) -> None:
        cluster = self._cluster
        if not self.active or cluster.node(leader) is not node or cluster.time > until:
            self._again()
            return
        if self._moment(node):
            host = cluster.hosts[leader]
            process = host.process
            if process is not None and not process.stopping:
                self.built = True
                cluster.stop_gracefully(host)
                cluster.later(_UNHEARD_HOLD_S, self._heal)
                return
        cluster.later(config_tick(cluster), lambda: self._watch(leader, node, until))

    def _moment(self, node: Node) -> bool:
        """Whether the leader heard a voter it may hand to within the bound, and
        the one it would pick by slot alone went unheard past it."""
        replica = node._replica
        if replica.role is not Role.LEADER or replica.transferring_to is not None:
            return False
        eligible = _eligible(node)
        if len(eligible) < 2:
            return False
        recent = replica.now - replica.config.election_timeout_min_s
        seen = replica._peer_seen_at
        best = max(eligible, key=lambda p: (replica._peer_slot_chosen.get(p, -1), -p))
        heard = [p for p in eligible if seen.get(p, float("-inf")) >= recent + _EPSILON_S]
        return bool(heard) and seen.get(best, float("-inf")) < recent - _EPSILON_S


def _eligible(node: Node) -> list[int]:
    """The voters ``node`` may hand leadership to (now and in its newest configuration)."""
    replica = node._replica
    voters = replica.configuration.voters & replica.configuration_newest.voters
    return sorted(voters - {replica.node_id})


def config_tick(cluster: RuntimeCluster) -> float:
    """How often a moment's watch looks: a node's tick."""
    return cluster.config.tick_s


__all__ = ["UNHEARD_SHARE", "LeaderStop", "UnheardMoment"]
