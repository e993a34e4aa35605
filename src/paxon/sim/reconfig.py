"""The "reconfig" workload of the core engine: membership changes drawn at random.

During the fault phase, every ``SimConfig.reconfig_gap_s``, the node that
leads asks its replica (``Replica.propose_configuration``) for the next
configuration, drawn here from the newest one it knows:

| change   | what it does                                   | drawn when                     |
|----------|------------------------------------------------|--------------------------------|
| add      | a node outside the configuration joins as a    | a node is outside it           |
|          | learner (a spare, or a node removed before)    |                                |
| promote  | a learner becomes a voter                      | a learner; voters < VOTERS_MAX |
| demote   | a voter becomes a learner                      | voters > VOTERS_MIN            |
| remove   | a voter or a learner leaves                    | members > MEMBERS_MIN          |
| replace  | a voter leaves and another node votes in its   | a learner or a node outside    |
|          | place (a learner, or one from outside), in one |                                |
|          | change                                         |                                |

A voter that leaves or is demoted is the leader itself in ``LEADER_SHARE`` of
the draws (a removed leader proposes up to its removal's effect slot, then
steps down). Limits: ``VOTERS_MIN`` = 1 and ``VOTERS_MAX`` = 7 voters;
``MEMBERS_MIN`` = 2 members, because a lone member sends no ``Accept`` and the
checkers could not see what it chose. They can since session 22 (the observer
reports a leader's own votes as its proposals: an operator's request delayed
past another change left one member in runtime swarm seed 3000798); the draws
keep the limit, so the seeds keep their schedules. ``Busy`` (a change in progress) and
``NotLeader`` are expected answers; the next attempt comes after the next gap.

The runtime engine (``paxon.sim.operator``) changes the members the way an
operator does, one ``ChangeMembers`` action at a time: ``draw_action`` draws
through ``draw_change`` and names the action that makes the same change
(add -> ``add-learner``, or ``add`` of a voter in ``ADD_VOTER_SHARE`` of the
draws, which the operator makes a learner first and promotes once caught up,
docs/membership.md; promote, remove). No action demotes a voter, so a demote is no
draw; a replace is its first half, the voter's removal.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from paxon.protocol.membership import Configuration, Member
from paxon.protocol.types import NodeId

VOTERS_MIN = 1
VOTERS_MAX = 7
MEMBERS_MIN = 2
LEADER_SHARE = 0.3
# Runtime engine: share of the adds that add a voter (as a learner first, then
# promoted once caught up, unless it has caught up already: ``paxon.sim.operator``).
ADD_VOTER_SHARE = 0.25
# Each kind's weight among those the configuration allows.
CHANGE_WEIGHTS = {"add": 3.0, "promote": 2.0, "demote": 1.0, "remove": 2.0, "replace": 2.0}


def draw_change(
    rng: random.Random, newest: Configuration, node_ids: Sequence[NodeId], leader: NodeId
) -> tuple[str, Configuration] | None:
    """The next configuration after ``newest`` and what it does, or None if the
    draw would break a limit. ``node_ids``: every node of the run."""
    voters = sorted(newest.voters)
    learners = sorted(newest.learners)
    outside = sorted(set(node_ids) - newest.ids)
    allowed = {
        "add": bool(outside),
        "promote": bool(learners) and len(voters) < VOTERS_MAX,
        "demote": len(voters) > VOTERS_MIN,
        "remove": len(newest.members) > MEMBERS_MIN,
        "replace": bool(outside or learners),
    }
    kinds = [kind for kind, ok in allowed.items() if ok]
    if not kinds:
        return None
    kind = rng.choices(kinds, [CHANGE_WEIGHTS[kind] for kind in kinds])[0]
    votes = {member.node_id: member.voter for member in newest.members}
    if kind == "add":
        joining = rng.choice(outside)
        votes[joining] = False
        label = f"add n{joining} as a learner"
    elif kind == "promote":
        promoted = rng.choice(learners)
        votes[promoted] = True
        label = f"promote n{promoted}"
    elif kind == "demote":
        demoted = _pick_voter(rng, voters, leader)
        votes[demoted] = False
        label = f"demote n{demoted}"
    elif kind == "remove":
        removable = voters if len(voters) > VOTERS_MIN else []
        leaving = (
            _pick_voter(rng, voters, leader)
            if removable and (not learners or rng.random() < 0.7)
            else rng.choice(learners)
        )
        del votes[leaving]
        label = f"remove n{leaving}"
    else:
        leaving = _pick_voter(rng, voters, leader)
        joining = rng.choice(learners + outside)
        del votes[leaving]
        votes[joining] = True
        label = f"replace n{leaving} by n{joining}"
    members = [Member(node_id, "", voter) for node_id, voter in votes.items()]
    voter_count = sum(votes.values())
    if not (VOTERS_MIN <= voter_count <= VOTERS_MAX and len(members) >= MEMBERS_MIN):
        return None
    return label, newest.successor(members)


def draw_action(
    rng: random.Random, newest: Configuration, node_ids: Sequence[NodeId], leader: NodeId
) -> tuple[str, NodeId] | None:
    """One ``ChangeMembers`` action (``add``, ``add-learner``, ``promote``,
    ``remove``) and the node it names, drawn as ``draw_change`` draws; None when
    the draw is no change an action makes (a demote) or breaks a limit."""
    drawn = draw_change(rng, newest, node_ids, leader)
    if drawn is None:
        return None
    _, change = drawn
    before = {member.node_id: member.voter for member in newest.members}
    after = {member.node_id: member.voter for member in change.members}
    leaving = sorted(set(before) - set(after))
    if leaving:
        # A remove, or a replace's first half, within the limits on its own.
        voters_left = len(newest.voters) - (1 if before[leaving[0]] else 0)
        if len(newest.members) - 1 < MEMBERS_MIN or voters_left < VOTERS_MIN:
            return None
        return "remove", leaving[0]
    joining = sorted(set(after) - set(before))
    if joining:
        voter = len(newest.voters) < VOTERS_MAX and rng.random() < ADD_VOTER_SHARE
        return ("add" if voter else "add-learner"), joining[0]
    promoted = sorted(node for node, voter in after.items() if voter and not before[node])
    if promoted:
        return "promote", promoted[0]
    return None  # a demote


def _pick_voter(rng: random.Random, voters: list[NodeId], leader: NodeId) -> NodeId:
    if leader in voters and (len(voters) == 1 or rng.random() < LEADER_SHARE):
        return leader
    return rng.choice([voter for voter in voters if voter != leader])


__all__ = [
    "ADD_VOTER_SHARE",
    "CHANGE_WEIGHTS",
    "LEADER_SHARE",
    "VOTERS_MAX",
    "draw_action",
    "draw_change",
]
