"""Safety checks that watch every message and every applied entry of a run.

The checker sees the cluster from outside, as an omniscient observer:

- A value is *chosen* at a slot once a majority of the voters of the
  configuration deciding that slot, ``C(s)``, have *sent* ``Accepted`` for one
  ballot there. A vote counts the moment it leaves a node (handed to the
  network), whether or not the node later loses its disk: that is exactly the
  promise persist-before-speak must keep. A learner's vote never counts.
  ``C(s)`` comes from the chosen log itself (``paxon.sim.log_configs``: a change
  chosen at slot i takes effect at i + alpha); votes at a slot whose
  configuration is not known yet wait until it is.
- **Ballot uniqueness**: a ballot carries one value per slot, in every
  ``Accept`` sent by anyone.
- **Agreement / durability**: a slot never has two chosen values. A value lost
  in a crash and replaced shows up here as a second chosen value.
- **Apply only chosen**: a replica applies at a slot only a value that is
  already chosen there, slots in order from the first.
- **Wire bound**: no replica sends a ballot round the wire cannot carry
  (``ROUND_END``): a node that promised one could never speak again.
- **No exception**: a call into a replica never raises (the cluster reports it
  as ``exception`` and crashes that node, as the runtime would stop it).
- **Validity**: applied commands were submitted by a client (or the slot is a
  no-op); no replica applies one ``(client_id, seq)`` twice in one lifetime
  (its state machine's session table must turn retries into duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paxon.protocol.config import ROUND_END
from paxon.protocol.membership import Configuration
from paxon.protocol.messages import Accept, Accepted, Message, Nack
from paxon.protocol.types import Ballot, Command, Slot, Value
from paxon.sim.log_configs import LogConfigs


@dataclass(slots=True)
class Violation:
    time: float
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"t={self.time:.6f} {self.rule}: {self.detail}"


@dataclass(slots=True)
class _NodeView:
    slot_applied_next: Slot = 0
    effective: set[tuple[int, int]] = field(default_factory=set)


class SafetyChecker:
    def __init__(
        self,
        node_ids: list[int],
        *,
        internal_client_ids: frozenset[int] | set[int] = frozenset(),
        configuration: Configuration | None = None,
    ) -> None:
        """``node_ids``: every node of the run; ``configuration``: the first
        one (default: every node votes)."""
        # Commands the runtime itself proposes (the log clock's), not clients.
        self._internal = frozenset(internal_client_ids)
        initial = configuration or Configuration.initial(node_ids)
        self.configs = LogConfigs(initial)
        self.quorum = initial.quorum  # of the first configuration
        self._proposals: dict[tuple[Slot, Ballot], Value] = {}
        self._votes: dict[tuple[Slot, Ballot], set[int]] = {}
        self._decided: set[tuple[Slot, Ballot]] = set()  # a quorum voted
        self._waiting: dict[Slot, set[Ballot]] = {}  # votes whose C(s) is not known yet
        self._reading = False  # inside _read_prefix
        self.chosen: dict[Slot, Value] = {}
        self._nodes = {node_id: _NodeView() for node_id in node_ids}
        self._submitted: dict[tuple[int, int], bytes] = {}
        self.violations: list[Violation] = []

    # -------------------------------------------------------------- events

    def on_submit(self, command: Command) -> None:
        self._submitted[(command.client_id, command.seq)] = command.payload

    def on_send(self, message: Message, time: float) -> None:
        ballots = [getattr(message, "ballot", None)]
        if isinstance(message, Nack):
            ballots.append(message.ballot_promised)
        for ballot in ballots:
            if ballot is not None and ballot.round >= ROUND_END:
                self._fail(
                    time,
                    "wire-bound",
                    f"n{message.src} sent {type(message).__name__} under ballot round "
                    f"{ballot.round}, which the wire cannot carry",
                )
        if isinstance(message, Accept):
            self.on_proposed(message.slot, message.ballot, message.value, time)
        elif isinstance(message, Accepted):
            key = (message.slot, message.ballot)
            self._votes.setdefault(key, set()).add(message.src)
            if key in self._decided:
                return
            if self.configs.known(message.slot):
                self._count(message.slot, message.ballot, time)
            else:
                self._waiting.setdefault(message.slot, set()).add(message.ballot)

    def on_proposed(self, slot: Slot, ballot: Ballot, value: Value, time: float) -> None:
        """``ballot``'s owner proposed ``value`` at ``slot``: an ``Accept`` it sent,
        or its own vote where it has nobody to send one to (a lone member)."""
        known = self._proposals.setdefault((slot, ballot), value)
        if known != value:
            self._fail(
                time,
                "ballot-uniqueness",
                f"ballot {ballot} proposed {known} and {value} at slot {slot}",
            )

    def on_apply(self, node_id: int, slot: Slot, value: Value, time: float) -> None:
        view = self._nodes[node_id]
        if slot != view.slot_applied_next:
            self._fail(
                time,
                "apply-order",
                f"n{node_id} applied slot {slot}, expected {view.slot_applied_next}",
            )
        view.slot_applied_next = slot + 1
        chosen = self.chosen.get(slot)
        if chosen is None:
            self._fail(
                time,
                "apply-unchosen",
                f"n{node_id} applied {value} at slot {slot} before any value was chosen there",
            )
        elif chosen != value:
            self._fail(
                time,
                "agreement",
                f"n{node_id} applied {value} at slot {slot}, but {chosen} was chosen",
            )
        for command in value.commands:
            key = (command.client_id, command.seq)
            if command.client_id in self._internal:
                continue
            if self._submitted.get(key) != command.payload:
                self._fail(
                    time,
                    "validity",
                    f"n{node_id} applied c{key[0]}#{key[1]} that no client submitted",
                )

    def on_effect(self, node_id: int, command: Command, time: float) -> None:
        """``command`` took effect (was not a duplicate) in the node's state machine."""
        key = (command.client_id, command.seq)
        effective = self._nodes[node_id].effective
        if key in effective:
            self._fail(time, "at-most-once", f"n{node_id} applied c{key[0]}#{key[1]} twice")
        effective.add(key)

    def on_restart(self, node_id: int) -> None:
        """A restarted node rebuilds its state machine from slot 0."""
        self._nodes[node_id] = _NodeView()

    def on_restore(self, node_id: int, slot: Slot) -> None:
        """A node's state machine was replaced by a snapshot of the slots below ``slot``."""
        self._nodes[node_id].slot_applied_next = slot

    def on_invariant_broken(self, node_id: int, error: AssertionError, time: float) -> None:
        self._fail(time, "invariant", f"n{node_id}: {error}")

    def fail(self, time: float, rule: str, detail: str) -> None:
        self._fail(time, rule, detail)

    # ------------------------------------------------------------- helpers

    def _count(self, slot: Slot, ballot: Ballot, time: float) -> None:
        """Count the votes for ``ballot`` at ``slot`` in ``C(slot)``, which is known."""
        if self.configs.at(slot).has_quorum(self._votes[(slot, ballot)]):
            self._decided.add((slot, ballot))
            self._on_chosen(slot, ballot, time)

    def _read_prefix(self, time: float) -> None:
        """Read the chosen prefix's changes, then count the votes that waited for
        them; again while that chooses the next slot (a loop, not a recursion:
        a runaway leader may leave many slots waiting)."""
        if self._reading:
            return
        self._reading = True
        configs = self.configs
        while True:
            while configs.prefix_end in self.chosen:
                configs.read(self.chosen[configs.prefix_end], time)
            for slot in sorted(slot for slot in self._waiting if configs.known(slot)):
                for ballot in sorted(self._waiting.pop(slot, ())):
                    if (slot, ballot) not in self._decided:
                        self._count(slot, ballot, time)
            if configs.prefix_end not in self.chosen:
                break
        self._reading = False

    def _on_chosen(self, slot: Slot, ballot: Ballot, time: float) -> None:
        value = self._proposals.get((slot, ballot))
        if value is None:
            self._fail(
                time,
                "phantom-vote",
                f"votes for ballot {ballot} at slot {slot}, which nobody proposed",
            )
            return
        previous = self.chosen.setdefault(slot, value)
        if previous != value:
            self._fail(
                time,
                "agreement",
                f"slot {slot} chose {previous} and then {value} (ballot {ballot})",
            )
        if slot == self.configs.prefix_end:
            self._read_prefix(time)

    def _fail(self, time: float, rule: str, detail: str) -> None:
        self.violations.append(Violation(time, rule, detail))
