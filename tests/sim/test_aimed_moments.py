"""Faults aimed at moments of ``protocol/`` and ``storage/`` that the swarm's
random faults never built (issue 9, point 4; docs/testing.md, "Coverage").

Each test replays the swarm seed of 0-299 that first builds its moment, and
checks the moment happened (a counter the fault keeps, or what the core was
asked) and that the run stayed safe and live.
"""

from __future__ import annotations

from typing import Any

import pytest

from paxon.protocol.membership import ConfigState, RemovedState
from paxon.protocol.messages import TimeoutNow
from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import NodeId, Slot
from paxon.sim import SimConfig, run_seed
from paxon.sim.lagging_candidate import CONFIG as LAGGING_CONFIG
from paxon.sim.runtime import RuntimeCluster
from paxon.sim.split_slot import CONFIG as SPLIT_CONFIG
from paxon.sim.swarm import draw

SWARM = SimConfig(nodes=0, swarm=True)


class _CountsTransfers(Replica):
    """A replica that counts the handovers it is asked for without a target."""

    untargeted: list[NodeId] = []

    def transfer_leadership(self, target: NodeId | None = None) -> Ready:
        if target is None:
            _CountsTransfers.untargeted.append(self.node_id)
        return super().transfer_leadership(target)


def _run(seed: int, **kwargs: Any) -> RuntimeCluster:
    cluster = RuntimeCluster(seed, draw(seed, SWARM), **kwargs)
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    return cluster


def test_a_graceful_stop_aimed_at_the_leader_hands_leadership_over() -> None:
    """Swarm seed 67: the leader is stopped as on SIGTERM; it asks its core to
    hand over to a voter of its choosing (``Node._hand_over``)."""
    _CountsTransfers.untargeted = []
    cluster = _run(67, replica_factory=_CountsTransfers)
    assert _CountsTransfers.untargeted, "no leader was asked to hand over"
    assert cluster.leader_stop.stopped == 1


def test_a_roll_over_whose_directory_fsync_is_lost_leaves_a_seal_naming_nothing() -> None:
    """Swarm seed 54: a crash point right after a roll-over made durable, and the
    roll-over's directory fsync lost (``strike_successor_lost``): the old segment
    ends with a seal naming a segment that is gone. The run checks that recovery
    refuses that disk (``check_recovery``: a violation if it starts)."""
    cluster = _run(54)
    assert cluster.faults.disk.successors_lost == 1


class _RecordsRefusals(Replica):
    """A replica that records what the aimed requests reach in its core."""

    transfers_refused: list[NodeId] = []
    timeouts_refused: list[NodeId] = []

    def transfer_leadership(self, target: NodeId | None = None) -> Ready:
        try:
            return super().transfer_leadership(target)
        except ValueError:
            if target is not None:
                _RecordsRefusals.transfers_refused.append(target)
            raise

    def _on_timeout_now(self, message: TimeoutNow) -> None:
        role = self.role
        super()._on_timeout_now(message)
        if self.role is role and role is not Role.FOLLOWER:
            _RecordsRefusals.timeouts_refused.append(self.node_id)


def test_a_transfer_to_a_node_that_is_not_a_voter_is_refused() -> None:
    """Swarm seed 113: the aimed operator asks the leader to hand over to a
    node that is not a voter (``aims``); the core refuses it (``bad_request``)
    and the run stays safe."""
    _RecordsRefusals.transfers_refused = []
    cluster = _run(113, replica_factory=_RecordsRefusals)
    assert _RecordsRefusals.transfers_refused, "no transfer to a non-voter reached a leader"
    assert cluster.aims.misdirected == 1
    assert cluster.operator.refused >= 1


def test_a_duplicate_timeout_now_is_refused_by_the_node_that_stood() -> None:
    """Swarm seed 127: every TimeoutNow of an aimed seed is delivered twice; the
    second reaches the node that already stood on the first, which refuses it."""
    _RecordsRefusals.timeouts_refused = []
    cluster = _run(127, replica_factory=_RecordsRefusals)
    assert _RecordsRefusals.timeouts_refused, "no TimeoutNow was refused"
    assert cluster.aims.timeout_now_twice >= 1


class _RecordsRemovedLeaders(Replica):
    """A replica that records a leader reaching the effect of its own removal."""

    removed: list[NodeId] = []

    def _flush_queue(self) -> None:
        super()._flush_queue()
        if self.role is Role.LEADER and self.node_id not in self._history.at(self.slot_next).voters:
            _RecordsRemovedLeaders.removed.append(self.node_id)


