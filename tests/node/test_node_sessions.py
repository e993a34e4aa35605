"""Log time and sessions through real ``Node`` objects (one process, loopback TCP).

The nodes' wall clock is a fake the test moves, so expiry is tested without
waiting; everything else (proposing, the log, apply, the native port) is real.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from tests.node.test_node import Counter, eventually, free_ports, run

import paxon.client
from paxon.client import Client
from paxon.errors import BadRequest, SessionExpired, SessionsFull
from paxon.kv.sessions import SessionVerdict
from paxon.node import Node
from paxon.node.environment import REAL
from paxon.node.machine import SESSION_TTL_MS

START_S = 1_800_000_000.0


class FakeWall:
    def __init__(self) -> None:
        self.now_s = START_S

    def __call__(self) -> float:
        return self.now_s


class Trio:
    def __init__(self, root: Path) -> None:
        self.wall = FakeWall()
        self.peers = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(free_ports(3))}
        self.nodes = {
            node_id: Node(
                node_id,
                self.peers,
                str(root / f"n{node_id}"),
                Counter(),
                wall_time_s=self.wall,
                environment=replace(REAL, monotonic=self.wall),
            )
            for node_id in self.peers
        }

    async def __aenter__(self) -> Trio:
        for node in self.nodes.values():
            await node.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for node in self.nodes.values():
            await node.stop()

    def client(self) -> Client:
        return Client(list(self.peers.values()), timeout=10.0, cluster_id="paxon")

    def totals(self) -> set[int]:
        totals = set()
        for node in self.nodes.values():
            assert isinstance(node.machine.machine, Counter)
            totals.add(node.machine.machine.total)
        return totals

    async def settled(self) -> None:
        """Every node has applied what the leader applied."""
        leader = next(n for n in self.nodes.values() if n.is_leader)
        await eventually(
            lambda: all(
                n.machine.slot_applied == leader.machine.slot_applied for n in self.nodes.values()
            )
        )


def test_the_leader_stamps_its_wall_clock_and_every_replica_reads_it_from_the_log(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path) as trio, trio.client() as client:
            await client.submit(b"1")
            await trio.settled()
            times = {n.machine.clock.log_time_ms for n in trio.nodes.values()}
            assert times == {int(START_S * 1000)}
            trio.wall.now_s += 7.5
            await client.submit(b"1")
            await trio.settled()
            times = {n.machine.clock.log_time_ms for n in trio.nodes.values()}
            assert times == {int((START_S + 7.5) * 1000)}
            # A leader whose clock is behind cannot move log time back.
            trio.wall.now_s -= 60
            await client.submit(b"1")
            await trio.settled()
            times = {n.machine.clock.log_time_ms for n in trio.nodes.values()}
            assert times == {int((START_S + 7.5) * 1000)}
            exports = [n.machine.sessions.export() for n in trio.nodes.values()]
            assert exports[0] == exports[1] == exports[2] and len(exports[0]) == 1
            assert trio.totals() == {3}

    run(scenario)


def test_a_client_cannot_use_the_clock_client_id(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path) as trio, trio.client() as client:
            await client.submit(b"1")
            with pytest.raises(BadRequest, match="reserved for the log clock"):
                await client.submit_as(0, 2**40, b"5")
            await trio.settled()
            assert trio.totals() == {1}
            times = {n.machine.clock.log_time_ms for n in trio.nodes.values()}
            assert times == {int(START_S * 1000)}

    run(scenario)


def test_an_expired_session_refuses_its_next_command_and_a_fresh_lane_works(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with Trio(tmp_path) as trio, trio.client() as client:
            assert await client.submit_as(42, 1, b"10") == b"10"
            assert await client.submit_as(42, 1, b"10") == b"10"  # a retry: applied once
            trio.wall.now_s += SESSION_TTL_MS / 1000 + 1
            await client.submit(b"1")  # carries the stamp that expires session 42
            with pytest.raises(SessionExpired):
                await client.submit_as(42, 2, b"100")
            await trio.settled()
            assert trio.totals() == {11}
            for node in trio.nodes.values():
                assert node.machine.sessions.verdict(42, 2) is SessionVerdict.EXPIRED

    run(scenario)


def test_a_full_session_table_refuses_new_sessions_with_a_typed_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paxon.client, "SESSIONS_FULL_BACKOFF_MIN_S", 0.0)

    async def scenario() -> None:
        async with Trio(tmp_path) as trio, trio.client() as client:
            # The same rule on every node, as the replicated state requires.
            for node in trio.nodes.values():
                node.machine.sessions.max_sessions = 2
            assert await client.submit_as(7, 1, b"1") == b"1"
            assert await client.submit_as(8, 1, b"1") == b"2"
            with pytest.raises(SessionsFull, match="refused 5 times"):
                await client.submit(b"100")
            # The live sessions keep working, and their retries apply once.
            assert await client.submit_as(7, 1, b"1") == b"1"
            assert await client.submit_as(7, 2, b"1") == b"3"
            await trio.settled()
            assert trio.totals() == {3}
            # When they expire, new sessions are taken again.
            trio.wall.now_s += SESSION_TTL_MS / 1000 + 1
            # (the stamp heads the batch: it expires 7 and 8 before the command)
            assert await client.submit(b"1") == b"4"
            await trio.settled()
            assert all(len(n.machine.sessions) == 1 for n in trio.nodes.values())

    run(scenario)


def test_lanes_renew_when_idle_and_are_dropped_after_a_failure() -> None:
    now = [0.0]
    lanes = paxon.client.SessionLanes(idle_max_s=60.0, clock_s=lambda: now[0])
    first = lanes.acquire()
    assert first.seq == 1
    lanes.release(first, succeeded=True)
    again = lanes.acquire()
    assert again is first and again.seq == 2
    lanes.release(again, succeeded=False)
    fresh = lanes.acquire()
    assert fresh is not first and fresh.seq == 1 and fresh.client_id != 0
    lanes.release(fresh, succeeded=True)
    now[0] += 60.5
    renewed = lanes.acquire()
    assert renewed is not fresh and renewed.seq == 1
