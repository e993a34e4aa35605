"""Swarm runs: each seed draws its own configuration.

One fixed configuration explores one corner of the space: the same fault mix,
the same timeouts, the same window, so a branch that needs a window of one
slot, or a tiny snapshot interval, or five partitions and no crashes, is
reached by no seed at all. Swarm testing (Groce et al., and TigerBeetle's
VOPR, FoundationDB's randomized knobs) gives each seed its own mix instead:
which fault kinds are on (some seeds have none of a kind, some a lot), how
often each strikes, and every protocol knob inside its legal range. The seed
alone still decides everything, so ``paxon sim --seed N --swarm`` replays the
run, and the trace starts with the drawn configuration.

What is drawn, and from where (``draw``):

| setting                     | range                                           |
|-----------------------------|-------------------------------------------------|
| nodes                       | 3 to 7 (35/15/25/10/15%), unless the base fixes it |
| fault kinds                 | all of the base's (35% of seeds), else each on |
|                             | with probability 0.75                          |
| drop / duplicate            | 0-0.25 / 0-0.1 of messages                      |
| reorder                     | 0-0.5 of messages, by up to 1-100 ms            |
| stall                       | 0-0.05 of messages, for up to 0.1-2 s           |
| gap between process faults  | from 0.02-0.2 s, up to 0.1-1.2 s more           |
| partition/crash/pause weight| 0.1-1 each                                      |
| messages held for later     | 0.002-0.1 of them                               |
| crash at a crash point      | 0.0005-0.02 of the points passed                |
| storage fault at a crash    | 0.1-0.9 of crashes                              |
| clients, keys               | 1-6, 1-5                                        |
| clients that only read      | 0 (half the seeds), 1 or 2; never all of them   |
| operations in flight        | 1 per client; 2-8 (log-uniform) in 30% of seeds |
|                             | (session lanes, as ``paxon.Client``'s calls),   |
|                             | with the clients cut to 8 in flight in all      |
| client timeout              | 0.1-0.6 s                                       |
| tick                        | 2-20 ms                                         |
| heartbeat                   | 10-100 ms                                       |
| election timeout            | min 3-10 heartbeats, max 1.1-3x min             |
| accept / learn retry        | 20-300 ms each                                  |
| pipeline window             | 1-128 slots (log-uniform)                       |
| batch                       | 1-512 commands (log-uniform)                    |
| learn page                  | 1-256 entries (log-uniform)                     |
| queue                       | 8-100,000 commands (log-uniform)                |
| snapshot interval           | 3-300 slots (log-uniform), chunks 64 B-8 KiB    |
| log segment size            | 1-64 KiB (log-uniform); batch bytes at most     |
|                             | 1/16 of it; then batch commands cut and the     |
|                             | segment grown so a full batch and a change of   |
|                             | every member fit a record (``_fit_records``)    |
| small limits (25% of seeds) | batch 16 B-4 KiB, learn 16 B-16 KiB, queue 2-16 |
|                             | commands, runs 1-64, slots ahead 2-16 windows   |
|                             | (log-uniform)                                   |
| tiny limits (half of those) | queue 2-8 commands, window 1-4 slots, slots     |
|                             | ahead 2 windows, learn 1-2 entries, batch 1-4   |
|                             | commands: ``Busy`` and the slots-ahead bound    |
|                             | (``W`` = 2-8 slots) are reached                 |
| disk-heavy (25% of seeds)   | segments of 1 KiB, a snapshot every 3-20 slots  |
|                             | (log-uniform): the fault phase rolls over,      |
|                             | snapshots, installs and compacts many times     |
| forged messages ("buggy")   | every 0.02-0.1 s; every 0.003-0.02 s in 30% of  |
|                             | seeds                                           |
| membership ("reconfig"),    | on with probability 0.75; then 0-2 spare nodes, |
| core engine                 | alpha 1-64 (log-uniform), a change every        |
|                             | 0.05-0.3 s up to 0.2-1 s more                   |
| membership ("reconfig"),    | on with probability 0.3; then 0-2 spare nodes,  |
| runtime engine              | alpha 64 (the node's default), or 1-16 (log-    |
|                             | uniform) in half of them; a change every        |
|                             | 0.1-0.4 s up to 0.2-1 s more; a careless        |
|                             | operator (its mistakes refused) in half of them |
|                             | (``operator.CARELESS_SHARE``)                   |
| a wiped disk ("wipe"),      | on with probability 0.2; then one voter's disk  |
| runtime engine              | is wiped once in the fault phase (wipe_rate 1)  |
| lease reads, runtime engine | on with probability 0.25 (``lease_reads``), when|
|                             | the clocks keep the replicas' bound (drift max  |
|                             | at most ``clock_drift_max``); always on when the|
|                             | base asks for them                              |

"reconfig" is drawn from a stream of its own per engine, "wipe" from
another, and lease reads from a third, so every other draw is as it was
before they existed, and a seed that draws none of them runs as before.
"""

