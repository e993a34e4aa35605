"""Re-run the survivors a report lists against the current code, one at a time.

    python -m tests.mutate.rerun docs/mutation/sample-120-s14.md 1,4,5 [BUDGET]

For each chosen row of the report's survivor table (numbered from 0 in table
order), the mutated line is found in today's file by its text (the match
nearest the reported line number), applied to a copy of ``src`` under
``.scratch/rerun/ROW``, and judged by ``kill.py`` with BUDGET (default
``budget.DEFAULT_SPEC``,
``swarmx20,reconfigx8,leasex8,splitx2,lagx2,deposedx4,diskx4,rollx4,historyx2,removedx2,installx2,restartx2``).
One JSON line per row; "line-gone" when the original text is no longer in the
file. Mutants that name ``CosmicRayTestingException`` cannot be applied by hand
and are skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.mutate.budget import DEFAULT_SPEC

ROOT = Path(__file__).resolve().parents[2]
_ROW = re.compile(r"\| (src/[^:]+):(\d+) \| *(\w*) *\| (\w+) \| `(.*)` \| `(.*)` \|[^|]*\|$")
DEF_LINE = re.compile(r"\s*(?:async\s+)?def (\w+)\(")


def survivors(report: Path) -> list[tuple[str, int, str, str, str, str]]:
    """(path, line, function, operator, original, mutated) per survivor row."""
    rows = []
    for line in report.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            rows.append((match[1], int(match[2]), match[3], match[4], match[5], match[6]))
    return rows


def line_of(lines: list[str], line_no: int, function: str, original: str) -> int | None:
    """The 0-based index of the line to mutate: one whose text is ``original``,
    inside ``function`` when any is (the same text may stand in another
    function since the sample ran: ``recent = ...`` in ``serving`` and in
    ``transfer_leadership``), nearest the reported ``line_no``; None if gone."""
    hits = [n for n, text in enumerate(lines) if text.strip() == original]
    inside = [n for n in hits if function and _function_at(lines, n) == function]
    hits = inside or hits
    return min(hits, key=lambda n: abs(n + 1 - line_no)) if hits else None


def _function_at(lines: list[str], index: int) -> str:
    """The name of the innermost ``def`` at or above line ``index`` (0-based)."""
    for text in reversed(lines[: index + 1]):
        match = DEF_LINE.match(text)
        if match:
            return match[1]
    return ""


def main(argv: list[str]) -> int:
    report, picked = Path(argv[0]), argv[1]
    budget = argv[2] if len(argv) > 2 else DEFAULT_SPEC
    rows = survivors(report)
    chosen = range(len(rows)) if picked == "all" else [int(n) for n in picked.split(",")]
    for index in chosen:
        path, line_no, function, operator, original, mutated = rows[index]
        verdict: dict[str, object] = {"row": index, "operator": operator}
        lines = (ROOT / path).read_text().splitlines(keepends=True)
        at = line_of(lines, line_no, function, original)
        if at is None or "CosmicRayTestingException" in mutated:
            print(json.dumps({**verdict, "where": f"{path}:{line_no}", "verdict": "line-gone"}))
            continue
        work = ROOT / ".scratch/rerun" / str(index)
        shutil.rmtree(work, ignore_errors=True)
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
        verdict["where"] = f"{path}:{at + 1}"
        verdict["result"] = judge_line(path, at, f"{indent}{mutated}", budget, work)
        print(json.dumps(verdict), flush=True)
    return 0


def judge_line(path: str, at: int, text: str, budget: str, work: Path) -> dict[str, Any] | str:
    """Copy ``src`` into ``work``, put ``text`` on line ``at`` (0-based) of
    ``path`` there, and judge that tree with ``kill.py``: its verdict, or the
    tail of its stderr when it printed none."""
    shutil.copytree(ROOT / "src", work / "src")
    lines = (ROOT / path).read_text().splitlines(keepends=True)
    lines[at] = f"{text}\n"
    (work / path).write_text("".join(lines))
    kill = [sys.executable, str(ROOT / "tests/mutate/kill.py"), "--src", str(work / "src")]
    done = subprocess.run(
        [*kill, "--budget", budget, "--seed-timeout", "120"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    answer = done.stdout.strip().splitlines()
    verdict: dict[str, Any] = json.loads(answer[-1]) if answer else {}
    return verdict or done.stderr[-300:]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
