"""Prometheus metrics of one node.

Each ``NodeMetrics`` owns its own ``CollectorRegistry``, so several nodes can
live in one process (tests, the simulator, ``paxon dev`` in one interpreter)
without their series clashing. There is no ``node`` label: one registry is one
node, and Prometheus adds the ``instance`` label when it scrapes.

The node runtime updates the prometheus_client objects directly
(``metrics.commits.inc()``, ``metrics.slot_chosen.set(n)``); ``render`` gives
the body and content type that ``GET /metrics`` serves.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

FSYNC_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
"""From 0.1 ms (a fast NVMe write cache) to 1 s (a disk in trouble)."""

COMMIT_BUCKETS_S = (*FSYNC_BUCKETS_S, 2.5, 5.0, 10.0)
"""Fsync buckets plus the slow tail up to the default client timeout of 10 s."""


class NodeMetrics:
    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry

        self.proposals = Counter(
            "paxon_proposals", "Client commands proposed by this node.", registry=registry
        )
        self.commits = Counter(
            "paxon_commits", "Client commands applied (chosen and executed).", registry=registry
        )
        self.slots_chosen = Counter(
            "paxon_slots_chosen", "Log slots this node learned as chosen.", registry=registry
        )
        self.elections = Counter(
            "paxon_elections", "Times this node started phase 1.", registry=registry
        )
        self.leader_changes = Counter(
            "paxon_leader_changes", "Times this node saw the leader change.", registry=registry
        )
        self.bad_frames = Counter(
            "paxon_bad_frames", "Frames rejected at the network edge.", registry=registry
        )
        self.handshakes_refused = Counter(
            "paxon_handshakes_refused",
            "Connections refused in their handshake (wrong cluster, id, certificate or proof).",
            registry=registry,
        )
        self.incarnations_refused = Counter(
            "paxon_incarnations_refused",
            "Peer handshakes refused for naming another data directory incarnation than "
            "the one the newest configuration binds (a wiped member back under its id).",
            registry=registry,
        )
        self.connections_refused = Counter(
            "paxon_connections_refused",
            "Connections closed at once for being over a connection bound.",
            registry=registry,
        )
        self.requests_refused = Counter(
            "paxon_requests_refused",
            "Client requests answered 'busy' for being over the in-flight bound.",
            registry=registry,
        )
        self.snapshots_refused = Counter(
            "paxon_snapshots_refused",
            "Snapshot chunks or whole snapshots ignored (not from the leader, not asked "
            "for, undecodable, too large), by reason.",
            ["reason"],
            registry=registry,
        )
        self.core_refused = Counter(
            "paxon_core_refused",
            "Messages the protocol core ignored as out of bounds (not from a member, a "
            "ballot the wire cannot carry, a slot past the window, an unasked Learn), by reason.",
            ["reason"],
            registry=registry,
        )
        self._core_seen: dict[str, int] = {}
        self._network_seen: dict[str, int] = {}
        self.snapshot_failures = Counter(
            "paxon_snapshot_failures",
            "Snapshots of the state machine that could not be written.",
            registry=registry,
        )

        self.fsync_seconds = Histogram(
            "paxon_fsync_seconds",
            "Duration of one write-ahead log fsync.",
            buckets=FSYNC_BUCKETS_S,
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "paxon_commit_seconds",
            "Proposal to reply latency of a client command on the leader.",
            buckets=COMMIT_BUCKETS_S,
            registry=registry,
        )

        self.apply_lag = Gauge(
            "paxon_apply_lag_slots", "slot_chosen - slot_applied.", registry=registry
        )
        self.slot_chosen = Gauge(
            "paxon_slot_chosen", "Highest slot this node knows is chosen.", registry=registry
        )
        self.slot_applied = Gauge(
            "paxon_slot_applied", "Highest slot applied to the state machine.", registry=registry
        )
        self.log_start = Gauge(
            "paxon_log_start", "First slot still held in the log.", registry=registry
        )
        self.ballot_round = Gauge(
            "paxon_ballot_round", "Round of the highest ballot this node knows.", registry=registry
        )
        self.is_leader = Gauge(
            "paxon_is_leader", "1 while this node is the leader, else 0.", registry=registry
        )
        self.kv_revision = Gauge(
            "paxon_kv_revision",
            "The key-value store's revision as this node applied it.",
            registry=registry,
        )
        self.kv_revision_compacted = Gauge(
            "paxon_kv_revision_compacted",
            "The oldest revision a read can still ask for (history before it is cut).",
            registry=registry,
        )
        self.peer_reachable = Gauge(
            "paxon_peer_reachable",
            "1 while the link to the peer is up, else 0.",
            ["peer"],
            registry=registry,
        )

    def observe_network(self, totals: dict[str, int]) -> None:
        """Advance the network counters to the transport's running totals."""
        for name, total in totals.items():
            counter: Counter = getattr(self, name)
            seen = self._network_seen.get(name, 0)
            if total > seen:
                counter.inc(total - seen)
                self._network_seen[name] = total

    def observe_core(self, totals: dict[str, int]) -> None:
        """Advance the core's refusal counters to its running totals (which restart
        at zero with the process, as a Prometheus counter does)."""
        for reason, total in totals.items():
            seen = self._core_seen.get(reason, 0)
            if total > seen:
                self.core_refused.labels(reason=reason).inc(total - seen)
                self._core_seen[reason] = total

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of this node, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
