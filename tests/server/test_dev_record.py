"""``paxon dev``'s record of its cluster (``DIR/dev-cluster.json``) and what a second
run makes of it, and the logins of dev's membership changes; stand-ins (``sleep``, a
fake ``Client``) instead of nodes. The real thing: tests/cluster/test_dev.py.

Cost: well under a second."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from paxon.errors import BadRequest, Unauthenticated
from paxon.server import dev, dev_nodes
from paxon.server.dev_nodes import DevCommandError, DevNodes, DevSettings
from paxon.server.dev_plan import DevNode, PortBases
from paxon.server.dev_record import (
    DevRecord,
    read_record,
    reconcile,
    record_path,
    write_record,
)

BASES = PortBases(27001, 28001, 27101)


def test_a_record_plans_its_members_only_joined_ones_with_join(tmp_path: Path) -> None:
    record = DevRecord(BASES, first_nodes=3, members=(1, 2, 3)).with_added(4).with_removed(1)
    assert record == DevRecord(BASES, first_nodes=3, members=(2, 3, 4), joined=(4,))
    plan = record.plan(str(tmp_path))
    assert [node.node_id for node in plan] == [2, 3, 4]
    assert [node.join for node in plan] == ["", "", "127.0.0.1:27002,127.0.0.1:27003"]
    assert plan[2].listen == ("127.0.0.1", 27004) and plan[2].peer == ("127.0.0.1", 27104)
    assert plan[2].data_dir == str(tmp_path / "node4")
    # The nodes that were there first keep their first --peers, node 1 included.
    peers = "1=127.0.0.1:27101,2=127.0.0.1:27102,3=127.0.0.1:27103"
    assert record.first_peers(str(tmp_path)) == peers
    assert "--peers" in plan[0].argv(peers) and "--join" in plan[2].argv(peers)
    # A joined node left alone: --peers would not name it (serve refuses that).
    [alone] = DevRecord(BASES, 1, (2,), (2,)).plan(str(tmp_path))
    assert alone.join == "127.0.0.1:27002"


def test_the_record_survives_a_round_trip_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    assert read_record(str(tmp_path)) is None
    record = DevRecord(PortBases(27001, 28001, None), 2, (1, 2, 5), (5,))
    write_record(str(tmp_path), record)
    assert read_record(str(tmp_path)) == record
    path = Path(record_path(str(tmp_path)))
    for bad in ("{", "[]", '{"format": 1}', json.dumps({**record.to_json(), "members": [0]})):
        path.write_text(bad)
        with pytest.raises(BadRequest, match="is not a paxon dev record"):
            read_record(str(tmp_path))


def test_flags_that_contradict_the_record_are_refused_and_nodes_is_noted() -> None:
    record = DevRecord(BASES, 3, (2, 3, 4), (4,))

    def check(nodes: int | None) -> list[str]:
        return reconcile(
            record,
            nodes=nodes,
            base_port=None,
            http_base_port=28001,
            peer_base_port=None,
            insecure=False,
            data_dir="d",
        )

    assert check(None) == []
    assert check(3) == []  # as many as it has
    [note] = check(4)
    assert note == (
        "d holds a dev cluster of 3 members (2, 3, 4); --nodes 4 applies to a new cluster only"
    )
    refused = r"it runs on --base-port 27001, not 7001; it uses peer TLS \(no --insecure\)"
    with pytest.raises(BadRequest, match=refused):
        reconcile(
            record,
            nodes=None,
            base_port=7001,
            http_base_port=None,
            peer_base_port=None,
            insecure=True,
            data_dir="d",
        )


class _Started(Exception):
    """Raised by the stand-in cluster instead of starting processes."""


def test_a_second_run_starts_the_recorded_members(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = str(tmp_path)
    insecure = PortBases(27001, 28001, None)  # no certificates to make
    write_record(data_dir, DevRecord(insecure, 3, (2, 3, 4), (4,)))
    seen: dict[str, Any] = {}

    class StandIn:
        def __init__(self, plan: list[DevNode], settings: DevSettings, **kwargs: Any) -> None:
            seen.update(plan=plan, settings=settings, **kwargs)

        def start_all(self) -> None:
            raise _Started

        def stop_all(self) -> list[str]:
            return []

    monkeypatch.setattr(dev, "DevNodes", StandIn)
    with pytest.raises(_Started):
        dev.run_dev(None, None, None, data_dir, insecure=True)
    assert [node.node_id for node in seen["plan"]] == [2, 3, 4]  # not 1; 4 is back
    assert seen["plan"][2].join == "127.0.0.1:27002,127.0.0.1:27003"
    assert seen["settings"].peers.startswith("1=127.0.0.1:27001,")
    assert seen["record"] == read_record(data_dir)


# ------------------------------------------------------------- add, remove, logins


class FakeClient:
    """A cluster of nodes 1 and 2 whose auth is enabled: root's password is ``pw``."""

    changes: list[tuple[str, int, str | None]] = []

    def __init__(self, endpoints: list[str], **kwargs: Any) -> None:
        self.user, self.password = kwargs.get("user"), kwargs.get("password")

    async def __aenter__(self) -> FakeClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def status(self) -> dict[str, Any]:
        return {"configuration": {"members": [{"id": 1}, {"id": 2}]}}

    async def change_members(self, action: str, node_id: int, address: str) -> dict[str, Any]:
        if (self.user, self.password) != ("root", "pw"):
            raise Unauthenticated("auth is enabled: log in first (a token is required)")
        FakeClient.changes.append((action, node_id, self.user))
        return {"epoch": 7}


