"""cosmic-ray, driven for the mutation score: trees, sessions, selection, execution, outcomes.

One run, for each worker J of ``jobs`` (``__main__`` calls these in order):

1. ``prepare_tree`` copies the checkout's ``src/`` to ``OUT/tree-J/src`` and
   compiles it to checked-hash .pyc files, so a mutant's process recompiles
   only the one file that differs (and a stale .pyc can never stand in for a
   mutated file). The checkout itself is never written.
2. ``write_config`` and ``init_session``: ``cosmic-ray init`` lists every
   mutant of the targets into ``OUT/shard-J.sqlite``.
3. ``select_work`` marks as SKIPPED, through cosmic-ray's own filter mechanism
   (a result on the work item), what ``targets.py`` excludes, what the
   selection leaves out (``--files``, ``--sample``), and the other shards'
   share. Every shard computes the same selection; shard J keeps items
   J, J + jobs, ... of it in (file, line, column, operator) order.
4. ``start_exec`` runs ``cosmic-ray exec`` (the local distributor) in the
   shard's own tree: for each item it mutates one file of that copy, runs
   ``kill.py`` with the item timeout, and restores the file.
5. ``read_outcomes`` turns the sessions into one ``Outcome`` per mutant.
"""

from __future__ import annotations

import compileall
import json
import os
import py_compile
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkItem, WorkResult
from tests.mutate.targets import EXCLUDED_OPERATORS, Spans, Target, spans_of

KILL_SCRIPT = Path(__file__).with_name("kill.py")
# Environment a mutant's process must not inherit: another paxon on the path,
# or coverage measurement started from a .pth hook (slows every seed).
_ENV_DROPPED = ("PYTHONPATH", "COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")


@dataclass(frozen=True, slots=True)
class Selection:
    """Which in-scope mutants this run tests."""

    files: tuple[str, ...] = ()  # paths relative to the checkout; empty: every target
    operators: str | None = None  # a regex the operator name must match (search)
    sample: int | None = None
    sample_seed: int = 0
    # Only these mutants, as (file, line, column, operator, occurrence): a report's survivors.
    mutants: tuple[tuple[str, int, int, str, int], ...] = ()


@dataclass(slots=True)
class SelectionCounts:
    work_items: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    in_scope: int = 0
    selected: int = 0
    this_shard: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one mutant (one cosmic-ray work item)."""

    file: str
    line: int
    col: int
    operator: str
    occurrence: int
    function: str | None
    status: str  # killed, timeout, survived, error, invalid, or skipped
    detail: str  # the kill's reason, the skip's reason, or the error
    diff: str
    verdict: dict[str, Any] | None


def prepare_tree(root: Path, tree: Path) -> None:
    """A fresh copy of ``root/src`` at ``tree/src``, compiled to checked-hash .pyc files."""
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(
        root / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    compileall.compile_dir(
        tree / "src",
        quiet=1,
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )


def write_config(
    path: Path, targets: list[Target], *, test_command: list[str], timeout_s: float
) -> None:
    """A cosmic-ray config: module paths relative to the tree, the local distributor."""
    modules = ", ".join(json.dumps(target.path) for target in targets)
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = [{modules}]\n"
        f"timeout = {timeout_s:.1f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(subprocess.list2cmdline(test_command))}\n"
        "\n[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )


def test_command(budget_spec: str, seed_timeout_s: float) -> list[str]:
    """The command cosmic-ray runs in a tree for each mutant (see ``kill.py``)."""
    return [
        sys.executable,
        str(KILL_SCRIPT),
        "--src",
        "src",
        "--budget",
        budget_spec,
        "--seed-timeout",
        f"{seed_timeout_s:.1f}",
    ]


def init_session(tree: Path, config: Path, session: Path, log: IO[str]) -> None:
    _cosmic_ray(["init", "--force", str(config), str(session)], tree, log)


def select_work(
    session: Path,
    tree: Path,
    targets: list[Target],
    selection: Selection,
    *,
    shard: int,
    shards: int,
) -> SelectionCounts:
    """Mark as SKIPPED every pending item this shard must not run; count why."""
    by_path = {target.path: target for target in targets}
    spans: dict[str, Spans] = {}
    excluded_operator = re.compile("|".join(f"(?:{pattern})" for pattern in EXCLUDED_OPERATORS))
    chosen_operator = re.compile(selection.operators) if selection.operators else None
    only = set(selection.mutants)
    counts = SelectionCounts()
    skip: dict[str, str] = {}
    scope: list[tuple[tuple[str, int, int, str, int], str]] = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in db.pending_work_items:
            counts.work_items += 1
            (mutation,) = item.mutations
            path = str(mutation.module_path)
            if path not in spans:
                spans[path] = spans_of((tree / path).read_text(), by_path[path])
            line, col = mutation.start_pos
            reason = spans[path].verdict(line, col)
            if reason is None and excluded_operator.match(mutation.operator_name):
                reason = "operator not used"
            if reason is not None:
                counts.excluded[reason] += 1
                skip[item.job_id] = f"excluded: {reason}"
                continue
            counts.in_scope += 1
            key = (path, line, col, mutation.operator_name, mutation.occurrence)
            if (
                (selection.files and path not in selection.files)
                or (chosen_operator and not chosen_operator.search(mutation.operator_name))
                or (only and key not in only)
            ):
                skip[item.job_id] = "not selected"
                continue
            scope.append((key, item.job_id))
        scope.sort()
        if selection.sample is not None and selection.sample < len(scope):
            draw = random.Random(selection.sample_seed)
            picked = draw.sample(range(len(scope)), selection.sample)
            for index in set(range(len(scope))) - set(picked):
                skip[scope[index][1]] = "not sampled"
            scope = [scope[index] for index in sorted(picked)]
        counts.selected = len(scope)
        for index, (_, job_id) in enumerate(scope):
            if index % shards != shard:
                skip[job_id] = "another shard"
        counts.this_shard = counts.selected - sum(
            1 for reason in skip.values() if reason == "another shard"
        )
        by_reason: dict[str, list[str]] = {}
        for job_id, reason in skip.items():
            by_reason.setdefault(reason, []).append(job_id)
        for reason, job_ids in by_reason.items():
            skipped = WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=reason)
            db.set_multiple_results(job_ids, skipped)
    return counts


def start_exec(tree: Path, config: Path, session: Path, log: IO[str]) -> subprocess.Popen[bytes]:
    """``cosmic-ray exec`` for one shard, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "cosmic_ray.cli", "exec", str(config), str(session)],
        cwd=tree,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean_env(),
    )


