"""``paxon sim --coverage`` and ``paxon sim --hours``: figures, failures, exit codes.

Cost: about 10 s on 2 cores (two measured coverage runs of 2 seeds, one real
long run of ~2 s); the failure and Ctrl-C cases use a stand-in ``run_seed``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import coverage as coverage_py
import pytest

from paxon.cli import main
from paxon.sim import coverage, longrun
from paxon.sim.config import SimConfig
from paxon.sim.runner import SeedResult

pytestmark = pytest.mark.sim

BRANCH = re.compile(r"^\d+->(\d+|exit)$")


def test_coverage_reports_both_packages_and_the_missed_branches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sim", "--coverage", "--seeds", "2", "--jobs", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seeds"] == 2 and report["jobs"] == 2
    for package in ("protocol", "storage"):
        figures = report["packages"][package]
        assert 0 < figures["branch_percent"] <= 100
        assert 0 < figures["branches_covered"] <= figures["branches"]
    replica = report["files"]["protocol/replica.py"]
    # Two seeds reach most of the core but not every corner of it.
    assert 50 < replica["branch_percent"] < 100
    assert replica["missed_branches"]
    assert all(BRANCH.match(branch) for branch in replica["missed_branches"])
    # Code the simulator never imports is listed as missed, not left out.
    assert report["files"]["storage/backup.py"]["missed_lines"]
    # paxon check runs before every restart (sim/offline_check.py).
    assert report["files"]["storage/check.py"]["branches_covered"] > 0
    assert report["failed_seeds"] == []


def test_coverage_text_names_each_package_and_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--coverage", "--seed", "3", "--seeds", "2", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"protocol/ +\d+\.\d% of [\d,]+ branches", out)
    assert re.search(r"storage/ +\d+\.\d% of [\d,]+ branches", out)
    assert re.search(r"protocol/replica\.py: \d+ of \d+ missed", out)
    assert "2 seeds, 3-7 nodes, 1 worker," in out and "failed seeds     0" in out


def test_sim_markers_take_branches_out_as_documented(tmp_path: Path) -> None:
    source = tmp_path / "marked.py"
    source.write_text(
        "def clamp(x):\n"
        "    if x > 100:\n"
        "        raise ValueError(x)  # sim: unreachable: inputs are checked at the edge\n"
        "    if x < 0:  # sim: one-way: never negative here\n"
        "        x = 0\n"
        "    if x == 7:  # sim: one-way\n"  # no reason: the marker matches nothing
        "        x = 8\n"
        "    return x\n"
    )
    measurement = coverage_py.Coverage(
        data_file=None, branch=True, source=[str(tmp_path)], config_file=False
    )
    coverage.apply_markers(measurement)
    namespace: dict[str, object] = {}
    measurement.start()
    try:
        exec(compile(source.read_text(), str(source), "exec"), namespace)
        namespace["clamp"](1)  # type: ignore[operator]
    finally:
        measurement.stop()
    out = tmp_path / "report.json"
    measurement.json_report(outfile=str(out))
    (marked,) = json.loads(out.read_text())["files"].values()
    assert marked["missing_branches"] == [[6, 7]]
    assert marked["excluded_lines"] == [3]


def test_hours_runs_seeds_and_reports_the_rate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--hours", "0.0005", "--seed", "40", "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    assert "seeds from 40, --jobs 2" in captured.err
    seeds_run = re.search(r"seeds run +([\d,]+) \(seeds 40\.\.", captured.out)
    assert seeds_run is not None and int(seeds_run[1].replace(",", "")) > 0
    assert re.search(r"seeds per hour +[1-9][\d,]*", captured.out)
    assert "failed seeds     0" in captured.out


def planted_run_seed(
    failing: int, *, interrupt_at: int | None = None, raising: int | None = None
) -> Callable[..., SeedResult]:
    """A quick stand-in for ``run_seed``: seed ``failing`` has a violation, and
    seed ``raising`` raises (a bug of the simulator's own)."""

    def run_seed(seed: int, config: SimConfig, **_: object) -> SeedResult:
        if seed == interrupt_at:
            raise KeyboardInterrupt
        if seed == raising:
            raise IndexError("Cannot choose from an empty sequence")
        violations = (
            ["t=1.0 agreement: slot 3 chose noop and then [c1#1]"] if seed == failing else []
        )
        return SeedResult(
            seed=seed,
            nodes=config.nodes,
            steps=10,
            sim_time_s=1.0,
            slots_chosen=1,
            commands_chosen=1,
            leader_changes=1,
            ops_completed=1,
            ops_total=1,
            faults={},
            violations=violations,
            heal_progress_s=None,
        )

    return run_seed


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_hours_reports_a_failing_seed_with_its_replay_and_exits_1(
    jobs: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Worker processes are forked, so they run the stand-in too.
    monkeypatch.setattr(longrun, "run_seed", planted_run_seed(failing=101))
    argv = ["sim", "--hours", "0.0002", "--seed", "100", "--nodes", "5", "--jobs", jobs, "--json"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["seeds"] >= 2 and report["interrupted"] is False
    assert report["last_seed"] == 100 + report["seeds"] - 1
    (failure,) = report["failed_seeds"]
    assert failure["seed"] == 101
    assert failure["replay"].startswith("paxon sim --seed 101 --swarm --nodes 5 --faults ")
    # Reported as it happens, too.
    assert "seed 101 FAILED: t=1.0 agreement" in captured.err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_hours_fails_a_seed_that_raises_and_runs_on(
    jobs: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Swarm seed 5001222 raised inside the simulator and ended a long run 44
    minutes in; such a seed now fails with its exception named, like any other."""
    monkeypatch.setattr(longrun, "run_seed", planted_run_seed(failing=-1, raising=101))
    argv = ["sim", "--hours", "0.0002", "--seed", "100", "--jobs", jobs, "--json"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["seeds"] >= 3, report
    (failure,) = report["failed_seeds"]
    assert failure["seed"] == 101
    assert failure["violations"] == ["t=- raised: IndexError: Cannot choose from an empty sequence"]
    assert "seed 101 FAILED: t=- raised: IndexError" in captured.err


def test_hours_stops_cleanly_on_ctrl_c(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(longrun, "run_seed", planted_run_seed(failing=-1, interrupt_at=5))
    assert main(["sim", "--hours", "1", "--seed", "0", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "seeds run        5 (seeds 0..4," in out
    assert "(stopped by Ctrl-C)" in out


def test_plain_sim_does_not_load_coverage() -> None:
    probe = (
        "import sys, paxon.cli; "
        "print('coverage' in sys.modules, 'paxon.sim.longrun' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.split() == ["False", "False"]


def test_progress_line_reports_rate_and_failures() -> None:
    summary = longrun.LongRunSummary(
        first_seed=0, jobs=2, base_config=SimConfig(), seeds_run=30, elapsed_s=60.0
    )
    assert longrun.progress_line(summary) == "[     60 s] 30 seeds, 1,800 seeds/hour, 0 failed"


@pytest.mark.parametrize(
    "argv",
    [
        ["sim", "--hours", "0"],
        ["sim", "--hours", "1", "--seeds", "10"],
        ["sim", "--hours", "1", "--coverage"],
        ["sim", "--coverage-html", "out"],
        ["sim", "--coverage", "--seed", "1", "--trace"],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err
