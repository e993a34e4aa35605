"""The runtime engine's membership workload: drawn actions, and one seed end to end."""

from __future__ import annotations

import random

import pytest

from paxon.net.client_messages import ChangeMembers, ClientResponse, Failure, StatusReply
from paxon.protocol.membership import Configuration, Member
from paxon.sim import SimConfig, run_seed
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
    cluster = RuntimeCluster(0, config)
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


@pytest.mark.sim
@pytest.mark.xfail(
    strict=True,
    reason="a spare's --peers make it a voter of its own first configuration: added as a "
    "voter, restarted with its chosen prefix at 0, it stands and promises itself before "
    "it has read the log (promise-non-voter; reported to the lead, not fixed here)",
)
def test_a_spare_restarted_behind_its_addition_does_not_stand_on_its_peers_guess() -> None:
    result = run_seed(11, SimConfig(nodes=3, spares=2))  # 63 too (115 before members moved)
    assert result.ok, result.violations[:3]


@pytest.mark.sim
@pytest.mark.xfail(
    strict=True,
    reason="a candidate behind the log installs a snapshot whose configuration drops a "
    "voter that granted its probe, then prepares again on the old probe's grants "
    "(probe-quorum, swarm seed 172; protocol/, reported to the lead)",
)
def test_a_candidate_prepares_again_only_with_a_probe_quorum_of_its_new_configuration() -> None:
    result = run_seed(172, SimConfig(nodes=0, swarm=True))
    assert result.ok, result.violations[:3]
