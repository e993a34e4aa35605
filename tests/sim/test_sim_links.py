"""The runtime simulator's peer links follow membership as the real transport's do.

A message goes from A to B only while each names the other as a peer
(``SimTransport.set_peers``, ``RuntimeCluster.link_up``): what would have hidden
a removed leader hanging up before it handed over, had the simulator ignored it.
"""

from __future__ import annotations

from collections import Counter

import pytest

from paxon.net.peer_messages import PeerMessage
from paxon.node.node import Node
from paxon.protocol.messages import TimeoutNow
from paxon.sim import SimConfig, bare_reign, moments, run_seed
from paxon.sim.host import SimTransport
from paxon.sim.runtime import RuntimeCluster

QUIET = SimConfig(nodes=3, faults=frozenset(), fault_phase_s=2.0, heal_phase_s=6.0)


def _transport(cluster: RuntimeCluster, node_id: int) -> SimTransport:
    node = cluster.node(node_id)
    assert node is not None
    transport = node._transport
    assert isinstance(transport, SimTransport)
    return transport


def _count_arrivals(transport: SimTransport) -> Counter[int]:
    """Counts, by sender, the peer messages that reach ``transport``'s node from now on."""
    arrived: Counter[int] = Counter()
    handle = transport.on_peer_message

    def on_peer_message(message: PeerMessage) -> None:
        arrived[message.src] += 1
        handle(message)

    transport.on_peer_message = on_peer_message
    return arrived


def test_no_message_passes_between_nodes_that_are_not_each_others_peers() -> None:
    cluster = RuntimeCluster(0, QUIET)
    cluster.start()
    cluster.run_until(1.0)
    leader = cluster.leader()
    assert leader is not None
    follower, other = (m for m in (1, 2, 3) if m != leader)
    at_leader, at_follower = _transport(cluster, leader), _transport(cluster, follower)
    from_follower, from_leader = _count_arrivals(at_leader), _count_arrivals(at_follower)
    at_other = _count_arrivals(_transport(cluster, other))
    dropped_before = at_leader.stats().dropped_sends
    addresses = {member: ("sim", member) for member in (1, 2, 3)}

    # The leader hangs up on the follower: no link, either way (the follower
    # still names the leader, as a member that has not heard of a change yet).
    at_leader.set_peers({m: a for m, a in addresses.items() if m != follower})
    cluster.run_until(1.3)
    assert from_leader[leader] == 0 and from_follower[follower] == 0
    assert at_other[leader] > 0  # the leader's other link stays up
    assert at_leader.stats().dropped_sends > dropped_before  # dropped and counted
    assert not at_leader.reachable(follower) and not at_follower.reachable(leader)

    # Named again: the link is back, and messages flow both ways.
    at_leader.set_peers(addresses)
    cluster.run_until(1.6)
    assert from_leader[leader] > 0 and from_follower[follower] > 0
    assert at_leader.reachable(follower) and at_follower.reachable(leader)
    cluster.close()
    assert not cluster.checker.violations, cluster.checker.violations[:3]


def test_a_message_sent_before_its_receiver_relinked_is_lost() -> None:
    # A new connection never carries an old one's bytes: a message that left
    # before the receiver hung up and linked again does not arrive.
    cluster = RuntimeCluster(0, QUIET)
    cluster.start()
    cluster.run_until(1.0)
    leader = cluster.leader()
    assert leader is not None
    follower = next(m for m in (1, 2, 3) if m != leader)
    at_follower = _transport(cluster, follower)
    heard: list[PeerMessage] = []
    deliver = at_follower.on_peer_message
    at_follower.on_peer_message = heard.append
    cluster.run_until(1.2)
    message = next(m for m in reversed(heard) if m.src == leader)
    heard.clear()
    sent = cluster._link_stamp
    addresses = {member: ("sim", member) for member in (1, 2, 3)}
    at_follower.set_peers({m: a for m, a in addresses.items() if m != leader})
    at_follower.set_peers(addresses)
    cluster.deliver_peer(leader, message, sent)
    cluster.run_until(cluster.time + 0.0001)
    assert not any(m is message for m in heard)  # came over the link it hung up
    cluster.deliver_peer(leader, message, cluster._link_stamp)
    cluster.run_until(cluster.time + 0.0001)
    assert any(m is message for m in heard)  # sent over the link up now
    at_follower.on_peer_message = deliver
    cluster.close()


