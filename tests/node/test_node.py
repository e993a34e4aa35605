"""The node runtime in one process: three ``Node`` objects over loopback TCP.

Real sockets, real files, the real group commit; only the processes are
shared. Waiting is by polling a condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from paxon.client import Client
from paxon.errors import BadRequest, Unavailable, ValueTooLarge
from paxon.node import Node, NodeConfig
from paxon.statemachine import StateMachine


class Counter(StateMachine):
    def __init__(self) -> None:
        self.total = 0

    def apply(self, command: bytes) -> bytes:
        self.total += int(command)
        return str(self.total).encode()

    def query(self, query: bytes) -> bytes:
        return str(self.total).encode()

    def snapshot(self) -> bytes:
        return json.dumps(self.total).encode()

    def restore(self, data: bytes) -> None:
        self.total = json.loads(data)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


class LocalCluster:
    def __init__(self, root: Path, config: NodeConfig | None = None) -> None:
        self.root = root
        self.config = config or NodeConfig()
        self.peers = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(free_ports(3))}
        self.nodes: dict[int, Node] = {}

    async def start(self, node_id: int) -> Node:
        node = Node(
            node_id, self.peers, str(self.root / f"n{node_id}"), Counter(), config=self.config
        )
        await node.start()
        self.nodes[node_id] = node
        return node

    async def start_all(self) -> None:
        for node_id in self.peers:
            await self.start(node_id)

    async def stop(self, node_id: int) -> None:
        await self.nodes.pop(node_id).stop()

    async def stop_all(self) -> None:
        for node_id in list(self.nodes):
            await self.stop(node_id)

    def total(self, node_id: int) -> int:
        machine = self.nodes[node_id].machine.machine
        assert isinstance(machine, Counter)
        return machine.total


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def submit_retrying(node: Node, payload: bytes, attempts: int = 20) -> bytes:
    """``submit``, retried as a client does when the node says it could not
    serve (a leader that heard no majority within 0.3 s on a loaded machine):
    only for tests that count slots, not the state machine's answers."""
    for _ in range(attempts - 1):
        try:
            return await node.submit(payload)
        except Unavailable:
            await asyncio.sleep(0.05)
    return await node.submit(payload)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


