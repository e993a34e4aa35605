"""Membership requests at the leader: one ``ChangeMembers`` becomes the next
configuration, proposed through the core and answered once it is chosen.

Contract:
- ``next_configuration(newest, action, node_id, address)`` is the change one
  request asks for, or None when the newest configuration already is what it
  asks (a retry of a change that was made: answered at once, so a request is
  safe to repeat). ``BadRequest`` for what cannot be: adding a member that is
  there with another role or address, removing or promoting a node that is
  not there, removing the last voter, an empty or malformed address. A
  learner is promoted bound to the incarnation its link to the leader named
  (``BadRequest`` while that link is down: the client does not retry it), so
  no voter is ever unbound after its first vote unless added as a voter.
- ``auto_promotion(replica, incarnation_of)`` is the promotion of a learner added with
  ``add-learner-auto-promote`` once it has caught up, for the leader to propose.
- ``bind_incarnations(newest, known)`` is the change that binds the members
  whose incarnation the leader has seen in an authenticated handshake, or
  None. ``add`` and ``promote`` compare members bound or not; a member
  removed and added again starts unbound.
- ``MembershipWaiters`` holds the requests whose change is on its way. Each is
  answered with ``StatusReply({"configuration": ...})`` when the newest
  configuration is the one it asked for, or with a retryable ``unavailable``
  when another change took its epoch or this node stopped leading (the
  client's retry then finds the change made, or asks again).

Limits: ``AUTO_PROMOTE_LAG_SLOTS`` = 64; ``WAITERS_MAX`` = 64 requests wait at
once (the core takes one change at a time, so more are retries); past it the
request is refused ``busy``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from paxon.errors import BadRequest, Busy
from paxon.net.client_messages import Failure, StatusReply
from paxon.node.environment import ClientAnswers
from paxon.protocol import Replica, Role
from paxon.protocol.membership import Configuration, InvalidConfiguration, Member

WAITERS_MAX = 64
AUTO_PROMOTE_LAG_SLOTS = 64
"""How far behind the leader's chosen prefix a learner added with
``--auto-promote`` may be when it is promoted: one default pipeline window."""


def describe(configuration: Configuration) -> dict[str, Any]:
    """A configuration as the status and the HTTP API show it."""
    return {
        "epoch": configuration.epoch,
        "alpha": configuration.alpha,
        "members": [_describe_member(m) for m in configuration.members],
    }


def _describe_member(member: Member) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": member.node_id,
        "address": member.address,
        "role": "voter" if member.voter else "learner",
    }
    if member.incarnation is not None:
        row["incarnation"] = member.incarnation
    if member.auto_promote:
        row["auto_promote"] = True
    return row


def from_description(described: object) -> Configuration:
    """The configuration ``describe`` made (``paxon serve --join`` reads it from a
    member's status); ``BadRequest`` for anything ``describe`` cannot have made."""
    if not isinstance(described, dict):
        raise BadRequest(f"not a configuration: {described!r:.120}")
    try:
        members = tuple(
            Member(
                int(row["id"]),
                str(row["address"]),
                voter=_voter(row["role"]),
                incarnation=None if row.get("incarnation") is None else int(row["incarnation"]),
                auto_promote=row.get("auto_promote") is True,
            )
            for row in described["members"]
        )
        return Configuration(int(described["epoch"]), members, int(described["alpha"]))
    except (KeyError, TypeError, ValueError) as error:
        raise BadRequest(f"not a configuration: {error!r:.120}") from None


def _voter(role: object) -> bool:
    if role not in ("voter", "learner"):
        raise ValueError(f"unknown role {role!r}")
    return role == "voter"


def next_configuration(
    newest: Configuration,
    action: str,
    node_id: int,
    address: str,
    incarnation: int | None = None,
) -> Configuration | None:
    """The configuration ``action`` asks for after ``newest``; None if already so.

    ``incarnation``: what the leader's link to ``node_id`` says its data
    directory is (None if that link is down). A learner is promoted bound to
    it: a voter must never be unbound once it can vote, and a learner has
    nothing to forget. An unbound learner whose link is down is not promoted
    (``BadRequest``: it could not vote anyway, and the operator must start it)."""
    current = newest.member(node_id)
    members = {member.node_id: member for member in newest.members}
    match action:
        case "add" | "add-learner" | "add-learner-auto-promote":
            check_address(address)
            wanted = Member(
                node_id,
                address,
                voter=action == "add",
                auto_promote=action == "add-learner-auto-promote",
            )
            if current is not None and current.same_place(wanted):
                return None
            if current is not None:
                role = "voter" if current.voter else "learner"
                raise BadRequest(
                    f"node {node_id} is already a {role} at {current.address}: "
                    "remove it first, or promote a learner"
                )
            members[node_id] = wanted
        case "promote":
            if current is None:
                raise BadRequest(f"node {node_id} is not a member: add it as a learner first")
            if current.voter:
                return None
            bound = current.incarnation if current.incarnation is not None else incarnation
            if bound is None:
                # Not retried by clients (unavailable would be, for its whole
                # timeout): the operator has to start the node first.
                raise BadRequest(
                    f"node {node_id} is not connected to the leader, so nobody knows which "
                    "data directory it runs on: start it (paxon serve --join ...) and try again"
                )
            members[node_id] = Member(node_id, current.address, True, bound)
        case "remove":
            if current is None:
                return None
            if current.voter and len(newest.voters) == 1:
                raise BadRequest(f"node {node_id} is the last voter: add another one first")
            del members[node_id]
        case _:
            raise BadRequest(f"unknown membership action {action!r}")
    try:
        return newest.successor(members.values())
    except InvalidConfiguration as error:
        raise BadRequest(str(error)) from None


def auto_promotion(
    replica: Replica, incarnation_of: Callable[[int], int | None]
) -> Configuration | None:
    """The change that promotes a caught-up ``auto_promote`` learner, if the
    leading ``replica`` may propose one now (no change is on its way).

    Caught up: the learner has said that its chosen prefix reaches the slot where
    the newest configuration (the one that names it) took effect, so it votes by
    the log and not by a ``--peers`` guess, and lags the leader by at most
    ``AUTO_PROMOTE_LAG_SLOTS``. One learner at a time, the lowest id first."""
    newest = replica.configuration_newest
    waiting = [member for member in newest.members if member.auto_promote]
    if not waiting or replica.role is not Role.LEADER or replica.change_in_progress:
        return None
    effect_slot = replica.configs_at(replica.slot_chosen)[-1][0]
    for member in waiting:
        reached = replica.peer_slot_chosen(member.node_id)
        if reached is None or reached < effect_slot:
            continue
        incarnation = member.incarnation or incarnation_of(member.node_id)
        if replica.slot_chosen - reached <= AUTO_PROMOTE_LAG_SLOTS and incarnation is not None:
            return next_configuration(newest, "promote", member.node_id, "", incarnation)
    return None


def refusal_bindings(held: Iterable[Configuration]) -> dict[int, int]:
    """The incarnation a node accepts for each bound member, from the
    configurations it holds from its chosen prefix on, oldest first: the
    oldest binding counts. A wiped member whose removal is chosen still votes
    until the removal takes effect, so its old binding keeps refusing the
    empty directory until then; one added back under a new incarnation waits."""
    bound: dict[int, int] = {}
    for configuration in held:
        for member in configuration.members:
            if member.incarnation is not None:
                bound.setdefault(member.node_id, member.incarnation)
    return bound


def bind_incarnations(newest: Configuration, known: Mapping[int, int]) -> Configuration | None:
    """The next configuration, binding each unbound member of ``newest`` whose
    incarnation is in ``known`` (authenticated handshakes); None if none is.
    Same members, same roles: a binding changes no quorum."""
    bound = [
        dataclasses.replace(m, incarnation=known[m.node_id])
        if m.incarnation is None and m.node_id in known
        else m
        for m in newest.members
    ]
    if tuple(bound) == newest.members:
        return None
    return newest.successor(bound)


def check_address(address: str) -> None:
    """``BadRequest`` unless ``address`` is ``HOST:PORT``."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadRequest(f"a member's address is HOST:PORT, got {address!r}")


@dataclass(slots=True)
class _Waiter:
    connection: ClientAnswers
    request_id: int
    wanted: Configuration


class MembershipWaiters:
    """Requests whose change is on its way, answered when it is chosen."""

    def __init__(self) -> None:
        self._waiting: list[_Waiter] = []

    def __len__(self) -> int:
        return len(self._waiting)

    def check_room(self) -> None:
        """Raise ``Busy`` if no more request may wait."""
        if len(self._waiting) >= WAITERS_MAX:
            raise Busy(f"{WAITERS_MAX} membership requests are waiting; retry later")

    def add(self, connection: ClientAnswers, request_id: int, wanted: Configuration) -> None:
        self.check_room()
        self._waiting.append(_Waiter(connection, request_id, wanted))

    def on_newest(self, newest: Configuration) -> None:
        """The newest configuration chosen is ``newest``: answer whom it settles."""
        still: list[_Waiter] = []
        for waiter in self._waiting:
            if newest.epoch < waiter.wanted.epoch:
                still.append(waiter)
            elif newest == waiter.wanted:
                waiter.connection.send(
                    StatusReply(waiter.request_id, {"configuration": describe(newest)})
                )
            else:
                waiter.connection.send(
                    Failure(
                        waiter.request_id,
                        "unavailable",
                        f"another change took configuration epoch {waiter.wanted.epoch}; ask again",
                    )
                )
        self._waiting = still

    def fail_all(self, why: str) -> None:
        for waiter in self._waiting:
            waiter.connection.send(Failure(waiter.request_id, "unavailable", why))
        self._waiting = []
