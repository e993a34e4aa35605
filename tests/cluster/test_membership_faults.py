"""Membership changes on real processes under a client load (issue 10, "Real
processes"): grow 3 voters to 5, shrink 5 to 3 removing the leader twice, a
rolling restart of every member without an election timeout, and 3 voters with
2 learners where 2 voters down stop progress.

Every test runs ``MixedLoad`` throughout: its register history must be
linearizable (``paxon.sim.linearizability``) and every put it had acknowledged
must read back, through the cluster and through each remaining member's own
state. Costs are measured on 2 cores shared with a simulator sweep (load
average 6-10), alone and under ``pytest -n 2``.

The tests can fail: with a replica that counts learners toward a majority
(``tests/sim/mutants.py`` ``CountsLearners``, planted in ``protocol/replica.py``)
the 2-voters-down test failed (a write went through); with the SIGTERM handover
taken out of ``Node.stop`` the rolling restart failed (5.1 s without an answer).
Unplanted, the rolling restart found a stopping leader that closed its links
before its promise to the successor was durable (fixed in ``Node._hand_over``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from tests.cluster.harness import HOST, Cluster, ServerNode, free_ports, kill_at_once, own_row
from tests.cluster.workload import MixedLoad

import paxon

pytestmark = pytest.mark.cluster

StartCluster = Callable[..., Cluster]

PROGRESS_TIMEOUT_S = 30.0
# Rolling restart: elections are made slow on purpose, so that a leaderless time
# caused by an election timeout (at least ELECTION_TIMEOUT_MIN_S, by construction)
# stands far above what CPU noise on 2 busy cores makes of a transfer (a round trip).
ELECTION_TIMEOUT_MIN_S = 3.0
SLOW_ELECTIONS = ("--election-timeout-min-s", "3", "--election-timeout-max-s", "4")
# 3 voters, 2 learners: how long "no progress" is watched (default elections:
# 0.3-0.6 s, so a wrongly counted learner would let a leader commit well within it).
STALL_S = 3.0
STALL_CLIENT_TIMEOUT_S = 2.0


# ------------------------------------------------------------------ helpers


def change(cluster: Cluster, action: str, node_id: int, address: str = "") -> dict[str, Any]:
    """One membership change through the running members; the configuration it gives."""
    running = [node.node_id for node in cluster.nodes if node.running]
    with cluster.client(*running) as kv:
        return kv.change_members(action, node_id, address)


def roles(configuration: dict[str, Any]) -> dict[int, str]:
    return {member["id"]: member["role"] for member in configuration["members"]}


def start_learner(cluster: Cluster, node_id: int) -> ServerNode:
    """Adds ``node_id`` as a learner, then starts it (docs/membership.md, steps 1-2)."""
    assert node_id == len(cluster.nodes) + 1
    native, http = free_ports(2)
    configuration = change(cluster, "add-learner", node_id, f"{HOST}:{native}")
    assert roles(configuration)[node_id] == "learner"
    peers = ",".join(
        [f"{node.node_id}={node.endpoint}" for node in cluster.nodes]
        + [f"{node_id}={HOST}:{native}"]
    )
    newcomer = ServerNode(node_id, (HOST, native), (HOST, http), peers, cluster.root)
    cluster.nodes.append(newcomer)
    newcomer.start()
    newcomer.wait_ready(deadline=time.monotonic() + PROGRESS_TIMEOUT_S)
    return newcomer


def leader_of(cluster: Cluster, node_ids: Sequence[int]) -> int | None:
    """The leader of ``node_ids`` if one of them leads and every one answering agrees."""
    views = {i: view for i, view in cluster.views().items() if i in node_ids}
    leaders = [i for i, view in views.items() if own_row(view)["role"] == "leader"]
    if len(leaders) != 1 or len(views) <= len(node_ids) // 2:
        return None
    return leaders[0] if all(view["leader"] == leaders[0] for view in views.values()) else None


def voters_everywhere(cluster: Cluster, node_ids: Sequence[int], voters: set[int]) -> bool:
    """Whether each of ``node_ids`` answers and its newest configuration has ``voters``."""
    views = cluster.views()
    return all(
        node_id in views
        and set(roles(views[node_id]["configuration"])) == voters
        and set(roles(views[node_id]["configuration"]).values()) == {"voter"}
        for node_id in node_ids
    )


def wait_for_log(cluster: Cluster, node: ServerNode, text: str) -> None:
    def logged() -> bool:
        return text in node.log_tail(400)

    cluster.wait_until(logged, PROGRESS_TIMEOUT_S, f"node {node.node_id} to log {text!r}")


def check_every_member(cluster: Cluster, load: MixedLoad, node_ids: Sequence[int]) -> None:
    """Each member caught up holds every acknowledged put in its own state."""
    for node_id in node_ids:
        cluster.wait_caught_up(node_id)
        with cluster.node(node_id).client() as kv:
            load.check_acked(kv, serializable=True)


# ------------------------------------------------------------------ the tests


def test_grow_three_to_five_under_load(start_cluster: StartCluster) -> None:
    """Two learners added, started, caught up and promoted one at a time while the
    clients write; then five voters, all holding everything. 6-14 s."""
    cluster = start_cluster(3)
    with MixedLoad(cluster.endpoints) as load:
        load.wait_progress(40, PROGRESS_TIMEOUT_S, "before growing", cluster.describe())
        for node_id in (4, 5):
            newcomer = start_learner(cluster, node_id)
            load.wait_progress(20, PROGRESS_TIMEOUT_S, f"with learner {node_id}")
            cluster.wait_caught_up(node_id)
            assert own_row(newcomer.status() or {})["role"] == "learner"
            configuration = change(cluster, "promote", node_id)
            assert roles(configuration)[node_id] == "voter"
            load.wait_progress(20, PROGRESS_TIMEOUT_S, f"after promoting {node_id}")
        cluster.size = 5
        everyone = [1, 2, 3, 4, 5]
        cluster.wait_until(
            lambda: voters_everywhere(cluster, everyone, set(everyone)),
            PROGRESS_TIMEOUT_S,
            "five voters in every member's configuration",
        )
        load.wait_progress(40, PROGRESS_TIMEOUT_S, "with five voters", cluster.describe())
        with cluster.client() as kv:
            print(load.finish(kv))
    check_every_member(cluster, load, everyone)


def test_shrink_five_to_three_removing_the_leader_under_load(start_cluster: StartCluster) -> None:
    """The leader removed, twice, while the clients write: each one keeps serving
    until its removal is in effect, hands over, says it was removed, and stops
    cleanly; three voters go on with everything. 10-14 s."""
    cluster = start_cluster(5)
    remaining = [1, 2, 3, 4, 5]
    with MixedLoad(cluster.endpoints) as load:
        load.wait_progress(40, PROGRESS_TIMEOUT_S, "before shrinking", cluster.describe())
        for _ in range(2):
            leader = cluster.wait_for_leader()
            configuration = change(cluster, "remove", leader)
            assert leader not in roles(configuration)
            remaining.remove(leader)
            successor = cluster.wait_until(
                lambda: leader_of(cluster, remaining),
                PROGRESS_TIMEOUT_S,
                f"a leader among {remaining}",
            )
            assert successor != leader
            removed = cluster.node(leader)
            wait_for_log(cluster, removed, "this node was removed from the cluster")
            removed.stop()
            load.wait_progress(40, PROGRESS_TIMEOUT_S, f"without node {leader}", cluster.describe())
        cluster.size = 3
        cluster.wait_until(
            lambda: voters_everywhere(cluster, remaining, set(remaining)),
            PROGRESS_TIMEOUT_S,
            f"voters {remaining} in every remaining member's configuration",
        )
        with cluster.client(*remaining) as kv:
            print(load.finish(kv))
    check_every_member(cluster, load, remaining)


def test_rolling_restart_with_leader_transfer_has_no_election_timeout(
    start_cluster: StartCluster,
) -> None:
    """Each member in turn stopped (SIGTERM), restarted and caught up; a leader is
    moved away first: by ``transfer-leader`` the first and third time the member
    to stop leads, by its own SIGTERM handover the second time.

    No election timeout may elapse without a leader. The measure is the longest
    time in which no client operation was answered (a write or a linearizable
    read needs a serving leader), so it bounds the leaderless time from above,
    client retries and CPU noise included. The elections are slowed to 3-4 s:
    a path that waited out an election timeout would leave at least 3 s without
    an answer, while a transfer takes a round trip, so the 3 s bound cannot be
    reached by noise on 2 busy cores unless every client stalls 3 s at once.
    Measured over 20 runs: at most 1.1 s (the 1 s cases are the clients' retry
    backoff; the node logs show the new leader within 10 ms); before the
    handover fix, 4.1 and 5.3 s in 2 of 27 runs. 11-25 s (the first election
    alone takes 3-4 s)."""
    cluster = start_cluster(3, SLOW_ELECTIONS)
    members = [1, 2, 3]
    steps: list[str] = []
    gaps: list[float] = []
    leaders_stopped = 0
    with MixedLoad(cluster.endpoints) as load:
        load.wait_progress(40, PROGRESS_TIMEOUT_S, "before the restarts", cluster.describe())
        restarted: list[int] = []
        while len(restarted) < len(members):
            leader = cluster.wait_for_leader()
            victim = leader if leader not in restarted else min(set(members) - set(restarted))
            node = cluster.node(victim)
            began = time.monotonic()
            how = "follower"
            if victim == leader:
                leaders_stopped += 1
                if leaders_stopped == 2:
                    how = "SIGTERM handover"
                else:
                    how = "transfer-leader"
                    target = max(set(members) - {victim})
                    change(cluster, "transfer-leader", target)  # answers once asked
                    cluster.wait_until(
                        lambda: cluster.leader_id() == target,  # noqa: B023 (called at once)
                        PROGRESS_TIMEOUT_S,
                        f"node {target} to lead",
                    )
            node.stop()
            if how == "SIGTERM handover":
                assert "leadership handed to node" in node.log_tail(400)
            cluster.wait_for_leader(not_in=[victim])
            node.restart()
            cluster.wait_caught_up(victim)
            load.wait_progress(20, PROGRESS_TIMEOUT_S, f"after restarting {victim}")
            gaps.append(load.longest_gap(began, time.monotonic()))
            steps.append(f"node {victim} ({how}): longest time without an answer {gaps[-1]:.3f} s")
            restarted.append(victim)
        with cluster.client() as kv:
            print(load.finish(kv))
    check_every_member(cluster, load, members)
    print("\n".join(steps))
    assert leaders_stopped >= 2, steps
    assert max(gaps) < ELECTION_TIMEOUT_MIN_S, "an election timeout passed:\n" + "\n".join(steps)


def test_two_of_three_voters_down_stop_progress_whatever_the_learners(
    start_cluster: StartCluster,
) -> None:
    """3 voters and 2 learners. Two followers killed: the leader, with both learners
    up, commits nothing; one voter back and writes go on. Then the leader and a
    follower killed: one voter and two learners elect no one and commit nothing;
    one voter back and writes go on. 20-40 s (two 3 s watches, 4 restarts)."""
    cluster = start_cluster(3)
    for node_id in (4, 5):
        start_learner(cluster, node_id)
        cluster.wait_caught_up(node_id)
    voters = [1, 2, 3]
    with MixedLoad(cluster.endpoints, timeout_s=STALL_CLIENT_TIMEOUT_S) as load:
        load.wait_progress(40, PROGRESS_TIMEOUT_S, "before the faults", cluster.describe())

        leader = cluster.wait_for_leader()
        followers = [v for v in voters if v != leader]
        kill_at_once(cluster.node(v) for v in followers)
        watch_no_progress(cluster, load, f"followers {followers} down, leader {leader} up")
        cluster.node(followers[0]).restart()
        load.wait_progress(40, PROGRESS_TIMEOUT_S, f"with node {followers[0]} back")
        cluster.node(followers[1]).restart()
        cluster.wait_caught_up(followers[1])

        leader = cluster.wait_for_leader()
        follower, survivor = (v for v in voters if v != leader)
        kill_at_once([cluster.node(leader), cluster.node(follower)])
        watch_no_progress(cluster, load, f"leader {leader} and node {follower} down")
        cluster.node(follower).restart()
        load.wait_progress(40, PROGRESS_TIMEOUT_S, f"with node {follower} back")
        assert cluster.wait_until(
            lambda: leader_of(cluster, [follower, survivor, 4, 5]),
            PROGRESS_TIMEOUT_S,
            "a leader",
        ) in (follower, survivor)
        cluster.node(leader).restart()
        with cluster.client() as kv:
            print(load.finish(kv))
    check_every_member(cluster, load, [1, 2, 3, 4, 5])


def watch_no_progress(cluster: Cluster, load: MixedLoad, what: str) -> None:
    """For ``STALL_S``: no operation invoked from now on is answered, a direct put
    times out, no learner leads and each stays a learner."""
    down_at = time.monotonic()
    with (
        cluster.client(timeout_s=STALL_CLIENT_TIMEOUT_S) as kv,
        pytest.raises((paxon.Timeout, paxon.Unavailable)),
    ):
        kv.put(f"stalled-{down_at:.3f}", "x")
    while time.monotonic() < down_at + STALL_S:
        for node_id in (4, 5):
            view = cluster.node(node_id).status()
            if view is not None:
                assert own_row(view)["role"] == "learner", f"{what}: {view}"
        time.sleep(0.1)
    answered = load.answered_between(down_at, time.monotonic())
    assert not answered, f"{what}: {len(answered)} operations answered, first {answered[0]}"
