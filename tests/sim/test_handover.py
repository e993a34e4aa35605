"""``removed-hands-over`` (``paxon.sim.handover``) judged on made-up samples.

The planted bug on the runtime (a removed leader's peers hang up at once) is
in ``tests/sim/test_sim_links.py``; these pin down when the rule may judge.
"""

from __future__ import annotations

from paxon.node.node import LEAVING_LINK_S
from paxon.sim import SimConfig
from paxon.sim.checkers import Violation
from paxon.sim.handover import SAMPLE_S, HandoverWatch, RemovedLeader, handover_bound

_CONFIG = SimConfig(nodes=3)


def _watch() -> tuple[HandoverWatch, list[Violation]]:
    violations: list[Violation] = []
    return HandoverWatch(_CONFIG, violations), violations


def _leading(watch: HandoverWatch, start: float, end: float, **state: bool) -> None:
    """Sample node 1 as a removed leader every ``SAMPLE_S`` from ``start`` to ``end``."""
    fields = {"removal_in_effect": True, "reaches_majority": True} | state
    steps = round((end - start) / SAMPLE_S)
    for step in range(steps + 1):
        watch.sample([RemovedLeader(1, removal_chosen=True, **fields)], start + step * SAMPLE_S)


def test_the_bound_leaves_room_within_the_links_grace() -> None:
    assert handover_bound(_CONFIG) < LEAVING_LINK_S / 2


def test_a_removed_leader_that_leads_on_while_it_reaches_the_voters_is_named() -> None:
    watch, violations = _watch()
    _leading(watch, 1.0, 1.0 + handover_bound(_CONFIG) + 0.2)
    assert [v.rule for v in violations] == ["removed-hands-over"]


def test_one_that_steps_down_in_time_is_not() -> None:
    watch, violations = _watch()
    _leading(watch, 1.0, 1.0 + handover_bound(_CONFIG) - 0.2)
    watch.sample([], 1.0 + handover_bound(_CONFIG))
    _leading(watch, 9.0, 9.0 + handover_bound(_CONFIG) - 0.2)  # a new episode starts afresh
    assert violations == []
    assert watch.longest_s > 0


def test_the_window_opens_only_once_it_reaches_a_majority_in_effect() -> None:
    watch, violations = _watch()
    bound = handover_bound(_CONFIG)
    _leading(watch, 1.0, 1.0 + bound + 0.2, reaches_majority=False)
    _leading(watch, 1.3 + bound, 1.3 + 2 * bound, removal_in_effect=False)
    assert violations == []
    _leading(watch, 1.4 + 2 * bound, 1.6 + 3 * bound)
    assert violations == []  # the window ends past the links' grace: not judged
