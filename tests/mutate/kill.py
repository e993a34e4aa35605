"""The test a mutant must pass: the simulator's seeds, stopping at the first that fails.

cosmic-ray runs this once per mutant, in a copy of the tree in which it has
mutated one file (the copy's ``src`` goes first on the path; this checkout's
``src`` is never imported):

    python tests/mutate/kill.py --src src --budget 3x20,5x20 --seed-timeout 10

It prints one JSON line, the verdict, and exits 0 when every seed of the
budget passed (the mutant survived) and 1 when one failed. A seed fails on a
violation the simulator reports, on an exception out of the simulator (a
mutant that breaks the import fails here too), or when it runs past
``--seed-timeout`` seconds of wall time (a hang: an endless loop or an event
storm). The process may map at most ``MEMORY_MAX_BYTES``; a mutant that grows
past it raises MemoryError (a kill) instead of pushing the machine into swap.
Exit 2 is a broken setup (the wrong ``paxon`` was imported), never a
kill. ``--baseline`` adds every seed's time to the verdict.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

_STARTED = time.perf_counter()
_ROOT = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1
MEMORY_MAX_BYTES = 4 << 30  # a clean seed maps well under 200 MB

Verdict = dict[str, Any]


class SeedHang(KeyboardInterrupt):
    """The wall-clock alarm. Not an ``Exception``, so no ``except Exception`` of a
    mutant eats it; and a ``KeyboardInterrupt``, because an asyncio task step keeps
    any other ``BaseException`` as the task's result and the loop runs on: a
    mutant's endless loop inside the simulated runtime's tasks then hung the seed
    for good (s14 row 30, ``break`` to ``continue`` in the learn walk). The timer
    also re-fires each second, in case one raise is still swallowed somewhere."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, help="the directory holding the mutated paxon")
    parser.add_argument("--budget", required=True, help="a seed budget spec (budget.py)")
    parser.add_argument("--seed-timeout", type=float, required=True, metavar="SECONDS")
    parser.add_argument("--baseline", action="store_true", help="also report each seed's time")
    args = parser.parse_args(argv)
    _die_with_parent()
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_MAX_BYTES, MEMORY_MAX_BYTES))
    src = Path(args.src).resolve()
    sys.path[:0] = [str(src), str(_ROOT)]
    verdict = run_budget(src, args.budget, args.seed_timeout, baseline=args.baseline)
    verdict["elapsed_s"] = round(time.perf_counter() - _STARTED, 3)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    verdict["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
    print(json.dumps(verdict), flush=True)
    if verdict["verdict"] == "setup-error":
        return 2
    return 0 if verdict["verdict"] == "survived" else 1


def run_budget(src: Path, spec: str, seed_timeout_s: float, *, baseline: bool = False) -> Verdict:
    """Run the budget's seeds against the ``paxon`` under ``src``; the first failure ends it."""
    try:
        from tests.mutate.budget import parse_budget

        import paxon
        from paxon.sim import run_seed

        budget = parse_budget(spec)
    except Exception as error:  # a mutant may break anything at import time
        return {"verdict": "exception", "seed": None, "detail": _describe(error)}
    if not Path(paxon.__file__).resolve().is_relative_to(src):
        return {"verdict": "setup-error", "detail": f"paxon came from {paxon.__file__}, not {src}"}
    signal.signal(signal.SIGALRM, _on_alarm)
    seconds: list[float] = []
    for group, seed in budget.schedule():
        where = {"group": group.name, "seed": seed, "seeds_run": len(seconds) + 1}
        started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, seed_timeout_s, 1.0)
        hung = False
        try:
            result = run_seed(seed, group.config(seed))
        except SeedHang:
            hung = True
        except Exception as error:  # any exception out of the simulator kills the mutant
            return {"verdict": "exception", **where, "detail": _describe(error)}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if hung:
            # A task the alarm ended holds SeedHang in a cycle with its frames: its
            # finalizer logs it with a traceback, whose carets parse the source with
            # ``ast``. Collected now, not by a collection inside a later
            # ``ast.parse``, whose shared state the nested parse would corrupt
            # (CPython 3.11: "AST constructor recursion depth mismatch").
            gc.collect()
            return {"verdict": "hang", **where, "detail": f"seed ran past {seed_timeout_s} s"}
        seconds.append(round(time.perf_counter() - started, 3))
        if not result.ok:
            return {"verdict": "violation", **where, "detail": result.violations[0][:300]}
    verdict: Verdict = {"verdict": "survived", "seeds_run": len(seconds)}
    if baseline:
        verdict["seed_s"] = seconds
    return verdict


def _die_with_parent() -> None:
    """Linux: end with cosmic-ray's worker, which starts us in a session of our own."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: an interrupted run leaves us to finish
        pass


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise SeedHang


def _describe(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}: {error}"[:240] + where


if __name__ == "__main__":
    sys.exit(main())
