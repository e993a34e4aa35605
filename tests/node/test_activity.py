"""``paxon.node.activity``: per-second samples from a node's metrics, kept in a ring
of at most ``samples_max``; rates and latencies are over each interval only."""

from __future__ import annotations

import pytest

from paxon.node.activity import (
    SAMPLES_MAX,
    ActivityLog,
    Histo,
    Reading,
    own_row,
    read_metrics,
    sample_between,
)
from paxon.node.metrics import NodeMetrics

ROW = {"role": "leader", "ballot": "2.1", "leader": 1, "commit_index": 9, "applied_index": 9}


def test_the_ring_keeps_the_newest_samples_up_to_its_bound() -> None:
    log = ActivityLog(samples_max=3)
    for step in range(5):
        log.add(sample_between(Reading(step, 0, 0), Reading(step + 1, 0, 0), float(step), ROW))
    answer = log.to_json(node_id=4)
    assert [sample["t"] for sample in answer["samples"]] == [2.0, 3.0, 4.0]
    assert answer["node_id"] == 4 and answer["samples_max"] == 3
    assert ActivityLog().samples_max == SAMPLES_MAX
    with pytest.raises(ValueError, match="samples_max"):
        ActivityLog(samples_max=0)


def test_rates_and_latencies_are_over_the_interval() -> None:
    metrics = NodeMetrics(node_id=1)
    metrics.commits.inc(100)  # before the interval: not in the sample
    metrics.commit_seconds.observe(5.0)
    earlier = read_metrics(metrics, at=10.0)
    metrics.commits.inc(30)
    metrics.slots_chosen.inc(6)
    for seconds in (0.002, 0.004):
        metrics.commit_seconds.observe(seconds)
    metrics.observe_request("http", "put", 0.010, None)
    metrics.observe_request("native", "get", 0.030, None)
    later = read_metrics(metrics, at=12.0)
    sample = sample_between(earlier, later, 1234.5, ROW).to_json()
    assert sample["commits"] == 15.0 and sample["slots"] == 3.0  # per second over 2 s
    assert sample["commit_ms"] == pytest.approx(3.0)
    assert sample["request_ms"] == pytest.approx(20.0)  # both apis and ops summed
    assert sample["commit_p99_ms"] is not None and 4.0 <= sample["commit_p99_ms"] < 100.0
    assert sample["t"] == 1234.5 and sample["role"] == "leader" and sample["leader"] == 1


def test_an_interval_without_answers_has_no_latency() -> None:
    quiet = Histo(count=3, total_s=1.0, buckets=((0.1, 3), (float("inf"), 3)))
    sample = sample_between(Reading(0, 5, 5, quiet), Reading(1, 5, 5, quiet), 1.0, ROW).to_json()
    assert sample["commits"] == 0 and sample["commit_ms"] is None
    assert sample["commit_p99_ms"] is None


def test_p99_is_the_bucket_bound_it_falls_in() -> None:
    histo = Histo(100, 1.0, ((0.001, 50), (0.01, 98), (0.1, 100), (float("inf"), 100)))
    assert histo.p99_ms() == 100.0
    beyond = Histo(100, 1.0, ((0.001, 50), (float("inf"), 100)))
    assert beyond.p99_ms() is None  # past the last finite bucket: unknown


def test_own_row_is_this_nodes_row_with_the_leader() -> None:
    status = {"node_id": 2, "leader": 1, "members": [{"id": 1}, {"id": 2, "role": "follower"}]}
    assert own_row(status) == {"id": 2, "role": "follower", "leader": 1}
