"""Quorum arithmetic (``paxon.protocol.quorum``), including the branches the
simulator cannot take (the replica always passes one value per voter)."""

from __future__ import annotations

import pytest

from paxon.protocol.quorum import majority, quorum_floor


@pytest.mark.parametrize(("members", "expected"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_a_majority_intersects_every_other(members: int, expected: int) -> None:
    assert majority(members) == expected
    assert 2 * majority(members) > members


def test_an_empty_cluster_has_no_majority() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        majority(0)


def test_quorum_floor_is_what_a_quorum_has_reached() -> None:
    assert quorum_floor([5, 9, 7], 2) == 7
    assert quorum_floor([5, 9, 7], 3) == 5
    assert quorum_floor([4, 4, 1, 0, 8], 3) == 4


def test_fewer_values_than_a_quorum_reach_nothing() -> None:
    assert quorum_floor([9, 8], 3) == -1
    assert quorum_floor([], 1) == -1
