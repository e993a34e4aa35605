"""Deliberately broken replicas, one rule broken in each: the checkers must catch them.

These live in the tests only. Each overrides one small hook of ``Replica``.
"""

from __future__ import annotations

from paxon.protocol.messages import Accept, Accepted, Message
from paxon.protocol.replica import Replica, _Refusal
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


class TrustsStrangers(Replica):
    """Takes messages from nodes that are not members."""

    def _refusal(self, message: Message) -> _Refusal | None:
        if message.dst == self.node_id and message.src not in self.members:
            return None
        return super()._refusal(message)


class TrustsAnyRound(Replica):
    """Takes any ballot: rounds past the wire, absurd jumps, other nodes' ballots."""

    def _refusal(self, message: Message) -> _Refusal | None:
        refusal = super()._refusal(message)
        return None if refusal is _Refusal.BAD_BALLOT else refusal


class IgnoresSlotWindow(Replica):
    """Accepts a peer's value at any slot, however far past its chosen prefix."""

    def _refusal(self, message: Message) -> _Refusal | None:
        refusal = super()._refusal(message)
        return None if refusal is _Refusal.OUT_OF_BOUNDS else refusal


MUTANTS = {
    "accepts-lower-ballot": AcceptsLowerBallot,
    "skips-reproposal": SkipsReproposal,
    "speaks-before-persist": SpeaksBeforePersist,
    "applies-before-chosen": AppliesBeforeChosen,
    "trusts-strangers": TrustsStrangers,
    "trusts-any-round": TrustsAnyRound,
    "ignores-slot-window": IgnoresSlotWindow,
}
