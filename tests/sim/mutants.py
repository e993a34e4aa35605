"""Deliberately broken replicas, one rule broken in each: the checkers must catch them.

These live in the tests only. Each overrides one small hook of ``Replica``.
"""

from __future__ import annotations

from paxon.protocol.messages import Accept, Accepted
from paxon.protocol.replica import Replica
from paxon.protocol.types import NOOP, Ballot, Entry, Value


class AcceptsLowerBallot(Replica):
    """Accepts a value whatever it promised."""

    def _may_accept(self, ballot: Ballot) -> bool:
        return True


class SkipsReproposal(Replica):
    """A new leader fills every slot with a no-op instead of the highest-ballot value."""

    def _choose_reproposal(self, highest: Entry) -> Value:
        return NOOP


class SpeaksBeforePersist(Replica):
    """Sends Accepted before its accept record is durable."""

    def _reply_accepted(self, reply: Accepted) -> None:
        self._send(reply)


class AppliesBeforeChosen(Replica):
    """A follower treats a value as chosen the moment it accepts it."""

    def _on_accept(self, message: Accept) -> None:
        super()._on_accept(message)
        if message.src == self.node_id:
            return
        held = self._log.get(message.slot)
        if held is not None and held.ballot == message.ballot:
            held.chosen = True
            self._advance_chosen()


MUTANTS = {
    "accepts-lower-ballot": AcceptsLowerBallot,
    "skips-reproposal": SkipsReproposal,
    "speaks-before-persist": SpeaksBeforePersist,
    "applies-before-chosen": AppliesBeforeChosen,
}
