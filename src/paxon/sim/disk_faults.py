"""The disk side of the faults a ``RuntimeCluster`` injects, drawn from the seed.

``FaultInjector`` (``sim/faults.py``) owns one ``DiskFaults`` and hands it
every crash: what a power cut leaves on the disk, and when one strikes.

- **power cuts inside a disk operation**: at creation (now and then aimed at
  the first segment's header: written, not yet synced, its name on the disk
  by a journal commit, its bytes torn), in the repairs of a restart, or
  armed at a random time of the fault phase;
- **what a crash leaves**: unsynced bytes torn, now and then zero-filled,
  a directory reaching the disk without its fsync, and the storage faults
  of ``storage_faults`` whose recovery the node must classify rightly, some
  aimed at rare targets (at crash points at storage events, at a torn-tail
  cut not yet durable, and in one planned late crash of half the seeds; at
  a roll-over made durable, now and then its directory fsync lost, so the
  old segment's seal names a segment gone; and, from ``snapshot_head``, a
  snapshot's head misdirected onto an older snapshot);
- **crash points at storage events** (a roll-over made durable, or cut short
  before the old segment's seal; a snapshot written; a SnapshotRecord or a
  no-op's accept made durable);
- **crash again**: a node restarted after a crash that lost unsynced log
  bytes, or with its log over two or more segments, crashed again soon after
  (``crash_again``).

Contract: each kind draws from its own stream (``{seed}:storage``,
``{seed}:powercut``, ``{seed}:roll-cut``, ...), except the torn bytes, which
share the cluster's ``rng_disk``; a seed replays exactly. After ``end`` (the
heal) no crash point or roll-over cut strikes, and no storage fault.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from paxon.sim.crash_again import CrashAgain
from paxon.sim.host import (
    NOOP_DURABLE,
    REACCEPT_DURABLE,
    ROLL_CUT_SHORT,
    ROLLED_OVER,
    SNAPSHOT_OVER_REACCEPT,
    SNAPSHOT_RECORD_DURABLE,
    Host,
)
from paxon.sim.snapshot_head import SnapshotHeadAim
from paxon.sim.storage_faults import KINDS as DISK_FAULT_KINDS
from paxon.sim.storage_faults import (
    REFUSE,
    StorageFault,
    rare_targets,
    strike,
    strike_rare,
    strike_successor_lost,
)
from paxon.storage.layout import segment_name
from paxon.storage.segments import SEGMENT_HEADER_BYTES

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster


class DiskFaults:
    """The disk faults of one run; ``cluster`` is the world they strike."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        config = cluster.config
        # Storage faults: which kinds, and how many disks may still be refused
        # (fewer than a majority, so the cluster can serve to the end).
        self._disk_kinds = DISK_FAULT_KINDS if "disk" in config.faults else frozenset()
        self._disk_refusals_left = (config.nodes - 1) // 2
        # Nodes struck with a fault recovery must refuse: down for the rest of the
        # run. With "reconfig", fewer than a majority of each configuration's voters.
        self.disks_refused: set[int] = set()
        self._rng_storage = random.Random(f"{seed}:storage")
        # Storage faults strike from a drawn time on: later ones meet an older
        # disk (snapshots taken, segments rolled over and compacted) before the
        # refusals a cluster can afford are spent on a young log.
        warm_up = random.Random(f"{seed}:storage-warm-up").uniform(0.0, _DISK_WARM_UP)
        self._disk_faults_from = warm_up * config.fault_phase_s
        # The storage fault each crashed disk took, for its next start to classify.
        self._disk_faults: dict[int, StorageFault | None] = {}
        # Faults aimed at rare targets (``strike_rare``), and the odds of a fault
        # at rare moments, draw apart, so the draws above stay as they were.
        self._rng_rare = random.Random(f"{seed}:storage-rare")
        # The storage event (``storage_event_strikes``) each host was crashed at.
        self._crashed_at_event: dict[int, str] = {}
        self._rare_seen: dict[str, int] = {}  # rare storage events met in this run, by kind
        # Hosts crashed for a fault aimed at a rare target (``_crash_for_rare_target``).
        self._crashed_for_rare: set[int] = set()
        self._crash_points = "crashpoint" in config.faults
        # Roll-overs cut short (``SimConfig.roll_cut_rate``): any fault kinds,
        # drawn from a stream of their own.
        self._cutting_roll_overs = config.roll_cut_rate > 0
        self._rng_roll_cut = random.Random(f"{seed}:roll-cut")
        # Crash points at rare storage moments draw apart, so the draws of
        # the runtime's crash points do not shift when one is added.
        self._rng_storage_crash = random.Random(f"{seed}:crashpoint-storage")
        # The re-accept points (mutant #78's schedule) draw apart again.
        self._rng_reaccept_crash = random.Random(f"{seed}:crashpoint-reaccept")
        self._rng_cut = random.Random(f"{seed}:powercut")
        self._rng_journal = random.Random(f"{seed}:journal")
        # At a crash point right after a roll-over made durable, this stream
        # draws whether its directory fsync is lost (``strike_successor_lost``).
        self._rng_successor_lost = random.Random(f"{seed}:successor-lost")
        self.successors_lost = 0
        # A snapshot's head misdirected onto an older one, aimed (``snapshot_head``).
        self.snapshot_head = SnapshotHeadAim(cluster, seed, self._disk_kinds)
        self._rng_creation = random.Random(f"{seed}:creation-cut")
        # The aimed cut at the first segment's header draws apart, so the
        # draws of the creation cuts above stay as they were.
        self._rng_header_cut = random.Random(f"{seed}:creation-header")
        # Per host whose creation cut is aimed at it: the header bytes kept,
        # then the zeros a file system may leave after them.
        self._header_cuts: dict[int, tuple[int, int]] = {}
        self._rng_zero = random.Random(f"{seed}:zero-fill")
        # A node crashed again soon after a restart that met an odd log.
        self.crash_again = CrashAgain(cluster, seed)

    def start(self) -> None:
        """Schedule the armed power cuts, the crash aimed at a rare target, and
        the aimed snapshot head."""
        cluster = self._cluster
        config = cluster.config
        if "crash" in config.faults:
            for _ in range(self._rng_cut.randint(0, _POWER_CUTS_MAX)):
                at = self._rng_cut.uniform(0.2, 0.9 * config.fault_phase_s)
                cluster.push(at, self._arm_power_cut)
            if self._disk_kinds and self._rng_rare.random() < _RARE_CRASH:
                at = self._rng_rare.uniform(*_RARE_CRASH_AT) * config.fault_phase_s
                cluster.push(at, self._crash_for_rare_target)
        self.snapshot_head.start()

    def end(self) -> None:
        """The heal: no more crash points at storage events or roll-overs cut short."""
        self._crash_points = self._cutting_roll_overs = False

    def arm_creation_cut(self, host: Host) -> None:
        """Now and then, the power fails while ``host``'s node sets its data directory up."""
        if "crash" not in self._cluster.config.faults:
            return
        if self._rng_creation.random() < _CUT_IN_CREATION:
            ops = self._rng_creation.randrange(_CREATION_OPS)
            host.fs.arm_power_cut(ops)
            self._cluster.log(
                f"fault: power of n{host.node_id} fails {ops} calls into its creation"
            )
            return
        rng = self._rng_header_cut
        if rng.random() < _CUT_AT_FIRST_HEADER:
            # The power fails at the fsync of the first segment's header; a
            # journal commit kept its name, and a prefix of its bytes (maybe
            # zeros after): recovery must drop that lone torn segment and
            # start (``_check_chain``), losing nothing: it held no record.
            kept = rng.randrange(SEGMENT_HEADER_BYTES)
            zeros = 0 if rng.random() < 0.5 else rng.randint(1, SEGMENT_HEADER_BYTES - kept)
            host.fs.arm_power_cut(_FIRST_HEADER_FSYNC_OP)
            self._header_cuts[host.node_id] = (kept, zeros)
            self._cluster.log(
                f"fault: power of n{host.node_id} fails at its first segment header's fsync "
                f"({kept} bytes kept, then {zeros} zeros)"
            )

    def storage_crash_point(self, host: Host, where: str) -> bool:
        """Whether to crash ``host`` right after a rare storage event (and do it)."""
        if not self.storage_event_strikes(host, where):
            return False
        self._cluster.crash_host(host, f"crash point: {where}")
        return True

    def storage_event_strikes(self, host: Host, where: str) -> bool:
        """Whether a crash point at the rare storage event ``where`` strikes ``host``
        (counted and logged; the caller crashes it). These events are far fewer
        than messages or fsyncs, so they strike at a higher rate; the rarest
        (a snapshot installed, a no-op persisted: a few a run, mostly after
        the heal) at _RARE_POINT_RATE."""
        cluster = self._cluster
        if where == ROLL_CUT_SHORT:
            strikes = self._cutting_roll_overs
            if not strikes or self._rng_roll_cut.random() >= cluster.config.roll_cut_rate:
                return False
            return self._note_storage_point(host, where)
        if where in _RARE_STORAGE_EVENTS:
            # Aimed while the event is rare; one that turns out common in this
            # run (a no-op fill of alpha slots that lets a configuration change
            # take effect) strikes less and less, so it does not take every
            # node down at the first change.
            seen = self._rare_seen[where] = self._rare_seen.get(where, 0) + 1
            rate = _RARE_POINT_RATE * min(1.0, _RARE_EXPECTED / seen)
        else:
            rate = min(
                _STORAGE_POINT_RATE_MAX, cluster.config.crashpoint_rate * _STORAGE_POINT_BOOST
            )
        rng = self._rng_reaccept_crash if where in _REACCEPT_EVENTS else self._rng_storage_crash
        if not self._crash_points or rng.random() >= rate:
            return False
        return self._note_storage_point(host, where)

    def _note_storage_point(self, host: Host, where: str) -> bool:
        cluster = self._cluster
        cluster.stats.faults[f"crashpoint: {where}"] = (
            cluster.stats.faults.get(f"crashpoint: {where}", 0) + 1
        )
        cluster.log(f"fault: crash point of n{host.node_id} at a storage event: {where}")
        self._crashed_at_event[host.node_id] = where
        return True

    def power_off(self, host: Host) -> None:
        """The disk side of a crash: power off, and maybe fail again in the recovery."""
        cluster = self._cluster
        self._crash_disk(host)
        cluster.properties.on_crash(host.node_id, cluster.time)
        if cluster.healed_at is None and self._rng_cut.random() < _CUT_IN_RECOVERY:
            # The power fails again in the repairs of the next start (or the
            # next multi-step operation after it).
            ops = self._rng_cut.randrange(4)
            host.fs.arm_power_cut(ops)
            cluster.log(f"fault: power of n{host.node_id} fails {ops} calls into its recovery")

    def snapshot_struck(self, node_id: int) -> bool:
        """Whether the storage fault ``node_id``'s disk took at its last crash hit
        a snapshot file: recovery then skips that snapshot, and the chosen mark
        it carried may be relearned from peers instead (``recovery-fold``)."""
        fault = self._disk_faults.get(node_id)
        return fault is not None and fault.path.endswith(".snap")

    def forget_disk(self, node_id: int) -> None:
        """``node_id``'s disk was replaced by an empty one: what struck the old is moot."""
        self._disk_faults.pop(node_id, None)
        self._crashed_at_event.pop(node_id, None)
        self._crashed_for_rare.discard(node_id)

    def take_disk_fault(self, node_id: int) -> StorageFault | None:
        """The storage fault ``node_id``'s disk took at its last crash (once)."""
        return self._disk_faults.pop(node_id, None)

    # ------------------------------------------------------------------ process faults

    def may_refuse_disk(self, host: Host) -> bool:
        """Whether ``host``'s disk may take a fault recovery must refuse now: the
        cluster can afford one more refused disk, and can lose this one."""
        return self._disk_refusals_left > 0 and self._cluster.may_lose(
            host.node_id, self.disks_refused
        )

    def _crash_for_rare_target(self) -> None:
        """Crash a node whose disk holds a rare target (``strike_rare``), and strike it.

        By the late fault phase a disk has rolled segments over, taken and
        installed snapshots and compacted; a crash at a random time with a
        fault drawn over the whole disk seldom meets the few writes that
        matter there (a seal, a header, the newest snapshot)."""
        cluster = self._cluster
        if cluster.healed_at is not None or self._disk_refusals_left <= 0:
            return
        up = [host for host in cluster.hosts.values() if cluster.node_of(host) is not None]
        aimed = [
            host for host in up if rare_targets(host.fs, f"/node{host.node_id}", self._disk_kinds)
        ]
        if not aimed:
            return
        host = self._rng_rare.choice(aimed)
        self._crashed_for_rare.add(host.node_id)
        cluster.crash_host(host, "a disk fault aimed at a rare target")

    def _arm_power_cut(self) -> None:
        """Cut a node's power inside its next multi-step disk operation (``SimDisk``)."""
        cluster = self._cluster
        up = [host for host in cluster.hosts.values() if host.process is not None]
        if not up or cluster.healed_at is not None:
            return
        host = self._rng_cut.choice(up)
        ops = self._rng_cut.randrange(_CUT_OPS_MAX)
        host.fs.arm_power_cut(ops)
        cluster.log(f"fault: power of n{host.node_id} fails {ops} calls into a disk operation")

    def _crash_disk(self, host: Host) -> None:
        """Power off ``host``'s disk: unsynced bytes torn, and now and then a storage fault."""
        cluster = self._cluster
        fault: StorageFault | None = None
        directory, kinds = f"/node{host.node_id}", self._disk_kinds
        # Rare moments: a crash point at a storage event (a roll-over just made
        # durable, a snapshot just written, an installed snapshot just marked
        # in the log), or the restart's torn-tail cut not yet durable. Storage
        # faults at the drawn rate seldom meet them; the disk then holds the
        # rare targets of ``strike_rare``. An installed snapshot is the one
        # struck: the log depends on it.
        header_cut = self._header_cuts.pop(host.node_id, None)
        if header_cut is not None and self._tear_first_header(host, directory, *header_cut):
            return
        event = self._crashed_at_event.pop(host.node_id, None)
        rare_moment = host.fs.truncate_pending or event is not None
        for_rare = host.node_id in self._crashed_for_rare
        self._crashed_for_rare.discard(host.node_id)
        may_strike = bool(kinds) and self.may_refuse_disk(host) and cluster.healed_at is None
        fault = self.snapshot_head.strike(host)
        if fault is not None:
            self._struck_aimed(host, fault)
            return
        if (
            may_strike
            and event == ROLLED_OVER
            and "dirent" in kinds
            and self._rng_successor_lost.random() < _SUCCESSOR_LOST
        ):
            # The roll-over's directory fsync lost, its seal not: the old
            # segment ends with a seal naming a segment that is gone.
            fault = strike_successor_lost(host.fs, directory)
            if fault is not None:
                self.successors_lost += 1
                self._struck_aimed(host, fault)
                return
        if may_strike and (for_rare or (rare_moment and self._rng_rare.random() < _RARE_MOMENT)):
            aimed = kinds & {"bitflip"} if event == SNAPSHOT_RECORD_DURABLE else kinds
            fault = strike_rare(host.fs, directory, self._rng_rare, aimed) or strike(
                host.fs, directory, self._rng_rare, kinds
            )
            struck = True
        else:
            struck = (
                may_strike
                and cluster.time >= self._disk_faults_from
                and self._rng_storage.random() < cluster.config.disk_fault_rate
            )
            if struck and self._rng_rare.random() < _RARE_AIM:
                fault = strike_rare(host.fs, directory, self._rng_rare, kinds)
            if struck and fault is None:
                fault = strike(host.fs, directory, self._rng_storage, kinds)
        if struck:
            if fault is not None and fault.expect == REFUSE:
                self._disk_refusals_left -= 1
                self.disks_refused.add(host.node_id)
            if fault is not None:
                cluster.stats.faults["disk"] += 1
                cluster.log(
                    f"fault: disk of n{host.node_id}: {fault.kind} {fault.path}@{fault.offset} "
                    f"({fault.detail}); recovery must {fault.expect}"
                )
        else:
            if self._rng_journal.random() < _JOURNAL_COMMIT:
                host.fs.commit_directory(f"/node{host.node_id}")
                cluster.log(f"n{host.node_id}: its directory reached the disk without an fsync")
            host.fs.crash(
                tear=self.crash_again.tear(
                    host, lambda _path, unsynced: cluster.rng_disk.randint(0, unsynced)
                ),
                zero_fill=self._zero_fill,
            )
        self.crash_again.crashed(host)
        self._disk_faults[host.node_id] = fault

    def _struck_aimed(self, host: Host, fault: StorageFault) -> None:
        """The bookkeeping of an aimed storage fault ``fault`` that struck ``host``'s disk."""
        if fault.expect == REFUSE:
            self._disk_refusals_left -= 1
            self.disks_refused.add(host.node_id)
        self._cluster.stats.faults["disk"] += 1
        self._cluster.log(
            f"fault: disk of n{host.node_id}: {fault.kind} {fault.path} "
            f"({fault.detail}); recovery must {fault.expect}"
        )
        self.crash_again.crashed(host)
        self._disk_faults[host.node_id] = fault

    def _tear_first_header(self, host: Host, directory: str, kept: int, zeros: int) -> bool:
        """The crash of an aimed creation cut (``arm_creation_cut``): False when the
        cut did not land at the first segment's header (an ordinary crash then)."""
        fs = host.fs
        first = f"{directory}/{segment_name(1)}"
        fs.commit_directory(directory)  # the journal keeps the new name
        try:
            landed = fs.unsynced_bytes(first) == SEGMENT_HEADER_BYTES
        except KeyError:  # sim: one-way: the cut lands at that fsync (the test pins op 9)
            landed = False
        if not landed:  # sim: one-way: as above
            return False
        fs.crash(
            tear=lambda path, _count: kept if path == first else 0,
            zero_fill=lambda path, _count: zeros if path == first else 0,
        )
        cluster = self._cluster
        cluster.stats.faults["crashpoint: first segment header torn"] = (
            cluster.stats.faults.get("crashpoint: first segment header torn", 0) + 1
        )
        self.crash_again.crashed(host)
        self._disk_faults[host.node_id] = None
        return True

    def _zero_fill(self, _path: str, torn_off: int) -> int:
        """How many zeros a file system leaves where ``torn_off`` written bytes were
        lost (ext4 and XFS may keep the new size without the data)."""
        rng = self._rng_zero
        if rng.random() >= _ZERO_FILL:
            return 0
        return torn_off if rng.random() < 0.5 else rng.randint(1, torn_off)

    # ------------------------------------------------------------------ helpers


