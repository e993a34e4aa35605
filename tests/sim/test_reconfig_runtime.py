"""The runtime engine's membership workload: drawn actions, and one seed end to end."""

from __future__ import annotations

import random

from paxon.protocol.membership import Configuration, Member
from paxon.sim import SimConfig
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
