"""The ``buggy`` fault: a buggy member and an outsider send out-of-bounds messages.

Each injection is one message to one replica, built from that replica's state
at the moment so it lands past a trust bound of ``paxon.protocol.replica``:

| kind           | message                                                   | refused by     |
|----------------|-----------------------------------------------------------|----------------|
| round-end      | Prepare at round ``ROUND_END - 1`` or past the wire       | round bounds   |
| round-jump     | Probe ``2**40`` rounds above the promise                  | round jump     |
| nack-round-end | Nack naming a promise at ``ROUND_END - 1``                | round bounds   |
| stolen-ballot  | Accept of a forged value under another node's ballot      | ballot owner   |
| far-accept     | Accept at ``slot_chosen + 4W`` and more, or at ``2**62``  | slot window    |
| far-learn      | Learn with an entry at ``slot_chosen + 4W`` or ``2**62``  | window, unasked|
| far-promise    | Promise naming a slot ``4W`` past ``slot_from``           | fill window    |
| read-round     | HeartbeatReply confirming a read round never sent         | read round     |
| learn-request  | LearnRequest from ``2**62`` (or from 0: one page answers) | slot window    |
| outsider       | Prepare, Learn or LearnRequest from node ``OUTSIDER``     | membership     |
| misaddressed   | a message for another node                                | destination    |

``W`` is ``slots_ahead_max``. Every message is one the core must refuse (or, for
LearnRequest from 0, answer with one bounded page), so the run's checkers must
stay clean: a value a buggy message slipped in would show up as a validity or
agreement violation, a slot held past the window as a broken invariant, a
round past the wire in a message sent, an answer to the outsider as a
``non-member`` violation.
"""

from __future__ import annotations

import random

from paxon.protocol.config import ROUND_END
from paxon.protocol.messages import (
    Accept,
    ChosenPrefix,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Message,
    Nack,
    Prepare,
    Probe,
    Promise,
)
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import Ballot, Command, Entry, NodeId, Value

OUTSIDER: NodeId = 99
"""A node id no simulated cluster has (clusters have 3 or 5 members)."""

FORGED = Value((Command(999_999, 1, b"forged"),))
"""A value no client submitted: applying it anywhere is a validity violation."""

FAR_SLOT = 2**62

KINDS = (
    "round-end",
    "round-jump",
    "nack-round-end",
    "stolen-ballot",
    "far-accept",
    "far-learn",
    "far-promise",
    "read-round",
    "learn-request",
    "outsider",
    "misaddressed",
)


def forge(rng: random.Random, target: Replica) -> tuple[str, Message]:
    """One out-of-bounds message for ``target`` and its kind, from a member or the outsider."""
    kind = rng.choice(KINDS)
    return kind, _forge(kind, rng, target)


def _forge(kind: str, rng: random.Random, target: Replica) -> Message:
    members = target.members
    to = target.node_id
    others = [member for member in members if member != to] or [to]
    src = rng.choice(others)
    promised = target.ballot_promised
    window = target.config.slots_ahead_max
    slot_far = rng.choice((target.slot_chosen + 4 * window + rng.randrange(window), FAR_SLOT))
    if kind == "round-end":
        round_ = rng.choice((ROUND_END - 1, ROUND_END, ROUND_END + rng.randrange(2**20)))
        return Prepare(src, to, Ballot(round_, src), target.slot_chosen)
    if kind == "round-jump":
        return Probe(src, to, Ballot(promised.round + 2**40 + rng.randrange(2**20), src))
    if kind == "nack-round-end":
        return Nack(src, to, Ballot(1, to), Ballot(ROUND_END - 1, src))
    if kind == "stolen-ballot":
        owners = [member for member in members if member != src]
        stolen = Ballot(promised.round + 1, rng.choice(owners))
        return Accept(src, to, stolen, target.slot_chosen, FORGED, ChosenPrefix(0))
    if kind == "far-accept":
        ballot = Ballot(promised.round + 1, src)
        return Accept(src, to, ballot, slot_far, FORGED, ChosenPrefix(0))
    if kind == "far-learn":
        return Learn(src, to, (Entry(slot_far, Ballot(max(promised.round, 1), src), FORGED),))
    if kind == "far-promise":
        if target.role is Role.PREPARING:
            ballot = target.ballot_own
            slot_from = target.slot_chosen
        else:
            ballot, slot_from = Ballot(max(promised.round, 1), to), 0
        entry = Entry(slot_from + 4 * window, Ballot(max(promised.round, 1), src), FORGED)
        return Promise(src, to, ballot, slot_from, (entry,), slot_from, 0)
    if kind == "read-round":
        ballot = target.ballot_own if target.role is Role.LEADER else Ballot(1, to)
        return HeartbeatReply(src, to, ballot, target.slot_chosen, 2**40)
    if kind == "learn-request":
        return LearnRequest(src, to, rng.choice((0, FAR_SLOT)))
    if kind == "outsider":
        ballot = Ballot(promised.round + 1, OUTSIDER)
        return rng.choice(
            (
                Prepare(OUTSIDER, to, ballot, 0),
                Learn(OUTSIDER, to, (Entry(target.slot_chosen, ballot, FORGED),)),
                LearnRequest(OUTSIDER, to, 0),
            )
        )
    assert kind == "misaddressed"
    return LearnRequest(src, rng.choice(others), 0)
