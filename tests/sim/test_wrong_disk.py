"""A node started on another member's data directory is refused
(``paxon.sim.wrong_disk``): the check fires when recovery stops checking the
directory's identity, and stays quiet on the correct code."""

from __future__ import annotations

import pytest

import paxon.storage.recovery
import paxon.storage.segments
from paxon.sim import SimConfig
from paxon.sim.runner import resolve
from paxon.sim.runtime import RuntimeCluster
from paxon.storage.errors import IdentityMismatch

SWARM = SimConfig(nodes=0, swarm=True)
# Swarm seed 4 mixes n4's first segment into n5's directory at 1.08 s.
MIXED_SEED = 4


def _run(seed: int) -> RuntimeCluster:
    cluster = RuntimeCluster(seed, resolve(seed, SWARM))
    cluster.run()
    return cluster


@pytest.mark.sim
def test_another_members_directory_is_refused_at_every_restart_tried() -> None:
    cluster = _run(0)
    assert cluster.wrong_disk.tried >= 1
    assert not cluster.checker.violations, cluster.checker.violations[:3]


@pytest.mark.mutation
def test_recovery_that_skips_the_identity_check_is_named_by_wrong_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mutation s13 #75: Storage.open no longer checks that IDENTITY names this
    node and cluster (about 3 s)."""
    monkeypatch.setattr(paxon.storage.recovery, "check_identity", lambda *args: None)
    cluster = _run(0)
    rules = {violation.rule for violation in cluster.checker.violations}
    assert "wrong-disk" in rules, cluster.checker.violations[:3]


@pytest.mark.mutation
def test_a_segment_of_another_incarnation_accepted_is_named_by_wrong_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mutation s13 #92's effect: a log segment whose header names another
    data directory's incarnation is read as this directory's."""
    check_header = paxon.storage.segments._check_header

    def lenient(data: bytes, path: str, first_lsn: int, incarnation: int) -> object:
        found = check_header(data, path, first_lsn, incarnation)
        return None if isinstance(found, IdentityMismatch) else found

    monkeypatch.setattr(paxon.storage.segments, "_check_header", lenient)
    cluster = _run(MIXED_SEED)
    details = [violation.detail for violation in cluster.checker.violations]
    assert any("holding" in detail for detail in details), details[:3]
