"""Which nodes a ``Client`` tries first: routing around a node that does not answer.

A node that timed out, could not be reached, or refused at once because it
cannot serve (``no_quorum``, ``leader_unreachable``) is skipped for a while:
``SKIP_MIN_S`` (1 s) after its first failure, doubling with each failure in a
row up to ``SKIP_MAX_S`` (8 s); an answer clears it. A redirect to a skipped
leader is not followed until the skip ends: another node is asked instead (it
may be the new leader, or it relays nothing but a redirect again, which costs
a round trip, not an attempt timeout). When every endpoint is skipped, the one
whose skip ends first is tried: the client never gives up early because of
this. The others are taken in turn, as before, so load still spreads over
them (preferring the last node that answered would send every retry of a
leaderless moment to the same follower).

The clock is injected (``time.monotonic`` by default); nothing here sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SKIP_MIN_S = 1.0
"""How long a node is skipped after its first failure in a row."""
SKIP_MAX_S = 8.0
"""The longest skip, after several failures in a row."""
_DOUBLINGS_MAX = 16


@dataclass(slots=True)
class _Record:
    failures: int = 0  # in a row
    skip_until: float = float("-inf")


class EndpointHealth:
    """What a client knows of each endpoint's recent answers."""

    def __init__(
        self, endpoints: Sequence[str], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._endpoints = list(endpoints)
        self._clock = clock
        self._records: dict[str, _Record] = {}

    def answered(self, address: str) -> None:
        """``address`` answered (a reply, or a redirect naming a leader)."""
        record = self._record(address)
        record.failures = 0
        record.skip_until = float("-inf")

    def failed(self, address: str) -> None:
        """``address`` timed out, could not be reached, or could not serve."""
        record = self._record(address)
        record.failures += 1
        doublings = min(record.failures - 1, _DOUBLINGS_MAX)  # no overflow after many
        skip = min(SKIP_MIN_S * 2**doublings, SKIP_MAX_S)
        record.skip_until = self._clock() + skip

    def skipped(self, address: str) -> bool:
        record = self._records.get(address)
        return record is not None and record.skip_until > self._clock()

    def pick(self, turn: int) -> str:
        """The endpoint to try next, going round from ``turn``: the first one not
        skipped, or, when all are, the one whose skip ends first."""
        count = len(self._endpoints)
        order = [self._endpoints[(turn + i) % count] for i in range(count)]
        for address in order:
            if not self.skipped(address):
                return address
        return min(order, key=lambda address: self._records[address].skip_until)

    def _record(self, address: str) -> _Record:
        record = self._records.get(address)
        if record is None:
            record = self._records[address] = _Record()
        return record


__all__ = ["SKIP_MAX_S", "SKIP_MIN_S", "EndpointHealth"]
