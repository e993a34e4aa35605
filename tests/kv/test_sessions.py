from __future__ import annotations

import pytest

from paxon.kv import SessionTable, SessionVerdict


def test_new_then_duplicate_then_stale() -> None:
    table: SessionTable[str] = SessionTable()
    assert table.verdict(7, 1) is SessionVerdict.NEW
    table.record(7, 1, "first answer")
    assert table.verdict(7, 1) is SessionVerdict.DUPLICATE
    assert table.reply(7, 1) == "first answer"
    table.record(7, 2, "second")
    assert table.verdict(7, 1) is SessionVerdict.STALE
    assert table.reply(7, 1) is None


def test_recording_a_duplicate_or_a_stale_command_is_refused() -> None:
    table: SessionTable[int] = SessionTable()
    table.record(1, 1, 0)
    table.record(1, 5, 0)
    with pytest.raises(ValueError, match="not new"):
        table.record(1, 5, 0)
    with pytest.raises(ValueError, match="not new"):
        table.record(1, 4, 0)


def test_an_unknown_session_opens_only_at_seq_1() -> None:
    table: SessionTable[None] = SessionTable()
    assert table.verdict(9, 1) is SessionVerdict.NEW
    # Seq 2 of a session the table does not hold may be a retry whose first
    # application the table forgot: it is refused, never applied as new.
    assert table.verdict(9, 2) is SessionVerdict.EXPIRED
    assert table.verdict(9, 0) is SessionVerdict.EXPIRED
    with pytest.raises(ValueError):
        table.record(9, 2, None)


def test_a_full_table_refuses_new_sessions_and_keeps_every_live_one() -> None:
    table: SessionTable[str] = SessionTable(max_sessions=3, ttl_ms=1_000)
    for client_id in (1, 2, 3):
        table.record(client_id, 1, f"reply {client_id}", now_ms=100)
    assert table.verdict(4, 1) is SessionVerdict.FULL
    with pytest.raises(ValueError, match="not new"):
        table.record(4, 1, "no room", now_ms=100)
    assert len(table) == 3
    # Every live session still answers its retry and takes its next command.
    for client_id in (1, 2, 3):
        assert table.verdict(client_id, 1) is SessionVerdict.DUPLICATE
        assert table.reply(client_id, 1) == f"reply {client_id}"
        assert table.verdict(client_id, 2) is SessionVerdict.NEW


def test_sessions_idle_longer_than_the_ttl_expire_and_make_room() -> None:
    table: SessionTable[None] = SessionTable(max_sessions=2, ttl_ms=1_000)
    table.record(1, 1, None, now_ms=0)
    table.record(2, 1, None, now_ms=500)
    assert table.expire(1_000) == 0  # idle exactly the TTL: kept
    assert table.expire(1_001) == 1
    assert table.verdict(1, 2) is SessionVerdict.EXPIRED
    assert table.verdict(2, 2) is SessionVerdict.NEW
    assert table.verdict(3, 1) is SessionVerdict.NEW
    table.record(3, 1, None, now_ms=1_001)
    assert table.verdict(4, 1) is SessionVerdict.FULL


def test_a_retry_touches_its_session_so_it_does_not_expire() -> None:
    table: SessionTable[None] = SessionTable(ttl_ms=1_000)
    table.record(1, 1, None, now_ms=0)
    table.record(2, 1, None, now_ms=100)
    table.touch(1, now_ms=900)
    assert table.expire(1_500) == 1
    assert table.verdict(2, 2) is SessionVerdict.EXPIRED  # session 2 was dropped
    assert table.verdict(1, 1) is SessionVerdict.DUPLICATE
    assert [row[0] for row in table.export()] == [1]


def test_time_going_back_is_refused() -> None:
    table: SessionTable[None] = SessionTable(ttl_ms=1_000)
    table.record(1, 1, None, now_ms=50)
    with pytest.raises(ValueError, match="went back"):
        table.record(2, 1, None, now_ms=49)


def test_without_a_ttl_nothing_expires() -> None:
    table: SessionTable[None] = SessionTable()
    table.record(1, 1, None, now_ms=0)
    assert table.expire(10**12) == 0
    assert table.verdict(1, 1) is SessionVerdict.DUPLICATE


def test_export_and_load_round_trip_and_load_checks_its_input() -> None:
    table: SessionTable[bytes] = SessionTable(max_sessions=3, ttl_ms=1_000)
    table.record(1, 1, b"a", now_ms=10)
    table.record(2, 1, b"b", now_ms=20)
    table.record(1, 2, b"c", now_ms=30)
    copy: SessionTable[bytes] = SessionTable(max_sessions=3, ttl_ms=1_000)
    copy.load(table.export())
    assert copy.export() == [(2, 1, 20, b"b"), (1, 2, 30, b"c")]
    assert copy.expire(1_025) == 1 and copy.verdict(1, 2) is SessionVerdict.DUPLICATE
    small: SessionTable[bytes] = SessionTable(max_sessions=1)
    with pytest.raises(ValueError, match="over the limit"):
        small.load(table.export())
    with pytest.raises(ValueError, match="twice"):
        copy.load([(1, 1, 0, b""), (1, 2, 0, b"")])
    with pytest.raises(ValueError, match="order"):
        copy.load([(1, 1, 50, b""), (2, 1, 40, b"")])


def test_rebase_counts_untimed_sessions_as_active_from_then() -> None:
    table: SessionTable[None] = SessionTable(ttl_ms=1_000)
    table.record(1, 1, None)  # log time 0: before the log had a time
    table.rebase(5_000)
    assert table.expire(5_900) == 0
    assert table.expire(6_001) == 1


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SessionTable(max_sessions=0)
    with pytest.raises(ValueError):
        SessionTable(ttl_ms=0)
