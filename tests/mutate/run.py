"""One mutation run, start to end: baseline, sessions, shards in parallel, report.

``run(options)`` is what ``python -m tests.mutate`` and ``make mutate`` call.
Limits, written down:
- seed timeout (a hung seed): by default 20 times the slowest seed of the
  clean baseline, at least 10 s;
- item timeout (cosmic-ray kills the mutant's whole process): by default
  3 times the clean budget plus 60 s; past it the mutant counts as a timeout;
- a survivor costs one clean budget of CPU plus about one second of start-up,
  so the budget and the number of mutants decide the run time; the baseline
  prints the figure to multiply by.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO

from tests.mutate import report as reporting
from tests.mutate import session as sessions
from tests.mutate.budget import DEFAULT_SPEC, parse_budget
from tests.mutate.targets import Target, targets

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Options:
    budget: str = DEFAULT_SPEC
    selection: sessions.Selection = field(default_factory=sessions.Selection)
    jobs: int = 2
    out: Path = ROOT / ".scratch/mutate"
    seed_timeout_s: float | None = None
    item_timeout_s: float | None = None
    resume: bool = False
    progress_s: float = 60.0
    command: str = ""


def run(options: Options, *, root: Path = ROOT, echo: TextIO = sys.stdout) -> dict[str, Any]:
    """Run the selected mutants against the simulator; write and return the report."""
    started = time.monotonic()
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "run.json"
    selection = options.selection
    if options.resume:
        state = json.loads(state_path.read_text())
        selection = _selection(state["selection"])
    chosen = _chosen_targets(root, selection)
    fingerprint = _fingerprint(root, chosen)
    if options.resume:
        if state["fingerprint"] != fingerprint:
            raise SystemExit("mutate: the targets changed since that run; start a new one")
        jobs, spec = state["jobs"], state["budget"]
    else:
        for old in [*out.glob("shard-*.sqlite"), *out.glob("report.*")]:
            old.unlink()
        jobs, spec = options.jobs, options.budget
    budget = parse_budget(spec)  # a bad spec fails here, not in every mutant
    trees = [out / f"tree-{shard}" for shard in range(jobs)]
    for tree in trees:
        sessions.prepare_tree(root, tree)
    if not options.resume:
        state = _baseline(trees[0], options, budget.describe(), echo)
        state.update(
            fingerprint=fingerprint,
            jobs=jobs,
            budget=spec,
            started=_now(),
            selection=asdict(selection),
            command=options.command,
        )
        state_path.write_text(json.dumps(state, indent=1))
    print(
        f"budget {spec}: {budget.describe()}; clean run {state['baseline_s']} s; "
        f"seed timeout {state['seed_timeout_s']} s, item timeout {state['item_timeout_s']} s",
        file=echo,
    )
    configs = [out / f"shard-{shard}.toml" for shard in range(jobs)]
    shard_sessions = [out / f"shard-{shard}.sqlite" for shard in range(jobs)]
    with (out / "cosmic-ray.log").open("a") as log:
        if not options.resume:
            command = sessions.test_command(spec, state["seed_timeout_s"])
            for shard, tree in enumerate(trees):
                sessions.write_config(
                    configs[shard], chosen, test_command=command, timeout_s=state["item_timeout_s"]
                )
                sessions.init_session(tree, configs[shard], shard_sessions[shard], log)
                counts = sessions.select_work(
                    shard_sessions[shard], tree, chosen, selection, shard=shard, shards=jobs
                )
            _print_counts(counts, jobs, echo)
        _execute(trees, configs, shard_sessions, log, options.progress_s, echo)
    state["elapsed_s"] = round(state.get("elapsed_s", 0.0) + time.monotonic() - started, 1)
    state_path.write_text(json.dumps(state, indent=1))
    return write_report(out, echo=echo)


def write_report(out: Path, *, echo: TextIO = sys.stdout) -> dict[str, Any]:
    """(Re)write ``out/report.md`` and ``report.json`` from the sessions of a run there."""
    state = json.loads((out / "run.json").read_text())
    shard_sessions = [out / f"shard-{shard}.sqlite" for shard in range(state["jobs"])]
    outcomes = reporting.merge([sessions.read_outcomes(path) for path in shard_sessions])
    keys = ("command", "started", "elapsed_s", "baseline_s", "seed_timeout_s", "item_timeout_s")
    meta = {
        "tool": f"cosmic-ray {version('cosmic-ray')}",
        "budget": state["budget"],
        "budget_seeds": parse_budget(state["budget"]).describe(),
        "jobs": state["jobs"],
        **{key: state.get(key) for key in keys},
        "selection": state["selection"],
    }
    found = reporting.build_report(outcomes, meta)
    json_path, markdown_path = reporting.write_report(found, out)
    print(reporting.summary(found), file=echo)
    print(f"report           {markdown_path} and {json_path.name}", file=echo)
    return found


def _selection(saved: dict[str, Any]) -> sessions.Selection:
    return sessions.Selection(
        files=tuple(saved["files"]),
        operators=saved["operators"],
        sample=saved["sample"],
        sample_seed=saved["sample_seed"],
        mutants=tuple((m[0], m[1], m[2], m[3], m[4]) for m in saved.get("mutants", ())),
    )


def _print_counts(counts: sessions.SelectionCounts, jobs: int, echo: TextIO) -> None:
    excluded = sum(counts.excluded.values())
    print(
        f"mutants: {counts.work_items:,} made, {excluded:,} excluded "
        f"({reporting.reasons(dict(counts.excluded))}), {counts.in_scope:,} in scope, "
        f"{counts.selected:,} selected, on {jobs} worker(s)",
        file=echo,
    )


def _chosen_targets(root: Path, selection: sessions.Selection) -> list[Target]:
    every = targets(root)
    if not selection.files:
        return every
    known = {target.path for target in every}
    unknown = [path for path in selection.files if path not in known]
    if unknown:
        listed = ", ".join(unknown)
        raise SystemExit(f"mutate: not a target: {listed} (see tests/mutate/targets.py)")
    return [target for target in every if target.path in selection.files]


def _baseline(tree: Path, options: Options, described: str, echo: TextIO) -> dict[str, Any]:
    """Run the budget on the clean copy: it must pass; its times set the timeouts."""
    print(f"baseline: {described} on the clean tree ...", file=echo, flush=True)
    generous_s = options.seed_timeout_s or 600.0
    command = sessions.test_command(options.budget, generous_s)
    done = subprocess.run(
        [*command, "--baseline"],
        cwd=tree,
        capture_output=True,
        text=True,
        env=sessions.clean_env(),
        check=False,
    )
    verdict = sessions.last_json_line(done.stdout)
    if done.returncode != 0 or verdict is None or verdict.get("verdict") != "survived":
        raise SystemExit(
            f"mutate: the clean tree fails its own budget, so no mutant can be judged: "
            f"{verdict or done.stdout[-500:] + done.stderr[-2000:]}"
        )
    seconds: list[float] = verdict["seed_s"]
    budget_s = round(sum(seconds), 1)
    return {
        "baseline_s": budget_s,
        "baseline_process_s": verdict["elapsed_s"],
        "seed_timeout_s": options.seed_timeout_s or round(max(10.0, 20 * max(seconds)), 1),
        "item_timeout_s": options.item_timeout_s or round(3 * verdict["elapsed_s"] + 60, 1),
    }


def _execute(
    trees: list[Path],
    configs: list[Path],
    shard_sessions: list[Path],
    log: TextIO,
    progress_s: float,
    echo: TextIO,
) -> None:
    """Run every shard's pending work in parallel; print progress now and then."""
    started = time.monotonic()
    running = [
        sessions.start_exec(tree, config, path, log)
        for tree, config, path in zip(trees, configs, shard_sessions, strict=True)
    ]
    try:
        last = time.monotonic()
        while any(process.poll() is None for process in running):
            time.sleep(0.2)
            if time.monotonic() - last >= progress_s:
                last = time.monotonic()
                _print_progress(shard_sessions, time.monotonic() - started, echo)
    except BaseException:
        for process in running:
            process.terminate()
        for process in running:
            process.wait()
        raise
    failed = [process.args for process in running if process.returncode != 0]
    if failed:
        raise SystemExit(f"mutate: cosmic-ray exec failed: {failed}; see the cosmic-ray.log")


def _print_progress(shard_sessions: list[Path], elapsed_s: float, echo: TextIO) -> None:
    pending = 0
    done: dict[str, int] = {}
    for path in shard_sessions:
        try:
            left, statuses = sessions.progress(path)
        except Exception:  # the database is busy for a moment; the next tick reads it
            return
        pending += left
        for status, count in statuses.items():
            done[status] = done.get(status, 0) + count
    finished = sum(done.values())
    rate = finished / elapsed_s if elapsed_s else 0.0
    eta = f", about {pending / rate / 60:.0f} min left" if rate else ""
    counts = ", ".join(f"{status} {count}" for status, count in sorted(done.items()))
    print(
        f"[{elapsed_s / 60:.1f} min] {finished} done ({counts}), {pending} to go{eta}",
        file=echo,
        flush=True,
    )


def _fingerprint(root: Path, chosen: list[Target]) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / "src").rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    digest.update(repr(chosen).encode())
    return digest.hexdigest()[:16]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
