"""The table and the JSON line: each figure's median over the runs, with min and max.

``build`` turns the samples (one per run for each system's client) into one
JSON-ready dict; ``render`` prints it as a table with the metrics down the side
and the clients across, each cell ``median [min-max]`` (just the value when
there was one run), ``-`` where a client does not measure that figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.peers.phases import METRICS, Sample
from benchmarks.peers.stats import spread

LABELS: dict[str, str] = {
    "writes_per_s": "writes/s at saturation",
    "p50_at_1000_ms": "p50 ms at 1,000 writes/s",
    "p99_at_1000_ms": "p99 ms at 1,000 writes/s",
    "p99.9_at_1000_ms": "p99.9 ms at 1,000 writes/s",
    "p50_at_half_ms": "p50 ms at half saturation",
    "p99_at_half_ms": "p99 ms at half saturation",
    "p99.9_at_half_ms": "p99.9 ms at half saturation",
    "reads_per_s": "linearizable reads/s",
    "server_cpu_s_per_1000_writes": "3 servers' CPU s / 1,000 writes",
    "leader_cpu_s_per_1000_writes": "leader's CPU s / 1,000 writes",
    "loadgen_cpu_s_per_1000_writes": "load gen CPU s / 1,000 writes",
}
RATIOS: tuple[tuple[str, str, str, str], ...] = (
    # (name, metric, numerator client, denominator client)
    ("paxon native / etcd Go, writes/s", "writes_per_s", "paxon-native", "etcd-go"),
    ("paxon native / etcd HTTP, writes/s", "writes_per_s", "paxon-native", "etcd-http"),
    ("paxon HTTP / etcd HTTP, writes/s", "writes_per_s", "paxon-http", "etcd-http"),
    ("paxon native / PySyncObj, writes/s", "writes_per_s", "paxon-native", "pysyncobj"),
    ("paxon native / etcd HTTP, reads/s", "reads_per_s", "paxon-native", "etcd-http"),
    ("paxon HTTP / etcd HTTP, reads/s", "reads_per_s", "paxon-http", "etcd-http"),
    ("paxon lease / etcd HTTP, reads/s", "reads_per_s", "paxon-lease", "etcd-http"),
    ("paxon no-fsync / PySyncObj, writes/s", "writes_per_s", "paxon-nofsync", "pysyncobj"),
    ("paxon no-fsync / PySyncObj, p50 at 1,000/s", "p50_at_1000_ms", "paxon-nofsync", "pysyncobj"),
)


def build(
    samples: Mapping[str, Sequence[Sample]],
    names: Mapping[str, str],
    *,
    wall_s: Sequence[Mapping[str, Mapping[str, float]]],
    meta: Mapping[str, Any],
    notes: Sequence[str] = (),
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """``samples[client]``: one sample per run; ``names[client]``: its label;
    ``wall_s[run][system][phase]``: seconds each phase took."""
    figures: dict[str, dict[str, Any]] = {}
    for client, runs in samples.items():
        metrics = sorted({metric for sample in runs for metric in sample}, key=_metric_order)
        figures[client] = {"name": names[client]}
        for metric in metrics:
            found = spread([sample.get(metric) for sample in runs])
            figures[client][metric] = None if found is None else found.to_json()
    ratios: dict[str, float | None] = {}
    for name, metric, top, bottom in RATIOS:
        above, below = _median(figures, top, metric), _median(figures, bottom, metric)
        ratios[name] = None if above is None or not below else round(above / below, 2)
    return {
        **meta,
        "clients": figures,
        "ratios": ratios,
        "wall_s": _wall(wall_s),
        "notes": list(notes),
        "warnings": list(warnings),
    }


def render(report: Mapping[str, Any]) -> str:
    clients: dict[str, dict[str, Any]] = report["clients"]
    header = ["", *(figures["name"] for figures in clients.values())]
    rows = [header]
    for metric in METRICS:
        rows.append([LABELS[metric], *(_cell(figures.get(metric)) for figures in clients.values())])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    runs = report.get("runs")
    lines.append("")
    lines.append(f"medians of {runs} run(s) [min-max]; - = not measured by that client")
    for name, ratio in report["ratios"].items():
        if ratio is not None:
            lines.append(f"{name}: {ratio:.2f}")
    wall = report["wall_s"]
    lines.append(
        f"wall-clock: {wall['total']:.0f} s in all; one round of every system "
        f"(median) {wall['round_median']:.0f} s"
    )
    for system, phases in wall["median_by_phase"].items():
        parts = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in phases.items())
        lines.append(f"  {system}: {parts}")
    lines.extend(f"note: {note}" for note in report["notes"])
    lines.extend(f"warning: {warning}" for warning in report["warnings"])
    return "\n".join(lines)


def _metric_order(metric: str) -> tuple[int, str]:
    return (METRICS.index(metric) if metric in METRICS else len(METRICS), metric)


def _median(figures: Mapping[str, Mapping[str, Any]], client: str, metric: str) -> float | None:
    found = figures.get(client, {}).get(metric)
    return None if found is None else float(found["median"])


def _format(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def _cell(found: Mapping[str, Any] | None) -> str:
    if found is None:
        return "-"
    if len(found["runs"]) == 1:
        return _format(found["median"])
    return f"{_format(found['median'])} [{_format(found['min'])}-{_format(found['max'])}]"


def _wall(wall_s: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """The total, the median round, and each system's phases' medians over the runs."""
    rounds = [sum(sum(phases.values()) for phases in run.values()) for run in wall_s]
    by_phase: dict[str, dict[str, list[float]]] = {}
    for run in wall_s:
        for system, phases in run.items():
            for phase, seconds in phases.items():
                by_phase.setdefault(system, {}).setdefault(phase, []).append(seconds)
    return {
        "total": round(sum(rounds), 3),
        "round_median": round(statistics.median(rounds), 3) if rounds else 0.0,
        "median_by_phase": {
            system: {phase: round(statistics.median(values), 3) for phase, values in phases.items()}
            for system, phases in by_phase.items()
        },
        "runs": [dict(run) for run in wall_s],
    }
