"""The leader's part in membership: change requests, auto-promotion, bindings.

Contract (``node/members.py`` computes each change; this module proposes it):
- ``on_request(connection, request)``: a ``ChangeMembers`` from a client. A
  follower redirects; the leader checks the root token (auth enabled),
  proposes the next configuration and answers once it is chosen
  (``waiters``), or at once when the change is already made or refused.
  ``transfer-leader`` asks the core to hand leadership over.
- ``on_tick()``: leading, propose the promotion of a caught-up learner added
  with ``--auto-promote`` (``auto_promotion``).
- ``bind_incarnations()``: leading, with no request waiting, bind the members
  whose data directory an authenticated handshake named
  (``docs/membership.md``, "Incarnations").
Every proposal goes through ``Replica.propose_configuration``: one change at a
time, ``Busy`` while another is on its way (the duties try again next tick).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paxon.errors import Busy, NotLeader, PaxonError
from paxon.net.client_messages import ChangeMembers, Failure, StatusReply
from paxon.node.environment import ClientAnswers
from paxon.node.members import (
    MembershipWaiters,
    auto_promotion,
    describe,
    next_configuration,
)
from paxon.node.members import bind_incarnations as next_binding
from paxon.protocol import Role

if TYPE_CHECKING:
    from paxon.node.node import Node


class LeaderMembership:
    """One node's membership duties while it leads; see the module docstring."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.waiters = MembershipWaiters()

    def on_request(self, connection: ClientAnswers, request: ChangeMembers) -> None:
        """Propose the configuration ``request`` asks for; answer once it is chosen."""
        node = self._node
        if node._replica.role is not Role.LEADER:
            connection.send(node._redirect(request.request_id))
            return
        newest = node._replica.configuration_newest
        if request.action == "transfer-leader":
            try:
                if node._gate is not None:
                    node._gate.check_admin(request.token or None)
                node._perform(node._replica.transfer_leadership(request.node_id))
            except PaxonError as error:
                connection.send(Failure(request.request_id, error.code, str(error)))
            except ValueError as error:
                connection.send(Failure(request.request_id, "bad_request", str(error)))
            else:
                answer = {"configuration": describe(newest), "transferring_to": request.node_id}
                connection.send(StatusReply(request.request_id, answer))
            return
        try:
            if node._gate is not None:
                node._gate.check_admin(request.token or None)
            wanted = next_configuration(
                newest,
                request.action,
                request.node_id,
                request.address,
                node._transport.incarnation_of(request.node_id),
            )
            # The same change asked again (a client's retry, a duplicated
            # message) waits for the one on its way: Busy would tell the client
            # its change failed while it may yet be chosen.
            asked_again = wanted is not None and wanted == node._replica.configuration_on_its_way
            if wanted is not None:
                # Room first, then the core (Busy while another change is in
                # progress): a refusal answers this request alone.
                self.waiters.check_room()
                ready = None if asked_again else node._replica.propose_configuration(wanted)
                self.waiters.add(connection, request.request_id, wanted)
                if ready is not None:
                    node._perform(ready)
        except PaxonError as error:
            connection.send(Failure(request.request_id, error.code, str(error)))
            return
        if wanted is None:
            connection.send(StatusReply(request.request_id, {"configuration": describe(newest)}))
        else:
            node.log.info(
                "[%d] %s configuration %d: %s node %d",
                node.node_id,
                "waiting for" if asked_again else "proposing",
                wanted.epoch,
                request.action,
                request.node_id,
            )

    def on_tick(self) -> None:
        """Leading: promote a learner added with ``--auto-promote`` once caught up."""
        node = self._node
        wanted = auto_promotion(node._replica, node._transport.incarnation_of)
        if wanted is None:
            return
        try:
            node._perform(node._replica.propose_configuration(wanted))
        except Busy:
            return  # a change is on its way after all; the next tick looks again
        promoted = sorted(wanted.voters - node._replica.configuration.voters)
        node.log.info(
            "[%d] proposing configuration %d: promote caught-up learner %s",
            node.node_id,
            wanted.epoch,
            promoted,
        )

    def bind_incarnations(self) -> None:
        """As leader, with no change on its way: bind the members whose data
        directory an authenticated handshake named (docs/membership.md,
        "Incarnations"). A binding keeps members and roles: no quorum changes."""
        node = self._node
        if node._replica.role is not Role.LEADER or len(self.waiters):
            return
        newest = node._replica.configuration_newest
        known = {node.node_id: node._storage.identity.incarnation}
        for member in newest.members:
            if member.incarnation is None and member.node_id != node.node_id:
                incarnation = node._transport.incarnation_of(member.node_id)
                if incarnation is not None:
                    known[member.node_id] = incarnation
        wanted = next_binding(newest, known)
        if wanted is None:
            return
        try:
            ready = node._replica.propose_configuration(wanted)
        except (Busy, NotLeader):
            return  # a change is on its way; the next tick tries again
        node.log.info(
            "[%d] proposing configuration %d: binding incarnations of nodes %s",
            node.node_id,
            wanted.epoch,
            sorted(m.node_id for m in wanted.members if m not in newest.members),
        )
        node._perform(ready)
