"""Scripted simulator scenarios: determinism, partial partitions, heal, crashes."""

from __future__ import annotations

from paxon.sim import SimCluster, SimConfig, run_seed

QUIET = SimConfig(nodes=3, faults=frozenset(), fault_phase_s=2.0, heal_phase_s=8.0)


def test_a_seed_replays_exactly() -> None:
    first = run_seed(11, SimConfig(nodes=3), trace=True)
    again = run_seed(11, SimConfig(nodes=3), trace=True)
    assert first.trace == again.trace
    assert (first.steps, first.commands_chosen, first.leader_changes) == (
        again.steps,
        again.commands_chosen,
        again.leader_changes,
    )


def test_different_seeds_differ() -> None:
    assert run_seed(1, SimConfig(nodes=3)).steps != run_seed(2, SimConfig(nodes=3)).steps


def _stable_leader_under_cut(asymmetric: bool) -> tuple[SimCluster, int]:
    cluster = SimCluster(5, QUIET)
    state: dict[str, int] = {}

    def cut(cluster: SimCluster) -> None:
        leader = cluster.leader()
        assert leader is not None
        follower = next(node for node in cluster.members if node != leader)
        links = {(leader, follower)} if asymmetric else {(leader, follower), (follower, leader)}
        cluster.network.cut(links)
        state["leader"] = leader
        state["changes"] = cluster.stats.leader_changes
        state["ops"] = cluster.stats.ops_completed

    cluster.at(1.0, cut)
    cluster.run()
    assert not cluster.checker.violations
    assert cluster.stats.ops_completed > state["ops"], "no progress during the partition"
    return cluster, cluster.stats.leader_changes - state["changes"]


def test_partial_partition_does_not_flap_leadership() -> None:
    """One follower cut off from the leader alone cannot depose it."""
    _, changes = _stable_leader_under_cut(asymmetric=False)
    assert changes == 0


def test_asymmetric_partition_does_not_flap_leadership() -> None:
    _, changes = _stable_leader_under_cut(asymmetric=True)
    assert changes == 0


def test_isolated_leader_is_replaced_and_steps_down() -> None:
    cluster = SimCluster(7, QUIET)
    state: dict[str, int] = {}

    def isolate(cluster: SimCluster) -> None:
        leader = cluster.leader()
        assert leader is not None
        others = [node for node in cluster.members if node != leader]
        cluster.network.cut({(leader, o) for o in others} | {(o, leader) for o in others})
        state["old"] = leader

    def check(cluster: SimCluster) -> None:
        new = cluster.leader()
        assert new is not None and new != state["old"]
        old = cluster.nodes[state["old"]].replica
        assert old.role.value == "follower", "the cut-off leader kept leading"

    cluster.at(1.0, isolate)
    cluster.at(4.0, check)
    cluster.run()
    assert not cluster.checker.violations


def test_whole_cluster_power_cut_recovers_everything_chosen() -> None:
    cluster = SimCluster(3, QUIET)
    chosen_before: dict[str, int] = {}

    def power_cut(cluster: SimCluster) -> None:
        chosen_before["slots"] = len(cluster.checker.chosen)
        for node_id in cluster.members:
            cluster.crash(node_id)

    cluster.at(1.5, power_cut)
    cluster.run()
    assert chosen_before["slots"] > 10
    assert not cluster.checker.violations
    for node in cluster.nodes.values():
        assert node.replica.slot_applied >= chosen_before["slots"]


def test_quiet_run_commits_steadily_with_one_leader() -> None:
    result = run_seed(1, QUIET)
    assert result.ok
    assert result.leader_changes == 1
    assert result.ops_completed == result.ops_total or result.ops_total - result.ops_completed <= 3
    assert result.commands_chosen > 100