from __future__ import annotations

import dataclasses
import math
import random

from paxon.protocol.config import ReplicaConfig
from paxon.protocol.membership import INCARNATION_END, Configuration, Member
from paxon.sim.config import FAULT_KINDS, PROCESS_FAULTS, SimConfig
from paxon.sim.host import storage_config
from paxon.sim.network import LinkFaults
from paxon.sim.operator import sim_address
from paxon.storage.codec import accept_record_bytes

NODES_MIN = 3
NODES_MAX = 7
_KIND_ON = 0.75
# Kinds drawn from a stream of their own (``_draw_membership``), not in the loop.
_OWN_STREAM_KINDS = frozenset({"reconfig", "wipe"})
# Runtime engine: share of the seeds that wipe a voter's disk once.
_RUNTIME_WIPE_ON = 0.2
# Runtime engine: share of the seeds that change the members (each costs more:
# spare nodes, and the changes' traffic).
_RUNTIME_RECONFIG_ON = 0.3
_ALL_KINDS = 0.35
# Odd sizes are what people run; even ones have their own quorum arithmetic.
_NODE_COUNTS = tuple(range(NODES_MIN, NODES_MAX + 1))
_NODE_WEIGHTS = (0.35, 0.15, 0.25, 0.1, 0.15)
# Share of seeds whose byte, queue and run limits are drawn small.
_SMALL_LIMITS = 0.25
_CLIENTS_MAX = 6
# Share of those whose queue, window and Learn page are tiny (W of 2-8 slots).
_TINY_LIMITS = 0.5
# Seconds between forged messages; in a share of seeds much shorter.
_BUGGY_GAP = (0.02, 0.1)
_BUGGY_GAP_FAST = (0.003, 0.02)
_BUGGY_FAST = 0.3
# Share of seeds that are disk-heavy (``draw``); the smallest segment allowed.
_DISK_HEAVY = 0.25
_SEGMENT_BYTES_MIN = 1024
# Share of seeds whose clients keep several operations in flight, and how many:
# enough, with 1-6 clients, to fill a queue of 2-16 while the window is full.
_PIPELINED = 0.3
_LANES = (2, 8)
_IN_FLIGHT_MAX = 8
# Runtime engine: share of the seeds whose nodes answer reads under a leader
# lease (issue 13), inside the clock bound: what ``paxon serve --lease-reads``
# runs, and the only way the simulator reaches the lease's branches.
_RUNTIME_LEASE_READS_ON = 0.25
_LEASE_STREAM = 15868
# Runtime engine: share of the seeds whose nodes sync from their own loop when
# the disk is idle (``SimConfig.sync_here``); the stream's number searched as
# the lease's was, also avoiding every other seed a test pins (30, 31, 46,
# 54, 67, 100, 101, 113, 126, 127, 144, 163, 188, 1307, 7809): 65 of seeds
# 0-299 draw it.
_RUNTIME_SYNC_HERE_ON = 0.25
_SYNC_HERE_STREAM = 42933
# Runtime engine: share of the seeds with "reconfig" whose nodes take a small
# alpha (``NodeConfig.alpha``), and its range. No seed a test pins (1, 7, 10,
# 14, 20, 30, 31, 46, 85, 100, 101, 108, 115, 146, 172, 1307, 5049 draw
# "reconfig") draws it with this stream.
_RUNTIME_SMALL_ALPHA = 0.5
# Runtime engine: share of the seeds with "reconfig" that cut off the voters
# they remove until the removal takes effect (``SimConfig.removed_cut_share``,
# drawn in [0.5, 1] then), from a stream of its own.
_RUNTIME_REMOVED_CUT_ON = 0.3
_RUNTIME_ALPHA = (1, 16)
_ALPHA_STREAM = 183318
# Runtime engine: share of the seeds with "crash" whose roll-overs may be cut
# short (``SimConfig.roll_cut_rate``, drawn in [0.25, 0.75] then, with the
# smallest segments: the power fails with the new segment durable and the old
# one not yet sealed). The
# stream's number was searched so that no seed a test pins to a moment draws
# it (the 45 such seeds with "crash" in session 29, 91 and 144 among them);
# about 34 of seeds 0-299 do.
_RUNTIME_ROLL_CUT_ON = 0.15
_ROLL_CUT_STREAM = 1051
# Runtime engine: share of the seeds with "reconfig" whose spares start with
# --join once added, not from --peers (``SimConfig.spares_join``), from a
# stream of its own whose number was searched so that none of the 25 seeds
# with reconfig and spares that a test pins alone draws it (24, 35, 61, 100,
# 108, 113, 115, 127, 172, 230, 350, 482, 5034, 5049 and 11 regression seeds
# of 2000272 on, in session 30); 29 of seeds 0-299 do, 114 among them.
_RUNTIME_JOIN_ON = 0.5
_JOIN_STREAM = 3110112
# Runtime engine: share of the seeds with "reconfig" that restart a member
# inside a change's window, chosen and not yet in effect, from a snapshot it
# took there (``SimConfig.change_restart_share``, drawn in [0.5, 1] then;
# ``sim/change_restart.py``). From a stream of its own whose number was
# searched so that none of the 43 seeds with reconfig that a test pins alone,
# or that the mutation budget's swarm group runs, draws it (read from a run of
# tests/sim that logged every such draw, in session 33: 1 to 482, 5034, 5049
# and 21 regression seeds of 2000016 on).
_RUNTIME_CHANGE_RESTART_ON = 0.25
_CHANGE_RESTART_STREAM = 217709

