"""The deterministic simulator: the real node runtime on simulated loops, disks
and networks (``runtime``), or the pure core with the simulator's glue
(``cluster``), under seeded faults, with checkers.

``paxon sim`` is its command line; ``run_seed`` replays one seed exactly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paxon.sim.checkers import SafetyChecker, Violation
    from paxon.sim.cluster import SimCluster
    from paxon.sim.config import FAULT_KINDS, SimConfig
    from paxon.sim.properties import PropertyChecker
    from paxon.sim.runner import SeedResult, replay_command, run_seed, run_seeds

# Imported on first use, not with the package: ``paxon serve`` imports
# ``paxon.sim.config`` for the command line, and a node's start-up should not
# pay for the whole simulator (about 0.1 s of CPU on a 2-core machine).
_LAZY = {
    "SafetyChecker": "paxon.sim.checkers",
    "Violation": "paxon.sim.checkers",
    "SimCluster": "paxon.sim.cluster",
    "FAULT_KINDS": "paxon.sim.config",
    "SimConfig": "paxon.sim.config",
    "PropertyChecker": "paxon.sim.properties",
    "SeedResult": "paxon.sim.runner",
    "replay_command": "paxon.sim.runner",
    "run_seed": "paxon.sim.runner",
    "run_seeds": "paxon.sim.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paxon.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "FAULT_KINDS",
    "PropertyChecker",
    "SafetyChecker",
    "SeedResult",
    "SimCluster",
    "SimConfig",
    "Violation",
    "replay_command",
    "run_seed",
    "run_seeds",
]
