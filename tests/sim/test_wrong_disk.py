"""A node started on another member's data directory is refused
(``paxon.sim.wrong_disk``): the check fires when recovery stops checking the
directory's identity, and stays quiet on the correct code."""

from __future__ import annotations

import random

import pytest

import paxon.storage.recovery
import paxon.storage.segments
from paxon.protocol.records import PromiseRecord
from paxon.protocol.types import Ballot
from paxon.sim import SimConfig
from paxon.sim.runner import resolve
from paxon.sim.runtime import RuntimeCluster
from paxon.sim.wrong_disk import WrongDiskCheck
from paxon.storage import MemFileSystem, Storage, StorageConfig
from paxon.storage.errors import IdentityMismatch
from paxon.storage.layout import segment_name
from paxon.storage.segments import SEGMENT_HEADER_BYTES, encode_segment_header

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


class _Always(random.Random):
    """Draws that try every start, mixed, against the first other member."""

    def random(self) -> float:
        return 0.0


def _two_disks(their_segment: bytes | None) -> tuple[dict[int, MemFileSystem], list[int]]:
    """n1 holds one durable promise in segment 1; n2's segment 1 is
    ``their_segment`` (None: as n2 wrote it, with its own promise)."""
    disks: dict[int, MemFileSystem] = {}
    incarnations: list[int] = []
    for node_id in (1, 2):
        fs = MemFileSystem()
        storage = Storage.open(
            f"/node{node_id}",
            node_id=node_id,
            cluster_id="c",
            fs=fs,
            config=StorageConfig(),
            incarnation=100 + node_id,
        )
        storage.append([PromiseRecord(Ballot(3, node_id))])
        storage.sync()
        storage.close()
        disks[node_id] = fs
        incarnations.append(100 + node_id)
    if their_segment is not None:
        disks[2].write_raw(f"/node2/{segment_name(1)}", their_segment)
    return disks, incarnations


def _try(disks: dict[int, MemFileSystem]) -> WrongDiskCheck:
    check = WrongDiskCheck(0, [])
    check._rng = _Always()
    check.on_restart(1, disks, "c", StorageConfig(), 0.0)
    return check


@pytest.mark.sim
def test_the_other_members_whole_segment_is_tried_and_refused() -> None:
    check = _try(_two_disks(None)[0])
    assert check.tried == 1
    assert not check.violations, check.violations


@pytest.mark.sim
def test_a_header_torn_in_the_others_creation_is_not_tried() -> None:
    """Swarm seed 2002326: n5's power failed while it wrote its first
    segment's header, leaving magic, version and lsn, then zeros. Those bytes
    are n4's own header cut short too, so nothing could tell the restored file
    from n4's own torn creation: the check must not try it."""
    header = encode_segment_header(1, 102)
    torn = header[:20] + bytes(SEGMENT_HEADER_BYTES - 20)
    check = _try(_two_disks(torn)[0])
    assert check.tried == 0
    assert not check.violations, check.violations
