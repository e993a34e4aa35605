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


def test_recording_a_duplicate_is_refused() -> None:
    table: SessionTable[int] = SessionTable()
    table.record(1, 5, 0)
    with pytest.raises(ValueError, match="already applied"):
        table.record(1, 5, 0)
    with pytest.raises(ValueError):
        table.record(1, 4, 0)


def test_least_recently_applied_client_is_forgotten_first() -> None:
    table: SessionTable[None] = SessionTable(max_sessions=2)
    table.record(1, 1, None)
    table.record(2, 1, None)
    table.record(1, 2, None)  # client 1 is now the most recent
    table.record(3, 1, None)  # evicts client 2
    assert len(table) == 2
    assert table.verdict(2, 1) is SessionVerdict.NEW
    assert table.verdict(1, 2) is SessionVerdict.DUPLICATE


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SessionTable(max_sessions=0)
