"""Flip every guard the coverage marks call one-way or unreachable, and judge each flip.

    python -m tests.mutate.flips [--jobs 2] [--only PATH:LINE,...] [--budget SPEC]
    python -m tests.mutate.flips --unmarked [--files protocol/replica.py,...]

A line marked ``# sim: one-way`` or ``# sim: unreachable`` says the simulator
never takes one side of it. Mutation operators mostly widen or narrow such a
guard, which changes nothing the simulator can reach; negating it does: the
side every run takes becomes the exit. So each negated guard must be killed
by the simulator alone, or it shows a duty no rule states (session 15 found
three: a follower handed leadership that does not stand, a learner that
never asks for the log, a prober that drops a granted probe).

Every single-line ``if``/``elif`` so marked in the mutation scope
(``targets.py``: ``protocol/`` and the storage recovery files) becomes
``if not (CONDITION):`` in a copy of ``src``, judged by ``kill.py`` with the
default budget; one JSON line per flip on stdout, in the order of the files.

``--unmarked`` flips the other guards instead: every single-line ``if``/``elif``
of ``protocol/`` (or ``--files``) that carries no mark, whose both sides the
default seeds take (``paxon sim --coverage``). A survivor there is a guard
whose every outcome the checkers accept: a duty no rule states, or a guard
that changes nothing (equivalent).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.mutate.budget import DEFAULT_SPEC
from tests.mutate.rerun import DEF_LINE, judge_line

ROOT = Path(__file__).resolve().parents[2]
FILES = (
    *sorted((ROOT / "src/paxon/protocol").glob("*.py")),
    *(
        ROOT / f"src/paxon/storage/{name}"
        for name in ("recovery.py", "segments.py", "codec.py", "storage.py", "wal.py")
    ),
)
MARKED_GUARD = re.compile(r"^(\s*)(if|elif) (.+):(\s*# sim: (?:one-way|unreachable).*)$")
UNMARKED_GUARD = re.compile(r"^(\s*)(if|elif) (.+):(\s*(?:#(?! sim: (?:one-way|unreachable)).*)?)$")
DEFAULT_BUDGET = DEFAULT_SPEC
# The judge, not the accused (targets.py): flipping it is a false alarm or nothing.
ORACLE = frozenset({"check_invariants"})


@dataclass(frozen=True, slots=True)
class Flip:
    path: str  # relative to the tree
    line: int  # 1-based
    original: str
    mutated: str


def marked_guards(
    files: tuple[Path, ...] = FILES, *, marked: bool = True, root: Path = ROOT
) -> list[Flip]:
    """One flip per single-line guard of ``files``, marked or (``marked=False``) not;
    paths relative to ``root``."""
    pattern = MARKED_GUARD if marked else UNMARKED_GUARD
    flips = []
    for path in files:
        function = ""
        for index, text in enumerate(path.read_text().splitlines()):
            defined = DEF_LINE.match(text)
            if defined:
                function = defined[1]
            match = pattern.match(text)
            if match and function not in ORACLE:
                indent, keyword, condition, comment = match.groups()
                mutated = f"{indent}{keyword} not ({condition}):{comment}"
                flips.append(Flip(str(path.relative_to(root)), index + 1, text, mutated))
    return flips


def judge(flip: Flip, budget: str) -> dict[str, object]:
    """Apply ``flip`` to a copy of ``src`` and run ``kill.py`` on it."""
    with tempfile.TemporaryDirectory(prefix="paxon-flip-") as work:
        verdict = judge_line(flip.path, flip.line - 1, flip.mutated, budget, Path(work))
    if isinstance(verdict, str):
        verdict = {"verdict": "error", "why": verdict}
    return {"where": f"{flip.path}:{flip.line}", "original": flip.original.strip(), **verdict}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", help="PATH:LINE,... (as printed in 'where')")
    parser.add_argument("--budget", default=DEFAULT_BUDGET)
    parser.add_argument("--unmarked", action="store_true", help="flip the unmarked guards")
    parser.add_argument("--files", help="paths under src/paxon/, comma-separated")
    options = parser.parse_args(argv)
    files = FILES
    if options.files:
        files = tuple(ROOT / "src/paxon" / name for name in options.files.split(","))
    elif options.unmarked:
        files = tuple(sorted((ROOT / "src/paxon/protocol").glob("*.py")))
    flips = marked_guards(files, marked=not options.unmarked)
    if options.only:
        wanted = set(options.only.split(","))
        flips = [flip for flip in flips if f"{flip.path}:{flip.line}" in wanted]
    print(f"{len(flips)} guards to flip", file=sys.stderr)
    with ThreadPoolExecutor(options.jobs) as pool:
        for verdict in pool.map(lambda flip: judge(flip, options.budget), flips):
            print(json.dumps(verdict), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
