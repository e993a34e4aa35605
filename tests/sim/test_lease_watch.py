"""Leases in the simulator: the holders' workload, and the watch that no lease
ends by expiry before the bound its holder may count on (``lease-early-expiry``,
``paxon.sim.lease_watch``), with the planted store bugs it must catch
(``LEASE_MUTANTS`` in ``mutants.py``) within a few seeds."""

from __future__ import annotations

import pytest
from tests.sim.mutants import LEASE_MUTANTS, NeverExpires

from paxon.kv.codec import encode_result
from paxon.kv.model import ErrorResult, LeaseGrantResult, LeaseKeepAliveResult, LeaseRevokeResult
from paxon.sim import SimConfig, replay_command, run_seed
from paxon.sim.checkers import Violation
from paxon.sim.lease_watch import LeaseWatch, earliest_expiry_s

# The faults that expose the lease bugs: a leader change (crash) onto a clock
# that reads ahead of the old leader's (drift: offsets of 0 to 100 s).
MUTANT_FAULTS = frozenset({"crash", "drift"})
MAX_SEEDS = 6


def test_the_bound_is_ttl_less_the_drift_and_the_stamp_interval() -> None:
    # TTL * (1 - 0.05) - 0.1 s - 2 ms, from the send of the last renewal applied.
    assert earliest_expiry_s(10.0, 2000) == pytest.approx(10.0 + 1.9 - 0.1 - 0.002)
    assert earliest_expiry_s(0.5, 1000) == pytest.approx(0.5 + 0.95 - 0.102)


def _watch() -> tuple[LeaseWatch, list[Violation]]:
    violations: list[Violation] = []
    return LeaseWatch(violations), violations


def test_an_expiry_before_the_last_applied_renewal_allows_is_named() -> None:
    watch, violations = _watch()
    watch.on_sent((7, 1), "grant", 1.0, ttl_ms=1000)
    watch.on_applied((3, 1), (7, 1), encode_result(LeaseGrantResult(1, 1000)), 0.0)
    watch.on_sent((7, 2), "keep-alive", 1.5)
    watch.on_applied((5, 0), (7, 2), encode_result(LeaseKeepAliveResult(1, 1000)), 0.0)
    # The keep-alive's own ending bound (1.5 + 0.848), not the grant's, applies.
    watch.on_expired(2, 1, (9, 0), 2.2)
    assert [v.rule for v in violations] == ["lease-early-expiry"]
    assert "n2 expired lease 1" in violations[0].detail
    watch.on_expired(3, 1, (9, 0), 2.21)  # the same lease is named once
    assert len(violations) == 1
    assert watch.counts == {"granted": 1, "renewed": 1, "expired": 1, "revoked": 0}


def test_an_expiry_after_the_bound_and_a_revoke_are_fine() -> None:
    watch, violations = _watch()
    watch.on_sent((7, 1), "grant", 1.0, ttl_ms=2000)
    watch.on_applied((3, 0), (7, 1), encode_result(LeaseGrantResult(1, 2000)), 0.0)
    watch.on_sent((7, 2), "keep-alive", 2.0)
    # A keep-alive refused (the lease had gone) renews nothing; one applied
    # after the ending does not count for it either.
    watch.on_applied((4, 0), (7, 2), encode_result(ErrorResult("lease_not_found", "gone")), 0.0)
    watch.on_sent((7, 3), "keep-alive", 2.5)
    watch.on_applied((12, 0), (7, 3), encode_result(LeaseKeepAliveResult(1, 2000)), 0.0)
    watch.on_expired(1, 1, (10, 0), earliest_expiry_s(1.0, 2000))
    watch.on_sent((7, 4), "grant", 3.0, ttl_ms=1000)
    watch.on_applied((13, 0), (7, 4), encode_result(LeaseGrantResult(2, 1000)), 0.0)
    watch.on_sent((7, 5), "revoke", 3.1, lease_id=2)
    watch.on_applied((14, 0), (7, 5), encode_result(LeaseRevokeResult(0, 9)), 0.0)
    assert violations == []
    assert not watch.live(1) and not watch.live(2)
    assert watch.counts["expired"] == 1 and watch.counts["revoked"] == 1


def test_an_abandoned_lease_still_live_past_its_deadline_is_named() -> None:
    watch, violations = _watch()
    watch.on_sent((7, 1), "grant", 1.0, ttl_ms=1000)
    watch.on_applied((3, 0), (7, 1), encode_result(LeaseGrantResult(1, 1000)), 1.01)
    watch.on_sent((7, 2), "grant", 2.0, ttl_ms=2000)
    watch.on_applied((4, 0), (7, 2), encode_result(LeaseGrantResult(2, 2000)), 2.01)
    watch.on_abandoned(1)
    watch.on_abandoned(2)
    watch.on_leader_stamp(9, 5.0)  # a new leader at t=5 renews both to a whole TTL
    watch.finish(6.4, healed_at=4.0)  # lease 1 is due by 5 + 1 + 0.5
    assert violations == []
    watch.finish(6.6, healed_at=4.0)
    assert [v.rule for v in violations] == ["lease-late-expiry"]
    assert "lease 1 " in violations[0].detail  # lease 2 is due by 7.5


@pytest.mark.sim
def test_the_holders_grant_keep_revoke_and_lose_leases_under_faults() -> None:
    """Every path of the workload runs on the real store under all the faults,
    and the watch finds nothing on a correct cluster."""
    totals: dict[str, int] = {}
    config = SimConfig(nodes=3)
    for seed in range(3):
        result = run_seed(seed, config)
        assert result.ok, f"seed {seed}: {result.violations[:3]}\n{replay_command(seed, config)}"
        for name, count in result.leases.items():
            totals[name] = totals.get(name, 0) + count
    for name in ("granted", "renewed", "expired", "revoked", "abandoned"):
        assert totals[name] > 0, totals


@pytest.mark.mutation
@pytest.mark.parametrize("name", sorted(LEASE_MUTANTS))
def test_a_planted_lease_bug_is_caught_within_a_few_seeds(name: str) -> None:
    config = SimConfig(nodes=3, faults=MUTANT_FAULTS)
    for seed in range(MAX_SEEDS):
        result = run_seed(seed, config, store_factory=LEASE_MUTANTS[name])
        if result.violations:
            assert any("lease-early-expiry" in v for v in result.violations), result.violations
            return
    pytest.fail(f"{name} ran {MAX_SEEDS} seeds undetected")


@pytest.mark.mutation
def test_a_store_that_never_expires_is_caught_by_the_liveness_check() -> None:
    config = SimConfig(nodes=3, faults=frozenset({"crash", "partition"}))
    for seed in range(MAX_SEEDS):
        result = run_seed(seed, config, store_factory=lambda _c, _n: NeverExpires())
        if result.violations:
            assert any("lease-late-expiry" in v for v in result.violations), result.violations
            return
    pytest.fail(f"never-expires ran {MAX_SEEDS} seeds undetected")
