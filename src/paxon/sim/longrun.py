"""Long runs (``paxon sim --hours H``): seeds on every core until the time is up.

Contract:

- Seeds are handed out in order from ``first_seed``; whichever worker is free
  takes the next unused seed. Nothing new starts once the time is up (or after
  Ctrl-C); the seeds already started finish and are counted, so the seeds run
  are always exactly ``first_seed .. first_seed + seeds_run - 1``.
- Each seed runs with ``config_for(seed, base_config)``: the one place that
  decides a seed's configuration, and the one line to change for swarm runs.
- A failing seed is reported as soon as it finishes (``on_failure``) and again
  in the summary, each with the command that replays it. A seed whose run
  raises fails too (the rule ``raised``), and the run goes on.
- ``on_progress`` is called every ``progress_every_s`` seconds of wall time.
- Ctrl-C (KeyboardInterrupt in the caller's process) stops the hand-out, waits
  for the seeds in flight and returns the summary with ``interrupted`` set.
  Workers ignore SIGINT, so a Ctrl-C at the terminal does not kill them mid-seed;
  a second Ctrl-C while waiting is not caught. With ``jobs == 1`` seeds run in
  this process, and the seed that a Ctrl-C interrupts is dropped, not counted.

Limits: at most ``jobs`` seeds are in flight at once, one per worker, so none
waits in a queue when the time is up: the run ends at most one seed's time late.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from paxon.sim.config import FAULT_KINDS, SimConfig
from paxon.sim.runner import SeedResult, replay_command, run_seed

SECONDS_PER_HOUR = 3600.0


def config_for(seed: int, base_config: SimConfig) -> SimConfig:
    """The configuration seed ``seed`` is run with: the flags' config.

    With ``swarm`` on (the default), ``run_seed`` draws the seed's own
    configuration from it (``paxon.sim.swarm``), so the replay command, which
    carries ``--swarm``, replays the same draw."""
    return base_config


def seed_from_clock() -> int:
    """A first seed drawn from the wall clock, for runs that were given none."""
    return time.time_ns() % 2**32


@dataclass(frozen=True, slots=True)
class SeedFailure:
    seed: int
    violations: tuple[str, ...]
    replay: str


@dataclass(slots=True)
class LongRunSummary:
    first_seed: int
    jobs: int
    base_config: SimConfig
    seeds_run: int = 0
    steps: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    failures: list[SeedFailure] = field(default_factory=list)

    @property
    def seeds_per_hour(self) -> float:
        return self.seeds_run * SECONDS_PER_HOUR / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def run_for(
    duration_s: float,
    base_config: SimConfig,
    *,
    first_seed: int,
    jobs: int,
    progress_every_s: float = 60.0,
    on_progress: Callable[[LongRunSummary], None] | None = None,
    on_failure: Callable[[SeedFailure], None] | None = None,
) -> LongRunSummary:
    """Run seeds from ``first_seed`` on ``jobs`` processes for ``duration_s`` seconds."""
    if duration_s <= 0 or jobs < 1 or progress_every_s <= 0:
        raise ValueError("duration_s and progress_every_s must be > 0 and jobs >= 1")
    run = _LongRun(
        LongRunSummary(first_seed=first_seed, jobs=jobs, base_config=base_config),
        started=time.monotonic(),
        duration_s=duration_s,
        progress_every_s=progress_every_s,
        on_progress=on_progress,
        on_failure=on_failure,
    )
    try:
        if jobs == 1:
            run.in_this_process()
        else:
            run.on_workers()
    finally:
        run.finish()
    return run.summary


def summary_lines(summary: LongRunSummary) -> list[str]:
    """The readable end-of-run summary, failing seeds with their replay commands last."""
    config = summary.base_config
    last_seed = summary.first_seed + summary.seeds_run - 1
    seeds = f"seeds {summary.first_seed}..{last_seed}, " if summary.seeds_run else ""
    lines = [
        f"seeds run        {summary.seeds_run:,} ({seeds}{config.nodes or '3-7'} nodes, "
        f"{_workers(summary.jobs)})",
        f"seeds per hour   {summary.seeds_per_hour:,.0f}",
        f"wall time        {summary.elapsed_s:,.1f} s"
        + (" (stopped by Ctrl-C)" if summary.interrupted else ""),
        f"simulated steps  {summary.steps:,}",
        f"failed seeds     {len(summary.failures)}",
    ]
    for failure in summary.failures:
        lines.append(f"\nseed {failure.seed} FAILED:")
        lines.extend(f"  {violation}" for violation in failure.violations[:5])
        if len(failure.violations) > 5:
            lines.append(f"  ... and {len(failure.violations) - 5} more")
        lines.append(f"  replay: {failure.replay}")
    return lines


def summary_json(summary: LongRunSummary) -> dict[str, object]:
    config = summary.base_config
    return {
        "seeds": summary.seeds_run,
        "first_seed": summary.first_seed,
        "last_seed": summary.first_seed + summary.seeds_run - 1 if summary.seeds_run else None,
        "seeds_per_hour": round(summary.seeds_per_hour, 1),
        "elapsed_s": round(summary.elapsed_s, 3),
        "jobs": summary.jobs,
        "interrupted": summary.interrupted,
        "nodes": config.nodes or "3-7",
        "fault_kinds": [kind for kind in FAULT_KINDS if kind in config.faults],
        "steps": summary.steps,
        "failed_seeds": [
            {"seed": failure.seed, "violations": list(failure.violations), "replay": failure.replay}
            for failure in summary.failures
        ],
    }


def progress_line(summary: LongRunSummary) -> str:
    return (
        f"[{summary.elapsed_s:7.0f} s] {summary.seeds_run:,} seeds, "
        f"{summary.seeds_per_hour:,.0f} seeds/hour, {len(summary.failures)} failed"
    )


# ------------------------------------------------------------------ the loop


class _LongRun:
    """The state of one long run: what is counted, and when to stop and report."""

    def __init__(
        self,
        summary: LongRunSummary,
        *,
        started: float,
        duration_s: float,
        progress_every_s: float,
        on_progress: Callable[[LongRunSummary], None] | None,
        on_failure: Callable[[SeedFailure], None] | None,
    ) -> None:
        self.summary = summary
        self._started = started
        self._deadline = started + duration_s
        self._progress_every_s = progress_every_s
        self._progress_due = started + progress_every_s
        self._on_progress = on_progress
        self._on_failure = on_failure
        self._next_seed = summary.first_seed

    def in_this_process(self) -> None:
        try:
            while time.monotonic() < self._deadline:
                seed = self._take_seed()
                self._record(_run_one(seed, self.summary.base_config))
                self._report_progress_if_due()
        except KeyboardInterrupt:
            self.summary.interrupted = True

    def on_workers(self) -> None:
        jobs = self.summary.jobs
        with ProcessPoolExecutor(max_workers=jobs, initializer=_ignore_sigint) as pool:
            in_flight: set[Future[SeedResult]] = set()
            try:
                while True:
                    while (
                        not self.summary.interrupted
                        and time.monotonic() < self._deadline
                        and len(in_flight) < jobs
                    ):
                        seed = self._take_seed()
                        in_flight.add(pool.submit(_run_one, seed, self.summary.base_config))
                    if not in_flight:
                        return
                    timeout = max(0.0, min(self._progress_due, self._deadline) - time.monotonic())
                    done, in_flight = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._record(future.result())
                    self._report_progress_if_due()
            except KeyboardInterrupt:
                self.summary.interrupted = True
                for future in in_flight:
                    self._record(future.result())

    def finish(self) -> None:
        self.summary.elapsed_s = time.monotonic() - self._started
        self.summary.failures.sort(key=lambda failure: failure.seed)

    def _take_seed(self) -> int:
        seed = self._next_seed
        self._next_seed += 1
        return seed

    def _record(self, result: SeedResult) -> None:
        self.summary.seeds_run += 1
        self.summary.steps += result.steps
        if result.ok:
            return
        config = config_for(result.seed, self.summary.base_config)
        failure = SeedFailure(
            seed=result.seed,
            violations=tuple(result.violations),
            replay=replay_command(result.seed, config),
        )
        self.summary.failures.append(failure)
        if self._on_failure is not None:
            self._on_failure(failure)

    def _report_progress_if_due(self) -> None:
        now = time.monotonic()
        if now < self._progress_due:
            return
        self._progress_due = now + self._progress_every_s
        self.summary.elapsed_s = now - self._started
        if self._on_progress is not None:
            self._on_progress(self.summary)


def _workers(jobs: int) -> str:
    return "1 worker" if jobs == 1 else f"{jobs} workers"


def _run_one(seed: int, base_config: SimConfig) -> SeedResult:
    """One seed's result; a seed whose run raises (a bug of the simulator's
    own, as in swarm seed 5001222) fails with that exception named, and the
    run goes on: it once ended a long run 44 minutes in."""
    try:
        return run_seed(seed, config_for(seed, base_config))
    except Exception as error:
        return SeedResult(
            seed=seed,
            nodes=0,
            steps=0,
            sim_time_s=0.0,
            slots_chosen=0,
            commands_chosen=0,
            leader_changes=0,
            ops_completed=0,
            ops_total=0,
            faults={},
            violations=[f"t=- raised: {type(error).__name__}: {error}"],
            heal_progress_s=None,
        )


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
