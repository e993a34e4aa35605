"""The operator's calls into the core, judged at each: a valid change is taken.

``paxon members`` reaches the core through two calls of the leader's
``Replica``: ``propose_configuration`` (add, remove, promote, replace) and
``transfer_leadership``. Each may refuse, and the simulated operator takes a
refusal as a reason to try later (``sim/operator.py``), so no other rule
sees a core that refuses what it should take (flipped guards, session 15:
every change answered ``busy``, or a named transfer target refused or
swapped, passed every seed). A runtime reports:

    on_change_refused(node_id, replica, error, time)    propose_configuration raised
    on_transfer(node_id, replica, args, error, time)     transfer_leadership returned
                                                         (``error`` None) or raised

The rules, by name (``Violation.rule``), from ``Replica``'s contract
(``docs/membership.md``):

- ``change-refused``: a leader refuses a change with ``NotLeader`` never, and
  with ``Busy`` only while another change is on its way (the configuration in
  effect at its chosen prefix is not its newest, or a change stands among its
  open proposals or its queue, read here with ``sim/log_configs.py``'s own
  reading of a value's change), while leadership moves (a transfer runs, or
  it was removed and waits to hand over), or with its queue full.
- ``transfer-refused``: ``transfer_leadership`` raises ``ValueError`` only if
  the target named is not another voter of both the configuration in effect
  and the newest one, or, with no target named, if there is no such voter;
  and a transfer to a named target hands to that one (``transferring_to``).
"""

from __future__ import annotations

from collections.abc import Sequence

from paxon.errors import Busy
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import NodeId, Value
from paxon.sim.checkers import Violation
from paxon.sim.log_configs import change_of


class OperatorChecker:
    """Checks the rules of the module docstring on each call it is told of."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations

    def on_change_refused(
        self, node_id: NodeId, replica: Replica, error: Exception, time: float
    ) -> None:
        if replica.role is not Role.LEADER:
            return
        if not isinstance(error, Busy):
            self._fail(time, "change-refused", f"n{node_id} leads, yet refused a change: {error}")
            return
        if _busy_rightly(replica):
            return
        self._fail(
            time,
            "change-refused",
            f"n{node_id} refused a change as busy with none on its way (epoch "
            f"{replica.configuration.epoch} in effect and newest): {error}",
        )

    def on_transfer(
        self,
        node_id: NodeId,
        replica: Replica,
        args: Sequence[object],
        error: Exception | None,
        time: float,
    ) -> None:
        target = args[0] if args else None
        eligible = (replica.configuration.voters & replica.configuration_newest.voters) - {node_id}
        if error is None:
            if target is not None and replica.transferring_to != target:
                self._fail(
                    time,
                    "transfer-refused",
                    f"n{node_id} was asked to hand leadership to n{target} and hands it to "
                    f"{replica.transferring_to}",
                )
            return
        if not isinstance(error, ValueError) or replica.role is not Role.LEADER:
            return
        if (target is None and eligible) or (target is not None and target in eligible):
            named = "no target" if target is None else f"n{target}"
            self._fail(
                time,
                "transfer-refused",
                f"n{node_id} refused a transfer to {named} with voters {sorted(eligible)} "
                f"to hand to: {error}",
            )

    def _fail(self, time: float, rule: str, detail: str) -> None:
        self.violations.append(Violation(time, rule, detail))


def _busy_rightly(replica: Replica) -> bool:
    """Another change chosen but not in effect, proposed, or queued at ``replica``;
    or leadership moving, or its queue full: any reason ``Busy`` may be."""
    if replica.configuration.epoch != replica.configuration_newest.epoch:
        return True
    if replica.transferring_to is not None or replica.node_id not in replica.configuration.voters:
        return True  # leadership moves: propose refuses every command
    if len(replica._queue) >= replica.config.queue_max_commands:
        return True
    values = [proposal.value for proposal in replica._proposals.values()]
    values += [Value((command,)) for command in replica._queue]
    return any(change_of(value) is not None for value in values)


__all__ = ["OperatorChecker"]
