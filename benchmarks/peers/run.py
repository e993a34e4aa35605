"""paxon, etcd and PySyncObj side by side on this machine, under the same load (issue 13).

    make bench-peers                                   # 3 runs, about 13 minutes
    .venv/bin/python benchmarks/peers/run.py [--runs 3] [--quick] [--systems paxon,etcd]

Installs what it needs (etcd from Debian's ``etcd-server`` and ``etcd-client``
when missing, as root; PySyncObj from PyPI into ``.venv-bench-peers/``), then
for each run takes the systems in turn, interleaved (paxon, etcd, PySyncObj,
paxon, ...) so that machine noise hits all alike; for each client of a system
it starts a fresh 3-member cluster on 127.0.0.1 (free ports, a temp data dir),
drives it (``phases.py`` has the load shape: 64-byte values over 1,000 keys),
and stops it by PID, the leader first. Prints one table (medians over the
runs, with min and max) and, last, one JSON line; ``--json`` prints only the
JSON line. Progress goes to stderr.

The clients: paxon by ``paxon bench`` (native protocol) and by the shared
aiohttp load generator on its HTTP API; etcd by ``etcdctl check perf`` (Go,
gRPC) and by the same generator on its v3 HTTP gateway; PySyncObj in the
leader's process (no client protocol; NOT durable). ``etcd.py``,
``paxon_peer.py`` and ``pysyncobj_peer.py`` say what each figure means.
Two paxon variants run beside them, native client only: ``paxon-lease``
(``--lease-reads on``) and ``paxon-nofsync`` (``--unsafe-no-fsync on``, not
durable, as PySyncObj's default), for the issue's read and no-fsync goals.

Every process is ended by its PID and every temp dir removed however the run
ends (Ctrl-C, SIGTERM, an error): ``procs.py``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.peers import etcd, paxon_peer, pysyncobj_peer, report  # noqa: E402
from benchmarks.peers.http_driver import HttpDriver  # noqa: E402
from benchmarks.peers.phases import KEYS, PACED_RATE, VALUE_SIZE, Driver, Durations, measure  # noqa: E402
from benchmarks.peers.procs import Processes  # noqa: E402

import paxon  # noqa: E402

SYSTEMS = ("paxon", "etcd", "pysyncobj", "paxon-lease", "paxon-nofsync")
FULL = Durations(saturation_s=10.0, paced_s=10.0, reads_s=10.0)
QUICK = Durations(saturation_s=2.0, paced_s=2.0, reads_s=2.0)
CLIENT_NAMES = {
    "paxon-native": paxon_peer.NativeDriver.name,
    "paxon-http": "paxon · HTTP API (aiohttp)",
    "etcd-go": etcd.CheckPerfDriver.name,
    "etcd-http": "etcd · v3 HTTP gateway (aiohttp)",
    "pysyncobj": pysyncobj_peer.InProcessDriver.name,
    "paxon-lease": "paxon --lease-reads on · paxon bench (native)",
    "paxon-nofsync": "paxon --unsafe-no-fsync on (NOT durable) · paxon bench (native)",
}


class Stopped(Exception):
    """SIGTERM or SIGHUP: end like Ctrl-C, through every ``finally``."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, help="rounds of every system (3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 s phases, 1 run")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=",".join(SYSTEMS))
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    systems = [name for name in args.systems.split(",") if name]
    unknown = set(systems) - set(SYSTEMS)
    if unknown or not systems:
        parser.error(f"--systems: choose among {','.join(SYSTEMS)}")
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    durations = QUICK if args.quick else FULL

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where started ignoring it
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    procs = Processes()
    began = time.perf_counter()
    try:
        return _bench(procs, systems, runs, durations, quick=args.quick, json_only=args.json)
    except (KeyboardInterrupt, Stopped) as stopped:
        _say(f"stopped ({str(stopped) or 'Ctrl-C'}); ending every process")
        return 130
    except etcd.NotInstalled as missing:
        print(f"bench-peers: {missing}", file=sys.stderr)
        return 2
    except RuntimeError as failed:  # a cluster that did not start, a load that failed
        _say(f"failed: {failed}")
        return 1
    finally:
        procs.close()
        _say(f"done in {time.perf_counter() - began:.0f} s; no process or temp dir left")


def _bench(
    procs: Processes, systems: list[str], runs: int, durations: Durations, *, quick: bool,
    json_only: bool,
) -> int:  # fmt: skip
    setup_began = time.perf_counter()
    versions = {"paxon": paxon.__version__, "python": platform.python_version()}
    if "etcd" in systems:
        etcd.ensure_installed()
        versions.update(etcd.versions())
    python = None
    if "pysyncobj" in systems:
        python = pysyncobj_peer.ensure_venv(ROOT)
        versions["pysyncobj"] = pysyncobj_peer.version(python)
    # An installed paxon has its bytecode compiled; a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile every module in every process.
    compileall.compile_dir(Path(paxon.__file__).parent, quiet=1)
    setup_s = time.perf_counter() - setup_began
    load_before = os.getloadavg()
    samples: dict[str, list[dict[str, float | None]]] = {}
    wall: list[dict[str, dict[str, float]]] = []
    errors: list[str] = []
    for run in range(runs):
        wall.append({})
        for system in systems:
            phases: dict[str, float] = {}
            wall[-1][system] = phases
            _say(f"run {run + 1}/{runs}: {system}")
            for client, start_cluster, make_driver in _clients(system, procs, python):
                sample = _measure_client(
                    procs, client, start_cluster, make_driver, durations, phases, errors
                )
                samples.setdefault(client, []).append(sample)
    meta = _meta(runs, durations, quick, versions, load_before, setup_s)
    notes = [note for system, note in _NOTES.items() if system in systems]
    built = report.build(
        samples, CLIENT_NAMES, wall_s=wall, meta=meta, notes=notes, warnings=errors
    )
    if not json_only:
        print(report.render(built))
    print(json.dumps(built))
    return 0


_NOTES = {
    "paxon": paxon_peer.NOTE,
    "etcd": etcd.NOTE,
    "pysyncobj": pysyncobj_peer.NOTE,
    "paxon-lease": paxon_peer.VARIANT_NOTE,
}


StartCluster = Callable[[], Any]
MakeDriver = Callable[[Any], Driver]


def _clients(
    system: str, procs: Processes, python: Path | None
) -> list[tuple[str, StartCluster, MakeDriver]]:
    """Each client of ``system``: its name, how to start its cluster, how to make its driver.

    Every client gets a fresh cluster, so that what one leaves behind (etcdctl
    check perf's 150,000 1 KiB values and their deletion) does not weigh on the next.
    """
    if system == "paxon":

        def paxon_http(cluster: paxon_peer.PaxonCluster) -> Driver:
            url = cluster.http[cluster.leader]
            return HttpDriver(CLIENT_NAMES["paxon-http"], procs, "paxon", url)

        def start_paxon() -> paxon_peer.PaxonCluster:
            return paxon_peer.start_cluster(procs)

        return [
            ("paxon-native", start_paxon, lambda cluster: paxon_peer.NativeDriver(procs, cluster)),
            ("paxon-http", start_paxon, paxon_http),
        ]
    if system in paxon_peer.VARIANT_FLAGS:
        flags = paxon_peer.VARIANT_FLAGS[system]

        def start_variant() -> paxon_peer.PaxonCluster:
            return paxon_peer.start_cluster(procs, flags)

        def native(cluster: paxon_peer.PaxonCluster) -> Driver:
            driver = paxon_peer.NativeDriver(procs, cluster)
            driver.name = CLIENT_NAMES[system]
            return driver

        return [(system, start_variant, native)]
    if system == "etcd":

        def etcd_http(cluster: etcd.EtcdCluster) -> Driver:
            url = cluster.client_urls[cluster.leader]
            etcd.put_probe(url)
            return HttpDriver(CLIENT_NAMES["etcd-http"], procs, "etcd", url)

        def start_etcd() -> etcd.EtcdCluster:
            return etcd.start_cluster(procs)

        return [
            ("etcd-go", start_etcd, lambda cluster: etcd.CheckPerfDriver(procs, cluster)),
            ("etcd-http", start_etcd, etcd_http),
        ]
    assert python is not None

    def start_pysyncobj() -> pysyncobj_peer.SyncObjCluster:
        return pysyncobj_peer.start_cluster(procs, python)

    def in_process(cluster: pysyncobj_peer.SyncObjCluster) -> Driver:
        return pysyncobj_peer.InProcessDriver(cluster, VALUE_SIZE, KEYS)

    return [("pysyncobj", start_pysyncobj, in_process)]


def _measure_client(
    procs: Processes,
    client: str,
    start_cluster: StartCluster,
    make_driver: MakeDriver,
    durations: Durations,
    phases: dict[str, float],
    errors: list[str],
) -> dict[str, float | None]:
    """Start a cluster, run the client's phases, stop it; times go to ``phases``."""
    began = time.perf_counter()
    cluster = start_cluster()
    phases[f"{client} start"] = round(time.perf_counter() - began, 3)
    try:
        driver = make_driver(cluster)
        wall: dict[str, float] = {}
        sample = measure(driver, cluster.pids, durations, wall, errors)
        for phase, seconds in wall.items():
            phases[f"{client} {phase}"] = seconds
        figures = ", ".join(f"{name} {value:,.2f}" for name, value in sample.items() if value)
        _say(f"  {driver.name}: {figures}")
        return sample
    finally:
        if all(node.poll() is None for node in cluster.nodes):
            changed = cluster.leader_changed()
            if changed is not None:
                errors.append(f"{changed} ({client})")
        began = time.perf_counter()
        # The leader first: etcd's leader hands over on SIGTERM, and waits about 7 s
        # for a follower that was stopped beside it.
        leader = cluster.nodes[cluster.leader]
        procs.stop([leader])
        procs.stop([node for node in cluster.nodes if node is not leader])
        procs.remove(cluster.root)
        phases[f"{client} stop"] = round(time.perf_counter() - began, 3)


def _meta(
    runs: int,
    durations: Durations,
    quick: bool,
    versions: dict[str, str],
    load_before: tuple[float, float, float],
    setup_s: float,
) -> dict[str, Any]:
    return {
        "bench": "peers",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": runs,
        "quick": quick,
        "load_shape": {
            "value_bytes": VALUE_SIZE,
            "keys": KEYS,
            "paced_writes_per_s": PACED_RATE,
            "phase_seconds": {
                "saturation": durations.saturation_s,
                "paced": durations.paced_s,
                "reads": durations.reads_s,
            },
        },
        "machine": _machine(load_before),
        "versions": versions,
        "setup_s": round(setup_s, 3),
    }


def _machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
    }


def _say(line: str) -> None:
    print(f"bench-peers: {line}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