# Runtime engine: share of the seeds whose leader keeps little KV history
# (``SimConfig.history_revisions``, drawn in [1, 64]), so that it proposes
# compaction entries and watchers are refused what was cut. From a stream of
# its own whose number was searched so that none of the 70 seeds a test pins
# alone draws it (read from a run of tests/sim that logged every draw, in
# session 31: 37 seeds of tests, 0-482 and 5049 to 7003556, and the 33 of
# test_regressions.py); 37 of seeds 0-299 do.
_RUNTIME_HISTORY_ON = 0.15
_HISTORY_REVISIONS = (1, 64)
_HISTORY_STREAM = 38878


def draw(seed: int, base: SimConfig) -> SimConfig:
    """The configuration of swarm seed ``seed``: ``base`` with every knob drawn.

    The node count is ``base.nodes``, or 3 to 7 when that is 0; the fault
    kinds are drawn among ``base.faults``; the phases, storage and engine are
    the base's."""
    rng = random.Random(f"{seed}:swarm")
    kinds = frozenset(
        kind
        for kind in FAULT_KINDS
        if kind not in _OWN_STREAM_KINDS and kind in base.faults and rng.random() < _KIND_ON
    )
    heartbeat = rng.uniform(0.01, 0.1)
    election_min = heartbeat * rng.uniform(3.0, 10.0)
    replica = ReplicaConfig(
        heartbeat_interval_s=heartbeat,
        election_timeout_min_s=election_min,
        election_timeout_max_s=election_min * rng.uniform(1.1, 3.0),
        backoff_max_factor=rng.uniform(1.0, 8.0),
        accept_retry_s=rng.uniform(0.02, 0.3),
        learn_retry_s=rng.uniform(0.02, 0.3),
        pipeline_window_slots=_log_uniform(rng, 1, 128),
        batch_max_commands=_log_uniform(rng, 1, 512),
        learn_max_entries=_log_uniform(rng, 1, 256),
        queue_max_commands=_log_uniform(rng, 8, 100_000),
    )
    # Drawn from their own stream, so adding them left every draw above as it was.
    limits = random.Random(f"{seed}:swarm-limits")
    if limits.random() < _SMALL_LIMITS:
        # Limits small enough to bind with the simulator's few, short commands:
        # a batch or a Learn cut by bytes, a full proposal queue, few runs.
        replica = dataclasses.replace(
            replica,
            batch_max_bytes=_log_uniform(limits, 16, 4096),
            learn_max_bytes=_log_uniform(limits, 16, 16_384),
            # 2 at least: the leader heads a batch with a clock entry, so a
            # queue of 1 refuses every command (swarm seed 162 chose nothing).
            queue_max_commands=_log_uniform(limits, 2, 16),
            runs_max=_log_uniform(limits, 1, 64),
            slots_ahead_factor=_log_uniform(limits, 2, 16),
        )
        # Their own stream again, so the draws above stay as they were.
        tiny = random.Random(f"{seed}:swarm-tiny")
        if tiny.random() < _TINY_LIMITS:
            replica = dataclasses.replace(
                replica,
                # Fewer than a flush of every client's command, so Busy is
                # reached (seed 257's stall was the slots-ahead bound of one
                # window, now refused by ReplicaConfig, not this queue).
                queue_max_commands=tiny.randint(2, 8),
                pipeline_window_slots=tiny.randint(1, 4),
                slots_ahead_factor=2,
                learn_max_entries=tiny.randint(1, 2),
                batch_max_commands=tiny.randint(1, 4),
            )
    # Small enough that a fault phase (a few kilobytes of log) rolls segments
    # over; a batch stays far inside a record (half a segment).
    segment_max_bytes = _log_uniform(limits, _SEGMENT_BYTES_MIN, 64 * 1024)
    batch_max_bytes = min(replica.batch_max_bytes, segment_max_bytes // 16)
    replica = dataclasses.replace(replica, batch_max_bytes=batch_max_bytes)
    gap_low = rng.uniform(0.02, 0.2)
    forging = random.Random(f"{seed}:swarm-buggy")
    buggy_gap_s = _BUGGY_GAP_FAST if forging.random() < _BUGGY_FAST else _BUGGY_GAP
    membership = _draw_membership(seed, base)
    if membership is not None:
        kinds |= {"reconfig"}
        base = membership
    wipe_rate = 0.0
    wiping = random.Random(f"{seed}:swarm-wipe")
    if "wipe" in base.faults and base.engine == "runtime" and wiping.random() < _RUNTIME_WIPE_ON:
        kinds |= {"wipe"}
        wipe_rate = 1.0
    # The stream's number was searched for so that no seed a test pins (0-20,
    # 85, 86, 97, 102, 108, 109, 115, 146, 172, 5049) draws them: those runs
    # stay as they were. 63 of seeds 0-299 do.
    leasing = random.Random(f"{seed}:swarm-lease-{_LEASE_STREAM}")
    lease_reads = base.lease_reads or (
        base.engine == "runtime"
        and base.drift_rate_max <= replica.clock_drift_max
        and leasing.random() < _RUNTIME_LEASE_READS_ON
    )
    syncing = random.Random(f"{seed}:swarm-sync-here-{_SYNC_HERE_STREAM}")
    sync_here = base.sync_here or (
        base.engine == "runtime" and syncing.random() < _RUNTIME_SYNC_HERE_ON
    )
    rolling = random.Random(f"{seed}:swarm-roll-cut-{_ROLL_CUT_STREAM}")
    roll_cut_rate = base.roll_cut_rate
    if base.engine == "runtime" and "crash" in kinds and rolling.random() < _RUNTIME_ROLL_CUT_ON:
        roll_cut_rate = rolling.uniform(0.25, 0.75)
    keeping = random.Random(f"{seed}:swarm-history-{_HISTORY_STREAM}")
    history_revisions = base.history_revisions
    if base.engine == "runtime" and keeping.random() < _RUNTIME_HISTORY_ON:
        history_revisions = history_revisions or _log_uniform(keeping, *_HISTORY_REVISIONS)
    pipelining = random.Random(f"{seed}:swarm-lanes")
    lanes = _log_uniform(pipelining, *_LANES) if pipelining.random() < _PIPELINED else 1
    config = dataclasses.replace(
        base,
        swarm=False,
        nodes=base.nodes or rng.choices(_NODE_COUNTS, _NODE_WEIGHTS)[0],
        faults=kinds,
        clients=(clients := _clients_for(rng.randint(1, _CLIENTS_MAX), lanes)),
        readers=min(clients - 1, rng.choice((0, 0, 1, 2))),
        client_lanes=lanes,
        keys=rng.randint(1, 5),
        client_timeout_s=rng.uniform(0.1, 0.6),
        tick_s=rng.uniform(0.002, 0.02),
        snapshot_interval_slots=_log_uniform(rng, 3, 300),
        snapshot_chunk_bytes=_log_uniform(rng, 64, 8192),
        segment_max_bytes=segment_max_bytes,
        link=LinkFaults(
            drop_rate=rng.uniform(0.0, 0.25) if "drop" in kinds else 0.0,
            duplicate_rate=rng.uniform(0.0, 0.1) if "duplicate" in kinds else 0.0,
            reorder_rate=rng.uniform(0.0, 0.5) if "reorder" in kinds else 0.0,
            reorder_max_s=rng.uniform(0.001, 0.1) if "reorder" in kinds else 0.0,
            stall_rate=rng.uniform(0.0, 0.05) if "delay" in kinds else 0.0,
            stall_max_s=rng.uniform(0.1, 2.0) if "delay" in kinds else 0.0,
        ),
        fault_gap_s=(gap_low, gap_low + rng.uniform(0.1, 1.2)),
        fault_weights=(rng.uniform(0.1, 1.0), rng.uniform(0.1, 1.0), rng.uniform(0.1, 1.0)),
        hold_rate=rng.uniform(0.002, 0.1),
        crashpoint_rate=rng.uniform(0.0005, 0.02),
        disk_fault_rate=rng.uniform(0.1, 0.9),
        wipe_rate=wipe_rate,
        roll_cut_rate=roll_cut_rate,
        lease_reads=lease_reads,
        sync_here=sync_here,
        history_revisions=history_revisions,
        buggy_gap_s=buggy_gap_s,
        replica=replica,
    )
    # Disk-heavy seeds, from their own stream (the draws above stay as they
    # were): the smallest segments and frequent snapshots give the storage
    # faults old disks to strike (inner segments and seals, compacted logs,
    # installed snapshots).
    disk_heavy = random.Random(f"{seed}:swarm-disk")
    if disk_heavy.random() < _DISK_HEAVY:
        replica = dataclasses.replace(
            replica, batch_max_bytes=min(replica.batch_max_bytes, _SEGMENT_BYTES_MIN // 16)
        )
        config = dataclasses.replace(
            config,
            segment_max_bytes=_SEGMENT_BYTES_MIN,
            snapshot_interval_slots=_log_uniform(disk_heavy, 3, 20),
            replica=replica,
        )
    if roll_cut_rate != base.roll_cut_rate:
        # A roll-over is cut only within the fault phase, where a faulty seed
        # writes little: the smallest segments, so that some roll over there.
        replica = dataclasses.replace(
            replica, batch_max_bytes=min(replica.batch_max_bytes, _SEGMENT_BYTES_MIN // 16)
        )
        config = dataclasses.replace(config, segment_max_bytes=_SEGMENT_BYTES_MIN, replica=replica)
    return _fit_records(config)


def _fit_records(config: SimConfig) -> SimConfig:
    """``config`` with every accept record its nodes can write inside their
    record limit (half a segment, ``host.storage_config``), as ``NodeConfig``
    requires of a real node: a full batch, and a change to a configuration of
    all its members alone. Swarm seed 7002048 drew 1 KiB segments and 24
    commands to a batch: the leader's record came to 563 bytes against 512,
    and it stopped on RecordTooLarge. Changes only the seeds that overflowed."""
    lone_change = accept_record_bytes(1, _change_bytes_max(config.nodes + config.spares))
    segment_max_bytes = max(config.segment_max_bytes, 2 * lone_change)
    record_max = storage_config(segment_max_bytes).record_max_bytes
    replica = config.replica
    # Past its first command a batch holds at most batch_max_bytes of payload.
    room = record_max - accept_record_bytes(0, replica.batch_max_bytes)
    per_command = accept_record_bytes(1, 0) - accept_record_bytes(0, 0)
    commands = max(1, min(replica.batch_max_commands, room // per_command))
    if (segment_max_bytes, commands) == (config.segment_max_bytes, replica.batch_max_commands):
        return config
    return dataclasses.replace(
        config,
        segment_max_bytes=segment_max_bytes,
        replica=dataclasses.replace(replica, batch_max_commands=commands),
    )


def _change_bytes_max(members: int) -> int:
    """The largest configuration change's payload with ``members`` members:
    every number at 64 bits, and all but one voter learners to promote."""
    widest = INCARNATION_END - 1
    configuration = Configuration(
        widest,
        (
            Member(1, sim_address(1), True, incarnation=widest),
            *(
                Member(node_id, sim_address(node_id), False, widest, auto_promote=True)
                for node_id in range(2, members + 1)
            ),
        ),
        widest,
    )
    return len(configuration.command().payload)


def _draw_membership(seed: int, base: SimConfig) -> SimConfig | None:
    """``base`` with the "reconfig" settings of the seed, or None when it is off."""
    if "reconfig" not in base.faults:
        return None
    if base.engine == "runtime":
        runtime = random.Random(f"{seed}:swarm-reconfig-runtime")
        if runtime.random() >= _RUNTIME_RECONFIG_ON:
            return None
        gap_low = runtime.uniform(0.1, 0.4)
        # A small alpha in a share of them, from a stream of its own whose
        # number was searched so that no seed a test pins draws it: at the
        # node's 64 a change seldom takes effect within the fault phase (the
        # first leader's binding of incarnations holds every later one back).
        small_alpha = random.Random(f"{seed}:swarm-alpha-{_ALPHA_STREAM}")
        alpha = base.alpha
        if small_alpha.random() < _RUNTIME_SMALL_ALPHA:
            alpha = _log_uniform(small_alpha, *_RUNTIME_ALPHA)
        cutting = random.Random(f"{seed}:swarm-removed-cut")
        removed_cut = 0.0
        if cutting.random() < _RUNTIME_REMOVED_CUT_ON:
            removed_cut = cutting.uniform(0.5, 1.0)
        restarting = random.Random(f"{seed}:swarm-change-restart-{_CHANGE_RESTART_STREAM}")
        change_restart = 0.0
        if restarting.random() < _RUNTIME_CHANGE_RESTART_ON:
            change_restart = restarting.uniform(0.5, 1.0)
        joining = random.Random(f"{seed}:swarm-join-{_JOIN_STREAM}")
        return dataclasses.replace(
            base,
            spares=runtime.randint(0, 2),
            alpha=alpha,
            reconfig_gap_s=(gap_low, gap_low + runtime.uniform(0.2, 1.0)),
            removed_cut_share=removed_cut,
            change_restart_share=change_restart,
            spares_join=base.spares_join or joining.random() < _RUNTIME_JOIN_ON,
        )
    rng = random.Random(f"{seed}:swarm-reconfig")
    if rng.random() >= _KIND_ON:
        return None
    gap_low = rng.uniform(0.05, 0.3)
    return dataclasses.replace(
        base,
        spares=rng.randint(0, 2),
        alpha=_log_uniform(rng, 1, 64),
        reconfig_gap_s=(gap_low, gap_low + rng.uniform(0.2, 1.0)),
    )


def resolve(seed: int, config: SimConfig) -> SimConfig:
    """The configuration seed ``seed`` runs: drawn if ``config.swarm``, else ``config``."""
    return draw(seed, config) if config.swarm else config


def _clients_for(clients: int, lanes: int) -> int:
    """Fewer clients when each keeps several operations in flight: at most
    _IN_FLIGHT_MAX in all (the cost of a seed grows with them)."""
    return clients if lanes == 1 else max(1, min(clients, _IN_FLIGHT_MAX // lanes))


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return min(high, int(math.exp(rng.uniform(math.log(low), math.log(high + 1)))))


__all__ = ["NODES_MAX", "NODES_MIN", "PROCESS_FAULTS", "draw", "resolve"]
