"""``check-agrees`` (``sim/offline_check.py``): ``paxon check``, run on each disk
before a simulated node starts on it, agrees with what the start-up does.

The rule compares both outcomes on honest runs (a refused directory and an
opened one, torn tails and snapshots among them), and fires on a planted bug
in the check's report and in the record counts it shares with recovery: the
s18 sample's ``recovery.py:132`` (the lowest accepted slot kept with ``>=``,
judged U while only ``paxon check`` read it).
"""

from __future__ import annotations

import inspect
from collections import Counter
from typing import Any

import pytest

from paxon.sim import SimConfig, run_seed
from paxon.sim.offline_check import OfflineCheck
from paxon.storage import check, recovery

SWARM = SimConfig(nodes=0, swarm=True)


def _count_comparisons(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    seen: Counter[str] = Counter()
    refused, opened = OfflineCheck._compare_refused, OfflineCheck._compare_opened

    def count_refused(self: OfflineCheck, *args: Any) -> None:
        seen["refused"] += 1
        refused(self, *args)

    def count_opened(self: OfflineCheck, node_id: int, report: Any, found: Any, t: float) -> None:
        seen["opened"] += 1
        seen["torn"] += found.torn is not None
        seen["from a snapshot"] += found.snapshot is not None
        opened(self, node_id, report, found, t)

    monkeypatch.setattr(OfflineCheck, "_compare_refused", count_refused)
    monkeypatch.setattr(OfflineCheck, "_compare_opened", count_opened)
    return seen


@pytest.mark.sim
def test_the_check_is_compared_on_refused_and_opened_disks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _count_comparisons(monkeypatch)
    for seed in (0, 2):  # seed 0 recovers from a snapshot; seed 2 cuts torn tails
        assert run_seed(seed, SWARM).violations == []
    assert seen["refused"] >= 2 and seen["opened"] >= 10, seen
    assert seen["torn"] >= 1 and seen["from a snapshot"] >= 1, seen


def _replace(
    monkeypatch: pytest.MonkeyPatch, module: Any, owner: Any, name: str, right: str, wrong: str
) -> None:
    """``owner.name`` (a function of ``module`` or a method) with ``right`` made ``wrong``."""
    source = inspect.getsource(getattr(owner, name))
    assert source.count(right) == 1, right
    lines = source.splitlines(keepends=True)
    indent = len(lines[0]) - len(lines[0].lstrip())
    dedented = "".join(line[indent:] for line in lines).replace(right, wrong)
    namespace = dict(vars(module))
    exec(dedented, namespace)
    monkeypatch.setattr(owner, name, namespace[name])


@pytest.mark.sim
@pytest.mark.mutation
def test_a_lowest_accepted_slot_kept_wrong_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """s18 sample row 27: ``LogStats.add`` keeps the lowest accepted slot with
    ``>=``; the report's range then misses entries start-up holds."""
    _replace(
        monkeypatch,
        recovery,
        recovery.LogStats,
        "add",
        "slot < self.slot_accepted_min",
        "slot >= self.slot_accepted_min",
    )
    violations = run_seed(0, SWARM).violations
    assert any("check-agrees" in v and "accepted slots" in v for v in violations), violations[:3]


@pytest.mark.sim
@pytest.mark.mutation
@pytest.mark.parametrize(
    ("right", "wrong", "named"),
    [
        # The report's chosen prefix read from the log start instead.
        (
            'report.slots["chosen_below"] = found.state.slot_chosen',
            'report.slots["chosen_below"] = found.state.log_start',
            "chosen below",
        ),
        # The report names a damaged snapshot, never the directory's own damage.
        ("damage = found.damage or (", "damage = None and (", "paxon check said OK"),
    ],
)
def test_a_report_that_tells_another_story_is_named(
    monkeypatch: pytest.MonkeyPatch, right: str, wrong: str, named: str
) -> None:
    _replace(monkeypatch, check, check, "_report", right, wrong)
    violations = run_seed(0, SWARM).violations
    assert any("check-agrees" in v and named in v for v in violations), violations[:3]
