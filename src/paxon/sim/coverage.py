"""Branch coverage of ``protocol/`` and ``storage/`` reached by the simulator alone.

``paxon sim --coverage`` runs its seeds under coverage.py and reports, per
package and per file, how many branch exits the seeds took, and which they
missed (``protocol/replica.py:120->125``; ``->exit`` when the missed exit leaves
the function).

How it measures:

- The seeds run in fresh worker processes (``python -c`` with a short
  bootstrap) that start coverage.py *before* they import paxon, so module-level
  code counts as run and nothing but the simulator (no test, no CLI) runs under
  measurement. Seeds are dealt round robin to ``jobs`` workers; each worker
  writes its own data file (coverage.py's parallel data files) and the parent
  combines them (``Coverage.combine``) before it reports.
- Each seed runs with ``longrun.config_for(seed, base_config)``, the same
  configuration a long run gives it.
- The branch percentage is branch exits taken / all branch exits (coverage.py's
  "branches"); statement coverage is reported beside it. Every ``.py`` file of
  the two packages counts, imported or not.

Pragmas: a branch the simulator can never reach carries a marker with the
reason after the colon (a marker without a reason matches nothing):

- ``# sim: unreachable: <why>`` on a line the simulator can never run: the line,
  the block it opens and the branch exit that leads to it leave the count
  (coverage.py's ``exclude_lines``).
- ``# sim: one-way: <why>`` on a line that branches, when only some of its exits
  can be taken under simulation: the exits not taken are not counted as missed
  (coverage.py's ``partial_branches``).

Beside them, code that never runs anywhere is left out by configuration:
``if TYPE_CHECKING:`` blocks and ``assert_never(...)`` calls. coverage.py's own
``# pragma: no cover`` and ``# pragma: no branch`` still work but say nothing of
the simulator; use the ``sim:`` markers for gaps that are the simulator's.

coverage.py is imported only here, and only when a measurement is asked for, so
``paxon sim`` without ``--coverage`` does not load it.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import paxon
from paxon.sim.config import FAULT_KINDS, SimConfig
from paxon.sim.longrun import SeedFailure, config_for
from paxon.sim.runner import replay_command, run_seed

if TYPE_CHECKING:
    from coverage import Coverage

PACKAGES = ("protocol", "storage")
PAXON_ROOT = Path(paxon.__file__).resolve().parent

UNREACHABLE_MARKER = r"#\s*sim:\s*unreachable:\s*\S"
ONE_WAY_MARKER = r"#\s*sim:\s*one-way:\s*\S"
NEVER_RUN = (r"^\s*if TYPE_CHECKING:", r"\bassert_never\(")

# Runs in each worker: start measuring, and only then import paxon.
# argv: data file, job file, result file, then the source directories.
_WORKER_BOOTSTRAP = """
import sys
import coverage
measured = coverage.Coverage(
    data_file=sys.argv[1], data_suffix=True, branch=True, source=sys.argv[4:],
    config_file=False,
)
measured.start()
try:
    from paxon.sim.coverage import run_worker
    run_worker(sys.argv[2], sys.argv[3])
finally:
    measured.stop()
    measured.save()
