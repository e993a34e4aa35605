"""The hand-driven environment of the golden scripts, reporting to a ``PropertyChecker``.

Some broken rules need a schedule the random simulator does not reach (a vote
held back across two of one leader's reigns). ``PropertyEnv`` plays such a
schedule step by step with ``tests.protocol.harness.Env`` and feeds the checker
the same events a runtime does: a message enters an outbox (it was sent),
``persist`` makes records durable and releases held messages, ``crash`` loses
volatile state, and after every call the replica's configurations are reported
(``on_configuration``) before its messages. ``replica_factory`` builds every
replica, so a mutant can be driven through the schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.protocol.harness import Env

from paxon.protocol.messages import Message
from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica
from paxon.protocol.types import NodeId
from paxon.sim.properties import PropertyChecker


class PropertyEnv(Env):
    def __init__(
        self,
        count: int,
        replica_factory: type[Replica] = Replica,
        *,
        nodes: int | None = None,
        alpha: int | None = None,
    ) -> None:
        super().__init__(count, replica_factory=replica_factory, nodes=nodes, alpha=alpha)
        self.checker = PropertyChecker(self.members, configuration=self.initial)

    def persist(self, node_id: NodeId) -> list[str]:
        node = self.node(node_id)
        records, released = list(node.unpersisted), list(node.held)
        lines = super().persist(node_id)
        self.checker.on_records_durable(node_id, records, 0.0)
        self._sent(released)
        return lines

    def crash(self, node_id: NodeId) -> list[str]:
        self.checker.on_crash(node_id, 0.0)
        return super().crash(node_id)

    def hold(self, src: NodeId, kind: str) -> list[Message]:
        """Take matching messages out of ``src``'s outbox: sent, but not delivered yet."""
        held = self.deliverable(src=src, kind=kind)
        for message in held:
            self.node(src).outbox.remove(message)
        return held

    def release(self, messages: list[Message]) -> list[str]:
        """Deliver messages taken by ``hold``, now."""
        for message in messages:
            self.node(message.src).outbox.append(message)
        return [line for message in messages for line in self.deliver(src=message.src)]

    def _perform(self, node_id: NodeId, call: Callable[[], Ready], **kwargs: Any) -> list[str]:
        readies: list[Ready] = []

        def recorded() -> Ready:
            readies.append(call())
            return readies[-1]

        lines = super()._perform(node_id, recorded, **kwargs)
        if readies:
            replica = self.replica(node_id)
            self.checker.on_configuration(
                node_id,
                replica.slot_chosen,
                replica.configuration,
                replica.configuration_newest,
                0.0,
            )
            self._sent(readies[0].messages)
        return lines

    def _sent(self, messages: list[Message]) -> None:
        for message in messages:
            self.checker.on_send(message.src, message, 0.0)
