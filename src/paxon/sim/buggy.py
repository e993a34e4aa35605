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
| far-promise    | Promise naming a slot ``2W`` to ``4W`` past ``slot_from`` | fill window    |
|                | (last), after 0-2 entries inside the window               |                |
| read-round     | HeartbeatReply confirming a read round never sent         | read round     |
| learn-request  | LearnRequest from ``2**62`` (or from 0: one page answers) | slot window    |
| outsider       | Prepare, Learn or LearnRequest from node ``OUTSIDER``     | membership     |
| misaddressed   | a message for another node                                | destination    |
| foreign-reply  | a reply (ProbeReply, Promise, Accepted, HeartbeatReply or | reply ballot   |
|                | Nack) under a ballot the target does not hold: a higher or|                |
|                | lower round of its own id, or another node's              |                |
| promise-from   | Promise under the candidate's own ballot for a            | slot_from      |
|                | ``slot_from`` other than the one it prepared              |                |
| removed-notice | RemovedNotice naming an epoch the target holds, or from   | epoch, voters  |
|                | the outsider (``forge_notice``, drawn apart: a companion  |                |
|                | of another kind's message)                                |                |

``W`` is ``slots_ahead_max``. Every message is one the core must refuse (or, for
LearnRequest from 0, answer with one bounded page), so the run's checkers must
stay clean: a value a buggy message slipped in would show up as a validity or
agreement violation, a slot held past the window as a broken invariant, a
round past the wire in a message sent, an answer to the outsider as a
``non-member`` violation.

Replies are aimed at a target in the role that reads them (``forge`` picks a
reply kind for a candidate or a leader more often than not): a ProbeReply to a
prober, a Promise to a preparer, an Accepted for an open proposal or a
HeartbeatReply for the read round to a leader, a Nack to any of them. A forged
Promise carries ``FORGED`` at a slot the candidate would re-propose, under a
ballot just below (or above) its own, and a forged grant, vote or read answer
completes a quorum that honest members alone did not give; so a guard that
counted one would let ``FORGED`` be chosen, an entry sit above the promise, or a
cut-off leader keep leading. Never forged: a well-formed reply from a member
under the target's own ballot for the slot it asked about; a correct core acts
on that, and a member that lies so is outside the fault model (crash faults
and forged bounds, not Byzantine votes). Nor Learn entries under a bumped
ballot: a ``Learn`` is trusted as chosen (its source was asked), and a ballot
that never proposed the value there would break ``chosen-claim`` on a correct
core once the target announced it.

After healing, once the cluster has settled, only ``QUIET_KINDS`` are forged:
ones a correct core drops without a reply, a record or a change of role or
promise, so a settled leader must keep leading through them (``quiet-stable``
in ``sim/healing.py``): a guard that heeded a forged Nack would depose it.
"""

from __future__ import annotations

import random

from paxon.protocol.config import ROUND_END
from paxon.protocol.messages import (
    Accept,
    Accepted,
    ChosenPrefix,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Message,
    Nack,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
    RemovedNotice,
)
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import BALLOT_ZERO, Ballot, Command, Entry, NodeId, Slot, Value

OUTSIDER: NodeId = 99
"""A node id no simulated cluster has (clusters have 3 to 7 members)."""

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
    "foreign-reply",
    "promise-from",
)
# Kinds that reach a candidate's or a leader's reply guards; ``forge`` picks one
# of them for such a target with probability _AIM_REPLIES.
_REPLY_KINDS = ("foreign-reply", "foreign-reply", "promise-from", "far-promise", "read-round")
_AIM_REPLIES = 0.7


# Kinds a correct core drops without a trace (no reply, no record, no role or
# promise change): forged into a settled cluster, they must leave it settled.
QUIET_KINDS = (
    "round-end",
    "round-jump",
    "nack-round-end",
    "stolen-ballot",
    "far-accept",
    "read-round",
    "outsider",
    "misaddressed",
    "foreign-reply",
)


def forge(rng: random.Random, target: Replica, *, quiet: bool = False) -> tuple[str, Message]:
    """One out-of-bounds message for ``target`` and its kind, from a member or the outsider;
    with ``quiet``, only one of ``QUIET_KINDS`` (a reply aimed at a leader half the time)."""
    if quiet:
        kind = "foreign-reply" if rng.random() < 0.5 else rng.choice(QUIET_KINDS)
    elif target.role is not Role.FOLLOWER and rng.random() < _AIM_REPLIES:
        kind = rng.choice(_REPLY_KINDS)
    else:
        kind = rng.choice(KINDS)
    return kind, _forge(kind, rng, target)


def forge_notice(rng: random.Random, target: Replica) -> RemovedNotice:
    """A removal notice ``target`` must refuse: an epoch it holds already (it
    was added back since, as far as the teller knows) from a member, or any
    epoch from the outsider. Never a fresh epoch from a voter: one of those is
    kept, and a majority of them is believed (a member that lies so is outside
    the fault model)."""
    others = [m for m in target.members if m != target.node_id]
    epoch = rng.randrange(target.configuration_newest.epoch + 1)
    if not others or rng.random() < 0.3:
        return RemovedNotice(OUTSIDER, target.node_id, epoch + rng.randrange(3))
    return RemovedNotice(rng.choice(others), target.node_id, epoch)


def _forge(kind: str, rng: random.Random, target: Replica) -> Message:
    members = target.members
    to = target.node_id
    # A target alone in its configuration hears the outsider: a message from
    # itself is one no transport carries, and a "foreign" ballot of its own id
    # was its own ballot (swarm seed 5001222: a forged Nack under the lone
    # leader's ballot deposed it; a stolen ballot found no other owner).
    others = [member for member in members if member != to] or [OUTSIDER]
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
        # A target no longer in its own configuration may have no member
        # but src; then the ballot is stolen from the target itself.
        owners = [member for member in members if member != src] or [to]
        stolen = Ballot(promised.round + 1, rng.choice(owners))
        return Accept(src, to, stolen, target.slot_chosen, FORGED, ChosenPrefix(0))
    if kind == "far-accept":
        ballot = Ballot(promised.round + 1, src)
        return Accept(src, to, ballot, slot_far, FORGED, ChosenPrefix(0))
    if kind == "far-learn":
        return Learn(src, to, (Entry(slot_far, Ballot(max(promised.round, 1), src), FORGED),))
    if kind == "far-promise":
        if target.role is Role.PREPARING:
            ballot, slot_from = target.ballot_own, _slot_prepared(target)
        else:
            ballot, slot_from = Ballot(max(promised.round, 1), to), 0
        # From the first slot past the fill window (2W) up to twice that, after
        # 0-2 entries inside it: the guard must read the last entry, not the first.
        slot = slot_from + 2 * window + rng.randrange(2 * window)
        near = sorted(rng.sample(range(slot_from, slot_from + 2 * window), rng.randint(0, 2)))
        entry_ballot = _just_below(target.ballot_own, src)
        entries = tuple(Entry(at, entry_ballot, FORGED) for at in [*near, slot])
        return Promise(src, to, ballot, slot_from, entries, slot_from, 0)
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
    if kind == "foreign-reply":
        return _foreign_reply(rng, target, src)
    if kind == "promise-from":
        prepared = _slot_prepared(target)
        # Above or below the prepared slot; either way not the Prepare's.
        shift = 1 + rng.randrange(window)
        slot_from = prepared + shift if prepared < shift or rng.random() < 0.5 else prepared - shift
        return _promise(rng, target, src, target.ballot_own, slot_from)
    assert kind == "misaddressed"
    return LearnRequest(src, rng.choice(others), 0)


def _foreign_reply(rng: random.Random, target: Replica, src: NodeId) -> Message:
    """A reply of the kind the target's role reads, under a ballot it does not hold."""
    to = target.node_id
    ballot = _foreign_ballot(rng, target, src)
    role = target.role
    if role is Role.FOLLOWER:
        role = rng.choice(tuple(Role))
    if rng.random() < 0.2:
        # Any role reads a Nack: one naming a promise above ours would depose us.
        above = max(ballot.round, target.ballot_promised.round) + 1
        return Nack(src, to, ballot, Ballot(above, src))
    match role:
        case Role.PROBING:
            return ProbeReply(src, to, ballot, True)
        case Role.PREPARING:
            return _promise(rng, target, src, ballot, _slot_prepared(target))
        case Role.LEADER if rng.random() < 0.5:
            open_slots = sorted(target._proposals) or [target.slot_chosen]
            return Accepted(src, to, ballot, rng.choice(open_slots), target.slot_chosen)
        case _:
            return HeartbeatReply(src, to, ballot, target.slot_chosen, target._read_round)


def _foreign_ballot(rng: random.Random, target: Replica, src: NodeId) -> Ballot:
    """A ballot that is not ``target.ballot_own``: a higher or lower round of the
    target's id (past the edge, up to the reply guards), or another node's (the
    edge refuses it)."""
    own = target.ballot_own if target.role is not Role.FOLLOWER else target.ballot_promised
    to = target.node_id
    pick = rng.random()
    lower = max(1, own.round - 1 - rng.randrange(2))  # round 0 is the zero ballot's only
    if pick < 0.6 or lower >= own.round:
        return Ballot(own.round + 1 + rng.randrange(3), to)
    if pick < 0.9:
        return Ballot(lower, to)
    return Ballot(max(own.round, 1), src)


def _promise(
    rng: random.Random, target: Replica, src: NodeId, ballot: Ballot, slot_from: Slot
) -> Promise:
    """A Promise carrying ``FORGED`` at a slot the candidate would re-propose, under
    a ballot just below the candidate's (the highest an honest acceptor could
    report) or, now and then, above it."""
    prepared = _slot_prepared(target)
    # Inside the fill window, so only the guard under test stands in its way.
    window = target.config.slots_ahead_max
    slot = min(max(prepared, slot_from) + rng.randrange(4), prepared + 2 * window - 1)
    if rng.random() < 0.8:
        entry_ballot = _just_below(target.ballot_own, src)
    else:
        entry_ballot = Ballot(target.ballot_own.round + 1, src)
    entry = Entry(slot, entry_ballot, FORGED)
    return Promise(src, target.node_id, ballot, slot_from, (entry,), prepared, 0)


def _just_below(ballot: Ballot, src: NodeId) -> Ballot:
    """The highest ballot of ``src`` below ``ballot`` (the zero ballot below round 1)."""
    if ballot.round == 0 or (ballot.round == 1 and src > ballot.node_id):
        return BALLOT_ZERO
    return Ballot(ballot.round, src) if src < ballot.node_id else Ballot(ballot.round - 1, src)


def _slot_prepared(target: Replica) -> Slot:
    """The ``slot_from`` of the target's last Prepare (its live state, as the
    buggy member would know it from the Prepare it was sent)."""
    return target._slot_prepared
