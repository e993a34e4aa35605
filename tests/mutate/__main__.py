"""``python -m tests.mutate``: the mutation score of the simulator (``make mutate``).

Examples::

    python -m tests.mutate                                   # every target, default budget
    python -m tests.mutate --sample 40 --sample-seed 1       # a quick look (make mutate-quick)
    python -m tests.mutate --files src/paxon/protocol/replica.py --sample 60 --jobs 1
    python -m tests.mutate --survivors-of .scratch/mutate --budget 3x100,5x50 --out DIR
    python -m tests.mutate --resume                          # go on with an interrupted run
    python -m tests.mutate --report --out DIR                # rewrite the report of a run
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(_ROOT), str(_ROOT / "src")]  # this checkout's paxon, not an installed one

from tests.mutate.budget import DEFAULT_SPEC  # noqa: E402
from tests.mutate.run import ROOT, Options, run, write_report  # noqa: E402
from tests.mutate.session import Selection  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m tests.mutate",
        description="Mutate protocol/ and storage recovery; count what the simulator kills.",
    )
    parser.add_argument(
        "--budget",
        default=DEFAULT_SPEC,
        help=(
            "seed budget: NODESxCOUNT, swarmxCOUNT, reconfigxCOUNT, leasexCOUNT, splitxCOUNT, "
            "lagxCOUNT, deposedxCOUNT, diskxCOUNT, rollxCOUNT (comma-separated) or module:name "
            f"(default {DEFAULT_SPEC})"
        ),
    )
    parser.add_argument("--files", nargs="+", default=[], metavar="PATH", help="only these targets")
    parser.add_argument("--operators", metavar="REGEX", help="only operators matching this")
    parser.add_argument("--sample", type=int, metavar="N", help="a random N of the selected")
    parser.add_argument("--sample-seed", type=int, default=0, metavar="S")
    parser.add_argument("--jobs", type=int, default=2, help="workers, one tree copy each (2)")
    parser.add_argument("--out", type=Path, default=ROOT / ".scratch/mutate", metavar="DIR")
    parser.add_argument("--seed-timeout", type=float, metavar="SECONDS", help="a seed hangs past")
    parser.add_argument("--item-timeout", type=float, metavar="SECONDS", help="a mutant hangs past")
    parser.add_argument(
        "--survivors-of",
        type=Path,
        metavar="DIR",
        help="only the survivors of the run in DIR (to try them with a larger budget)",
    )
    parser.add_argument("--resume", action="store_true", help="run what an earlier run left")
    parser.add_argument("--report", action="store_true", help="only rewrite the report in --out")
    parser.add_argument("--progress", type=float, default=60.0, metavar="SECONDS")
    args = parser.parse_args(arguments)
    if args.jobs < 1 or (args.sample is not None and args.sample < 1):
        parser.error("--jobs and --sample must be >= 1")
    files, mutants = tuple(args.files), ()
    if args.survivors_of is not None:
        mutants = survivors_of(args.survivors_of)
        files = files or tuple(sorted({mutant[0] for mutant in mutants}))
    options = Options(
        budget=args.budget,
        selection=Selection(
            files=files,
            operators=args.operators,
            sample=args.sample,
            sample_seed=args.sample_seed,
            mutants=mutants,
        ),
        jobs=args.jobs,
        out=args.out.resolve(),
        seed_timeout_s=args.seed_timeout,
        item_timeout_s=args.item_timeout,
        resume=args.resume,
        progress_s=args.progress,
        command=shlex.join(["python", "-m", "tests.mutate", *arguments]),
    )
    # A plain SIGTERM would leave the workers running; as SystemExit, run() stops them first.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    if args.report:
        write_report(options.out)
    else:
        run(options)
    return 0


def survivors_of(out: Path) -> tuple[tuple[str, int, int, str, int], ...]:
    """The survivors listed in ``out/report.json``, as mutant keys."""
    report = json.loads((out / "report.json").read_text())
    keys = []
    for entry in report["survivors"]:
        path, _, line = entry["where"].rpartition(":")
        operator = f"core/{entry['operator']}"
        keys.append((path, int(line), entry["col"], operator, entry["occurrence"]))
    if not keys:
        raise SystemExit(f"mutate: {out / 'report.json'} lists no survivor")
    return tuple(keys)


if __name__ == "__main__":
    sys.exit(main())
