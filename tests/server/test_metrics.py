"""NodeMetrics: each node has its own registry; updates show in the rendered text;
the process, GC and build series are there; native answers count by operation."""

from __future__ import annotations

import platform

from prometheus_client.parser import text_string_to_metric_families

import paxon
from paxon.kv.codec import encode_command, encode_query, encode_result
from paxon.kv.model import ErrorResult, Get, Put, PutResult
from paxon.net.client_messages import (
    Authenticate,
    Failure,
    Query,
    Redirect,
    Reply,
    StatusReply,
    StatusRequest,
    Submit,
)
from paxon.node.metrics import NodeMetrics

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


def test_build_process_and_gc_series_are_exported() -> None:
    got = samples(NodeMetrics(node_id=1))
    names = {name for name, _ in got}
    build = [labels for name, labels in got if name == "paxon_build_info"]
    assert len(build) == 1 and dict(build[0])["version"] == paxon.__version__
    assert dict(build[0])["python"] == platform.python_version()
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert {"python_gc_collections_total", "python_info"} <= names


def test_native_answers_count_by_operation_with_errors_by_code() -> None:
    metrics = NodeMetrics(node_id=1)
    put = Submit(1, 9, 1, encode_command(Put("k", b"v")))
    get = Query(2, encode_query(Get("k")), True)
    metrics.observe_native(put, Reply(1, encode_result(PutResult(True, 4, 1))), 0.003)
    metrics.observe_native(put, Redirect(1, 2, "127.0.0.1:7002"), 0.0001)
    metrics.observe_native(get, Failure(2, "busy", "full"), 0.0001)
    lost = Reply(2, encode_result(ErrorResult("lease_not_found", "gone")))
    metrics.observe_native(get, lost, 0.0002)
    metrics.observe_native(StatusRequest(3), StatusReply(3, {}), 0.0001)

    got = samples(metrics)

    def value(name: str, **labels: str) -> float:
        return got.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("paxon_requests_total", api="native", op="put") == 2
    assert value("paxon_requests_total", api="native", op="get") == 2
    assert value("paxon_requests_total", api="native", op="status") == 1
    assert value("paxon_request_errors_total", api="native", op="put", code="redirect") == 1
    assert value("paxon_request_errors_total", api="native", op="get", code="busy") == 1
    assert value("paxon_request_errors_total", api="native", op="get", code="lease_not_found") == 1
    assert value("paxon_request_errors_total", api="native", op="status", code="redirect") == 0
    assert value("paxon_request_seconds_count", api="native", op="put") == 2
    assert value("paxon_request_seconds_bucket", api="native", op="put", le="0.001") == 1
    assert value("paxon_request_seconds_bucket", api="native", op="put", le="0.005") == 2


def test_http_methods_outside_the_known_ones_share_one_label() -> None:
    metrics = NodeMetrics(node_id=1)
    for method in ("PUT", "PUT", "PROPFIND", "MKCOL", "GET"):
        metrics.observe_http("other", method, 405, 0.001)
    got = samples(metrics)
    methods = {
        dict(labels)["method"]: value
        for (name, labels), value in got.items()
        if name == "paxon_http_requests_total"
    }
    assert methods == {"PUT": 2.0, "other": 2.0, "GET": 1.0}


def test_a_reply_sent_without_its_reply_object_counts_as_one_sent_with_it() -> None:
    """``observe_native_reply`` (``ClientConnection.reply``) counts as ``observe_native``
    of the same ``Reply``: operation, error code of the reply, latency bucket."""
    put = Submit(1, 7, 1, encode_command(Put("k", b"v")))
    answers = [
        (put, encode_result(PutResult(True, 4, 1)), 0.003),
        (put, encode_result(ErrorResult("lease_not_found", "gone")), 0.0002),
        (Authenticate(2, "ann", "secret"), b"a token", 0.02),
    ]
    with_object, without = NodeMetrics(node_id=1), NodeMetrics(node_id=1)
    for request, payload, seconds in answers:
        with_object.observe_native(request, Reply(request.request_id, payload), seconds)
        without.observe_native_reply(request, payload, seconds)

    def counted(metrics: NodeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            key: value
            for key, value in samples(metrics).items()
            if key[0].startswith("paxon_request") and not key[0].endswith("_created")
        }

    expected, got = counted(with_object), counted(without)
    assert got == expected
    assert (
        expected[
            (
                "paxon_request_errors_total",
                (("api", "native"), ("code", "lease_not_found"), ("op", "put")),
            )
        ]
        == 1
    )
