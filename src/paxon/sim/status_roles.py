"""``status-roles``: what a node's status says each member is, its newest configuration says.

``paxon status``, ``GET /v1/status`` and the dashboard show each member's role
(docs/api.md, issue 10: "voter, learner, leader"). From one node's view
(``status_view.node_status``):
- its own row: ``removed`` when it is no member of its newest configuration or
  a majority told it so (``removed_by_notice``); else ``learner`` when that
  configuration lists it without a vote and it does not lead; else its role in
  the protocol (leader, follower, probing, preparing);
- another member's row: ``leader`` for the leader it names; else ``learner``
  when the configuration lists it without a vote; else nothing (it cannot know).
An operator reads these to know whom to promote, replace or wait for: a voter
shown as a learner is promoted twice, a learner shown as a follower is taken
for a vote the cluster does not have.

The expected role is read from each ``Member``'s own ``voter`` flag, not from
the configuration's derived sets, so that a fault in those is named rather than
shared. Judged at the heal and at the end of the run, on every live node.
"""

from __future__ import annotations

from typing import Any

from paxon.protocol.membership import Configuration
from paxon.protocol.types import NodeId


def role_problems(
    node_id: NodeId,
    role: str,
    status: dict[str, Any],
    newest: Configuration,
    removed_by_notice: int | None,
) -> list[str]:
    """What is wrong with the roles ``status`` (``node_status(node)``) shows, for
    node ``node_id`` in protocol role ``role`` whose newest configuration is
    ``newest``; empty when nothing is."""
    votes = {member.node_id: member.voter for member in newest.members}
    leader = status["leader"]
    problems = []
    for row in status["members"]:
        member = row["id"]
        learner = votes.get(member) is False
        if member == node_id:
            if learner and role != "leader":
                expected: str | None = "learner"
            elif member not in votes or removed_by_notice is not None:
                expected = "removed"
            else:
                expected = role
        elif member == leader:
            expected = "leader"
        else:
            expected = "learner" if learner else None
        if row["role"] != expected:
            kind = "no member" if member not in votes else ("a learner" if learner else "a voter")
            problems.append(
                f"n{node_id}'s status shows n{member} as {row['role']}, where its newest "
                f"configuration (epoch {newest.epoch}) has it {kind} and it names "
                f"leader {leader}: expected {expected}"
            )
    return problems


__all__ = ["role_problems"]
