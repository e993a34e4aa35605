"""``paxon sim``: its flags, and running seeds, a coverage measure or a long run.

The simulator's runner, coverage and long-run modules are imported only when
the command runs: every ``paxon serve`` imports ``paxon.cli``, and their
import is start-up CPU a new member would take from its cluster.
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
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from paxon.cli_common import UsageError, non_negative_int, positive_float, positive_int, share
from paxon.protocol.membership import ALPHA_DEFAULT
from paxon.sim.config import ENGINES, FAULT_KINDS, STORAGE_KINDS, SimConfig

if TYPE_CHECKING:
    from paxon.sim.runner import SeedResult

_Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"


def add_sim_command(commands: _Subcommands) -> None:
    sim = commands.add_parser(
        "sim",
        help="run the deterministic simulator against the protocol core",
        description=(
            "Run seeded simulations of a cluster under faults and check safety "
            "(agreement, durability, validity), liveness after healing, and "
            "linearizability of the client history."
        ),
    )
    sim.add_argument("--seeds", type=positive_int, default=None, help="how many seeds (100)")
    sim.add_argument("--seed", type=non_negative_int, default=None, help="first seed (0)")
    sim.add_argument(
        "--nodes",
        type=int,
        choices=range(1, 8),
        default=None,
        metavar="N",
        help="cluster size, 1 to 7 (default: each swarm seed draws 3 to 7; 3 with --no-swarm)",
    )
    sim.add_argument(
        "--swarm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="each seed draws its own fault mix, rates and protocol knobs (default: on)",
    )
    sim.add_argument(
        "--engine",
        choices=ENGINES,
        default="runtime",
        help="runtime: the real node runtime on simulated I/O (default); "
        "core: the pure core with the simulator's glue (faster)",
    )
    sim.add_argument(
        "--faults",
        type=_fault_list,
        default=frozenset(FAULT_KINDS),
        help=f"comma-separated subset of {','.join(FAULT_KINDS)}, or 'all' or 'none'",
    )
    sim.add_argument(
        "--spares",
        type=int,
        choices=range(0, 8),
        default=0,
        metavar="N",
        help="fixed config: nodes started outside the configuration, for reconfig to add (0)",
    )
    sim.add_argument(
        "--alpha",
        type=positive_int,
        default=ALPHA_DEFAULT,
        help=f"fixed config: a configuration change takes effect this many slots "
        f"after it is chosen ({ALPHA_DEFAULT})",
    )
    sim.add_argument(
        "--wipe-rate",
        type=share,
        default=0.0,
        metavar="P",
        help="fixed config, runtime engine, with the wipe fault: the odds that the run "
        "wipes one voter's disk (0; swarm seeds draw it)",
    )
    sim.add_argument(
        "--removed-cut",
        type=share,
        default=0.0,
        metavar="P",
        help="fixed config, with reconfig: the share of the voters removed that are cut "
        "off until their removal takes effect, so they must be told (0; swarm seeds "
        "draw it)",
    )
    sim.add_argument(
        "--change-restart",
        type=share,
        default=0.0,
        metavar="P",
        help="fixed config, with reconfig: the share of the changes chosen whose window "
        "(chosen, not yet in effect) sees a member restart from a snapshot taken in it (0)",
    )
    sim.add_argument(
        "--spares-join",
        action="store_true",
        help="with reconfig: the spares start as paxon serve --join starts a node, once "
        "added, not from --peers (swarm seeds draw it; this turns it on for all)",
    )
    sim.add_argument(
        "--history-revisions",
        type=positive_int,
        default=None,
        metavar="N",
        help="runtime engine: the revisions of key-value history the leader keeps, so "
        "that it compacts and watchers are refused what was cut (the node's 10,000, "
        "which a run never reaches; swarm seeds draw it; this sets it for all)",
    )
    sim.add_argument(
        "--wipe-window",
        action="store_true",
        help="with the wipe fault: also wipe a voter whose binding is chosen but not yet "
        "known to every member, first when there is one (docs/binding-window.md)",
    )
    sim.add_argument(
        "--lease-reads",
        action="store_true",
        help="every node answers linearizable reads under a leader lease (docs/protocol.md)",
    )
    sim.add_argument(
        "--split-slot",
        action="store_true",
        help="runtime engine: build once two reigns' values at one slot, met by one "
        "Phase 1 (paxon.sim.split_slot); random crashes, pauses and partitions take it "
        "apart: the mutation budget runs it with --no-swarm --nodes 3 "
        "--faults duplicate,reorder,hold",
    )
    sim.add_argument(
        "--lagging-candidate",
        action="store_true",
        help="runtime engine: build once a candidate behind its acceptor by nearly a window "
        "(paxon.sim.lagging_candidate), with that module's small window (2 slots, 4 ahead); "
        "the mutation budget runs it with --no-swarm --nodes 3 --faults duplicate,reorder",
    )
    sim.add_argument(
        "--sync-here",
        action="store_true",
        help="runtime engine: a node syncs its log from its own loop when its disk is idle, "
        "as paxon serve does at low rates (storage/commit.py)",
    )
    sim.add_argument(
        "--drift-max",
        type=float,
        default=None,
        metavar="F",
        help="with the drift fault: clocks run at rates within 1 +- F (0.05, the "
        "replicas' clock_drift_max; above it lease reads are unsafe by design)",
    )
    sim.add_argument("--fault-phase", type=positive_float, default=4.0, metavar="SECONDS")
    sim.add_argument("--heal-phase", type=positive_float, default=6.0, metavar="SECONDS")
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
        "--speed", type=positive_float, default=0.5, help="simulated seconds per second (--watch)"
    )
    sim.add_argument(
        "--jobs",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="worker processes; seeds run in parallel with the same results (default: cores)",
    )
    sim.add_argument(
        "--coverage",
        action="store_true",
        help="measure the branch coverage of protocol/ and storage/ reached by these seeds",
    )
    sim.add_argument(
        "--coverage-html",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --coverage: HTML report",
    )
    sim.add_argument(
        "--hours",
        type=positive_float,
        default=None,
        help="run seeds from --seed (default: drawn from the clock) on --jobs workers this long",
    )


@dataclass(slots=True)
class _SimTotals:
    seeds: int = 0
    steps: int = 0
    commands_chosen: int = 0
    slots_chosen: int = 0
    leader_changes: int = 0
    ops_completed: int = 0
    ops_total: int = 0
    configs_chosen: int = 0
    faults: dict[str, int] = field(default_factory=lambda: {kind: 0 for kind in FAULT_KINDS})
    # The lease holders' leases (runtime engine): granted, renewed, expired, ...
    leases: dict[str, int] = field(default_factory=dict)
    # The lock contenders' and watchers' (runtime engine): grants, fenced writes, events.
    coordination: dict[str, int] = field(default_factory=dict)
    failed: list[SeedResult] = field(default_factory=list)

    def add(self, result: SeedResult) -> None:
        self.seeds += 1
        self.steps += result.steps
        self.commands_chosen += result.commands_chosen
        self.slots_chosen += result.slots_chosen
        self.leader_changes += result.leader_changes
        self.ops_completed += result.ops_completed
        self.ops_total += result.ops_total
        self.configs_chosen += result.configs_chosen
        for kind, count in result.faults.items():
            self.faults[kind] = self.faults.get(kind, 0) + count
        for name, count in result.leases.items():
            self.leases[name] = self.leases.get(name, 0) + count
        for name, count in result.coordination.items():
            self.coordination[name] = self.coordination.get(name, 0) + count
        if not result.ok:
            self.failed.append(result)


def run_sim(args: argparse.Namespace) -> int:
    if args.seed is not None and args.seeds is None:
        seeds = range(args.seed, args.seed + 1)
    else:
        first = args.seed or 0
        seeds = range(first, first + (args.seeds or 100))
    if (args.trace or args.watch) and len(seeds) > 1:
        raise UsageError("paxon sim: --trace and --watch need a single seed (--seed S)")
    _check_sim_modes(args)
    if args.storage == "memory" and args.engine == "runtime":
        raise UsageError("paxon sim: --storage memory needs --engine core")
    if args.lagging_candidate and (args.swarm or args.nodes != 3 or args.engine != "runtime"):
        raise UsageError(
            "paxon sim: --lagging-candidate is a calm run of its own: it needs --no-swarm "
            "--nodes 3 and the runtime engine"
        )
    replica: dict[str, Any] = {}
    if args.lagging_candidate:
        from paxon.sim.lagging_candidate import REPLICA

        replica["replica"] = REPLICA
    try:
        config = SimConfig(
            nodes=args.nodes if args.nodes is not None else (0 if args.swarm else 3),
            spares=args.spares,
            alpha=args.alpha,
            faults=args.faults,
            wipe_rate=args.wipe_rate,
            removed_cut_share=args.removed_cut,
            change_restart_share=args.change_restart,
            spares_join=args.spares_join,
            history_revisions=args.history_revisions,
            wipe_window=args.wipe_window,
            lease_reads=args.lease_reads,
            sync_here=args.sync_here,
            split_slot=args.split_slot,
            lagging_candidate=args.lagging_candidate,
            **replica,
            **({} if args.drift_max is None else {"drift_rate_max": args.drift_max}),
            fault_phase_s=args.fault_phase,
            heal_phase_s=args.heal_phase,
            storage=args.storage,
            engine=args.engine,
            swarm=args.swarm,
        )
    except ValueError as error:  # a combination SimConfig refuses
        raise UsageError(f"paxon sim: {error}") from None
    if args.hours is not None:
        return _run_sim_hours(args, config)
    if args.coverage:
        return _run_sim_coverage(args, seeds, config)
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


def _check_sim_modes(args: argparse.Namespace) -> None:
    if args.coverage_html is not None and not args.coverage:
        raise UsageError("paxon sim: --coverage-html needs --coverage")
    if args.hours is not None and args.seeds is not None:
        raise UsageError("paxon sim: --hours runs seeds until the time is up, not --seeds")
    if args.hours is not None and args.coverage:
        raise UsageError("paxon sim: --hours and --coverage are separate runs")
    if (args.hours is not None or args.coverage) and (args.trace or args.watch):
        raise UsageError("paxon sim: --trace and --watch replay one seed, not a measured run")


def _run_sim_coverage(args: argparse.Namespace, seeds: range, config: SimConfig) -> int:
    from paxon.sim import coverage

    if not args.json and sys.stderr.isatty():
        print(
            f"measuring {len(seeds):,} seeds, --jobs {min(args.jobs, len(seeds))}",
            file=sys.stderr,
        )
    report = coverage.measure(seeds, config, jobs=args.jobs, html_dir=args.coverage_html)
    if args.json:
        print(json.dumps(coverage.report_json(report)))
    else:
        print("\n".join(coverage.report_lines(report)))
    return 0 if report.ok else 1


def _run_sim_hours(args: argparse.Namespace, config: SimConfig) -> int:
    from paxon.sim import longrun

    first_seed = longrun.seed_from_clock() if args.seed is None else args.seed
    drawn = " (drawn from the clock)" if args.seed is None else ""
    print(
        f"paxon sim --hours {args.hours}: seeds from {first_seed}{drawn}, --jobs {args.jobs}",
        file=sys.stderr,
    )

    def on_failure(failure: longrun.SeedFailure) -> None:
        print(f"seed {failure.seed} FAILED: {failure.violations[0]}", file=sys.stderr)
        print(f"  replay: {failure.replay}", file=sys.stderr)

    summary = longrun.run_for(
        args.hours * longrun.SECONDS_PER_HOUR,
        config,
        first_seed=first_seed,
        jobs=args.jobs,
        on_progress=lambda progress: print(longrun.progress_line(progress), file=sys.stderr),
        on_failure=on_failure,
    )
    if args.json:
        print(json.dumps(longrun.summary_json(summary)))
    else:
        print("\n".join(longrun.summary_lines(summary)))
    return 0 if summary.ok else 1


def _results(seeds: range, config: SimConfig, args: argparse.Namespace) -> Iterator[SeedResult]:
    from paxon.sim.runner import run_seed

    if args.jobs == 1 or len(seeds) == 1:
        for seed in seeds:
            yield run_seed(seed, config, trace=args.trace)
        return
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        yield from pool.map(_run_one, seeds, [config] * len(seeds), chunksize=4)


def _run_one(seed: int, config: SimConfig) -> SeedResult:
    from paxon.sim.runner import run_seed

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
    from paxon.sim.runner import replay_command

    return {
        "seeds": totals.seeds,
        "nodes": config.nodes or "3-7",
        "swarm": config.swarm,
        "engine": config.engine,
        "fault_kinds": [kind for kind in FAULT_KINDS if kind in config.faults],
        "steps": totals.steps,
        "steps_per_s": round(totals.steps / elapsed) if elapsed else None,
        "elapsed_s": round(elapsed, 3),
        "chosen": totals.commands_chosen,
        "slots_chosen": totals.slots_chosen,
        "leader_changes": totals.leader_changes,
        "ops_completed": totals.ops_completed,
        "ops_total": totals.ops_total,
        "configs_chosen": totals.configs_chosen,
        "leases": totals.leases,
        "coordination": totals.coordination,
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
    from paxon.sim.runner import replay_command

    faults = ", ".join(f"{kind} {count:,}" for kind, count in totals.faults.items() if count)
    rate = totals.steps / elapsed if elapsed else 0.0
    lines = [
        f"seeds run        {totals.seeds:,} ({config.nodes or '3-7'} nodes, "
        f"{'swarm' if config.swarm else 'fixed'} config, {config.engine} engine)",
        f"simulated steps  {totals.steps:,} ({rate:,.0f} steps/s over {elapsed:.1f} s)",
        f"commands chosen  {totals.commands_chosen:,} in {totals.slots_chosen:,} slots",
        f"client ops       {totals.ops_completed:,} completed of {totals.ops_total:,}",
        f"leader changes   {totals.leader_changes:,}",
        f"faults injected  {faults or 'none'}",
        f"violations       {sum(len(result.violations) for result in totals.failed)}",
    ]
    if totals.configs_chosen:
        lines.insert(-1, f"configs chosen   {totals.configs_chosen:,} (reconfig)")
    if totals.leases.get("granted"):
        leases = ", ".join(f"{name} {count:,}" for name, count in totals.leases.items())
        lines.insert(-1, f"leases           {leases}")
    if any(totals.coordination.values()):
        locks = ", ".join(f"{name} {count:,}" for name, count in totals.coordination.items())
        lines.insert(-1, f"locks, watches   {locks}")
    print("\n".join(lines))
    for result in totals.failed:
        print(f"\nseed {result.seed} FAILED:")
        for violation in result.violations[:5]:
            print(f"  {violation}")
        if len(result.violations) > 5:
            print(f"  ... and {len(result.violations) - 5} more")
        print(f"  replay: {replay_command(result.seed, config)}")


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
