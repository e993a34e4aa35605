"""The same Python HTTP load (``load.py``, a process of its own) for paxon and for etcd."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.peers.phases import KEYS, VALUE_SIZE, Load
from benchmarks.peers.procs import Processes

LOAD_SCRIPT = Path(__file__).with_name("load.py")
CONCURRENCY = 128  # connections, the same for both systems
PACED_CONCURRENCY = 256
TIMEOUT_MARGIN_S = 120.0


class HttpDriver:
    phases = ("saturation", "paced", "reads")

    def __init__(self, name: str, procs: Processes, api: str, url: str) -> None:
        self.name = name
        self.procs = procs
        self.api = api
        self.url = url

    def _load(self, seconds: float, *flags: str, concurrency: int = CONCURRENCY) -> Load:
        argv = [
            sys.executable, str(LOAD_SCRIPT), "--api", self.api, "--url", self.url,
            "--seconds", str(seconds), "--concurrency", str(concurrency),
            "--value-size", str(VALUE_SIZE), "--keys", str(KEYS), *flags,
        ]  # fmt: skip
        done = self.procs.run(argv, timeout_s=seconds + TIMEOUT_MARGIN_S)
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: load.py exited {done.returncode}:\n{done.stderr}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return Load.from_samples(
            result["latencies_s"],
            seconds=result["seconds"],
            errors=result["errors"],
            loadgen_cpu_s=done.cpu_s,
            error_first=result["error_first"],
        )

    def saturation(self, seconds: float) -> Load:
        return self._load(seconds)

    def paced(self, rate: float, seconds: float) -> Load:
        return self._load(seconds, "--rate", f"{rate:.1f}", concurrency=PACED_CONCURRENCY)

    def reads(self, seconds: float) -> Load:
        return self._load(seconds, "--reads")
