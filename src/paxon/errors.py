"""One typed hierarchy for every error paxon raises on purpose."""

from __future__ import annotations


class PaxonError(Exception):
    """Base of every error paxon raises on purpose."""


class NotLeader(PaxonError):
    """This replica cannot serve the request; ``leader_hint`` may know better."""

    def __init__(self, leader_hint: int | None, message: str = "") -> None:
        self.leader_hint = leader_hint
        hint = f"; try node {leader_hint}" if leader_hint is not None else ""
        super().__init__(message or f"not the leader{hint}")


class Busy(PaxonError):
    """A bounded queue is full; retry later."""


class ProtocolError(PaxonError):
    """A peer broke the protocol (a malformed or impossible message)."""
