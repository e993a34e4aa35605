"""The mutation score and its survivors, written for the lead to judge.

Statuses of a mutant that ran: ``killed`` (a seed reported a violation, or the
simulator raised), ``timeout`` (a seed hung past the seed timeout, or the
whole budget past the item timeout), ``survived`` (every seed of the budget
passed), ``error`` (the machinery failed; never counted as a kill), ``invalid``
(cosmic-ray made code that does not compile, such as ``&`` in a ``case``
pattern: not a program, so not counted).

    score = (killed + timeout) / (killed + timeout + survived)

A hang counts as a kill: the simulator noticed that the cluster stopped. The
report lists every survivor with its place, the original and the mutated
line, and an empty judgement column: equivalent (no run can tell it from the
original), or a gap the simulator must close.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.mutate.session import Outcome

RAN = ("killed", "timeout", "survived", "error", "invalid")


def merge(shards: list[list[Outcome]]) -> list[Outcome]:
    """One outcome per mutant across the shards: the run one wins over its skips elsewhere."""
    chosen: dict[tuple[str, int, int, str, int], Outcome] = {}
    for outcomes in shards:
        for outcome in outcomes:
            key = (outcome.file, outcome.line, outcome.col, outcome.operator, outcome.occurrence)
            held = chosen.get(key)
            if held is None or (held.status == "skipped" and outcome.status != "skipped"):
                chosen[key] = outcome
    return sorted(chosen.values(), key=lambda o: (o.file, o.line, o.col, o.operator, o.occurrence))


def build_report(outcomes: list[Outcome], meta: dict[str, Any]) -> dict[str, Any]:
    files: dict[str, Counter[str]] = {}
    excluded: Counter[str] = Counter()
    not_run: Counter[str] = Counter()
    for outcome in outcomes:
        counts = files.setdefault(outcome.file, Counter())
        if outcome.status in RAN:
            counts[outcome.status] += 1
        elif outcome.detail.startswith("excluded: "):
            excluded[outcome.detail.removeprefix("excluded: ")] += 1
            counts["excluded"] += 1
        else:
            not_run[outcome.detail] += 1
    totals: Counter[str] = Counter()
    for counts in files.values():
        totals.update(counts)
    cpu: dict[str, list[float]] = {}
    for outcome in outcomes:
        seconds = (outcome.verdict or {}).get("cpu_s")
        if outcome.status in RAN and seconds is not None:
            cpu.setdefault(outcome.status, []).append(seconds)
    return {
        **meta,
        "score": _score(totals),
        "totals": {status: totals[status] for status in (*RAN, "excluded")},
        "files": {
            path: {
                **{status: counts[status] for status in (*RAN, "excluded")},
                "score": _score(counts),
            }
            for path, counts in files.items()
        },
        "cpu_s_mean": {status: round(sum(v) / len(v), 2) for status, v in sorted(cpu.items())},
        "cpu_s_total": round(sum(sum(v) for v in cpu.values()), 1),
        "excluded": dict(excluded),
        "not_run": dict(not_run),
        "survivors": [_listing(o) for o in outcomes if o.status == "survived"],
        "timeouts": [_listing(o) for o in outcomes if o.status == "timeout"],
        "errors": [_listing(o) for o in outcomes if o.status == "error"],
        "killed": [_listing(o) for o in outcomes if o.status == "killed"],
    }


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    json_path, markdown_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    markdown_path.write_text(markdown(report))
    return json_path, markdown_path


def summary(report: dict[str, Any]) -> str:
    totals = report["totals"]
    ran = totals["killed"] + totals["timeout"] + totals["survived"]
    score = report["score"]
    run_total = ran + totals["error"] + totals["invalid"]
    lines = [
        f"mutants run      {run_total:,} (killed {totals['killed']:,}, "
        f"timeout {totals['timeout']:,}, survived {totals['survived']:,}, "
        f"error {totals['error']:,}, invalid {totals['invalid']:,})",
        f"score            {_percent(score)} of {ran:,} killed by the simulator alone",
        f"excluded         {totals['excluded']:,} ({reasons(report['excluded'])})",
        f"CPU per mutant   {_means(report['cpu_s_mean'])}",
    ]
    if report["not_run"]:
        lines.append(f"not run          {reasons(report['not_run'])}")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Mutation score: the simulator alone",
        "",
        f"- tool: {report.get('tool')}; budget `{report.get('budget')}` "
        f"({report.get('budget_seeds')}); seed timeout {report.get('seed_timeout_s')} s, "
        f"item timeout {report.get('item_timeout_s')} s",
        f"- command: `{report.get('command')}`",
        f"- started {report.get('started')}, {report.get('elapsed_s')} s wall "
        f"on {report.get('jobs')} worker(s); clean budget {report.get('baseline_s')} s; "
        f"CPU per mutant {_means(report['cpu_s_mean'])}",
        f"- **score {_percent(report['score'])}** "
        "(killed + timeout over killed + timeout + survived)",
        f"- excluded, not counted: {reasons(report['excluded']) or 'none'}",
        f"- selected out of this run: {reasons(report['not_run']) or 'none'}",
        "",
        "| file | killed | timeout | survived | error | invalid | excluded | score |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path, row in sorted(report["files"].items()):
        lines.append(_row(path, row))
    lines.append(_row("**total**", {**report["totals"], "score": report["score"]}))
    for title, key in (("Survivors", "survivors"), ("Timeouts", "timeouts"), ("Errors", "errors")):
        listed = report[key]
        if not listed:
            continue
        lines += [
            "",
            f"## {title} ({len(listed)})",
            "",
            "| where | function | operator | original | mutated | judgement |",
            "|---|---|---|---|---|---|",
        ]
        for entry in listed:
            lines.append(
                f"| {entry['where']} | {entry['function'] or ''} | {entry['operator']} "
                f"| {_code(entry['original'])} | {_code(entry['mutated'])} | |"
            )
    return "\n".join(lines) + "\n"


def _listing(outcome: Outcome) -> dict[str, Any]:
    original, mutated = _changed_lines(outcome.diff)
    return {
        "where": f"{outcome.file}:{outcome.line}",
        "col": outcome.col,
        "function": outcome.function,
        "operator": outcome.operator.removeprefix("core/"),
        "occurrence": outcome.occurrence,
        "original": original,
        "mutated": mutated,
        "detail": outcome.detail,
        "elapsed_s": (outcome.verdict or {}).get("elapsed_s"),
        "cpu_s": (outcome.verdict or {}).get("cpu_s"),
    }


def _changed_lines(diff: str) -> tuple[str, str]:
    removed, added = [], []
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(line[1:].strip())
        elif line.startswith("+"):
            added.append(line[1:].strip())
    return " / ".join(removed), " / ".join(added)


def _means(means: dict[str, float]) -> str:
    return ", ".join(f"{status} {seconds} s" for status, seconds in means.items()) or "n/a"


def _score(counts: Counter[str]) -> float | None:
    ran = counts["killed"] + counts["timeout"] + counts["survived"]
    return round((counts["killed"] + counts["timeout"]) / ran, 4) if ran else None


def _percent(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.1%}"


def reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {count:,}" for reason, count in sorted(counts.items()))


def _row(path: str, row: dict[str, Any]) -> str:
    cells = " | ".join(str(row[key]) for key in (*RAN, "excluded"))
    return f"| {path} | {cells} | {_percent(row['score'])} |"


def _code(text: str) -> str:
    escaped = text.replace("|", "\\|").replace("`", "'")
    return f"`{escaped}`" if text else ""
