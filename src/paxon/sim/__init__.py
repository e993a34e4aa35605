"""The deterministic simulator: the real node runtime on simulated loops, disks
and networks (``runtime``), or the pure core with the simulator's glue
(``cluster``), under seeded faults, with checkers.

``paxon sim`` is its command line; ``run_seed`` replays one seed exactly.
"""

from paxon.sim.checkers import SafetyChecker, Violation
from paxon.sim.cluster import SimCluster
from paxon.sim.config import FAULT_KINDS, SimConfig
from paxon.sim.properties import PropertyChecker
from paxon.sim.runner import SeedResult, replay_command, run_seed, run_seeds

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
