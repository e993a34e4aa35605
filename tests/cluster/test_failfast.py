"""Real processes: a follower does not hold an HTTP request for a leader it
cannot hear (``paxon.node.failfast``, issue 12).

The leader is paused (SIGSTOP) right after a follower took a write over HTTP
and forwarded it: the follower's tick notices the leader gone silent (0.3 s)
and answers 503 ``leader_unreachable`` naming the paused leader, instead of
waiting on the stopped process until its own client moves on. Then the other
two elect a leader and the same follower serves writes again. No duration is
asserted: only which answer comes (the HTTP client waits up to 20 s).
"""

from __future__ import annotations

import threading

import pytest
from tests.cluster.harness import Cluster, HttpAnswer, http_request, own_row

pytestmark = pytest.mark.cluster


def test_a_follower_answers_503_for_a_paused_leader_then_serves_through_the_next(
    cluster: Cluster,
) -> None:
    leader = cluster.wait_for_leader()
    follower = cluster.node(next(n.node_id for n in cluster.nodes if n.node_id != leader))
    warm = http_request(follower.http, "PUT", "/v1/kv/warm", b"1")
    assert warm.status == 200, warm.body  # the forwarding link to the leader is up

    answers: list[HttpAnswer | BaseException] = []

    def write() -> None:
        try:
            answers.append(http_request(follower.http, "PUT", "/v1/kv/during", b"x"))
        except BaseException as error:  # reported below, with the node logs
            answers.append(error)

    cluster.node(leader).pause()  # the write below is forwarded to it at once
    writer = threading.Thread(target=write)
    writer.start()
    writer.join(30.0)
    assert answers, "the write got no answer at all"
    answer = answers[0]
    assert isinstance(answer, HttpAnswer), f"{answer!r}\n{cluster.describe()}"
    assert answer.status == 503, (answer.status, answer.body)
    body = answer.json()
    assert body["code"] == "leader_unreachable" and body["leader"] == leader, body

    cluster.wait_for_leader(15.0, not_in=[leader])

    def served() -> bool | None:
        again = http_request(follower.http, "PUT", "/v1/kv/after", b"y")
        return True if again.status == 200 else None

    cluster.wait_until(served, 15.0, "the follower to serve through the new leader")
    cluster.node(leader).resume()

    def stepped_down() -> bool | None:
        view = cluster.node(leader).status()
        return True if view is not None and own_row(view)["role"] == "follower" else None

    cluster.wait_until(stepped_down, 15.0, f"node {leader} to step down")
