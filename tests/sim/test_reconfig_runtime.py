"""The runtime engine's membership workload: drawn actions, and one seed end to end."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from paxon.net.client_messages import (
    ChangeMembers,
    ClientRequest,
    ClientResponse,
    Failure,
    StatusReply,
)
from paxon.protocol.membership import ADDRESS_BYTES_MAX, Configuration, Member
from paxon.sim import SimConfig, moments, run_seed
from paxon.sim.operator import caught_up
from paxon.sim.reconfig import MEMBERS_MIN, VOTERS_MIN, draw_action
from paxon.sim.runtime import RuntimeCluster


def test_draw_action_names_one_change_within_the_limits() -> None:
    rng = random.Random(1)
    seen = set()
    for _ in range(500):
        voters = rng.randint(1, 4)
        learners = rng.randint(0, 2)
        members = [Member(i, "", i <= voters) for i in range(1, voters + learners + 1)]
        newest = Configuration(3, tuple(members))
        drawn = draw_action(rng, newest, range(1, 9), leader=1)
        if drawn is None:
            continue
        action, node_id = drawn
        seen.add(action)
        if action in ("add", "add-learner"):
            assert node_id not in newest.ids
        elif action == "promote":
            assert node_id in newest.learners
        else:
            assert action == "remove" and node_id in newest.ids
            left = [m for m in newest.members if m.node_id != node_id]
            assert len(left) >= MEMBERS_MIN
            assert sum(m.voter for m in left) >= VOTERS_MIN
    assert seen == {"add", "add-learner", "promote", "remove"}


def test_a_runtime_seed_changes_its_members_through_change_members() -> None:
    config = SimConfig(nodes=3, spares=2, faults=frozenset({"reconfig", "drop"}))
    # Seed 1: ten changes made. (Seed 0, since the first leader binds the
    # members' incarnations at the start, loses three requests to drops.)
    cluster = RuntimeCluster(1, config)
    stats = cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    assert cluster.operator.done >= 2 and stats.configs_chosen >= 2
    # Every running node holds the configurations the log made (snapshots v3 included).
    newest = cluster.checker.configs.newest_known_at(cluster.checker.configs.prefix_end)
    for node_id in newest.ids:
        node = cluster.node(node_id)
        if node is not None:
            assert node._replica.configuration_newest.voters == newest.voters


def test_a_change_asked_while_one_is_in_progress_is_busy_and_the_first_is_answered() -> None:
    # Found by the runtime reconfig seeds: the second request's Busy answered
    # the first one "unavailable: the change was not proposed" although it was,
    # and the second one twice.
    cluster = RuntimeCluster(0, SimConfig(nodes=3, spares=2, faults=frozenset()))
    answers: list[tuple[int, object]] = []
    receive = cluster.send_to_client

    def send_to_client(src: int, client: int, response: ClientResponse) -> None:
        if client >= 2000:
            answers.append((client, response))
        else:
            receive(src, client, response)

    cluster.send_to_client = send_to_client  # type: ignore[method-assign]
    cluster.start()
    cluster.run_until(1.0)
    leader = cluster.leader()
    assert leader is not None
    cluster.deliver_request(2000, leader, ChangeMembers(1, "add-learner", 4, "sim:4", ""))
    cluster.deliver_request(2001, leader, ChangeMembers(1, "add-learner", 5, "sim:5", ""))
    cluster.run_until(2.0)
    cluster.close()
    first = [response for client, response in answers if client == 2000]
    second = [response for client, response in answers if client == 2001]
    assert len(first) == 1 and isinstance(first[0], StatusReply), first
    assert len(second) == 1 and isinstance(second[0], Failure), second
    assert second[0].code == "busy"


def test_the_operator_makes_a_voter_only_of_a_node_that_has_caught_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # docs/membership.md: a spare holds its --peers guess, in which it votes,
    # until it reads the change that added it; added as a voter at once it
    # promised itself on the guess (promise-non-voter, runtime swarm seed 115).
    # The seeds were picked before the aimed unheard voter (``moments``), whose
    # graceful stops leave them fewer voters made: off here, they run as then.
    monkeypatch.setattr(moments, "UNHEARD_SHARE", 0.0)
    asked: list[tuple[str, int, bool]] = []
    for seed in range(3):
        cluster = RuntimeCluster(seed, SimConfig(nodes=3, spares=2, faults=frozenset({"reconfig"})))
        deliver = cluster.deliver_request

        def deliver_request(
            src: int,
            dst: int,
            request: ClientRequest,
            cluster: RuntimeCluster = cluster,
            deliver: Callable[[int, int, ClientRequest], None] = deliver,
        ) -> None:
            leader = cluster.leader()
            # A careless operator's mistakes (node 0, a node outside the
            # cluster) are refused and make no voter: they name no host.
            if (
                isinstance(request, ChangeMembers)
                and leader is not None
                and request.node_id in cluster.hosts
            ):
                ready = caught_up(cluster, request.node_id, leader)
                asked.append((request.action, request.node_id, ready))
            deliver(src, dst, request)

        cluster.deliver_request = deliver_request  # type: ignore[method-assign]
        cluster.run()
        assert not cluster.checker.violations, cluster.checker.violations[:3]
    voters_made = [(action, ready) for action, _, ready in asked if action in ("add", "promote")]
    assert len(voters_made) >= 3, asked  # the rule is exercised, not vacuous
    assert all(ready for _, ready in voters_made), asked
    assert any(action == "add-learner" for action, _, _ in asked)


def test_caught_up_needs_the_leaders_configuration_and_its_applied_slots() -> None:
    cluster = RuntimeCluster(0, SimConfig(nodes=3, spares=2, faults=frozenset()))
    cluster.start()
    cluster.run_until(1.0)
    leader = cluster.leader()
    assert leader is not None
    # A spare on its --peers guess (epoch 0, itself a voter) has not caught up.
    assert cluster.node(4) is not None and not caught_up(cluster, 4, leader)
    assert caught_up(cluster, leader, leader)
    operator = cluster.operator.endpoint  # its answer is to no request it asked: ignored
    cluster.deliver_request(operator, leader, ChangeMembers(1, "add-learner", 4, "sim:4", ""))
    cluster.run_until(2.0)
    assert cluster.node(leader)._replica.configuration_newest.learners == {4}  # type: ignore[union-attr]
    assert caught_up(cluster, 4, leader)  # read its addition, applied with the leader
    cluster.close()


@pytest.mark.sim
@pytest.mark.parametrize(
    ("seed", "config"),
    [
        (11, SimConfig(nodes=3, spares=2)),  # spare added as a voter on its guess (63 too)
        (115, SimConfig(nodes=0, swarm=True)),  # the same, in the swarm
        (172, SimConfig(nodes=0, swarm=True)),  # candidate prepared on old grants (fixed on main)
        (85, SimConfig(nodes=0, swarm=True)),  # a removed leader's heartbeats held a probe back
    ],
)
def test_pinned_runtime_reconfig_seeds(seed: int, config: SimConfig) -> None:
    result = run_seed(seed, config)
    assert result.ok, result.violations[:3]


@pytest.mark.sim
def test_a_careless_operator_errs_and_the_nodes_refuse_its_mistakes() -> None:
    # Seeds 1 and 8 draw a careless operator, 2 and 3 a careful one; about 3 s.
    # (0 and 7 draw a careless one too, whose slips need not come in a run.)
    asked: dict[int, list[ChangeMembers]] = {}
    for seed in (1, 2, 3, 8):
        cluster = RuntimeCluster(seed, SimConfig(nodes=3, spares=2, faults=frozenset({"reconfig"})))
        deliver = cluster.deliver_request
        requests = asked[seed] = []

        def deliver_request(
            src: int,
            dst: int,
            request: ClientRequest,
            requests: list[ChangeMembers] = requests,
            deliver: Callable[[int, int, ClientRequest], None] = deliver,
        ) -> None:
            if isinstance(request, ChangeMembers):
                requests.append(request)
            deliver(src, dst, request)

        cluster.deliver_request = deliver_request  # type: ignore[method-assign]
        cluster.run()
        cluster.close()
        assert not cluster.checker.violations, cluster.checker.violations[:3]
        careless = seed in (1, 8)
        assert (cluster.operator._slips is not None) == careless
        assert (cluster.operator.refused > 0) == careless, (seed, cluster.operator.refused)

    def mistakes(seed: int) -> set[str]:
        kinds = set()
        for request in asked[seed]:
            if request.action == "add" and request.node_id == 0:
                kinds.add("node 0")
            if len(request.address.encode()) > ADDRESS_BYTES_MAX:
                kinds.add("long address")
            if request.action == "add-learner-auto-promote":
                kinds.add("auto-promote")
        return kinds

    assert mistakes(1) | mistakes(8) == {"node 0", "long address", "auto-promote"}
    assert not mistakes(2) and not mistakes(3)
