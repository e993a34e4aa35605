"""What a node says of itself: the ``status --json`` object (docs/api.md,
``GET /v1/status``) and the dashboard's log view (``GET /v1/slots``), both from
this node's own view; ``Node.cluster_status`` merges the members' views.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paxon.node.members import describe
from paxon.protocol.replica import RECENT_SLOTS_MAX, Role, SlotView

if TYPE_CHECKING:
    from paxon.node.node import Node


def node_status(node: Node) -> dict[str, Any]:
    """The ``status --json`` object of docs/api.md, from this node's view."""
    status = node._replica.status()
    leader = status.leader_hint
    members = []
    for member in sorted(node.addresses):
        address = node.client_address(member)
        if member == node.node_id:
            members.append(
                {
                    "id": member,
                    "address": address,
                    "role": status.role.value,
                    "ballot": str(status.ballot_promised),
                    "commit_index": status.slot_chosen,
                    "applied_index": node.machine.slot_applied,
                    "log_start": status.log_start,
                    "snapshot_index": node._snapshots.slot,
                    "reachable": True,
                }
            )
        else:
            members.append(
                {
                    "id": member,
                    "address": address,
                    "role": "leader" if member == leader else None,
                    "ballot": None,
                    # A leader hears each follower's chosen index.
                    "commit_index": node._replica.peer_slot_chosen(member),
                    "applied_index": None,
                    "log_start": None,
                    "snapshot_index": None,
                    "reachable": node._transport.reachable(member),
                }
            )
    newest = node._replica.configuration_newest
    for row in members:
        if row["id"] in newest.learners and row["role"] != "leader":
            row["role"] = "learner"
        elif row["id"] == node.node_id and (
            node.node_id not in newest.ids or node._replica.removed_by_notice is not None
        ):
            row["role"] = "removed"  # it learned so, or was told: it stands no more
    view = {
        "node_id": node.node_id,
        "members": members,
        "leader": leader,
        "configuration": describe(node._replica.configuration_newest),
        # How linearizable reads are confirmed here: every member alike, or unsafe.
        "lease_reads": node._replica.config.lease_reads,
    }
    if node.health_report is not None:
        view["health"] = node.health_report()
    if node.http_address is not None:
        view["http"] = node.http_address
    return view


def recent_slots(node: Node, count: int) -> dict[str, Any]:
    """The dashboard's log view: ``Replica.recent_slots`` and where the log stands."""
    status = node._replica.status()
    return {
        "node_id": node.node_id,
        "log_start": status.log_start,
        "commit_index": status.slot_chosen,
        "slot_next": status.slot_next if status.role is Role.LEADER else None,
        "slots_max": RECENT_SLOTS_MAX,
        "slots": [
            {
                "slot": view.slot,
                "ballot": None if view.ballot is None else str(view.ballot),
                "state": _slot_state(view),
                "noop": view.is_noop,
                "commands": view.commands,
            }
            for view in node._replica.recent_slots(count)
        ],
    }


def _slot_state(view: SlotView) -> str:
    """A slot's state in the dashboard's log view (docs/api.md, ``GET /v1/slots``)."""
    if view.chosen:
        return "chosen"
    return "hole" if view.ballot is None else "in_flight"
