"""``RequestTally`` renders what ``prometheus_client``'s own Counter and Histogram
rendered for the same requests (the series it replaced, for speed)."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from paxon.node.metrics import REQUEST_BUCKETS_S
from paxon.node.request_tally import ERRORS_HELP, REQUESTS_HELP, SECONDS_HELP, RequestTally

OBSERVED: list[tuple[str, str, float, str | None]] = [
    ("native", "put", 0.003, None),
    ("native", "put", 0.001, "redirect"),  # exactly on a bound: counts in le="0.001"
    ("native", "get", 0.0001, "busy"),
    ("http", "put", 20.0, None),  # past the last bound: +Inf only
    ("native", "put", 0.0005, None),
    ("native", "get", 2.5, "busy"),
]


def _without_created_times(text: bytes) -> str:
    return re.sub(r"(_created(\{[^}]*\})?) \S+", r"\1 T", text.decode())


def test_the_tally_renders_as_the_library_metrics_did() -> None:
    reference = CollectorRegistry(auto_describe=True)
    requests = Counter("paxon_requests", REQUESTS_HELP, ["api", "op"], registry=reference)
    errors = Counter("paxon_request_errors", ERRORS_HELP, ["api", "op", "code"], registry=reference)
    seconds = Histogram(
        "paxon_request_seconds",
        SECONDS_HELP,
        ["api", "op"],
        buckets=REQUEST_BUCKETS_S,
        registry=reference,
    )
    tallied = CollectorRegistry(auto_describe=True)
    tally = RequestTally(REQUEST_BUCKETS_S)
    tallied.register(tally)
    for api, op, took_s, code in OBSERVED:
        requests.labels(api, op).inc()
        seconds.labels(api, op).observe(took_s)
        if code is not None:
            errors.labels(api, op, code).inc()
        tally.observe(api, op, took_s, code)

    expected = _without_created_times(generate_latest(reference))
    assert _without_created_times(generate_latest(tallied)) == expected
    assert 'paxon_request_seconds_bucket{api="native",le="0.001",op="put"} 2.0' in expected