"""


@dataclass(frozen=True, slots=True)
class FileCoverage:
    path: str  # relative to the paxon package: "protocol/replica.py"
    branches: int
    branches_covered: int
    statements: int
    statements_covered: int
    missed_branches: tuple[tuple[int, int], ...]  # (line, destination); destination < 0: exit
    missed_lines: tuple[int, ...]

    @property
    def package(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def branch_percent(self) -> float:
        return _percent(self.branches_covered, self.branches)

    def missed_branch_names(self) -> list[str]:
        return [
            f"{line}->{'exit' if destination < 0 else destination}"
            for line, destination in self.missed_branches
        ]


@dataclass(frozen=True, slots=True)
class PackageCoverage:
    name: str
    branches: int
    branches_covered: int
    statements: int
    statements_covered: int

    @property
    def branch_percent(self) -> float:
        return _percent(self.branches_covered, self.branches)

    @property
    def statement_percent(self) -> float:
        return _percent(self.statements_covered, self.statements)


@dataclass(slots=True)
class CoverageReport:
    seeds: int
    jobs: int
    elapsed_s: float
    base_config: SimConfig
    files: list[FileCoverage]
    failures: list[SeedFailure]
    pragmas: dict[str, int]  # marker -> lines carrying it, in both packages
    html_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def package(self, name: str) -> PackageCoverage:
        files = [file for file in self.files if file.package == name]
        return PackageCoverage(
            name=name,
            branches=sum(file.branches for file in files),
            branches_covered=sum(file.branches_covered for file in files),
            statements=sum(file.statements for file in files),
            statements_covered=sum(file.statements_covered for file in files),
        )


def measure(
    seeds: Sequence[int],
    base_config: SimConfig,
    *,
    jobs: int,
    html_dir: Path | None = None,
) -> CoverageReport:
    """Run ``seeds`` on ``jobs`` measured workers and report what they reached."""
    if not seeds or jobs < 1:
        raise ValueError("need at least one seed and one job")
    jobs = min(jobs, len(seeds))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="paxon-sim-coverage-") as work_dir:
        work = Path(work_dir)
        failed = _run_workers(work, [list(seeds[job::jobs]) for job in range(jobs)], base_config)
        files = _combine_and_analyse(work, html_dir)
    failures = [
        SeedFailure(seed, violations, replay_command(seed, config_for(seed, base_config)))
        for seed, violations in sorted(failed)
    ]
    return CoverageReport(
        seeds=len(seeds),
        jobs=jobs,
        elapsed_s=time.perf_counter() - started,
        base_config=base_config,
        files=files,
        failures=failures,
        pragmas=_count_pragmas(),
        html_dir=html_dir,
    )


def report_lines(report: CoverageReport, *, width: int = 100) -> list[str]:
    """The readable report: package figures, then each file's missed branches."""
    config = report.base_config
    lines = [
        f"branch coverage by the simulator alone: {report.seeds:,} seeds, "
        f"{config.nodes or '3-7'} nodes, "
        f"{report.jobs} worker{'s' if report.jobs > 1 else ''}, {report.elapsed_s:,.1f} s"
    ]
    for name in PACKAGES:
        package = report.package(name)
        lines.append(
            f"  {name + '/':<10} {package.branch_percent:5.1f}% of {package.branches:,} branches "
            f"({package.branches - package.branches_covered:,} missed); "
            f"statements {package.statement_percent:.1f}%"
        )
    lines.append(
        f"  pragmas    {report.pragmas['unreachable']} lines marked unreachable, "
        f"{report.pragmas['one-way']} one-way"
    )
    lines.append("\nmissed branches by file (line->line):")
    for file in report.files:
        missed = file.missed_branch_names()
        if not missed:
            continue
        never_run = ", no statement run" if file.statements_covered == 0 else ""
        lines.append(
            f"  {file.path}: {len(missed)} of {file.branches} missed "
            f"({file.branch_percent:.1f}% covered{never_run})"
        )
        lines.extend(
            textwrap.wrap(
                " ".join(missed), width, initial_indent=" " * 6, subsequent_indent=" " * 6
            )
        )
    if report.html_dir is not None:
        lines.append(f"\nHTML report: {report.html_dir / 'index.html'}")
    lines.append(f"\nfailed seeds     {len(report.failures)}")
    for failure in report.failures:
        lines.append(f"seed {failure.seed} FAILED: {failure.violations[0]}")
        lines.append(f"  replay: {failure.replay}")
    return lines


def report_json(report: CoverageReport) -> dict[str, object]:
    config = report.base_config
    packages = {}
    for name in PACKAGES:
        package = report.package(name)
        packages[name] = {
            "branch_percent": round(package.branch_percent, 2),
            "branches": package.branches,
            "branches_covered": package.branches_covered,
            "statement_percent": round(package.statement_percent, 2),
            "statements": package.statements,
            "statements_covered": package.statements_covered,
        }
    return {
        "seeds": report.seeds,
        "jobs": report.jobs,
        "elapsed_s": round(report.elapsed_s, 3),
        "nodes": config.nodes or "3-7",
        "fault_kinds": [kind for kind in FAULT_KINDS if kind in config.faults],
        "packages": packages,
        "files": {
            file.path: {
                "branch_percent": round(file.branch_percent, 2),
                "branches": file.branches,
                "branches_covered": file.branches_covered,
                "missed_branches": file.missed_branch_names(),
                "missed_lines": list(file.missed_lines),
            }
            for file in report.files
        },
        "pragmas": report.pragmas,
        "html_report": str(report.html_dir / "index.html") if report.html_dir else None,
        "failed_seeds": [
            {"seed": failure.seed, "violations": list(failure.violations), "replay": failure.replay}
            for failure in report.failures
        ],
    }


