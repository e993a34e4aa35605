"""Time agreed through the log: the leader's stamper and the replicas' log clock."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from paxon.errors import BadRequest
from paxon.node.logclock import (
    CLOCK_CLIENT_ID,
    IDLE_STAMP_INTERVAL_S,
    LEADER_MAGIC,
    ClockStamper,
    LeaderClock,
    LogClock,
    check_client_id,
    clock_command,
    is_stamp,
)
from paxon.protocol import Role
from paxon.protocol.types import Command


def test_a_clock_entry_is_the_reserved_client_id_with_the_stamp_as_seq() -> None:
    command = clock_command(1_800_000_000_123)
    assert (command.client_id, command.seq, command.payload) == (0, 1_800_000_000_123, b"")
    assert CLOCK_CLIENT_ID == 0


def test_the_stamper_stamps_at_most_once_per_interval_from_its_wall_clock() -> None:
    wall = [1_800_000_000.0]
    elapsed = [50.0]
    stamper = ClockStamper(lambda: wall[0], elapsed_s=lambda: elapsed[0], interval_s=0.5)
    stamper.lead()
    first = stamper.stamp()
    assert first is not None and first.seq == 1_800_000_000_000
    assert first.payload == LEADER_MAGIC  # a tenure's first stamp says so
    elapsed[0] += 0.25
    wall[0] += 0.25
    assert stamper.stamp() is None
    elapsed[0] += 0.25
    wall[0] += 0.25
    second = stamper.stamp()
    assert second is not None and second.seq == 1_800_000_000_500
    assert second.payload == b""
    wall[0] -= 30  # the wall clock stepped back: no stamp of this tenure moves
    elapsed[0] += 0.5
    third = stamper.stamp()
    assert third is not None and third.seq == 1_800_000_001_000
    wall[0] += 3600  # nor forward: a step cannot expire a lease early
    elapsed[0] += 0.5
    fourth = stamper.stamp()
    assert fourth is not None and fourth.seq == 1_800_000_001_500


def test_a_new_tenure_reads_the_wall_clock_again_and_stamps_at_once() -> None:
    wall = [1_800_000_000.0]
    elapsed = [0.0]
    stamper = ClockStamper(lambda: wall[0], elapsed_s=lambda: elapsed[0], interval_s=0.5)
    pending_before = stamper.first_pending
    assert pending_before and stamper.stamp() is not None
    pending_after = stamper.first_pending
    assert not pending_after and stamper.stamp() is None
    wall[0] += 100.0  # stepped while it led
    elapsed[0] += 0.1
    stamper.lead()  # leads again (after losing leadership)
    assert stamper.first_pending
    again = stamper.stamp()  # at once, though the interval has not passed
    assert again is not None and again.payload == LEADER_MAGIC
    assert again.seq == 1_800_000_100_000


def test_log_time_never_goes_back() -> None:
    clock = LogClock()
    assert clock.observe(100) and clock.log_time_ms == 100
    assert not clock.observe(40) and clock.log_time_ms == 100
    assert not clock.observe(100)
    assert clock.observe(101) and clock.log_time_ms == 101


def test_the_clock_client_id_is_refused_at_the_edge() -> None:
    with pytest.raises(BadRequest, match="reserved"):
        check_client_id(CLOCK_CLIENT_ID)
    check_client_id(1)


class _FakeNode:
    """What ``LeaderClock`` reads of a node: its role, its machine, a proposal queue."""

    def __init__(self, deadline_ms: int | None) -> None:
        self._replica = SimpleNamespace(role=Role.LEADER)
        self.machine = SimpleNamespace(
            machine=SimpleNamespace(next_deadline_ms=lambda: deadline_ms)
        )
        self.proposed: list[Command] = []

    def _propose_system(self, command: Command) -> None:
        self.proposed.append(command)


def test_an_idle_leader_stamps_at_once_when_it_leads_then_at_the_deadline() -> None:
    wall = [1_800_000_000.0]
    elapsed = [0.0]
    stamper = ClockStamper(lambda: wall[0], elapsed_s=lambda: elapsed[0])
    node = _FakeNode(deadline_ms=1_800_000_000_300)
    duty = LeaderClock(node, stamper)  # type: ignore[arg-type]
    stamper.lead()
    duty.on_tick()
    assert [c.payload for c in node.proposed] == [LEADER_MAGIC]  # renews at once
    for _ in range(29):
        elapsed[0] += 0.01
        duty.on_tick()
    assert len(node.proposed) == 1, "not due yet: before the deadline and the idle interval"
    elapsed[0] += 0.011
    duty.on_tick()
    assert len(node.proposed) == 2 and node.proposed[1].seq >= 1_800_000_000_300


def test_an_idle_leader_restamps_every_idle_interval_while_there_is_a_deadline() -> None:
    elapsed = [0.0]
    stamper = ClockStamper(lambda: 1_800_000_000.0, elapsed_s=lambda: elapsed[0])
    node = _FakeNode(deadline_ms=1_900_000_000_000)
    duty = LeaderClock(node, stamper)  # type: ignore[arg-type]
    while elapsed[0] < 2.005:
        duty.on_tick()
        elapsed[0] += 0.01
    # One at once, then one per IDLE_STAMP_INTERVAL_S (0.5 s) over 2 s.
    assert len(node.proposed) == 1 + int(2.0 / IDLE_STAMP_INTERVAL_S)


def test_no_stamps_without_a_deadline_or_when_following() -> None:
    stamper = ClockStamper(lambda: 1_800_000_000.0, elapsed_s=lambda: 0.0)
    idle = _FakeNode(deadline_ms=None)
    LeaderClock(idle, stamper).on_tick()  # type: ignore[arg-type]
    follower = _FakeNode(deadline_ms=5)
    follower._replica.role = Role.FOLLOWER
    LeaderClock(follower, stamper).on_tick()  # type: ignore[arg-type]
    assert idle.proposed == follower.proposed == []


def test_a_stamp_refused_with_its_batch_is_forgotten_and_the_next_batch_stamps() -> None:
    """A stamp whose batch the core refused (Busy) never reached the log: the
    next batch, however soon, must carry one, or its commands would apply under
    the log time of an older stamp (a lease could expire that much early)."""
    wall = [1_800_000_000.0]
    elapsed = [10.0]
    stamper = ClockStamper(lambda: wall[0], elapsed_s=lambda: elapsed[0], interval_s=0.1)
    stamper.lead()
    first = stamper.stamp()
    assert first is not None and first.payload == LEADER_MAGIC
    stamper.refused()  # the tenure's first stamp was refused: the next is the first again
    assert stamper.first_pending
    elapsed[0] += 0.01
    again = stamper.stamp()
    assert again is not None and again.payload == LEADER_MAGIC
    elapsed[0] += 0.4
    stamp = stamper.stamp()
    assert stamp is not None and stamp.payload == b""
    stamper.refused()
    elapsed[0] += 0.01  # well within the interval of the refused stamp
    retried = stamper.stamp()
    assert retried is not None and retried.seq == 1_800_000_000_410
    elapsed[0] += 0.01
    assert stamper.stamp() is None  # the one that got in counts as before


def test_a_refused_duty_stamp_lets_the_next_one_be_the_tenures_first_again() -> None:
    """The idle duty's first stamp of a tenure, refused with its batch (Busy),
    must not count: else no stamp of that tenure renews leases."""
    elapsed = [0.0]
    stamper = ClockStamper(lambda: 1_800_000_000.0, elapsed_s=lambda: elapsed[0])
    stamper.lead()
    duty_stamp = stamper.stamp()
    assert duty_stamp is not None and is_stamp(duty_stamp) and stamper.stamp() is None
    stamper.refused()  # what the node does when the batch holding it is refused
    again = stamper.stamp()
    assert again is not None and again.payload == LEADER_MAGIC
    assert not is_stamp(Command(CLOCK_CLIENT_ID, 0, b"paxon-compact\x00" + bytes(8)))
    assert not is_stamp(Command(7, 1, b""))
