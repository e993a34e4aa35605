"""Time agreed through the log: the leader's stamper and the replicas' log clock."""

from __future__ import annotations

import pytest

from paxon.errors import BadRequest
from paxon.node.logclock import (
    CLOCK_CLIENT_ID,
    LEADER_MAGIC,
    ClockStamper,
    LogClock,
    check_client_id,
    clock_command,
)


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
    assert stamper.first_pending and stamper.stamp() is not None
    assert not stamper.first_pending and stamper.stamp() is None
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
