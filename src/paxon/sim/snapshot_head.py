"""A snapshot's head misdirected onto an older snapshot, aimed at a disk that holds two.

A device's misdirected block lands in any file, and a snapshot's first write
(its header, META and checkpoint frames) names its lsn, so recovery can see
one that landed on another snapshot (``storage/recovery.py``: a header names
its own file). Random storage faults misdirect a snapshot's writes only inside
that snapshot (``storage_faults``, Limits), and few disks hold two snapshots
at a crash, so no seed met it. In ``SHARE`` of the seeds with the
"misdirected" disk kind and a snapshot at least every ``_INTERVAL`` slots
(so that a disk holds two), once, from a drawn time of the fault phase:

1. a running node whose disk holds two snapshots with known heads is crashed
   (looked for again every ``_RETRY_S`` until the heal), one whose recovery
   must refuse only while the cluster can lose it (``DiskFaults.may_refuse_disk``);
   for ``_ALIKE_WAIT_S`` only one whose newest head would land on an older
   head as long, the case only a header naming its own file gives away;
2. at that crash, the newest snapshot's head lands at offset 0 of an older one
   (``storage_faults.strike_snapshot_head_misdirected``), and recovery must
   follow the snapshot rule for both.

Contract: every draw comes from this module's own stream, whose number was
searched so that no seed a test pins draws the aim (``_STREAM``), and nothing
is drawn but the arming unless it is armed, so every other seed runs as
before. Reading a disk to aim is the simulator's privilege.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from paxon.sim.storage_faults import (
    REFUSE,
    StorageFault,
    snapshot_head_alike,
    snapshot_head_verdict,
    strike_snapshot_head_misdirected,
)

if TYPE_CHECKING:
    from paxon.sim.host import Host
    from paxon.sim.runtime import RuntimeCluster

# Share of the seeds armed, among those with "misdirected" and a snapshot at
# least every _INTERVAL slots. Of the seeds a test pins, those are 0, 5-7, 11,
# 14, 18, 22-24, 31, 40, 54, 67, 85, 91, 95, 97, 106, 107, 113, 114, 144, 170,
# 172, 210, 241, 243, 254, 293, 300, 445, 1307, 5034 and 5057, and none of them
# draws it with this stream; 22 of seeds 0-299 do (it strikes in 174, 192, 294).
SHARE = 0.3
_INTERVAL = 20
_STREAM = 134072
# The crash comes in this span of the fault phase, and looks again this often
# while no disk holds two snapshots.
_AT = (0.3, 0.8)
_RETRY_S = 0.1
# How long it waits for a disk whose two heads are as long (the harder case:
# only the check that a header names its own file sees it) before it takes any.
_ALIKE_WAIT_S = 1.0


class SnapshotHeadAim:
    """The aim of the module docstring, for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int, disk_kinds: frozenset[str]) -> None:
        self._cluster = cluster
        self._rng = random.Random(f"{seed}:snapshot-head-{_STREAM}")
        self.armed = (
            "misdirected" in disk_kinds
            and cluster.config.snapshot_interval_slots <= _INTERVAL
            and self._rng.random() < SHARE
        )
        self._host: int | None = None
        self._alike_until = 0.0
        # Counted for the tests: heads misdirected.
        self.struck = 0

    def start(self) -> None:
        if self.armed:
            at = self._rng.uniform(*_AT) * self._cluster.config.fault_phase_s
            self._alike_until = at + _ALIKE_WAIT_S
            self._cluster.push(at, self._crash)

    def strike(self, host: Host) -> StorageFault | None:
        """At ``host``'s power-off: the fault, struck, when it is the host aimed at."""
        if self._host != host.node_id or not self._may_strike(host):
            return None
        fault = strike_snapshot_head_misdirected(host.fs, f"/node{host.node_id}")
        if fault is not None:
            self._host = None
            self.struck += 1
        return fault

    def _crash(self) -> None:
        cluster = self._cluster
        if cluster.healed_at is not None:
            return
        aimed = [
            host
            for host in cluster.hosts.values()
            if cluster.node_of(host) is not None and self._may_strike(host)
        ]
        alike = [host for host in aimed if snapshot_head_alike(host.fs, f"/node{host.node_id}")]
        if alike:
            aimed = alike
        elif cluster.time < self._alike_until:
            aimed = []  # wait a while for the harder moment
        if not aimed:
            cluster.later(_RETRY_S, self._crash)
            return
        host = self._rng.choice(aimed)
        self._host = host.node_id
        cluster.crash_host(host, "a misdirected snapshot head")

    def _may_strike(self, host: Host) -> bool:
        """Whether ``host``'s disk may take the fault now: one recovery must
        refuse only while the cluster can lose it."""
        if self._cluster.healed_at is not None:
            return False
        verdict = snapshot_head_verdict(host.fs, f"/node{host.node_id}")
        return verdict is not None and (
            verdict != REFUSE or self._cluster.faults.disk.may_refuse_disk(host)
        )