@pytest.fixture
def fake_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    FakeClient.changes = []
    monkeypatch.setattr(dev_nodes, "Client", FakeClient)
    monkeypatch.setattr(DevNode, "argv", lambda self, peers: ["sleep", "30"])
    monkeypatch.setattr(DevNodes, "_roles", lambda self: {})
    yield


def started(tmp_path: Path, **settings: Any) -> DevNodes:
    data_dir = str(tmp_path)
    record = DevRecord(BASES, 2, (1, 2))
    write_record(data_dir, record)
    nodes = DevNodes(
        record.plan(data_dir),
        DevSettings(data_dir, BASES, record.first_peers(data_dir), ca_cert=None, **settings),
        record=record,
    )
    nodes.start_all()
    return nodes


def test_add_and_remove_log_in_as_the_user_and_are_recorded(
    tmp_path: Path, fake_cluster: None
) -> None:
    nodes = started(tmp_path, user="root", password="pw")
    try:
        assert nodes.add().startswith("node 3: added as a learner at 127.0.0.1:27103")
        assert nodes.remove(1).startswith(
            "node 1: removed from the cluster (configuration epoch 7)"
        )
        assert FakeClient.changes == [
            ("add-learner-auto-promote", 3, "root"),
            ("remove", 1, "root"),
        ]
        assert read_record(str(tmp_path)) == DevRecord(BASES, 2, (2, 3), (3,))
    finally:
        nodes.stop_all()


def test_without_a_user_dev_asks_for_roots_password_once(
    tmp_path: Path, fake_cluster: None
) -> None:
    typed = ["wrong", "pw"]
    asked: list[str] = []

    def ask(user: str) -> str | None:
        asked.append(user)
        return typed.pop(0)

    nodes = started(tmp_path, ask_password=ask)
    try:
        with pytest.raises(DevCommandError, match="log in first"):
            nodes.remove(2)  # a wrong password: refused, and forgotten
        assert nodes.remove(2).startswith("node 2: removed")
        assert nodes.add().startswith("node 3: added")  # the login is kept: no question
        assert asked == ["root", "root"]
        assert [change[:2] for change in FakeClient.changes] == [
            ("remove", 2),
            ("add-learner-auto-promote", 3),
        ]
    finally:
        nodes.stop_all()


def test_without_a_user_or_a_terminal_the_error_says_what_to_set(
    tmp_path: Path, fake_cluster: None
) -> None:
    nodes = started(tmp_path)
    try:
        hint = r"start paxon dev with \$PAXON_USER and \$PAXON_PASSWORD set"
        with pytest.raises(DevCommandError, match=hint):
            nodes.remove(2)
        assert FakeClient.changes == []
        assert read_record(str(tmp_path)) == DevRecord(BASES, 2, (1, 2))
    finally:
        nodes.stop_all()
