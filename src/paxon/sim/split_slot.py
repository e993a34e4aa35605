"""Two reigns' values at one slot, met by one Phase 1: the moment Phase 1 weighs.

A new leader re-proposes, at each slot its promises reported, the value of
the highest ballot reported there (``docs/protocol.md``, "Phase 1";
``reproposes-highest`` in ``sim/reproposal.py``). The choice matters only when
two reports at one slot carry different values under different ballots,
which random faults seldom build: a core that kept the lowest ballot's report
was caught by 1 of 300 default swarm seeds (72; session 16). In a run with
``SimConfig.split_slot``, once, from a drawn time of the fault phase:

1. the first ``Accept`` a leader (the *first*) sends for a slot no other node
   holds is lost, and the first is cut off from every node both ways: only it
   holds its value at that slot;
2. the first ``Accept`` another leader (the *second*), elected by the rest,
   sends for that slot is lost the same way, and the second is cut off too:
   it holds another value there, under a higher ballot;
3. once the second has had time to step down (a leader that hears no
   majority for ``election_timeout_max_s`` does; ``_STEP_DOWN_MARGIN_S`` over
   that), both cuts heal and the two join a bare majority of the voters, cut
   off from the rest until the heal: whoever leads it next counts promises
   reporting both values. Among 5 nodes the rest chose a third value there
   meanwhile, under the highest ballot, and one of them is in the majority:
   keeping any other is a broken agreement as well.

It needs a calm run: a crash, pause or partition drawn at random between the
stages takes the construction apart (the swarm draft of session 16 failed so),
so it is a configuration of its own (``split_slot``; the mutation budget's
``split`` group, ``tests/mutate/budget.py``), not a share of swarm seeds. The
heal of the fault phase ends it at whatever stage. Reading roles and entries
to aim is the simulator's privilege; the rule judges only what it sees.

Contract: it draws only from its own stream (``{seed}:split-slot``), and only
with ``split_slot``, so every other run is as before.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from paxon.protocol.messages import Accept
from paxon.sim.config import SimConfig

if TYPE_CHECKING:
    from paxon.net.peer_messages import PeerMessage
    from paxon.sim.runtime import RuntimeCluster

# The run the moment is built in: 3 nodes (among 5 the rest choose the slot
# meanwhile, and the joined majority's leader mostly learns it rather than
# weighing reports: 1 of 8 seeds met it), only the faults that leave the
# construction standing (copies, reordering, messages held for the worst
# moment). Every seed of 0-39 builds the moment (session 17).
CONFIG = SimConfig(nodes=3, faults=frozenset({"duplicate", "reorder", "hold"}), split_slot=True)

# The span of the fault phase the first stage may start in: early enough that
# the second's election, its step-down and the join fit before the heal.
_SPLIT_AT = (0.05, 0.3)
# Past the second's cut: a margin over the election timeout after which a
# leader that heard no majority steps down (``Replica._tick_leader``).
_STEP_DOWN_MARGIN_S = 0.2


class SplitSlot:
    """The moment of the module docstring, for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self.active = cluster.config.split_slot
        rng = random.Random(f"{seed}:split-slot")
        self._rng = rng
        self._from = rng.uniform(*_SPLIT_AT) * cluster.config.fault_phase_s if self.active else 0.0
        self._cuts: list[int] = []
        self.slot: int | None = None
        self.first: int | None = None
        self.second: int | None = None
        # The stages reached (1 to 3), for the trace and the tests.
        self.stage = 0

    def drops(self, src: int, message: PeerMessage) -> bool:
        """Whether ``message``, leaving ``src`` now, is lost for the moment."""
        cluster = self._cluster
        if (
            not self.active
            or self.stage >= 2
            or not isinstance(message, Accept)
            or message.ballot.node_id != src
            or cluster.healed_at is not None
            or cluster.time < self._from
        ):
            return False
        if self.stage == 0 and self._nobody_else_holds(src, message.slot):
            self.slot, self.first, self.stage = message.slot, src, 1
        elif self.stage == 1 and message.slot == self.slot and src != self.first:
            self.second, self.stage = src, 2
            cluster.later(self._step_down_s(src), self._join)
        else:
            return False
        self._cut_off(src)
        cluster.log(f"fault: n{src}'s Accepts at slot {message.slot} lost, n{src} cut off")
        return True

    def _nobody_else_holds(self, src: int, slot: int) -> bool:
        cluster = self._cluster
        for node_id in cluster.hosts:
            node = cluster.node(node_id)
            if node_id != src and node is not None and node._replica.entry(slot) is not None:
                return False
        return True

    def _step_down_s(self, leader: int) -> float:
        node = self._cluster.node(leader)
        assert node is not None  # it is sending
        return node._replica.config.election_timeout_max_s + _STEP_DOWN_MARGIN_S

    def _cut_off(self, node_id: int) -> None:
        self._cuts.append(self._cluster.network.cut_off(node_id, self._cluster.hosts))

    def _join(self) -> None:
        """Stage 3: the first and the second join a bare majority, apart from the rest."""
        cluster = self._cluster
        for cut_id in self._cuts:
            cluster.network.heal(cut_id)
        self._cuts.clear()
        first, second = self.first, self.second
        node = cluster.node(second) if second is not None else None
        if cluster.healed_at is not None or first is None or second is None or node is None:
            return
        voters = sorted(node._replica.configuration.voters)
        if first not in voters or second not in voters:
            return
        others = [voter for voter in voters if voter not in (first, second)]
        self._rng.shuffle(others)
        joined = {first, second, *others[: len(voters) // 2 + 1 - 2]}
        rest = [peer for peer in cluster.hosts if peer not in joined]
        cluster.network.cut(
            {(a, b) for a in joined for b in rest} | {(b, a) for a in joined for b in rest}
        )  # healed with every other cut at the heal
        self.stage = 3
        cluster.log(f"fault: n{first} and n{second} join {sorted(joined)}, apart from the rest")


__all__ = ["CONFIG", "SplitSlot"]
