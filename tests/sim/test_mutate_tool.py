"""The mutation-score runner (tests/mutate) kills a planted bug and reports an equivalent survivor.

The end-to-end test runs the real pipeline (cosmic-ray init, our selection,
cosmic-ray exec, kill.py, the report) on two operators of
``protocol/quorum.py`` with a one-seed budget, about 10 s; the rest are pure.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cosmic_ray import work_item
from tests.mutate import session
from tests.mutate.budget import SeedBudget, SeedGroup, parse_budget
from tests.mutate.run import ROOT, Options, run
from tests.mutate.targets import Target, spans_of, targets

from paxon.sim import SimConfig
from paxon.sim.config import FAULT_KINDS

QUORUM = "src/paxon/protocol/quorum.py"


@pytest.mark.mutation
def test_planted_bug_is_killed_and_an_equivalent_change_survives(tmp_path: Path) -> None:
    before = (ROOT / QUORUM).read_text()
    selection = session.Selection(
        files=(QUORUM,),
        # `member_count // 2 + 1` -> `- 1`: a majority of one in three, a planted safety bug.
        # `member_count < 1` -> `<= 1`: the simulator never builds a one-node cluster.
        operators=r"ReplaceBinaryOperator_Add_Sub$|ReplaceComparisonOperator_Lt_LtE$",
    )
    options = Options(
        budget="tests.sim.test_mutate_tool:fixed_members_budget",
        selection=selection,
        jobs=1,
        out=tmp_path,
        progress_s=600,
    )

    report = run(options, echo=io.StringIO())

    killed = [entry for entry in report["killed"] if "// 2 - 1" in entry["mutated"]]
    assert len(killed) == 1, report["killed"]
    assert killed[0]["where"].startswith(f"{QUORUM}:")
    assert "seed 0" in killed[0]["detail"]
    survivors = {(entry["original"], entry["mutated"]) for entry in report["survivors"]}
    assert ("if member_count < 1:", "if member_count <= 1:") in survivors
    assert report["totals"]["error"] == 0
    assert report["files"][QUORUM]["killed"] >= 1
    assert json.loads((tmp_path / "report.json").read_text())["score"] == report["score"]
    assert "if member_count <= 1:" in (tmp_path / "report.md").read_text()
    # Mutants live in the copies only, and cosmic-ray put each file back.
    assert (ROOT / QUORUM).read_text() == before
    assert (tmp_path / "tree-0" / QUORUM).read_text() == before


def test_budget_specs() -> None:
    budget = parse_budget("3x2,5x1")
    assert budget.seeds_total == 3
    schedule = [(group.name, seed) for group, seed in budget.schedule()]
    assert schedule == [("3 nodes", 0), ("5 nodes", 0), ("3 nodes", 1)]
    assert budget.groups[1].config(7).nodes == 5
    for bad in ("3", "x5", "3x", "threex2", "0x3"):
        with pytest.raises(ValueError):
            parse_budget(bad)


def tiny_budget() -> SeedBudget:
    """A budget named by its import path: two seeds of a 4-node cluster."""
    return SeedBudget("tiny", (SeedGroup("4 nodes", range(2), lambda _seed: SimConfig(nodes=4)),))


def fixed_members_budget() -> SeedBudget:
    """Seed 0 of 3 nodes, every fault kind but membership changes: "reconfig"
    may leave one voter, where the `<=` mutant above is no longer equivalent."""
    faults = frozenset(FAULT_KINDS) - {"reconfig"}
    config = SimConfig(nodes=3, faults=faults)
    return SeedBudget("3 nodes", (SeedGroup("3 nodes", range(1), lambda _seed: config),))


def test_budgets_by_import_path_and_by_swarm() -> None:
    budget = parse_budget("tests.sim.test_mutate_tool:tiny_budget")
    assert [seed for _, seed in budget.schedule()] == [0, 1]
    assert budget.groups[0].config(0).nodes == 4

    drawn = parse_budget("swarmx3")
    assert [seed for _, seed in drawn.schedule()] == [0, 1, 2]
    # Each seed draws its own configuration when it runs (paxon.sim.swarm).
    assert all(group.config(seed).swarm for group, seed in drawn.schedule())

    mixed = parse_budget("swarmx2,reconfigx1")
    assert [(group.name, seed) for group, seed in mixed.schedule()] == [
        ("swarm configurations", 0),
        ("membership changes", 0),
        ("swarm configurations", 1),
    ]
    changes = mixed.groups[1].config(0)
    assert changes.spares == 1 and "reconfig" in changes.faults and not changes.swarm

    leases = parse_budget("leasex2").groups[0]
    assert [leases.config(seed).nodes for seed in leases.seeds] == [3, 5]
    assert all(leases.config(seed).lease_reads for seed in leases.seeds)

    split = parse_budget("splitx2").groups[0]
    assert [split.config(seed).split_slot for seed in split.seeds] == [True, True]
    assert split.config(0).nodes == 3 and not split.config(0).swarm
    lagging = parse_budget("lagx2").groups[0]
    assert [lagging.config(seed).lagging_candidate for seed in lagging.seeds] == [True, True]
    assert lagging.config(0).replica.pipeline_window_slots == 2
    deposed = parse_budget("deposedx2").groups[0].config(0)
    assert deposed.lease_reads and deposed.readers == 1 and deposed.nodes == 3
    assert deposed.faults == {"partition", "drift"} and not deposed.swarm
    disks = parse_budget("diskx2").groups[0].config(0)
    assert disks.faults == {"crash", "disk"} and disks.disk_fault_rate == 1.0
    assert disks.snapshot_interval_slots == 10 and not disks.swarm
    rolls = parse_budget("rollx2").groups[0].config(0)
    assert rolls.faults == {"crash"} and rolls.roll_cut_rate == 0.3
    assert rolls.segment_max_bytes == 1024 and not rolls.swarm
    keeping = parse_budget("historyx2").groups[0]
    assert [keeping.config(seed).history_revisions for seed in keeping.seeds] == [4, 4]
    removed = parse_budget("removedx2").groups[0].config(0)
    assert removed.removed_cut_share == 1.0 and removed.faults == {"reconfig", "drop"}
    assert removed.nodes == 5 and removed.snapshot_interval_slots == 20 and not removed.swarm
    installs = parse_budget("installx2").groups[0].config(0)
    assert installs.faults == {"partition", "crashpoint", "drop"} and not installs.swarm
    assert installs.snapshot_interval_slots == 3 and installs.fault_phase_s == 10.0
    restarts = parse_budget("restartx2").groups[0].config(0)
    assert restarts.change_restart_share == 1.0 and restarts.faults == {"reconfig", "drop"}
    assert restarts.spares == 1 and restarts.snapshot_interval_slots == 20 and not restarts.swarm


SOURCE = """
from __future__ import annotations

