"""``paxon.node.readiness``: each check judged from facts, in order, and the disk probe."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from paxon.node.readiness import (
    DISK_PROBE_TIMEOUT_S,
    READY_LAG_MAX_SLOTS,
    DiskProbe,
    DiskState,
    Facts,
    judge,
)
from paxon.storage.layout import is_paxon_tmp

NOW = 100.0


def facts(**changes: Any) -> Facts:
    base = Facts(
        node_id=2,
        role="follower",
        leader=1,
        contact_age_s=0.1,
        contact_max_s=0.6,
        slot_applied=500,
        slot_chosen_heard=500,
        disk=DiskState(ok_at=NOW - 1),
        now=NOW,
    )
    fields = {name: getattr(base, name) for name in Facts.__dataclass_fields__}
    return Facts(**(fields | changes))


def test_a_follower_that_heard_its_leader_lately_and_is_caught_up_is_ready() -> None:
    report = judge(facts())
    assert report["ready"] and report["failed"] is None and report["lag_slots"] == 0


def test_the_leader_check() -> None:
    assert judge(facts(contact_age_s=0.6))["ready"]  # at the bound
    stale = judge(facts(contact_age_s=0.7))
    assert stale["failed"] == "leader" and "leader 1 0.7 s ago" in stale["checks"]["leader"]
    assert judge(facts(contact_age_s=None, leader=None))["checks"]["leader"] == "no leader known"
    alone = judge(facts(role="leader", leader=2, contact_age_s=None))
    assert alone["failed"] == "leader" and "without a majority" in alone["checks"]["leader"]
    lost = judge(facts(role="leader", leader=2, contact_age_s=2.0))
    assert "a majority of voters 2.0 s ago" in lost["checks"]["leader"]


def test_the_lag_check() -> None:
    at = judge(facts(slot_applied=500 - READY_LAG_MAX_SLOTS))
    assert at["ready"] and at["lag_slots"] == READY_LAG_MAX_SLOTS
    behind = judge(facts(slot_applied=500 - READY_LAG_MAX_SLOTS - 1))
    assert behind["failed"] == "caught_up"
    assert behind["checks"]["caught_up"].startswith(f"{READY_LAG_MAX_SLOTS + 1} chosen slots")


def test_the_disk_check() -> None:
    assert judge(facts(disk=DiskState()))["checks"]["disk"] == "not probed yet"
    failed = judge(facts(disk=DiskState(ok_at=NOW - 1, error="No space left on device")))
    assert failed["failed"] == "disk" and "No space left" in failed["checks"]["disk"]
    hung = DiskState(ok_at=NOW - 5, running_since=NOW - DISK_PROBE_TIMEOUT_S - 1)
    assert "has not finished" in judge(facts(disk=hung))["checks"]["disk"]
    running = DiskState(ok_at=NOW - 1, running_since=NOW - 0.1)
    assert judge(facts(disk=running))["ready"]
    assert "last probed" in judge(facts(disk=DiskState(ok_at=NOW - 60)))["checks"]["disk"]


def test_the_first_failing_check_is_named() -> None:
    both = judge(facts(contact_age_s=None, disk=DiskState(error="EIO")))
    assert both["failed"] == "leader" and both["checks"]["disk"] != "ok"


def test_the_probe_writes_and_removes_its_file_and_reports_a_refusal(tmp_path: Path) -> None:
    probe = DiskProbe(str(tmp_path))
    probe.probe_once()
    assert list(tmp_path.iterdir()) == []
    assert is_paxon_tmp(Path(probe.path).name)  # a crash mid-probe leaves a file paxon removes

    async def one_round(probe: DiskProbe) -> DiskState:
        task = asyncio.ensure_future(probe.run())
        while probe.state.ok_at is None and probe.state.error is None:
            await asyncio.sleep(0)
        task.cancel()
        return probe.state

    assert asyncio.run(one_round(DiskProbe(str(tmp_path)))).ok_at is not None
    gone = asyncio.run(one_round(DiskProbe(str(tmp_path / "missing"))))
    assert gone.error == "No such file or directory" and gone.ok_at is None
