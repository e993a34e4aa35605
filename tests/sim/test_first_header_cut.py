"""The power cut aimed at a data directory's first segment header
(``DiskFaults.arm_creation_cut``): written, not synced, its name kept by a
journal commit, its bytes torn. Recovery must drop that lone torn segment and
start (mutation s14 row 44 broke that branch of ``_check_chain``; no seed's
crash points reached it before).
"""

from __future__ import annotations

import inspect

import pytest

from paxon.sim import SimConfig, run_seed
from paxon.sim.disk_faults import _FIRST_HEADER_FSYNC_OP
from paxon.sim.host import SimDisk, storage_config
from paxon.storage import recovery
from paxon.storage.layout import segment_name
from paxon.storage.memfs import PowerCut
from paxon.storage.segments import SEGMENT_HEADER_BYTES
from paxon.storage.storage import Storage


def test_the_aimed_cut_lands_at_the_fsync_of_the_first_segment_header() -> None:
    fs = SimDisk()
    cuts: list[str] = []
    fs.on_power_cut = cuts.append
    fs.arm_power_cut(_FIRST_HEADER_FSYNC_OP)
    with pytest.raises(PowerCut):
        Storage.open("/node1", node_id=1, cluster_id="c", fs=fs, config=storage_config(1 << 16))
    first = segment_name(1)
    assert cuts == [f"fsync {first}"]
    fs.commit_directory("/node1")
    assert fs.unsynced_bytes(f"/node1/{first}") == SEGMENT_HEADER_BYTES


@pytest.mark.sim
@pytest.mark.mutation
def test_a_lone_torn_first_segment_refused_is_named_by_recovery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    right = 'len(scans) == 1 and last.end == "header_torn"'
    source = inspect.getsource(recovery._check_chain)
    assert source.count(right) == 1
    namespace = dict(vars(recovery))
    exec(source.replace(right, right.replace("== 1", "== 0")), namespace)
    monkeypatch.setattr(recovery, "_check_chain", namespace["_check_chain"])
    violations = run_seed(2, SimConfig(nodes=0, swarm=True)).violations
    assert any(
        "recovery refused a disk with no storage fault" in v and "shorter than a segment" in v
        for v in violations
    ), violations[:3]
