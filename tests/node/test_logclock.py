"""Time agreed through the log: the leader's stamper and the replicas' log clock."""

from __future__ import annotations

import pytest

from paxon.errors import BadRequest
from paxon.node.logclock import (
    CLOCK_CLIENT_ID,
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
    now = [1_800_000_000.0]
    stamper = ClockStamper(lambda: now[0], interval_s=0.5)
    first = stamper.stamp()
    assert first is not None and first.seq == 1_800_000_000_000
    now[0] += 0.25
    assert stamper.stamp() is None
    now[0] += 0.25
    second = stamper.stamp()
    assert second is not None and second.seq == 1_800_000_000_500
    now[0] -= 30  # the wall clock stepped back: stamp (log time will ignore it)
    third = stamper.stamp()
    assert third is not None and third.seq == 1_799_999_970_500


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
