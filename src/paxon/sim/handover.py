"""Liveness of a removed leader's handover: ``removed-hands-over``.

A leader whose own removal has taken effect (it is no voter of the
configuration in effect at its ``slot_chosen``) proposes nothing more; it
leads on only until a majority of the new voters know the change, then hands
over (``TimeoutNow``) and steps down (``docs/protocol.md``, "Membership"). It
learns what they know from their replies, so the new voters keep their link to
it for ``LEAVING_LINK_S`` after they learn it is gone (``node/node.py``). The
rule, in simulated time:

    a removed leader that, for ``handover_bound(config)`` from its removal
    taking effect (or from the moment it could reach them, if later), could
    reach a majority of the new voters, has stopped leading by then; judged
    only where that window ends within ``LEAVING_LINK_S`` of the moment it
    first saw the change chosen (after that, the runtime promises no link).

"Could reach" is the world's part only, not the nodes': the leader and those
voters are up, not paused, and no partition cuts a link between them either
way. Loss, delay and held messages may still strike; the bound leaves room for
them (many heartbeats). How the nodes' own transports link is theirs to get
right: a node that hangs up on the removed leader at once (no
``LEAVING_LINK_S``) leaves it leading for good, which this rule names.

The runtime simulator samples every node every ``SAMPLE_S`` while the
``reconfig`` kind is on (``RuntimeCluster``); a sample costs a few attribute
reads per node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from paxon.node.node import LEAVING_LINK_S
from paxon.sim.checkers import Violation
from paxon.sim.config import SimConfig

# How often the runtime simulator samples the nodes for this rule.
SAMPLE_S = 0.05
# Slack for start-up of a new reign's traffic, catch-up and sampling.
_SLACK_S = 1.0


def handover_bound(config: SimConfig) -> float:
    """Seconds a removed leader that can reach a majority of the new voters may
    keep leading: eight heartbeats (the new voters learn the change and say so,
    through lost and stalled messages), two accept retries (the slots before the
    change's effect), and a second of slack."""
    replica = config.replica
    return 8 * replica.heartbeat_interval_s + 2 * replica.accept_retry_s + _SLACK_S


@dataclass(frozen=True, slots=True)
class RemovedLeader:
    """One node as a sample sees it: leading, and whether its removal is known."""

    node_id: int
    # Its newest configuration (chosen) has it as no voter.
    removal_chosen: bool
    # The configuration in effect at its slot_chosen has it as no voter.
    removal_in_effect: bool
    # The world lets it reach a majority of the in-effect voters (module docstring).
    reaches_majority: bool


@dataclass(slots=True)
class _Episode:
    chosen_seen_at: float
    # Since when it has been removed in effect and able to reach the new voters.
    clear_since: float | None = None
    reported: bool = False


class HandoverWatch:
    """Judges ``removed-hands-over`` from samples of the leading nodes."""

    def __init__(self, config: SimConfig, violations: list[Violation]) -> None:
        self._bound = handover_bound(config)
        self._violations = violations
        self._episodes: dict[int, _Episode] = {}
        # The longest a removed leader led on once it could reach the new
        # voters, among those that stepped down (for measuring the bound).
        self.longest_s = 0.0

    def sample(self, leaders: Iterable[RemovedLeader], time: float) -> None:
        """``leaders``: every node that leads now and whose removal is chosen."""
        seen = set()
        for leader in leaders:
            if not leader.removal_chosen:
                continue
            seen.add(leader.node_id)
            episode = self._episodes.setdefault(leader.node_id, _Episode(time))
            if not (leader.removal_in_effect and leader.reaches_majority):
                episode.clear_since = None
                continue
            if episode.clear_since is None:
                episode.clear_since = time
            deadline = episode.clear_since + self._bound
            # The sample that saw the change chosen may be late by one interval.
            grace_end = episode.chosen_seen_at - SAMPLE_S + LEAVING_LINK_S
            if time > deadline and deadline <= grace_end and not episode.reported:
                episode.reported = True
                self._violations.append(
                    Violation(
                        time,
                        "removed-hands-over",
                        f"n{leader.node_id} still leads {time - episode.clear_since:.3f} s "
                        "after its removal took effect while it could reach a majority "
                        f"of the new voters (at most {self._bound:.3f} s)",
                    )
                )
        for node_id in list(self._episodes):
            if node_id not in seen:  # it stepped down, or went down
                clear_since = self._episodes.pop(node_id).clear_since
                if clear_since is not None:
                    self.longest_s = max(self.longest_s, time - clear_since)


__all__ = ["SAMPLE_S", "HandoverWatch", "RemovedLeader", "handover_bound"]