# With "crash", up to this many times in the fault phase, a node's power fails
# inside its next multi-step disk operation (``SimDisk``), 0 to _CUT_OPS_MAX - 1
# calls into it.
_POWER_CUTS_MAX = 5
# At this share of crashes in the fault phase, the power fails again inside
# the repairs the restart makes (cut a torn tail, drop a segment, remove *.tmp).
_CUT_IN_RECOVERY = 0.4
_CUT_OPS_MAX = 12
# At this share of plain crashes, the directory's unsynced names reach the disk
# anyway (``SimDisk.commit_directory``), as a file system's journal may.
_JOURNAL_COMMIT = 0.3
# Storage faults strike from a time drawn up to this share of the fault phase.
_DISK_WARM_UP = 0.6
# Of the storage faults struck, this share is aimed at a rare target
# (``strike_rare``) when the disk holds one.
_RARE_AIM = 0.25
# At a rare moment (see ``_crash_disk``) a storage fault strikes at these odds,
# whatever the drawn rate and warm-up, aimed at a rare target when there is one.
_RARE_MOMENT = 0.3
# With "crash" and "disk", this share of seeds crashes a node whose disk holds
# a rare target once, at a time drawn in this span of the fault phase.
_RARE_CRASH = 0.5
_RARE_CRASH_AT = (0.5, 0.95)
# At this share of the torn writes of a plain crash, the file keeps its new
# size with zeros where the lost bytes were (all of them or a prefix).
_ZERO_FILL = 0.3
# At a crash point right after a roll-over made durable (``ROLLED_OVER``), with
# the "dirent" kind, this share loses the roll-over's directory fsync: the new
# segment's name is gone, the old one's seal names it; recovery must refuse.
_SUCCESSOR_LOST = 0.3
# With "crash", each node's power fails at these odds while it first sets its
# data directory up, 0 to _CREATION_OPS - 1 calls in (the directories, IDENTITY,
# the first segment: 11 calls).
_CUT_IN_CREATION = 0.15
_CREATION_OPS = 11
# Of the nodes with no such cut, the share whose power fails at the fsync of
# the first segment's header (op 9 of those 11, counted from the mkdir; a
# test pins it: ``tests/sim/test_first_header_cut.py``).
_CUT_AT_FIRST_HEADER = 0.05
_FIRST_HEADER_FSYNC_OP = 9
# Crash points at storage events (a roll-over made durable, a snapshot file
# written: hundreds a run) strike at this multiple of ``crashpoint_rate``, at
# most at _STORAGE_POINT_RATE_MAX; the rarest (a SnapshotRecord or a no-op's
# accept made durable: 60 swarm seeds had 13 and 5, 1 and 0 of them in a fault
# phase with crash points on) at _RARE_POINT_RATE.
_STORAGE_POINT_BOOST = 20
_STORAGE_POINT_RATE_MAX = 0.3
_RARE_POINT_RATE = 0.5
# Occurrences of a rare storage event in one run struck at the full rare rate;
# past them the rate falls as 1/occurrences.
_RARE_EXPECTED = 2
_REACCEPT_EVENTS = frozenset({REACCEPT_DURABLE, SNAPSHOT_OVER_REACCEPT})
_RARE_STORAGE_EVENTS = frozenset(
    {SNAPSHOT_RECORD_DURABLE, NOOP_DURABLE, REACCEPT_DURABLE, SNAPSHOT_OVER_REACCEPT}
)
