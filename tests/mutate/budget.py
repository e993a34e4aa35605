"""The seed budget: which simulator seeds a mutant must pass to survive.

A budget is named by a spec string, so it can travel on a command line into
every mutant's process:

| spec                    | seeds                                                     |
|-------------------------|-----------------------------------------------------------|
| ``3x20,5x20``           | seeds 0..19 of ``SimConfig(nodes=3)`` and of ``nodes=5``  |
|                         | (every fault kind on, the simulator's defaults)           |
| ``swarmx100``           | swarm seeds 0..99, each drawing its own configuration     |
|                         | (``paxon.sim.swarm``), as the default suite runs them     |
| ``reconfigx8``          | seeds 0..7 of 3 voters and a spare under membership       |
|                         | changes and loss (``RECONFIG_CONFIG``: the operator's     |
|                         | changes, transfers and the faults aimed at them are       |
|                         | dense there, rare in swarm seeds)                         |
| ``leasex8``             | seeds 0..7 of nodes answering reads from a leader lease   |
|                         | (``LEASE_CONFIGS``: 3 nodes on even seeds, 5 on odd ones, |
|                         | every fault kind; swarm seeds turn lease reads on in a    |
|                         | fifth of the seeds, none of 0..23)                        |
| ``splitx2``             | seeds 0..1 of two reigns' values at one slot, met by one  |
|                         | Phase 1 (``paxon.sim.split_slot.CONFIG``: 3 nodes, the    |
|                         | moment built once; the swarm met it in 1 seed of 300)     |
| ``lagx2``               | seeds 0..1 of a candidate behind its acceptor by nearly   |
|                         | a window (``paxon.sim.lagging_candidate.CONFIG``: 3       |
|                         | nodes, a 2-slot window; no swarm seed of 0-59 built it)   |
| ``deposedx4``           | seeds 0..3 of a leader cut off from its peers and its     |
|                         | writers while its reader reads on (``DEPOSED_CONFIG``: 3  |
|                         | nodes, lease reads, one client that only reads, partition |
|                         | and drift faults, Learn pages of 64 bytes;                |
|                         | ``faults._deposed_leader_keeps_readers`` builds the       |
|                         | moment; no lease seed of 0..7 reaches the last tenth of a |
|                         | lease since session 23's client change)                   |
| ``diskx4``              | seeds 0..3 of disks struck at every crash (``DISK_CONFIG``: |
|                         | 3 nodes, crashes and storage faults only, a storage fault |
|                         | at every crash, a snapshot every 10 slots, so a disk often|
|                         | holds two and the newest may be the one struck)           |
| ``rollx4``              | seeds 0..3 of roll-overs cut short (``ROLL_CONFIG``: 3    |
|                         | nodes, crashes only, segments of 1 KiB compacted every 3  |
|                         | slots, the power failing at 30% of roll-overs between the |
|                         | new segment and the old one's seal; often just two        |
|                         | segments are live, as at a log's first roll-over)         |
| ``historyx2``            | seeds 0..1 of a leader that keeps 4 revisions of KV       |
|                         | history (``HISTORY_CONFIG``: 3 nodes, every fault kind;   |
|                         | it compacts many times a run and watchers are refused;    |
|                         | swarm seeds draw a small history in an eighth of the      |
|                         | seeds, none of 0..24)                                     |
| ``removedx2``           | seeds 0..1 of voters removed while cut off, back after   |
|                         | their members compacted past the change (``REMOVED_CONFIG``: |
|                         | 5 nodes, changes and loss only, every voter the operator |
|                         | removes cut off until the change takes effect, a         |
|                         | snapshot every 20 slots, a heal of 15 s: only the members'|
|                         | ``RemovedNotice`` can tell it; 5 of seeds 0..7 get there,|
|                         | no swarm seed of the budget does)                        |
| ``installx2``           | seeds 0..1 of snapshots installed in a long fault phase   |
|                         | (``INSTALL_CONFIG``: 3 nodes, partitions, loss and crash  |
|                         | points only, a snapshot every 3 slots, 10 s of faults: a  |
|                         | node cut off catches up by a snapshot while crash points  |
|                         | strike; the default phases install nearly all after the  |
|                         | heal, where crash points are off)                         |
| ``restartx2``           | seeds 0..1 of members restarted inside a change's window  |
|                         | (``RESTART_CONFIG``: 3 voters and a spare, changes and    |
|                         | loss, a snapshot every 20 slots, and at every change a    |
|                         | member restarted from a snapshot it took after the change |
|                         | was chosen, before it takes effect: ``change_restart``;   |
|                         | a quarter of the swarm's reconfig seeds draw it, none of  |
|                         | the budget's)                                             |
| ``package.module:name`` | a ``SeedBudget``, or a function of no argument making one |

Only ``paxon.sim.runner.run_seed(seed, config)``, ``SimConfig`` and ``ReplicaConfig`` are used,
so the budget keeps its meaning when the simulator's insides change.
Seeds run round-robin across the groups (3-node seed 0, 5-node seed 0,
3-node seed 1, ...), so every shape gets an early chance to kill.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from paxon.protocol.config import ReplicaConfig
from paxon.sim import SimConfig
from paxon.sim.lagging_candidate import CONFIG as LAGGING_CONFIG
from paxon.sim.split_slot import CONFIG as SPLIT_CONFIG

# The budget the mutation score is measured with (docs/testing.md, "Mutation score").
# Eight membership and eight lease seeds: the rules name two s16 mutants
# there, on membership seed 7 (a non-voter that asks only itself: seed 4 until
# session 23's client change moved the schedules; five seeds from session 18,
# three before) and lease seed 7 (a vote above the durable promise); with the
# lagging candidate's two (the far half of Phase 1's fill window), 40 seeds,
# about 50 s a survivor on one core. Four seeds of a deposed leader that keeps
# its reader (session 24): the lease's far end, past the drift bound
# (``ReplicaConfig.lease_s``), is read from there only. Four of roll-overs cut
# short (session 25): two live segments, the new one empty, the old unsealed.
# Two of a leader keeping little KV history (session 31): compaction entries
# and refused watchers, which no seed of the others reaches.
# Two of voters removed while cut off (session 32): a removed node that only
# its members' notices can tell, which the others reach once in a while. Two
# of snapshots installed while crash points strike (session 32): a restart
# that replays an installed snapshot's mark over the accept kept at its slot.
# Two of members restarted inside a change's window (session 33): a history
# that holds the change pending from a snapshot, with nothing of its choice.
DEFAULT_SPEC = (
    "swarmx20,reconfigx8,leasex8,splitx2,lagx2,deposedx4,diskx4,rollx4,historyx2,"
    "removedx2,installx2,restartx2"
)

ConfigOfSeed = Callable[[int], SimConfig]


@dataclass(frozen=True, slots=True)
class SeedGroup:
    name: str
    seeds: range
    config: ConfigOfSeed


@dataclass(frozen=True, slots=True)
class SeedBudget:
    spec: str
    groups: tuple[SeedGroup, ...]

    @property
    def seeds_total(self) -> int:
        return sum(len(group.seeds) for group in self.groups)

    def schedule(self) -> Iterator[tuple[SeedGroup, int]]:
        """Every (group, seed) of the budget, round-robin across the groups."""
        longest = max((len(group.seeds) for group in self.groups), default=0)
        for index in range(longest):
            for group in self.groups:
                if index < len(group.seeds):
                    yield group, group.seeds[index]

    def describe(self) -> str:
        return ", ".join(f"{len(group.seeds)} seeds of {group.name}" for group in self.groups)


_GROUP = re.compile(r"^(?P<shape>\d+|[a-z]+)x(?P<count>\d+)$")

# Membership changes and loss on 3 voters and a spare to add.
RECONFIG_CONFIG = SimConfig(nodes=3, spares=1, faults=frozenset({"reconfig", "drop"}))
# Lease reads, every fault kind (clocks drift within the lease's bound): 3 nodes
# on even seeds, 5 on odd ones (a Prepare reaches a node that keeps a lease far
# more often among 5; a retried Prepare meets one among 3).
LEASE_CONFIGS = (SimConfig(nodes=3, lease_reads=True), SimConfig(nodes=5, lease_reads=True))
# A leader that answers reads from its lease, cut off from its peers and its
# writers but not its reader for an election timeout or more (30% of the
# partitions with a reader, ``faults._deposed_leader_keeps_readers``): the
# reader asks on through the last of the lease, where a lease past the drift
# bound answers and the right one sends a round. Drift within the bound. Learn
# pages of at most 64 bytes past the first entry: every node a cut kept behind
# learns in pages the byte limit cuts (the swarm draws limits that small, but
# its budget seeds seldom learn a page of two entries under one).
DEPOSED_CONFIG = SimConfig(
    nodes=3,
    lease_reads=True,
    readers=1,
    faults=frozenset({"partition", "drift"}),
    replica=ReplicaConfig(learn_max_bytes=64),
)
# Every crash strikes the disk too (torn, bit flip, lost or misdirected write:
# ``storage_faults``), with a snapshot every 10 slots: the disk struck often
# holds two snapshots, and recovery must fall back past a damaged newest one
# (the swarm's disks seldom hold two at a crash; ``sim/snapshot_head.py``).
DISK_CONFIG = SimConfig(
    nodes=3,
    faults=frozenset({"crash", "disk"}),
    disk_fault_rate=1.0,
    snapshot_interval_slots=10,
)
# Crashes only, with the power failing at 30% of roll-overs once the new
# segment is durable and before the old one's seal is written
# (``SimConfig.roll_cut_rate``). Segments of 1 KiB, compacted every 3 slots,
# so a roll-over often starts from one live segment and the cut leaves two,
# the moment recovery.py's "a roll-over cut short" row is for (a log's first
# roll-over; the swarm's power cuts seldom land between those two steps).
ROLL_CONFIG = SimConfig(
    nodes=3,
    faults=frozenset({"crash"}),
    segment_max_bytes=1024,
    snapshot_interval_slots=3,
    roll_cut_rate=0.3,
)

# A leader that keeps 4 revisions of the store's history (``SimConfig.history_revisions``):
# it proposes compaction entries all run long, and watchers are refused what was
# cut (``history-kept``, ``watch-exactly-once``); the node's 10,000 is never reached.
HISTORY_CONFIG = SimConfig(nodes=3, history_revisions=4)
# Every voter the operator removes is cut off until its removal takes effect,
# and comes back after its members took a snapshot past the change: no log can
# teach it, and a majority of the voters it knows must tell it (``RemovedNotice``,
# ``protocol/removal_notices.py``). No crashes: a crash drops the operator's
# requests, so few changes get through (1 seed in 12 reached the notices with
# them, 5 in 8 without); ``tests/sim/test_removed_learns.py`` runs the same shape.
REMOVED_CONFIG = SimConfig(
    nodes=5,
    faults=frozenset({"reconfig", "drop"}),
    heal_phase_s=15.0,
    snapshot_interval_slots=20,
    removed_cut_share=1.0,
)
# Partitions keep a node behind long enough to be sent a snapshot, every 3
# slots, in a fault phase of 10 s, so installs happen while crash points strike
# (in the default phases nearly all come after the heal, when they do not).
# A restart before the node's next snapshot replays the installed snapshot's
# mark over the accept it kept at the snapshot's slot, which must stay.
INSTALL_CONFIG = SimConfig(
    nodes=3,
    faults=frozenset({"partition", "crashpoint", "drop"}),
    snapshot_interval_slots=3,
    fault_phase_s=10.0,
)

# At every change the operator sees chosen, a member (not the leader) that took
# a snapshot after the change was chosen is restarted from it before the change
# takes effect (``change_restart``): its history holds the change pending, with
# nothing of the moment it was chosen, and it must act on it at the effect
# (remember whom a removal dropped). Snapshots every 20 slots within the 64 of
# alpha. No crashes besides: a crash drops the operator's requests.
RESTART_CONFIG = SimConfig(
    nodes=3,
    spares=1,
    faults=frozenset({"reconfig", "drop"}),
    snapshot_interval_slots=20,
    change_restart_share=1.0,
)

# Each named shape: the group's name, and the configuration of each of its seeds.
_SHAPES: dict[str, tuple[str, ConfigOfSeed]] = {
    "reconfig": ("membership changes", lambda _seed: RECONFIG_CONFIG),
    "lease": ("lease reads", lambda seed: LEASE_CONFIGS[seed % 2]),
    "split": ("a split slot", lambda _seed: SPLIT_CONFIG),
    "lag": ("a lagging candidate", lambda _seed: LAGGING_CONFIG),
    "deposed": ("a deposed leader keeping its reader", lambda _seed: DEPOSED_CONFIG),
    "disk": ("disks struck at every crash", lambda _seed: DISK_CONFIG),
    "roll": ("roll-overs cut short", lambda _seed: ROLL_CONFIG),
    "history": ("a leader keeping little history", lambda _seed: HISTORY_CONFIG),
    "removed": ("voters removed while cut off", lambda _seed: REMOVED_CONFIG),
    "install": ("snapshots installed among crash points", lambda _seed: INSTALL_CONFIG),
    "restart": ("members restarted inside a change's window", lambda _seed: RESTART_CONFIG),
}


def parse_budget(spec: str) -> SeedBudget:
    """The budget a spec names (see the module table); raises ``ValueError`` when it names none."""
    if ":" in spec:
        return _import_budget(spec)
    groups = []
    for part in spec.split(","):
        match = _GROUP.match(part.strip())
        shape = "" if match is None else match["shape"]
        if not (shape.isdigit() or shape == "swarm" or shape in _SHAPES):
            shapes = ", ".join(f"{known}xCOUNT" for known in ["swarm", *_SHAPES])
            raise ValueError(f"budget {spec!r}: {part!r} is not NODESxCOUNT, {shapes}")
        assert match is not None
        count = int(match["count"])
        if shape == "swarm":
            groups.append(SeedGroup("swarm configurations", range(count), _swarm_config()))
        elif shape in _SHAPES:
            name, config = _SHAPES[shape]
            groups.append(SeedGroup(name, range(count), config))
        else:
            nodes = int(shape)
            SimConfig(nodes=nodes)  # validates the node count now, not in every mutant
            groups.append(SeedGroup(f"{nodes} nodes", range(count), _fixed_config(nodes)))
    return SeedBudget(spec, tuple(groups))


def _fixed_config(nodes: int) -> ConfigOfSeed:
    config = SimConfig(nodes=nodes)
    return lambda _seed: config


def _swarm_config() -> ConfigOfSeed:
    # run_seed draws each seed's own configuration from the seed (paxon.sim.swarm).
    config = SimConfig(nodes=0, swarm=True)
    return lambda _seed: config


def _import_budget(spec: str) -> SeedBudget:
    module_name, _, attribute = spec.partition(":")
    found = getattr(importlib.import_module(module_name), attribute)
    budget = found() if callable(found) and not isinstance(found, SeedBudget) else found
    if not isinstance(budget, SeedBudget):
        raise ValueError(f"budget {spec!r} is a {type(budget).__name__}, not a SeedBudget")
    return budget
