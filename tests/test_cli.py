"""``paxon sim`` as a user runs it: output, JSON, exit codes, replay line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import paxon.sim.runner
from paxon.cli import main
from paxon.sim.config import SimConfig
from paxon.sim.runner import SeedResult, replay_command


def test_sim_json_reports_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--seeds", "2", "--nodes", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seeds"] == 2
    assert report["violations"] == 0
    assert report["chosen"] > 0
    assert report["steps"] > 0
    assert report["leader_changes"] >= 2
    assert set(report["faults"]) >= {"drop", "partition", "crash"}


def test_sim_summary_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--seed", "4", "--nodes", "5", "--faults", "crash,drop"]) == 0
    out = capsys.readouterr().out
    assert "seeds run        1 (5 nodes, swarm config, runtime engine)" in out
    assert "violations       0" in out
    assert "partition" not in out.split("faults injected")[1].splitlines()[0]


def test_a_lagging_candidate_run_prints_its_moment(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sim", "--seed", "0", "--no-swarm", "--nodes", "3", "--lagging-candidate"]
    assert main([*argv, "--faults", "duplicate,reorder", "--trace"]) == 0
    out = capsys.readouterr().out
    assert "lagging candidate: behind its acceptor by nearly a window" in out
    assert "window 2 slots" in out and "rejoins" in out


def test_a_joining_spares_run_replays_with_its_flag(capsys: pytest.CaptureFixture[str]) -> None:
    # Swarm seed 114 with reconfig and spares: with --spares-join, n6 joins.
    argv = ["sim", "--seed", "114", "--spares-join", "--trace"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "spares start with --join once added" in out
    assert "n6 joins with configuration 2" in out
    config = SimConfig(nodes=0, swarm=True, spares_join=True)
    assert "--spares-join" in replay_command(114, config).split()


def test_a_run_keeping_little_history_compacts_and_replays_with_its_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["sim", "--seed", "0", "--no-swarm", "--nodes", "3", "--history-revisions", "4"]
    assert main([*argv, "--faults", "crash,partition", "--trace"]) == 0
    out = capsys.readouterr().out
    assert "history: the leader keeps 4 revisions" in out
    refused = out.split("locks, watches")[1].splitlines()[0].split("compacted ")[1]
    assert int(refused.replace(",", "")) > 0, out[-800:]
    config = SimConfig(nodes=3, history_revisions=4)
    assert "--history-revisions 4" in replay_command(0, config)


def test_trace_prints_protocol_events(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--seed", "1", "--trace", "--faults", "none"]) == 0
    out = capsys.readouterr().out
    assert "Prepare b=" in out and "Accepted b=" in out and "-> leader" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["sim", "--faults", "meteor"],
        ["sim", "--nodes", "8"],
        ["sim", "--seeds", "0"],
        ["sim", "--seeds", "3", "--trace"],
        ["sim", "--heal-phase", "-1"],
        ["sim", "--lagging-candidate"],  # swarm seeds: it needs --no-swarm --nodes 3
        ["sim", "--no-swarm", "--nodes", "5", "--lagging-candidate"],
        ["sim", "--history-revisions", "0"],
        ["sim", "--history-revisions", "1000001"],  # past the store's hard cap
        ["sim", "--engine", "core", "--storage", "memory", "--history-revisions", "4"],
        ["frobnicate"],
        [],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_a_violation_exits_1_with_the_replay_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_run_seed = paxon.sim.runner.run_seed

    def run_seed_with_a_violation(seed: int, config: object, **kwargs: object) -> SeedResult:
        result = real_run_seed(seed, config, **kwargs)  # type: ignore[arg-type]
        if seed == 8:
            result.violations.append("t=1.0 agreement: slot 3 chose noop and then [c1#1]")
        return result

    monkeypatch.setattr(paxon.sim.runner, "run_seed", run_seed_with_a_violation)
    assert main(["sim", "--seed", "7", "--seeds", "2", "--nodes", "3"]) == 1
    out = capsys.readouterr().out
    assert "seed 8 FAILED" in out
    assert "replay: paxon sim --seed 8 --swarm --nodes 3 --faults " in out
    assert "--trace" in out


def test_the_command_line_does_not_import_the_simulator_until_asked() -> None:
    # Every `paxon serve` imports paxon.cli: the simulator's modules would be
    # start-up CPU a new member takes from its cluster (docs/benchmarks.md).
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, paxon.cli, paxon.server.serve; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('paxon.sim'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "paxon.sim.config" in loaded  # the flags of `paxon sim` need it
    assert not {"paxon.sim.runner", "paxon.sim.runtime", "paxon.sim.cluster"} & set(loaded)
