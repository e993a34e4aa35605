"""NodeMetrics: each node has its own registry; updates show in the rendered text."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from paxon.server.metrics import NodeMetrics

METRIC_NAMES = (
    "paxon_proposals_total",
    "paxon_commits_total",
    "paxon_slots_chosen_total",
    "paxon_elections_total",
    "paxon_leader_changes_total",
    "paxon_bad_frames_total",
    "paxon_fsync_seconds_bucket",
    "paxon_commit_seconds_bucket",
    "paxon_apply_lag_slots",
    "paxon_slot_chosen",
    "paxon_slot_applied",
    "paxon_log_start",
    "paxon_ballot_round",
    "paxon_is_leader",
)


def samples(metrics: NodeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_render_lists_every_metric_with_the_prometheus_content_type() -> None:
    body, content_type = NodeMetrics(node_id=1).render()
    text = body.decode()
    for name in METRIC_NAMES:
        assert f"\n{name}" in text, name
    assert content_type.startswith("text/plain")


def test_updates_show_in_the_rendered_text() -> None:
    metrics = NodeMetrics(node_id=1)
    metrics.proposals.inc()
    metrics.commits.inc(3)
    metrics.slot_chosen.set(42)
    metrics.slot_applied.set(40)
    metrics.apply_lag.set(2)
    metrics.is_leader.set(1)
    metrics.peer_reachable.labels(peer="2").set(1)
    metrics.peer_reachable.labels(peer="3").set(0)
    metrics.fsync_seconds.observe(0.0003)
    metrics.commit_seconds.observe(0.004)

    got = samples(metrics)

    assert got[("paxon_proposals_total", ())] == 1
    assert got[("paxon_commits_total", ())] == 3
    assert got[("paxon_slot_chosen", ())] == 42
    assert got[("paxon_slot_applied", ())] == 40
    assert got[("paxon_apply_lag_slots", ())] == 2
    assert got[("paxon_is_leader", ())] == 1
    assert got[("paxon_peer_reachable", (("peer", "2"),))] == 1
    assert got[("paxon_peer_reachable", (("peer", "3"),))] == 0
    assert got[("paxon_fsync_seconds_bucket", (("le", "0.0001"),))] == 0
    assert got[("paxon_fsync_seconds_bucket", (("le", "0.0005"),))] == 1
    assert got[("paxon_fsync_seconds_count", ())] == 1
    assert got[("paxon_commit_seconds_count", ())] == 1


def test_nodes_in_one_process_keep_separate_registries() -> None:
    first, second = NodeMetrics(node_id=1), NodeMetrics(node_id=2)
    first.elections.inc()

    assert samples(first)[("paxon_elections_total", ())] == 1
    assert samples(second)[("paxon_elections_total", ())] == 0


def test_network_counters_follow_the_transport_totals() -> None:
    metrics = NodeMetrics(node_id=1)
    metrics.observe_network({"bad_frames": 2, "handshakes_refused": 1})
    metrics.observe_network({"bad_frames": 5, "handshakes_refused": 1, "requests_refused": 3})
    values = samples(metrics)
    assert values[("paxon_bad_frames_total", ())] == 5
    assert values[("paxon_handshakes_refused_total", ())] == 1
    assert values[("paxon_requests_refused_total", ())] == 3
    assert values[("paxon_connections_refused_total", ())] == 0


def test_core_refusals_by_reason() -> None:
    metrics = NodeMetrics(node_id=1)
    metrics.observe_core({"ignored_non_member": 2, "ignored_bad_ballot": 0})
    metrics.observe_core({"ignored_non_member": 3, "ignored_bad_ballot": 1})
    values = samples(metrics)
    assert values[("paxon_core_refused_total", (("reason", "ignored_non_member"),))] == 3
    assert values[("paxon_core_refused_total", (("reason", "ignored_bad_ballot"),))] == 1