LIMIT = 3 + 1

def reader(data: bytes | None) -> int | None:
    assert data is not None
    return len(data) + 1

def writer(value: int, *, twice: bool = True) -> int:
    return value * 2

class Replica:
    def check_invariants(self) -> None:
        if self.size < 0:
            raise AssertionError
"""


def test_spans_exclude_annotations_the_oracle_and_other_functions() -> None:
    whole = spans_of(SOURCE, Target("x.py"))
    assert whole.verdict(4, 10) is None  # module level, allowed in a protocol file
    assert whole.verdict(6, 23) == "type annotation"  # the `|` of `bytes | None`
    assert whole.verdict(7, 16) == "oracle (assert, check_invariants)"
    assert whole.verdict(8, 21) is None
    assert whole.verdict(10, 23) == "parameter list"  # the bare `*`
    assert whole.verdict(10, 40) is None  # the default `True`
    only_reader = spans_of(SOURCE, Target("x.py", ("reader",), module_level=False))
    assert only_reader.verdict(8, 21) is None
    assert only_reader.verdict(11, 17) == "outside the target functions"
    assert only_reader.verdict(4, 10) == "outside the target functions"
    methods = spans_of(SOURCE, Target("x.py", module_level=False))
    assert methods.verdict(15, 21) == "oracle (assert, check_invariants)"  # check_invariants
    with pytest.raises(ValueError, match="no function"):
        spans_of(SOURCE, Target("x.py", ("missing",)))


def _result(output: str, *, passed: bool = False, worker: str = "normal") -> work_item.WorkResult:
    outcome = work_item.TestOutcome.SURVIVED if passed else work_item.TestOutcome.KILLED
    return work_item.WorkResult(work_item.WorkerOutcome(worker), output, outcome)


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (_result('{"verdict": "survived"}', passed=True), "survived"),
        (_result('{"verdict": "violation"}'), "killed"),
        (_result('{"verdict": "exception", "seed": 3}'), "killed"),
        (_result('{"verdict": "exception", "seed": null, "detail": "ValueError: x"}'), "killed"),
        (_result('{"verdict": "exception", "seed": null, "detail": "SyntaxError: x"}'), "invalid"),
        (_result('{"verdict": "hang"}'), "timeout"),
        (_result("timeout"), "timeout"),  # cosmic-ray's own item timeout
        (_result('{"verdict": "setup-error"}'), "error"),
        (_result("Traceback ..."), "error"),
        (_result("boom", worker="exception"), "error"),
        (_result("not sampled", worker="skipped"), "skipped"),
    ],
)
def test_a_failure_of_the_machinery_is_never_a_kill(
    result: work_item.WorkResult, status: str
) -> None:
    assert session._status(result)[0] == status


def test_every_named_target_function_exists_in_the_tree() -> None:
    """A renamed function must not break ``make mutate`` at start-up (it did once)."""
    for target in targets(ROOT):
        spans_of((ROOT / target.path).read_text(), target)  # raises on a missing name


def test_a_hang_inside_a_task_of_the_simulated_runtime_is_a_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An endless loop in a task ends the seed even though asyncio keeps a task's
    other ``BaseException`` as its result and runs on (s14 row 30 hung for good)."""
    import asyncio
    import time

    from tests.mutate import kill

    import paxon.sim

    def spinning_seed(_seed: int, _config: object) -> object:
        async def spin() -> None:
            while True:  # a mutant's endless loop, never yielding
                pass

        async def runtime() -> None:
            task = asyncio.get_running_loop().create_task(spin())
            ends = time.monotonic() + 3.0
            while time.monotonic() < ends:  # the rest of the simulation runs on
                await asyncio.sleep(0)
            task.cancel()

        asyncio.run(runtime())
        raise AssertionError("the simulation ran to its end: the hang went unseen")

    monkeypatch.setattr(paxon.sim, "run_seed", spinning_seed)
    src = Path(paxon.__file__).resolve().parents[1]

    verdict = kill.run_budget(src, "3x1", 0.3)

    assert verdict["verdict"] == "hang", verdict


