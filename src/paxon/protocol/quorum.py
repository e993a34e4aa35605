"""Quorum arithmetic: majorities of a fixed member set."""

from __future__ import annotations

from collections.abc import Iterable


def majority(member_count: int) -> int:
    """The smallest number of members that intersects every other majority."""
    if member_count < 1:
        raise ValueError(  # sim: unreachable: argument check; a cluster is never empty
            "a cluster has at least one member"
        )
    return member_count // 2 + 1


def quorum_floor(values: Iterable[int], quorum: int) -> int:
    """The largest ``x`` such that at least ``quorum`` of ``values`` are >= ``x``.

    With one value per member, this is what a majority has reached: the
    quorum-th largest value. Missing members count as -1.
    """
    ordered = sorted(values, reverse=True)
    if len(ordered) < quorum:
        return -1  # sim: unreachable: the replica passes one value per voter, quorum a majority
    return ordered[quorum - 1]