def progress(session: Path) -> tuple[int, Counter[str]]:
    """(items still to run, statuses so far) of one shard; readable while it runs."""
    statuses: Counter[str] = Counter()
    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = db.num_work_items - db.num_results
        for _job_id, result in db.results:
            if result.worker_outcome is not WorkerOutcome.SKIPPED:
                statuses[_status(result)[0]] += 1
    return pending, statuses


def read_outcomes(session: Path) -> list[Outcome]:
    """One ``Outcome`` per work item of the session, skipped items included."""
    outcomes = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            outcomes.append(_outcome(item, result))
    return outcomes


def _outcome(item: WorkItem, result: WorkResult) -> Outcome:
    (mutation,) = item.mutations
    status, detail, verdict = _status(result)
    return Outcome(
        file=str(mutation.module_path),
        line=mutation.start_pos[0],
        col=mutation.start_pos[1],
        operator=mutation.operator_name,
        occurrence=mutation.occurrence,
        function=mutation.definition_name,
        status=status,
        detail=detail,
        diff=result.diff or "",
        verdict=verdict,
    )


def _status(result: WorkResult) -> tuple[str, str, dict[str, Any] | None]:
    """(status, detail, kill.py's verdict) of one result."""
    output = (result.output or "").strip()
    if result.worker_outcome is WorkerOutcome.SKIPPED:
        return "skipped", output, None
    if result.worker_outcome is not WorkerOutcome.NORMAL:
        return "error", f"cosmic-ray worker {result.worker_outcome.value}: {output[-300:]}", None
    if output == "timeout":  # cosmic-ray's own item timeout
        return "timeout", "the whole budget ran past the item timeout", None
    verdict = last_json_line(output)
    if verdict is None:
        return "error", f"no verdict from kill.py: {output[-300:]}", None
    kind = verdict.get("verdict")
    where = f"seed {verdict.get('seed')} ({verdict.get('group')})"
    if kind == "survived" and result.test_outcome is TestOutcome.SURVIVED:
        return "survived", f"passed {verdict.get('seeds_run')} seeds", verdict
    if kind == "exception" and verdict.get("seed") is None:
        if str(verdict.get("detail")).startswith("SyntaxError"):
            # cosmic-ray mutated a match pattern or a bare `*`: no program, no kill.
            return "invalid", f"does not compile: {verdict.get('detail')}", verdict
        return "killed", f"exception at import: {verdict.get('detail')}", verdict
    if kind in ("violation", "exception"):
        return "killed", f"{kind} at {where}: {verdict.get('detail')}", verdict
    if kind == "hang":
        return "timeout", f"hang at {where}", verdict
    return "error", f"unexpected verdict {verdict}", verdict


def last_json_line(output: str) -> dict[str, Any] | None:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except json.JSONDecodeError:
                return None
            return found if isinstance(found, dict) else None
    return None


def _cosmic_ray(arguments: list[str], cwd: Path, log: IO[str]) -> None:
    command = [sys.executable, "-m", "cosmic_ray.cli", *arguments]
    done = subprocess.run(
        command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=clean_env(), check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cosmic-ray {arguments[0]} failed (exit {done.returncode}); see log")


def clean_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in _ENV_DROPPED}
