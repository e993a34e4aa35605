"""``log-compacted``: a snapshot written frees the log below the oldest snapshot kept.

``Storage`` deletes, in the call that writes a snapshot, every sealed segment
whose records are all at or below the oldest snapshot it keeps. No rule
looked: a restart that misread which segments are sealed (the s30 sample's
``storage.py:419``, ``scan.end == "sealed"`` made ``<``) kept every segment
from then on, in that life and every later one, and the disk grew for good.
The simulator now judges each snapshot it sees written
(``RuntimeCluster._judge_compaction``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from tests.mutate.budget import ROLL_CONFIG

from paxon.sim import run_seed
from paxon.storage import wal


def _sealed_misread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every segment a log opens with is taken for sealed when it is not, and
    for not sealed when it is (what the mutant does at a restart)."""
    opened = wal.Wal.__init__

    def misread(
        self: wal.Wal, *args: Any, segments: Sequence[tuple[str, int, bool]], **kwargs: Any
    ) -> None:
        flipped = [(name, first, not sealed) for name, first, sealed in segments]
        opened(self, *args, segments=flipped, **kwargs)

    monkeypatch.setattr(wal.Wal, "__init__", misread)


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(4))
def test_roll_seeds_keep_no_segment_below_the_oldest_snapshot(seed: int) -> None:
    result = run_seed(seed, ROLL_CONFIG)
    assert result.ok, result.violations[:3]


@pytest.mark.sim
@pytest.mark.mutation
def test_segments_kept_after_a_restart_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _sealed_misread(monkeypatch)
    result = run_seed(PLANTED_SEED, ROLL_CONFIG)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "log-compacted" in rules, result.violations[:3]


PLANTED_SEED = 0
