"""``removed-learns``: a removed node that missed its removal learns it.

A node down or cut off while its removal is chosen and takes effect comes back
still holding itself a voter: it stands again and again, in vain, to members
for whom it is a stranger. A member remembers the last nodes it saw removed
(``Replica.removed_addresses``), keeps a link to each, refuses their probes out
loud with a ``RemovedNotice`` and answers their learn requests, so the node
learns the change that removed it, or believes a majority of the voters it
knows, and stands no more (docs/membership.md, "Removing a member").

Judged at the end of the run, for every removal that took effect (and was
not undone) at least ``learn_bound`` before it, counted from the heal if it
took effect earlier: a live node so removed that still holds itself a member
of its newest configuration, and not told by a majority, is named while a
live member it knows remembers its removal and still holds the log from the
node's chosen prefix on, or while a majority of the other voters of its
newest configuration are live and remember it. A node whose every member it
knows is gone (replaced, or down), or whose voters are short of such a
majority and have compacted past what it lacks, cannot learn it (a member
sends a removed node no snapshot: it holds the state chosen since the
removal); docs/membership.md says to stop it by hand, and the rule does not
judge it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from paxon.protocol.membership import REMOVED_REMEMBERED_MAX, Configuration
from paxon.protocol.types import NodeId
from paxon.sim.config import SimConfig

# Start-up, a round trip or two, a snapshot to install, a few ticks.
_SLACK_S = 0.5


def learn_bound(config: SimConfig) -> float:
    """Seconds a removed node may take to learn its removal once it can: its
    next probe (an election timeout at the largest backoff), the refusal's
    learn request (``learn_retry_s`` paces it), and slack."""
    replica = config.replica
    election = replica.election_timeout_max_s * replica.backoff_max_factor
    return election + replica.learn_retry_s + _SLACK_S


def removed_in_time(
    removals: Iterable[tuple[NodeId, float]], healed_at: float, end: float, config: SimConfig
) -> list[NodeId]:
    """The nodes of ``removals`` (node, when its removal took effect) that had
    ``learn_bound`` to learn it before ``end``, from the heal at the earliest."""
    bound = learn_bound(config)
    return sorted({n for n, at in removals if max(at, healed_at) + bound <= end})


@dataclass(frozen=True, slots=True)
class NodeView:
    """What a live node holds: its newest configuration, the members it
    links to, the nodes it remembers removed, its chosen prefix, the first
    slot of its log, and the epoch a majority told it it was removed at."""

    node_id: NodeId
    newest: Configuration
    members: tuple[NodeId, ...]
    removed: frozenset[NodeId]
    slot_chosen: int
    log_start: int
    removed_by_notice: int | None = None


def unaware_removed(
    removed: Iterable[NodeId], live: Callable[[NodeId], NodeView | None]
) -> list[str]:
    """Details of each node of ``removed`` (``removed_in_time``) that ``live``
    shows running, still holding itself a member, while a live member it
    knows remembers its removal and holds the slots it lacks, or a majority
    of its other voters remember it."""
    details = []
    for node_id in sorted(removed):
        view = live(node_id)
        if view is None or node_id not in view.newest.ids or view.removed_by_notice is not None:
            continue
        stale = f"n{node_id}, removed, still holds itself a member of configuration "
        stale += f"{view.newest.epoch} at the end, though "
        tellers = []
        for member in view.members:
            other = live(member) if member != node_id else None
            # A member compacted past what the node has chosen sends it no
            # log (and no snapshot: it holds the state chosen since the removal).
            if other is not None and _remembers(other, node_id):
                tellers += [member] if other.log_start <= view.slot_chosen else []
        others = view.newest.voters - {node_id}
        remembering = [v for v in sorted(others) if _remembers(live(v), node_id)]
        if tellers:
            named = ", ".join(f"n{m}" for m in tellers)
            details.append(
                f"{stale}{named}, which it links to, remember its removal "
                "and hold the slots it lacks"
            )
        elif len(remembering) >= view.newest.quorum:
            named = ", ".join(f"n{m}" for m in remembering)
            details.append(f"{stale}{named}, a majority of its voters, remember its removal")
    return details


def memory_problem(
    view: NodeView, removed: frozenset[NodeId], removed_since_join: frozenset[NodeId] | None
) -> str | None:
    """``removed-remembered``: what ``view`` (a live member) remembers removed,
    against ``removed``, the nodes its chosen prefix says were (the log's
    configurations, ``LogConfigs.removed_known_at``); None when they agree.
    ``removed_since_join``: for a node that joined (``--join``), what it must
    remember at least, as its own history begins at epoch 1 (the removals of
    epoch 1 it knows only from a snapshot). Not judged past
    ``REMOVED_REMEMBERED_MAX``, where the oldest are forgotten."""
    if len(removed) > REMOVED_REMEMBERED_MAX:
        return None
    at_least = removed if removed_since_join is None else removed_since_join
    missing = at_least - view.removed
    extra = view.removed - removed
    if not missing and not extra:
        return None
    return (
        f"n{view.node_id} (chosen prefix {view.slot_chosen}) remembers removed "
        f"{sorted(view.removed)}, where its log removed {sorted(removed)}"
        + (f" ({sorted(at_least)} since it joined)" if removed_since_join is not None else "")
        + (f": it forgot {sorted(missing)}" if missing else "")
        + (f": it never saw {sorted(extra)} removed" if extra else "")
    )


def _remembers(view: NodeView | None, node_id: NodeId) -> bool:
    return view is not None and node_id in view.removed


__all__ = ["NodeView", "learn_bound", "memory_problem", "removed_in_time", "unaware_removed"]
