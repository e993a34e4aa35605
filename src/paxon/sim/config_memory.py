"""``configs-forgotten``: a replica forgets the configurations no slot it holds needs.

A replica's configuration history (``membership.ConfigHistory``) must hold the
configuration in effect at its ``log_start`` and every later one, and no older
one: a compaction to ``log_start`` drops the rest (``Replica.compact``,
``ConfigHistory.forget_before``). A cluster that lives for years changes its
members without end, and a history that never forgets grows with each change;
its removed members also stay in the replica's member set, so their messages
pass the edge's non-member refusal. Judged at the end of the run, on every live
node (the s30 sample's ``membership.py:397``: ``forget_before`` kept all).
"""

from __future__ import annotations

from paxon.protocol.membership import ConfigHistory
from paxon.protocol.types import NodeId, Slot


def history_problem(node_id: NodeId, history: ConfigHistory, log_start: Slot) -> str | None:
    """What is wrong with ``node_id``'s ``history`` given its ``log_start``; None if nothing."""
    held = history.state(0)  # every configuration held, by effect slot
    needed = history.state(log_start)
    if held == needed:
        return None
    extra = [
        f"epoch {config.epoch} (from slot {effect})"
        for effect, config in held[: len(held) - len(needed)]
    ]
    return (
        f"n{node_id} still holds {', '.join(extra)}, older than the configuration in effect "
        f"at its log start {log_start}"
    )


__all__ = ["history_problem"]
