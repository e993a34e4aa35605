"""``merge_status``: each member's row from its own view, its configuration
epoch, and its lag behind the leader (what ``paxon status`` and the dashboard show)."""

from __future__ import annotations

from typing import Any

from paxon.cli import _status_table
from paxon.client import merge_status


def view(node_id: int, role: str, commit: int, applied: int, epoch: int) -> dict[str, Any]:
    configuration = {
        "epoch": epoch,
        "alpha": 64,
        "members": [
            {"id": 1, "address": "a:1", "role": "voter"},
            {"id": 2, "address": "b:1", "role": "voter"},
            {"id": 3, "address": "c:1", "role": "learner"},
        ],
    }
    row = {
        "id": node_id,
        "address": f"n{node_id}",
        "role": role,
        "ballot": "4.1",
        "commit_index": commit,
        "applied_index": applied,
        "log_start": 0,
        "snapshot_index": 0,
    }
    return {"node_id": node_id, "members": [row], "configuration": configuration}


def test_each_row_shows_its_epoch_and_lag_behind_the_leader() -> None:
    views = [
        view(1, "leader", 120, 118, 5),
        view(2, "follower", 110, 100, 5),
        view(3, "learner", 40, 30, 4),
        None,  # node 4 did not answer
    ]
    merged = merge_status(["a", "b", "c", "d"], views)
    rows = {row["id"]: row for row in merged["members"]}
    assert merged["leader"] == 1
    assert {n: (rows[n]["epoch"], rows[n]["lag"]) for n in (1, 2, 3)} == {
        1: (5, 2),
        2: (5, 20),
        3: (4, 90),
    }
    table = _status_table(merged)
    assert table.splitlines()[0].split() == [
        "ID", "ADDRESS", "ROLE", "EPOCH", "BALLOT", "COMMIT", "APPLIED", "LAG", "LOG",
        "START", "SNAPSHOT", "REACHABLE",
    ]  # fmt: skip
    assert table.splitlines()[-1] == "configuration 5: voters 1, 2; learners 3"


def test_no_leader_means_no_lag() -> None:
    merged = merge_status(["a"], [view(2, "follower", 10, 5, 1)])
    assert merged["leader"] is None and merged["members"][0]["lag"] is None
