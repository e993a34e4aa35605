"""The ``paxon`` command.

Exit codes follow SPEC.md: 0 success, 1 refused or not satisfied (for ``sim``:
a violation was found), 2 bad usage or bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from paxon import __version__
from paxon.sim.cluster import FAULT_KINDS, STORAGE_KINDS, SimConfig
from paxon.sim.runner import SeedResult, replay_command, run_seed


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:
        # `paxon check` has its own parser in the storage package.
        return _run_check(argv[1:])
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        handler = _COMMANDS[args.command]
        return handler(args)
    except _UsageError as error:
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`); not an error
        return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="paxon", description="Multi-Paxos for Python.")
    parser.add_argument("--version", action="version", version=f"paxon {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    sim = commands.add_parser(
        "sim",
        help="run the deterministic simulator against the protocol core",
        description=(
            "Run seeded simulations of a cluster under faults and check safety "
            "(agreement, durability, validity), liveness after healing, and "
            "linearizability of the client history."
        ),
    )
    sim.add_argument("--seeds", type=_positive_int, default=None, help="how many seeds (100)")
    sim.add_argument("--seed", type=_non_negative_int, default=None, help="first seed (0)")
    sim.add_argument("--nodes", type=int, choices=(3, 5), default=3)
    sim.add_argument(
        "--faults",
        type=_fault_list,
        default=frozenset(FAULT_KINDS),
        help=f"comma-separated subset of {','.join(FAULT_KINDS)}, or 'all' or 'none'",
    )
    sim.add_argument("--fault-phase", type=_positive_float, default=4.0, metavar="SECONDS")
    sim.add_argument("--heal-phase", type=_positive_float, default=6.0, metavar="SECONDS")
    sim.add_argument(
        "--storage",
        choices=STORAGE_KINDS,
        default="wal",
        help="wal: the real write-ahead log on a faulty in-memory file system (default); "
        "memory: records as objects (faster)",
    )
    sim.add_argument("--trace", action="store_true", help="print the readable event trace")
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.add_argument(
        "--watch", action="store_true", help="play one seed in slow motion as a live table"
    )
    sim.add_argument(
        "--speed", type=_positive_float, default=0.5, help="simulated seconds per second (--watch)"
    )
    sim.add_argument(
        "--jobs",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="worker processes; seeds run in parallel with the same results (default: cores)",
    )
    commands.add_parser(
        "check",
        help="verify a data directory offline (paxon check --data-dir DIR [--json])",
        add_help=False,
    )
    return parser


def _run_check(argv: list[str]) -> int:
    from paxon.storage.check import main as check_main

    return check_main(argv)


# ----------------------------------------------------------------------- sim


@dataclass(slots=True)
class _SimTotals:
    seeds: int = 0
    steps: int = 0
    commands_chosen: int = 0
    slots_chosen: int = 0
    leader_changes: int = 0
    ops_completed: int = 0
    ops_total: int = 0
    faults: dict[str, int] = field(default_factory=lambda: {kind: 0 for kind in FAULT_KINDS})
    failed: list[SeedResult] = field(default_factory=list)

    def add(self, result: SeedResult) -> None:
        self.seeds += 1
        self.steps += result.steps
        self.commands_chosen += result.commands_chosen
        self.slots_chosen += result.slots_chosen
        self.leader_changes += result.leader_changes
        self.ops_completed += result.ops_completed
        self.ops_total += result.ops_total
        for kind, count in result.faults.items():
            self.faults[kind] = self.faults.get(kind, 0) + count
        if not result.ok:
            self.failed.append(result)


def _run_sim(args: argparse.Namespace) -> int:
    if args.seed is not None and args.seeds is None:
        seeds = range(args.seed, args.seed + 1)
    else:
        first = args.seed or 0
        seeds = range(first, first + (args.seeds or 100))
    if (args.trace or args.watch) and len(seeds) > 1:
        raise _UsageError("paxon sim: --trace and --watch need a single seed (--seed S)")
    config = SimConfig(
        nodes=args.nodes,
        faults=args.faults,
        fault_phase_s=args.fault_phase,
        heal_phase_s=args.heal_phase,
        storage=args.storage,
    )
    if args.watch:
        from paxon.sim.watch import watch

        return 1 if watch(seeds[0], config, speed=args.speed) else 0
    totals = _SimTotals()
    started = time.perf_counter()
    for result in _progress(_results(seeds, config, args), len(seeds), quiet=args.json):
        totals.add(result)
        if args.trace:
            for line in result.trace:
                print(line)
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps(_sim_json(totals, config, elapsed)))
    else:
        _print_sim_summary(totals, config, elapsed)
    return 1 if totals.failed else 0


def _results(seeds: range, config: SimConfig, args: argparse.Namespace) -> Iterator[SeedResult]:
    if args.jobs == 1 or len(seeds) == 1:
        for seed in seeds:
            yield run_seed(seed, config, trace=args.trace)
        return
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        yield from pool.map(_run_one, seeds, [config] * len(seeds), chunksize=4)


def _run_one(seed: int, config: SimConfig) -> SeedResult:
    return run_seed(seed, config)


def _progress(results: Iterator[SeedResult], total: int, *, quiet: bool) -> Iterator[SeedResult]:
    if quiet or total == 1 or not sys.stderr.isatty():
        yield from results
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress("simulating", *columns, transient=True) as progress:
        task = progress.add_task("seeds", total=total)
        for result in results:
            progress.advance(task)
            yield result


def _sim_json(totals: _SimTotals, config: SimConfig, elapsed: float) -> dict[str, object]:
    return {
        "seeds": totals.seeds,
        "nodes": config.nodes,
        "fault_kinds": [kind for kind in FAULT_KINDS if kind in config.faults],
        "steps": totals.steps,
        "steps_per_s": round(totals.steps / elapsed) if elapsed else None,
        "elapsed_s": round(elapsed, 3),
        "chosen": totals.commands_chosen,
        "slots_chosen": totals.slots_chosen,
        "leader_changes": totals.leader_changes,
        "ops_completed": totals.ops_completed,
        "ops_total": totals.ops_total,
        "faults": totals.faults,
        "violations": sum(len(result.violations) for result in totals.failed),
        "failed_seeds": [
            {
                "seed": result.seed,
                "violations": result.violations,
                "replay": replay_command(result.seed, config),
            }
            for result in totals.failed
        ],
    }


def _print_sim_summary(totals: _SimTotals, config: SimConfig, elapsed: float) -> None:
    faults = ", ".join(f"{kind} {count:,}" for kind, count in totals.faults.items() if count)
    rate = totals.steps / elapsed if elapsed else 0.0
    lines = [
        f"seeds run        {totals.seeds:,} ({config.nodes} nodes)",
        f"simulated steps  {totals.steps:,} ({rate:,.0f} steps/s over {elapsed:.1f} s)",
        f"commands chosen  {totals.commands_chosen:,} in {totals.slots_chosen:,} slots",
        f"client ops       {totals.ops_completed:,} completed of {totals.ops_total:,}",
        f"leader changes   {totals.leader_changes:,}",
        f"faults injected  {faults or 'none'}",
        f"violations       {sum(len(result.violations) for result in totals.failed)}",
    ]
    print("\n".join(lines))
    for result in totals.failed:
        print(f"\nseed {result.seed} FAILED:")
        for violation in result.violations[:5]:
            print(f"  {violation}")
        if len(result.violations) > 5:
            print(f"  ... and {len(result.violations) - 5} more")
        print(f"  replay: {replay_command(result.seed, config)}")


# ------------------------------------------------------------ argument types


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _fault_list(text: str) -> frozenset[str]:
    if text == "all":
        return frozenset(FAULT_KINDS)
    if text == "none":
        return frozenset()
    kinds = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(kinds - set(FAULT_KINDS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fault kind(s) {', '.join(unknown)}; choose from {', '.join(FAULT_KINDS)}"
        )
    return kinds


_COMMANDS = {"sim": _run_sim}
