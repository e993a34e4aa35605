"""A node's answer to a membership request, judged as it leaves: ``change-answered``.

``paxon members add|promote|remove`` reach the leader as ``ChangeMembers``;
``node/members.next_configuration`` reads the newest configuration and
either answers at once (already so, or refused ``bad_request``) or proposes
the change, answering once it is chosen. The operator takes any answer as
given (``sim/operator.py``: a refusal is "drawn from a stale view"), so a node
that finds the wrong member, or none, refuses a valid change or calls one done
that is not (s21 sample rows 5 and 6: ``Configuration.member`` finding no
member, or the first with a lower id, passed every seed of the budget).

The rule, read from the answering node's newest configuration at the moment
it answers (its members walked here, not looked up with ``member``):

- a ``StatusReply`` says the change is made: ``add`` names the node a voter
  at that address, ``add-learner`` (with or without auto-promotion) a learner
  there, ``promote`` a voter, ``remove`` no member;
- a ``bad_request`` ``Failure`` is due only for what cannot be: an address
  that is not ``HOST:PORT``; adding a member that is one already, elsewhere or
  in another role; promoting a node that is no member, or an unbound learner
  the leader has no link to (its incarnation unknown); removing the last
  voter; an unknown action; or a change the configuration's own checks
  refuse (``InvalidConfiguration``: node id 0, an address too long).

``transfer-leader`` is judged in the core (``operator_rules``). Cost: one walk
of at most seven members per answer to the operator.
"""

from __future__ import annotations

from collections.abc import Callable

from paxon.errors import BadRequest
from paxon.net.client_messages import ChangeMembers, ClientResponse, Failure, StatusReply
from paxon.node.members import check_address
from paxon.node.node import Node
from paxon.protocol.membership import Configuration, InvalidConfiguration, Member
from paxon.sim.checkers import Violation
from paxon.sim.host import Connection

_ADDS = ("add", "add-learner", "add-learner-auto-promote")


class JudgedAnswers:
    """The connection a ``ChangeMembers`` arrived on: each answer is judged,
    then sent as the plain connection sends it."""

    def __init__(
        self,
        connection: Connection,
        request: ChangeMembers,
        node: Callable[[], Node | None],
        judge: Callable[[Node, ChangeMembers, ClientResponse], None],
    ) -> None:
        self._connection = connection
        self._request = request
        self._node = node
        self._judge = judge

    def send(self, response: ClientResponse) -> None:
        node = self._node()
        if node is not None and not self._connection.closed():
            self._judge(node, self._request, response)
        self._connection.send(response)

    def reply(self, request_id: int, payload: bytes) -> None:
        self._connection.reply(request_id, payload)


class ChangeAnswerChecker:
    """``change-answered`` (the module docstring)."""

    def __init__(self, violations: list[Violation], now: Callable[[], float]) -> None:
        self.violations = violations
        self._now = now
        self.judged = 0

    def watch(
        self, connection: Connection, request: ChangeMembers, node: Callable[[], Node | None]
    ) -> Connection | JudgedAnswers:
        if request.action == "transfer-leader":
            return connection
        return JudgedAnswers(connection, request, node, self.judge)

    def judge(self, node: Node, request: ChangeMembers, response: ClientResponse) -> None:
        newest = node._replica.configuration_newest
        if isinstance(response, StatusReply):
            self.judged += 1
            if not _made(newest, request):
                self._fail(node, request, newest, "answered it done")
        elif isinstance(response, Failure) and response.code == "bad_request":
            self.judged += 1
            incarnation = node._transport.incarnation_of(request.node_id)
            if not _refusal_due(newest, request, incarnation):
                self._fail(node, request, newest, f"refused it ({response.message})")

    def _fail(
        self, node: Node, request: ChangeMembers, newest: Configuration, verdict: str
    ) -> None:
        held = ", ".join(
            f"n{m.node_id} {'voter' if m.voter else 'learner'} at {m.address}"
            for m in newest.members
        )
        detail = (
            f"n{node.node_id} was asked to {request.action} n{request.node_id} and {verdict}, "
            f"its newest configuration (epoch {newest.epoch}) holding {held}"
        )
        self.violations.append(Violation(self._now(), "change-answered", detail))


def _members(newest: Configuration) -> dict[int, Member]:
    return {member.node_id: member for member in newest.members}


def _made(newest: Configuration, request: ChangeMembers) -> bool:
    current = _members(newest).get(request.node_id)
    match request.action:
        case "add" | "add-learner" | "add-learner-auto-promote":
            voter = request.action == "add"
            return (
                current is not None
                and current.voter == voter
                and current.address == request.address
            )
        case "promote":
            return current is not None and current.voter
        case "remove":
            return current is None
    return False


def _refusal_due(newest: Configuration, request: ChangeMembers, incarnation: int | None) -> bool:
    members = _members(newest)
    current = members.get(request.node_id)
    node_id, action = request.node_id, request.action
    if action in _ADDS:
        try:
            check_address(request.address)
        except BadRequest:
            return True
        voter = action == "add"
        if current is not None:
            return (current.address, current.voter) != (request.address, voter)
        members[node_id] = Member(
            node_id,
            request.address,
            voter=voter,
            auto_promote=action == "add-learner-auto-promote",
        )
    elif action == "promote":
        if current is None:
            return True
        if current.voter:
            return False
        bound = current.incarnation if current.incarnation is not None else incarnation
        if bound is None:
            return True
        members[node_id] = Member(node_id, current.address, True, bound)
    elif action == "remove":
        if current is None:
            return False
        if current.voter and len(newest.voters) == 1:
            return True
        del members[node_id]
    else:
        return True
    try:
        newest.successor(members.values())
    except InvalidConfiguration:
        return True
    return False


__all__ = ["ChangeAnswerChecker", "JudgedAnswers"]
