"""Membership requests at the leader: one ``ChangeMembers`` becomes the next
configuration, proposed through the core and answered once it is chosen.

Contract:
- ``next_configuration(newest, action, node_id, address)`` is the change one
  request asks for, or None when the newest configuration already is what it
  asks (a retry of a change that was made: answered at once, so a request is
  safe to repeat). ``BadRequest`` for what cannot be: adding a member that is
  there with another role or address, removing or promoting a node that is
  not there, removing the last voter, an empty or malformed address.
- ``MembershipWaiters`` holds the requests whose change is on its way. Each is
  answered with ``StatusReply({"configuration": ...})`` when the newest
  configuration is the one it asked for, or with a retryable ``unavailable``
  when another change took its epoch or this node stopped leading (the
  client's retry then finds the change made, or asks again).

Limits: ``WAITERS_MAX`` = 64 requests wait at once (the core takes one change
at a time, so more are retries); past it the request is refused ``busy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paxon.errors import BadRequest, Busy
from paxon.net.client_messages import Failure, StatusReply
from paxon.net.transport import ClientConnection
from paxon.protocol.membership import Configuration, InvalidConfiguration, Member

WAITERS_MAX = 64


def describe(configuration: Configuration) -> dict[str, Any]:
    """A configuration as the status and the HTTP API show it."""
    return {
        "epoch": configuration.epoch,
        "alpha": configuration.alpha,
        "members": [
            {"id": m.node_id, "address": m.address, "role": "voter" if m.voter else "learner"}
            for m in configuration.members
        ],
    }


def next_configuration(
    newest: Configuration, action: str, node_id: int, address: str
) -> Configuration | None:
    """The configuration ``action`` asks for after ``newest``; None if already so."""
    current = newest.member(node_id)
    members = {member.node_id: member for member in newest.members}
    match action:
        case "add" | "add-learner":
            _check_address(address)
            wanted = Member(node_id, address, voter=action == "add")
            if current == wanted:
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
            members[node_id] = Member(node_id, current.address, voter=True)
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


def _check_address(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadRequest(f"a member's address is HOST:PORT, got {address!r}")


@dataclass(slots=True)
class _Waiter:
    connection: ClientConnection
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

    def add(self, connection: ClientConnection, request_id: int, wanted: Configuration) -> None:
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
