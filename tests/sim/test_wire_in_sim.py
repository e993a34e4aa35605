"""The runtime engine carries every peer message through the real wire codec
(``World._over_the_wire``), so a codec that loses a field or writes a frame
the receiver refuses is named by the ``wire`` rule on the first message it
touches, not left to the fuzzers and ``tests/net`` alone."""

from __future__ import annotations

from typing import Any

import pytest

from paxon.net import codec
from paxon.protocol.messages import Heartbeat, HeartbeatReply
from paxon.sim import SimConfig, run_seed

pytestmark = pytest.mark.sim

SHORT = SimConfig(nodes=3, faults=frozenset({"drop"}), fault_phase_s=1.0, heal_phase_s=1.0)


def rules_of(violations: list[str]) -> set[str]:
    return {violation.split()[1].rstrip(":") for violation in violations}


def test_honest_nodes_send_only_what_the_wire_carries_unchanged() -> None:
    result = run_seed(0, SHORT)
    assert "wire" not in rules_of(result.violations), result.violations[:3]


def test_a_codec_that_loses_a_field_is_named_by_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    def loses_the_read_round(m: Heartbeat) -> list[Any]:
        return [8, m.src, m.dst, codec._ballot_out(m.ballot), codec._chosen_out(m.chosen), 0]

    monkeypatch.setitem(codec._ENCODERS, Heartbeat, loses_the_read_round)
    result = run_seed(0, SHORT)
    assert "wire" in rules_of(result.violations), result.violations[:3]


def test_a_frame_the_receiver_refuses_is_named_by_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    def one_field_short(m: HeartbeatReply) -> list[Any]:
        return [9, m.src, m.dst, codec._ballot_out(m.ballot), m.slot_chosen]

    monkeypatch.setitem(codec._ENCODERS, HeartbeatReply, one_field_short)
    result = run_seed(0, SHORT)
    assert "wire" in rules_of(result.violations), result.violations[:3]
