"""The deterministic simulator: seeded faults against pure replicas, with checkers.

``paxon sim`` is its command line; ``run_seed`` replays one seed exactly.
"""

from paxon.sim.checkers import SafetyChecker, Violation
from paxon.sim.cluster import FAULT_KINDS, SimCluster, SimConfig
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