def test_a_spare_outside_the_configuration_reaches_no_member() -> None:
    # The members' peer maps do not name a spare until it is added: the real
    # transport refuses its handshake and never dials it.
    config = SimConfig(nodes=3, spares=2, faults=frozenset(), fault_phase_s=2.0, heal_phase_s=6.0)
    cluster = RuntimeCluster(0, config)
    cluster.start()
    cluster.run_until(0.5)
    arrivals = {m: _count_arrivals(_transport(cluster, m)) for m in (1, 2, 3, 4, 5)}
    cluster.run_until(3.0)
    for member in (1, 2, 3):
        assert arrivals[member][4] == arrivals[member][5] == 0, arrivals[member]
        assert not _transport(cluster, member).reachable(4)
    assert sum(arrivals[4].values()) == sum(arrivals[5].values()) == 0
    assert _transport(cluster, 4).has_peer(1)  # its --peers name the first members
    assert _transport(cluster, 4).stats().dropped_sends > 0  # it tried: not vacuous
    cluster.close()


_handovers: list[int] = []  # one per TimeoutNow a removed leader sent


class _CountsHandovers(Node):
    """Counts the ``TimeoutNow`` a removed leader sends: its handover."""

    def _send(self, message: PeerMessage) -> None:
        if isinstance(message, TimeoutNow) and (
            self.node_id not in self._replica.configuration_newest.ids
        ):
            _handovers.append(self.node_id)
        super()._send(message)


class _HangsUpAtOnce(_CountsHandovers):
    """The planted bug: links to departed members go at once, without ``LEAVING_LINK_S``."""

    def _set_transport_peers(self) -> None:
        self._transport.set_peers({m: a for m, a in self.addresses.items() if m != self.node_id})


@pytest.mark.sim
@pytest.mark.mutation
def test_a_removed_leader_hands_over_only_while_its_links_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Runtime swarm seed 146 removes its leader. With the grace it hands over;
    # hanging up at once loses the new voters' replies and it never does (the
    # old SimTransport ignored set_peers and let it hand over all the same).
    # The new voters elect a leader after a timeout, so only the handover's
    # own rule, removed-hands-over, names it, with links-follow (the links
    # are not what the node says it keeps). The seed was found before the
    # aimed unheard voter (``moments``), which now stops its leader early: off
    # here, so the seed runs as it did.
    monkeypatch.setattr(moments, "UNHEARD_SHARE", 0.0)
    config = SimConfig(nodes=0, swarm=True)
    handovers, rules = [], []
    for node_class in (_CountsHandovers, _HangsUpAtOnce):
        _handovers.clear()
        result = run_seed(146, config, node_class=node_class)
        handovers.append(len(_handovers))
        rules.append({violation.split(": ")[0].split()[-1] for violation in result.violations})
    assert handovers[0] > 0 and handovers[1] == 0, handovers
    assert rules == [set(), {"removed-hands-over", "links-follow"}], rules


def test_a_restarted_member_keeps_a_link_to_a_member_its_log_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Swarm seed 152 with the bare reign on (``bare_reign.BARE_SHARE`` 1): n1
    chose the removal of n2, the leader, and restarted with it in its log. The
    transport it started with named only the members in effect, so the
    removed leader never heard that n1 knew of its removal, and led on until
    n3's own link to it expired (removed-hands-over, heal-settles). A start
    links for ``LEAVING_LINK_S`` to the members --peers named that the log
    removed, as a running node does when it sees them go."""
    monkeypatch.setattr(bare_reign, "BARE_SHARE", 1.0)
    result = run_seed(152, SimConfig(nodes=0, swarm=True))
    assert not result.violations, result.violations[:3]