def test_a_leader_whose_removal_takes_effect_proposes_nothing_there() -> None:
    """Swarm seed 24 (alpha 5, drawn small; 144 until session 23's client
    change moved its schedule): the operator removes the leader and the
    removal takes effect while it leads; it proposes nothing from there on
    and hands over (its next leader carries the log on)."""
    _RecordsRemovedLeaders.removed = []
    cluster = _run(24, replica_factory=_RecordsRemovedLeaders)
    assert _RecordsRemovedLeaders.removed, "no leader reached its removal's effect"
    assert cluster.config.alpha < 64


def test_a_lost_seal_landed_on_its_successors_first_frame_is_refused() -> None:
    """Swarm seed 144: a lost inner seal lands on its successor's first frame, a
    chosen mark of a seal's length (``storage_faults._seal_on_successor``): the
    seal names the right lsn and whole frames follow it, which recovery must
    refuse (``segments.scan_segment``: a record follows the seal)."""
    result = run_seed(144, SWARM, trace=True)
    assert not result.violations, result.violations[:3]
    refused = [line for line in result.trace if "a record follows the seal" in line]
    assert refused and "did not start: CorruptRecord" in refused[0], refused


def test_a_snapshot_head_misdirected_onto_an_older_snapshot_is_classified() -> None:
    """Swarm seed 174: a crash lands the newest snapshot's head on the snapshot
    before it (``storage_faults.strike_snapshot_head_misdirected``): the older
    file's header passes its CRC and names the newer's lsn. Recovery must see
    both damaged and fall back as the snapshot rule says (``check_recovery``:
    a violation if it refuses this disk, or starts on one it must refuse)."""
    cluster = _run(174, trace=True)
    assert cluster.faults.disk.snapshot_head.struck == 1
    struck = [line for line in cluster.trace if "a snapshot's head, onto an older" in line]
    assert len(struck) == 1 and "recovery must recover" in struck[0], struck


@pytest.mark.parametrize("seed", range(3))
def test_two_reigns_values_at_one_slot_meet_in_one_phase_one(seed: int) -> None:
    """``split_slot``: the first leader's value at a slot and the second's,
    each held by its leader alone, both reported to the next leader's Phase 1,
    which must re-propose the second's (``reproposes-highest`` judges it)."""
    cluster = RuntimeCluster(seed, SPLIT_CONFIG, trace=True)
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    split = cluster.split_slot
    assert split.stage == 3 and split.first != split.second
    assert cluster.reproposal.split_judged > 0
    # The cut-off leaders learn what was chosen without them: learn-marks judges it.
    assert cluster.duties.judged["learn-marks"] > 0
    cut = [line for line in cluster.trace if f"Accepts at slot {split.slot} lost" in line]
    assert len(cut) == 2, cut


class _RecordsLeaderPrepares(Replica):
    """A replica that records a leader asking for promises for a configuration
    its election's promises did not prepare."""

    asked: list[NodeId] = []

    def _prepare_configuration(self, slot: int) -> None:
        before = self._prepare_sent_at
        super()._prepare_configuration(slot)
        if self._prepare_sent_at != before:
            _RecordsLeaderPrepares.asked.append(self.node_id)


def test_a_leader_prepares_a_configuration_its_promises_did_not() -> None:
    """Swarm seed 350 (268 until the swarm drew removal cuts in session 28;
    alpha drawn small): its elections are made bare and a
    bare leader is asked a change its promises do not prepare (``bare_reign``);
    once the change takes effect, the leader asks the voters that have not
    promised before it proposes there (``Replica._prepare_configuration``)."""
    _RecordsLeaderPrepares.asked = []
    cluster = _run(350, replica_factory=_RecordsLeaderPrepares)
    assert cluster.aims.bare_reign.changes_unprepared >= 1
    assert _RecordsLeaderPrepares.asked, "no leader prepared a configuration"
    assert cluster.aims.bare_reign.leader_prepares >= 1


class _RecordsRemovedLeases(Replica):
    """A replica that records a read reaching it as a leader whose newest
    configuration does not have it as a voter, with no handover running."""

    reads: list[NodeId] = []
    # Those of them answered at once, from the lease (no round).
    leased: list[NodeId] = []

    def read_index(self, read_id: int, now: float | None = None) -> Ready:
        aimed = (
            now is not None
            and self.config.lease_reads
            and self.role is Role.LEADER
            and self.node_id not in self._history.newest.voters
            and not self._lease_forfeit
            and self._transfer_to is None
        )
        ready = super().read_index(read_id, now)
        if aimed:
            _RecordsRemovedLeases.reads.append(self.node_id)
            if any(read.read_id == read_id for read in ready.reads):
                _RecordsRemovedLeases.leased.append(self.node_id)
        return ready