def test_writes_through_every_node_and_linearizable_reads_everywhere(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        try:
            for i in range(12):
                node = cluster.nodes[i % 3 + 1]
                reply = await node.submit(b"1")
                assert reply == str(i + 1).encode()
                for reader in cluster.nodes.values():
                    assert await reader.query(b"") == str(i + 1).encode()
            assert sum(node.is_leader for node in cluster.nodes.values()) == 1
            # Every member's row, as that member sees itself, from any node.
            view = await cluster.nodes[3].cluster_status()
            assert [row["applied_index"] is not None for row in view["members"]] == [True] * 3
            assert view["leader"] == next(n for n, node in cluster.nodes.items() if node.is_leader)
        finally:
            await cluster.stop_all()

    run(scenario)


def test_state_comes_back_after_every_node_restarts(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        try:
            for _ in range(20):
                await cluster.nodes[1].submit(b"2")
        finally:
            await cluster.stop_all()
        await cluster.start_all()
        try:
            assert await cluster.nodes[2].query(b"") == b"40"
            await eventually(lambda: all(cluster.total(n) == 40 for n in cluster.nodes))
        finally:
            await cluster.stop_all()

    run(scenario)


def test_snapshots_compact_the_log_and_restore_on_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = LocalCluster(tmp_path, NodeConfig(snapshot_interval_slots=5))
        await cluster.start_all()
        try:
            for _ in range(40):
                await cluster.nodes[3].submit(b"1")
            await eventually(lambda: all(cluster.total(n) == 40 for n in cluster.nodes))
            await eventually(
                lambda: all(
                    n.status()["members"][n.node_id - 1]["log_start"] > 0
                    for n in cluster.nodes.values()
                )
            )
        finally:
            await cluster.stop_all()
        assert list((tmp_path / "n1").glob("snapshot-*.snap"))
        await cluster.start_all()
        try:
            row = cluster.nodes[1].status()["members"][0]
            assert row["snapshot_index"] > 0 and row["log_start"] > 0
            assert await cluster.nodes[1].query(b"") == b"40"
            assert await cluster.nodes[1].submit(b"1") == b"41"
        finally:
            await cluster.stop_all()

    run(scenario)


def test_a_restart_keeps_the_snapshot_schedule(tmp_path: Path) -> None:
    """The next snapshot is due an interval after the recovered one, not at the
    first slot applied after every restart (a wasted snapshot per restart)."""

    async def scenario() -> None:
        cluster = LocalCluster(tmp_path, NodeConfig(snapshot_interval_slots=1000))
        await cluster.start_all()
        try:
            for _ in range(1010):  # about a slot each: every node snapshots once
                await submit_retrying(cluster.nodes[1], b"1")
            await eventually(lambda: all(n._snapshots.slot > 0 for n in cluster.nodes.values()))
        finally:
            await cluster.stop_all()
        files = {path: path.stat().st_mtime_ns for path in tmp_path.glob("n1/snapshot-*")}
        await cluster.start_all()
        try:
            node = cluster.nodes[1]
            assert 1000 <= node._snapshots.slot < 1500
            for _ in range(3):
                await node.submit(b"1")
            await asyncio.gather(*node._snapshots.work)
            # No snapshot written since (not even the recovered one again).
            assert {path: path.stat().st_mtime_ns for path in tmp_path.glob("n1/snapshot-*")} == (
                files
            )
        finally:
            await cluster.stop_all()

    run(scenario)


def test_a_restarted_follower_catches_up(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        try:
            await cluster.nodes[1].submit(b"1")
            await eventually(lambda: any(n.is_leader for n in cluster.nodes.values()))
            follower = next(n for n, node in cluster.nodes.items() if not node.is_leader)
            await cluster.stop(follower)
            writer = next(iter(cluster.nodes.values()))
            for _ in range(30):
                await writer.submit(b"1")
            await cluster.start(follower)
            await eventually(lambda: cluster.total(follower) == 31)
        finally:
            await cluster.stop_all()

    run(scenario)


def test_an_oversize_command_is_refused_before_it_is_proposed(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = LocalCluster(tmp_path, NodeConfig(command_max_bytes=1000))
        await cluster.start_all()
        try:
            with pytest.raises(ValueTooLarge):
                await cluster.nodes[1].submit(b"1" * 1001)
            assert await cluster.nodes[1].submit(b"5") == b"5"
        finally:
            await cluster.stop_all()

    run(scenario)


def test_a_follower_behind_the_compacted_log_is_sent_a_snapshot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="paxon.node")

    async def scenario() -> None:
        cluster = LocalCluster(tmp_path, NodeConfig(snapshot_interval_slots=5))
        await cluster.start_all()
        try:
            await cluster.nodes[1].submit(b"1")
            await eventually(lambda: any(n.is_leader for n in cluster.nodes.values()))
            leader = next(n for n, node in cluster.nodes.items() if node.is_leader)
            follower = next(n for n in cluster.nodes if n != leader)
            await cluster.stop(follower)
            for _ in range(60):  # one slot each: the others snapshot and compact
                await cluster.nodes[leader].submit(b"1")
            row = cluster.nodes[leader].status()["members"][leader - 1]
            assert row["log_start"] > 1, row
            await cluster.start(follower)
            await eventually(lambda: cluster.total(follower) == 61)
            own = cluster.nodes[follower].status()["members"][follower - 1]
            assert own["snapshot_index"] >= row["log_start"]
            # The log says where the install's time went (the membership benchmark reads it).
            installed = [
                r.getMessage() for r in caplog.records if "installed the snapshot" in r.getMessage()
            ]
            assert installed
            for line in installed:
                assert re.search(
                    rf"at slot \d+ from node {leader} \(\d+ bytes: received in "
                    r"[\d.]+ s, decoded in [\d.]+ s, written durably in [\d.]+ s\)$",
                    line,
                ), line
            # The installed snapshot is durable: a restart comes back from it.
            await cluster.stop(follower)
            await cluster.start(follower)
            assert cluster.total(follower) == 61
        finally:
            await cluster.stop_all()

    run(scenario)


class Picky(Counter):
    """A user state machine whose query and validate raise plain exceptions."""

    def query(self, query: bytes) -> bytes:
        return str(int(query)).encode()  # ValueError on anything but digits

    def validate(self, command: bytes) -> None:
        int(command)


def test_a_state_machine_failing_a_query_or_validate_fails_that_request_only(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        peers = {1: f"127.0.0.1:{free_ports(1)[0]}"}
        node = Node(1, peers, str(tmp_path / "n1"), Picky())
        await node.start()
        try:
            await eventually(lambda: node.is_leader)
            with pytest.raises(BadRequest):
                await node.query(b"not a number", linearizable=False)
            with pytest.raises(BadRequest):
                await node.query(b"not a number")
            with pytest.raises(BadRequest):
                await node.submit(b"x")
            assert await node.submit(b"4") == b"4"
            assert await node.query(b"7") == b"7"
        finally:
            await node.stop()

    run(scenario)


def test_the_first_configuration_takes_the_configured_alpha(tmp_path: Path) -> None:
    """``NodeConfig.alpha`` sets the alpha of the configuration made from --peers
    (the simulator draws small ones so that changes take effect in its runs)."""

    async def scenario() -> None:
        cluster = LocalCluster(tmp_path, NodeConfig(alpha=4))
        await cluster.start_all()
        try:
            await cluster.nodes[1].submit(b"1")
            for node in cluster.nodes.values():
                assert node._replica.configuration_newest.alpha == 4
        finally:
            await cluster.stop_all()

    run(scenario)
    with pytest.raises(ValueError, match="alpha"):
        NodeConfig(alpha=0)


def test_a_command_limit_that_cannot_fit_a_log_record_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        NodeConfig(command_max_bytes=64 * 1024 * 1024)


def test_a_redirect_to_a_leader_this_node_does_not_list_names_no_address(tmp_path: Path) -> None:
    # A removed leader leads on until it hands over; the members that dropped
    # it from their addresses redirect to it by id (sim seed 9, --nodes 3
    # --spares 2 --faults drop,reconfig: three nodes stopped on KeyError).
    node = Node(1, {1: "127.0.0.1:7001", 2: "127.0.0.1:7002"}, str(tmp_path / "n1"), Counter())
    assert node.client_address(2) == "127.0.0.1:7002"
    assert node.client_address(3) is None


class _Answers:
    """A client connection that keeps what the node sends it."""

    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, response: object) -> None:
        self.sent.append(response)

    def peer_name(self) -> str:
        return "test"

    def closed(self) -> bool:
        return False


def test_the_same_change_asked_again_while_on_its_way_waits_for_it(tmp_path: Path) -> None:
    """A retry of the change on its way (a client's, or a duplicated message) is
    answered with it once chosen, not refused as busy: a busy answer told the
    simulator's operator its removal was refused while it was still chosen, and
    a disk fault then left the new voters short of a majority (swarm seed
    8000723). Another change is still refused as busy, alone, and the first is
    answered once chosen."""
    from paxon.net.client_messages import ChangeMembers, Failure, StatusReply

    async def scenario() -> None:
        port = free_ports(1)[0]
        node = Node(1, {1: f"127.0.0.1:{port}"}, str(tmp_path / "n1"), Counter())
        await node.start()
        try:
            await eventually(lambda: node.is_leader)
            first, again, other = _Answers(), _Answers(), _Answers()
            for answers, request in [
                (first, ChangeMembers(1, "add-learner", 2, "127.0.0.1:9", "")),
                (again, ChangeMembers(1, "add-learner", 2, "127.0.0.1:9", "")),
                (other, ChangeMembers(2, "add-learner", 3, "127.0.0.1:9", "")),
            ]:
                node._membership.on_request(answers, request)  # type: ignore[arg-type]
            assert again.sent == []  # waiting, not refused
            assert [getattr(r, "code", None) for r in other.sent] == ["busy"]
            await eventually(lambda: bool(first.sent) and bool(again.sent))
            assert [type(r) for r in first.sent + again.sent] == [StatusReply, StatusReply]
            assert first.sent == again.sent  # the same configuration, the same id
            assert not any(isinstance(r, Failure) for r in first.sent + again.sent)
        finally:
            await node.stop()

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_stopping_leader_stays_until_its_successor_leads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stopping leader's promise to its successor leaves only once durable.
    With the third voter down, that promise is the successor's only way to a
    majority: a leader that closed its links as soon as it stepped down dropped
    it, and no one led (on real processes: an election timeout without a leader
    in the rolling-restart cluster test). A slow fdatasync makes the race certain."""
    from paxon.node import node as node_module
    from paxon.storage import fs

    fdatasync = fs._OsAppendFile.fdatasync

    def slow_fdatasync(self: fs._OsAppendFile) -> None:
        time.sleep(0.05)
        fdatasync(self)

    monkeypatch.setattr(fs._OsAppendFile, "fdatasync", slow_fdatasync)
    # The last one stopped has no voter left to hand over to: do not wait 2 s.
    monkeypatch.setattr(node_module, "HANDOVER_MAX_S", 0.5)

    async def scenario() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        try:
            await eventually(lambda: any(n.is_leader for n in cluster.nodes.values()))
            leader = next(n for n, node in cluster.nodes.items() if node.is_leader)
            down, successor = (n for n in cluster.nodes if n != leader)
            await cluster.stop(down)
            for _ in range(3):  # the successor is now the voter furthest along
                await cluster.nodes[leader].submit(b"1")
            await cluster.stop(leader)
            assert cluster.nodes[successor].is_leader
        finally:
            await cluster.stop_all()

    run(scenario)


def test_a_leader_stopped_after_every_other_voter_does_not_wait_to_hand_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole cluster stopped at once (paxon dev, a host shutting down): the
    leader's successor is gone, so waiting for it only delayed the exit, by
    ``HANDOVER_MAX_S`` each time."""
    from paxon.node import node as node_module

    monkeypatch.setattr(node_module, "HANDOVER_MAX_S", 30.0)
    caplog.set_level(logging.INFO, logger="paxon.node")

    async def scenario() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        try:
            await eventually(lambda: any(n.is_leader for n in cluster.nodes.values()))
            leader = next(n for n, node in cluster.nodes.items() if node.is_leader)
            await cluster.nodes[leader].submit(b"1")
            for follower in [n for n in cluster.nodes if n != leader]:
                await cluster.stop(follower)
            await asyncio.wait_for(cluster.stop(leader), timeout=5.0)
        finally:
            await cluster.stop_all()

    run(scenario)
    assert any(
        "stopping: leadership not taken: the link to node" in record.getMessage()
        for record in caplog.records
    )


def test_a_write_during_a_transfer_is_held_then_sent_to_the_new_leader(tmp_path: Path) -> None:
    """A leader handing over took a write with ``busy``; its client backed off
    for about a second (the membership cluster tests saw such gaps) while the
    new leader was up within milliseconds. Now the write waits out the
    transfer and is redirected, naming the node leadership went to."""
    from paxon.errors import NotLeader
    from paxon.protocol import Command

    async def scenario() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        try:
            await eventually(lambda: any(n.is_leader for n in cluster.nodes.values()))
            leader_id = next(n for n, node in cluster.nodes.items() if node.is_leader)
            leader = cluster.nodes[leader_id]
            await leader.submit(b"1")
            target = min(n for n in cluster.nodes if n != leader_id)
            leader._perform(leader._replica.transfer_leadership(target))
            answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            leader._enqueue(Command(10**6, 1, b"1"), answer)
            with pytest.raises(NotLeader) as raised:
                await asyncio.wait_for(answer, 5)
            assert raised.value.leader_hint == target
            await eventually(lambda: cluster.nodes[target].is_leader)
        finally:
            await cluster.stop_all()

    run(scenario)


def test_a_removed_leader_keeps_its_links_until_it_has_handed_over(tmp_path: Path) -> None:
    """The others hung up on a removed leader as soon as its removal took effect
    there, dropping the very replies that tell it the new voters know: it never
    handed over, an election followed, and writes it held waited 2 s (the
    membership benchmark). Links to a member just gone now stay a while."""

    async def scenario() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        try:
            await eventually(lambda: any(n.is_leader for n in cluster.nodes.values()))
            leader_id = next(n for n, node in cluster.nodes.items() if node.is_leader)
            follower = cluster.nodes[min(n for n in cluster.nodes if n != leader_id)]
            await follower.submit(b"1")
            await follower.change_members("remove", leader_id, "")
            removed = cluster.nodes[leader_id]
            await eventually(lambda: not removed.is_leader, timeout=3.0)
            await eventually(lambda: any(n.is_leader for n in cluster.nodes.values()))
            await follower.submit(b"1")
        finally:
            await cluster.stop_all()

    run(scenario)


def test_client_status_asks_the_members_the_answers_name(tmp_path: Path) -> None:
    """A client told one endpoint still shows every member's own row (a node
    added since the endpoints were written is not "unreachable")."""

    async def scenario() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        try:
            await cluster.nodes[1].submit(b"1")
            async with Client([cluster.peers[1]], timeout=5.0) as client:
                await eventually(lambda: all(n.status()["leader"] for n in cluster.nodes.values()))
                found = await client.status()
                assert [row["reachable"] for row in found["members"]] == [True, True, True]
                assert {row["role"] for row in found["members"]} == {"leader", "follower"}
                told = await client.status(discover=False)
                assert [row["reachable"] for row in told["members"]] == [True, False, False]
        finally:
            await cluster.stop_all()

    run(scenario)