def apply_markers(measurement: Coverage) -> None:
    """Make ``measurement`` honour the ``sim:`` markers and leave out the never-run code."""
    exclude_lines = measurement.get_option("report:exclude_lines")
    partial_branches = measurement.get_option("report:partial_branches")
    assert isinstance(exclude_lines, list) and isinstance(partial_branches, list)
    measurement.set_option("report:exclude_lines", [*exclude_lines, UNREACHABLE_MARKER, *NEVER_RUN])
    measurement.set_option("report:partial_branches", [*partial_branches, ONE_WAY_MARKER])


def run_worker(job_path: str, result_path: str) -> None:
    """Inside a measured worker: run the seeds of ``job_path``, write the failures."""
    seeds, base_config = pickle.loads(Path(job_path).read_bytes())
    failed = []
    for seed in seeds:
        result = run_seed(seed, config_for(seed, base_config))
        if not result.ok:
            failed.append((seed, tuple(result.violations)))
    Path(result_path).write_bytes(pickle.dumps(failed))


# ------------------------------------------------------------------ helpers


def _run_workers(
    work: Path, seeds_by_job: list[list[int]], base_config: SimConfig
) -> list[tuple[int, tuple[str, ...]]]:
    """Start one measured worker per seed list, wait for all, return their failures."""
    environment = dict(os.environ)
    # The workers import paxon from where this process did, whatever the venv holds.
    search_path = [str(PAXON_ROOT.parent), environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(part for part in search_path if part)
    sources = [str(PAXON_ROOT / name) for name in PACKAGES]
    workers: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for job, seeds in enumerate(seeds_by_job):
            job_path, result_path = work / f"job-{job}.pickle", work / f"result-{job}.pickle"
            job_path.write_bytes(pickle.dumps((seeds, base_config)))
            command = [sys.executable, "-c", _WORKER_BOOTSTRAP, str(work / ".coverage")]
            command += [str(job_path), str(result_path), *sources]
            process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)
            workers.append((process, result_path))
        failed: list[tuple[int, tuple[str, ...]]] = []
        for process, result_path in workers:
            if process.wait() != 0:
                raise RuntimeError(f"a coverage worker exited with status {process.returncode}")
            failed.extend(pickle.loads(result_path.read_bytes()))
        return failed
    finally:
        for process, _ in workers:
            if process.poll() is None:
                process.kill()
                process.wait()


def _combine_and_analyse(work: Path, html_dir: Path | None) -> list[FileCoverage]:
    import coverage

    combined = coverage.Coverage(
        data_file=str(work / ".coverage"),
        branch=True,
        source=[str(PAXON_ROOT / name) for name in PACKAGES],
        config_file=False,
    )
    apply_markers(combined)
    combined.combine(data_paths=[str(work)], strict=True)
    json_path = work / "coverage.json"
    combined.json_report(outfile=str(json_path))
    if html_dir is not None:
        combined.html_report(directory=str(html_dir))
    files = json.loads(json_path.read_text())["files"]
    return sorted(
        (_file_coverage(name, data) for name, data in files.items()), key=lambda f: f.path
    )


def _file_coverage(name: str, data: dict[str, object]) -> FileCoverage:
    summary = data["summary"]
    assert isinstance(summary, dict)
    missed_branches = data.get("missing_branches", [])
    missed_lines = data.get("missing_lines", [])
    assert isinstance(missed_branches, list) and isinstance(missed_lines, list)
    return FileCoverage(
        path=Path(name).resolve().relative_to(PAXON_ROOT).as_posix(),
        branches=int(summary["num_branches"]),
        branches_covered=int(summary["covered_branches"]),
        statements=int(summary["num_statements"]),
        statements_covered=int(summary["covered_lines"]),
        missed_branches=tuple((int(line), int(to)) for line, to in missed_branches),
        missed_lines=tuple(int(line) for line in missed_lines),
    )


def _count_pragmas() -> dict[str, int]:
    markers = {"unreachable": re.compile(UNREACHABLE_MARKER), "one-way": re.compile(ONE_WAY_MARKER)}
    counts = dict.fromkeys(markers, 0)
    for name in PACKAGES:
        for path in sorted((PAXON_ROOT / name).rglob("*.py")):
            for line in path.read_text(encoding="utf-8").splitlines():
                for marker, pattern in markers.items():
                    counts[marker] += bool(pattern.search(line))
    return counts


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 100.0