def test_a_leader_being_removed_serves_no_read_from_its_lease() -> None:
    """Swarm seed 230 (lease reads): after the heal a calm leader serving reads
    from its lease is asked to remove itself (``lease_removal``); reads reach it
    while it leads on, removed, and the lease is refused (``Replica.lease_holds``:
    ``voter_since`` finds it no voter of the newest configuration): each read
    takes a round, and the run stays linearizable."""
    _RecordsRemovedLeases.reads = []
    _RecordsRemovedLeases.leased = []
    cluster = _run(230, replica_factory=_RecordsRemovedLeases)
    removal = cluster.aims.lease_removal
    assert removal.asked is not None
    assert _RecordsRemovedLeases.reads, "no read reached a leader being removed"
    assert set(_RecordsRemovedLeases.reads) == {removal.asked}
    assert not _RecordsRemovedLeases.leased, "a leader being removed answered from its lease"


class _RecordsLoneHandovers(Replica):
    """A replica that records the handovers refused for want of another voter."""

    refused: list[NodeId] = []

    def transfer_leadership(self, target: NodeId | None = None) -> Ready:
        try:
            return super().transfer_leadership(target)
        except ValueError:
            if target is None:
                _RecordsLoneHandovers.refused.append(self.node_id)
            raise


def test_a_leader_left_the_only_voter_stops_without_a_handover() -> None:
    """Swarm seed 61: after the heal the other voters are removed one by one
    (``lone_voter``) until the leader's core names nobody to hand over to; the
    leader is stopped as on SIGTERM, its core refuses the handover, and the
    cluster settles again on it (``HealWatch.on_restart``)."""
    _RecordsLoneHandovers.refused = []
    cluster = _run(61, replica_factory=_RecordsLoneHandovers)
    lone = cluster.aims.lone_voter
    assert lone.stopped == 1 and lone.changes >= 1
    assert _RecordsLoneHandovers.refused, "no leader was refused a handover"
    assert cluster.healing.settled_at is not None


class _RecordsStandingInstalls(Replica):
    """A replica that records a snapshot installed while it does not follow
    (probing, a candidate not catching up, or leading): it steps down."""

    installs: list[tuple[NodeId, Role, Role]] = []  # node, role before, role after

    def install_snapshot(
        self, slot: Slot, configs: ConfigState = (), removed: RemovedState = ()
    ) -> Ready:
        role, behind = self.role, slot > self.slot_chosen
        catching_up = role is Role.PREPARING and self._catch_up_to > 0
        ready = super().install_snapshot(slot, configs, removed)
        if behind and role is not Role.FOLLOWER and not catching_up:
            _RecordsStandingInstalls.installs.append((self.node_id, role, self.role))
        return ready


def test_a_snapshot_installed_by_a_node_that_stands_steps_it_down() -> None:
    """Swarm seed 91: a leader's last snapshot chunk to a follower stalls while
    the two are cut apart (``stalled_chunk``); the follower's election timer
    fires and it probes, then the chunk gets through and it installs the
    snapshot while probing: it steps down (``Replica.install_snapshot``)."""
    _RecordsStandingInstalls.installs = []
    cluster = _run(91, replica_factory=_RecordsStandingInstalls)
    assert cluster.stalled_chunk.let_through_standing == 1
    installs = _RecordsStandingInstalls.installs
    assert installs, "no snapshot was installed by a node that stands"
    assert all(after is Role.FOLLOWER for _, _, after in installs), installs


@pytest.mark.parametrize("seed", range(3))
def test_a_candidate_behind_by_nearly_a_window_leads_on_the_far_fill(seed: int) -> None:
    """``lagging_candidate``: a follower cut off until the other has chosen
    nearly a window past it, then the leader cut off instead: the follower
    stands, and its Phase 1 counts a promise reporting a slot in the far half
    of the fill window (``promised-leads`` judges it)."""
    cluster = RuntimeCluster(seed, LAGGING_CONFIG, trace=True)
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    lagging = cluster.lagging_candidate
    assert lagging.stage == 2 and lagging.candidate != lagging.acceptor
    assert cluster.reproposal.far_fill_counted > 0
    rejoined = [line for line in cluster.trace if "fault: " in line and "rejoins" in line]
    assert len(rejoined) == 1 and f"rejoins n{lagging.acceptor}" in rejoined[0], rejoined