def test_rerun_mutates_the_line_inside_the_reported_function() -> None:
    from tests.mutate.rerun import line_of

    lines = [
        "class Replica:\n",
        "    def serving(self):\n",
        "        recent = self._now - t\n",
        "        return recent\n",
        "\n",
        "    def transfer_leadership(self):\n",
        "        recent = self._now - t\n",
    ]
    text = "recent = self._now - t"
    # Reported at line 3, nearer serving's copy, but inside transfer_leadership.
    assert line_of(lines, 3, "transfer_leadership", text) == 6
    assert line_of(lines, 7, "serving", text) == 2
    assert line_of(lines, 3, "", text) == 2  # no function named: the nearest
    assert line_of(lines, 3, "serving", "gone = 1") is None


def test_flips_negate_each_single_line_guard_and_leave_the_oracle_alone(tmp_path: Path) -> None:
    from tests.mutate.flips import marked_guards

    source = tmp_path / "core.py"
    source.write_text(
        "class Core:\n"
        "    def step(self, x):\n"
        "        if x < 0:  # sim: one-way: the caller checks it\n"
        "            return 0\n"
        "        elif x == 1:\n"
        "            return 1\n"
        "        if (x > 2 and\n"
        "                x < 9):\n"
        "            return 2\n"
        "\n"
        "    def check_invariants(self):\n"
        "        if self.broken:\n"
        "            raise AssertionError\n"
        "        if self.odd:  # sim: unreachable: a correct core\n"
        "            raise AssertionError\n"
    )
    marked = marked_guards((source,), root=tmp_path)
    unmarked = marked_guards((source,), root=tmp_path, marked=False)

    assert [(flip.line, flip.mutated) for flip in marked] == [
        (3, "        if not (x < 0):  # sim: one-way: the caller checks it"),
    ]
    # The oracle is never flipped, marked or not; a guard over two lines is not either.
    assert [(flip.line, flip.mutated) for flip in unmarked] == [
        (5, "        elif not (x == 1):"),
    ]
