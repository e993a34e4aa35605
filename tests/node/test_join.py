"""The first configuration kept in the data directory, and ``--join`` in one process.

Real nodes over loopback TCP (``tests/node/test_node.py``'s ``LocalCluster``).
Cost: about 3 s.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests.node.test_node import Counter, LocalCluster, eventually, free_ports, run

from paxon.errors import BadRequest
from paxon.node import Node
from paxon.node import join as join_module
from paxon.node.join import check_new_data_dir, fetch_configuration
from paxon.server.config import load_serve_config
from paxon.storage import MemFileSystem, OsFileSystem
from paxon.storage.first_config import read_first_configuration


def test_the_first_start_keeps_peers_and_a_restart_ignores_other_peers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A node restarted with only itself in --peers keeps the three members it
    started with: it can never count itself a majority of one."""
    ports = free_ports(3)
    peers = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(ports)}
    data_dir = str(tmp_path / "n1")

    async def scenario() -> None:
        node = Node(1, peers, data_dir, Counter())
        await node.start()
        await node.stop()
        kept = read_first_configuration(OsFileSystem(), data_dir)
        assert kept is not None and kept.ids == {1, 2, 3}
        alone = Node(1, {1: peers[1]}, data_dir, Counter())
        with caplog.at_level(logging.WARNING):
            await alone.start()
        try:
            assert alone._replica.configuration_newest.ids == {1, 2, 3}
            assert alone._replica.configuration.quorum == 2
            assert sorted(alone.addresses) == [1, 2, 3]
        finally:
            await alone.stop()

    run(scenario)
    assert "--peers is read only at a cluster's first start" in caplog.text


def test_join_refuses_a_data_dir_that_holds_state(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    data_dir = tmp_path / "n1"
    check_new_data_dir(str(data_dir))  # missing: fine
    data_dir.mkdir()
    check_new_data_dir(str(data_dir))  # empty: fine

    async def scenario() -> None:
        node = Node(1, {1: f"127.0.0.1:{port}"}, str(data_dir), Counter())
        await node.start()
        config = node._replica.configuration_newest
        await node.stop()
        with pytest.raises(BadRequest, match="already holds node 1's state"):
            again = Node(1, {1: f"127.0.0.1:{port}"}, str(data_dir), Counter(), joined=config)
            await again.start()

    run(scenario)
    with pytest.raises(BadRequest, match="without --join"):
        check_new_data_dir(str(data_dir))


def test_a_node_not_added_is_refused_with_the_command_to_add_it_then_joins_and_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(join_module, "MEMBER_WAIT_S", 0.3)

    async def scenario() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        joiner: Node | None = None
        try:
            for _ in range(5):
                await cluster.nodes[1].submit(b"2")
            endpoints = list(cluster.peers.values())
            with pytest.raises(BadRequest, match="paxon members add 4=PEER_HOST:PORT --learner"):
                await fetch_configuration(endpoints, 4, cluster_id="paxon", timeout_s=5)
            address = f"127.0.0.1:{free_ports(1)[0]}"
            await cluster.nodes[2].change_members("add-learner", 4, address)
            configuration = await fetch_configuration(endpoints[2:], 4, timeout_s=5)
            member = configuration.member(4)
            assert member is not None and not member.voter and member.address == address
            joiner = Node(
                4,
                {m.node_id: m.address for m in configuration.members},
                str(tmp_path / "n4"),
                Counter(),
                joined=configuration,
            )
            await joiner.start()
            kept = read_first_configuration(OsFileSystem(), str(tmp_path / "n4"))
            assert kept == configuration
            await eventually(lambda: joiner is not None and joiner.machine.machine.total == 10)  # type: ignore[attr-defined]
            await cluster.nodes[1].change_members("promote", 4, "")
            assert await joiner.submit(b"1") == b"11"
        finally:
            if joiner is not None:
                await joiner.stop()
            await cluster.stop_all()

    run(scenario)


def test_join_flags() -> None:
    base = {"id": "4", "data_dir": "/d", "listen": "127.0.0.1:7004"}
    config = load_serve_config({**base, "join": "127.0.0.1:7001, 127.0.0.1:7002"}, None)
    assert config.join == ("127.0.0.1:7001", "127.0.0.1:7002") and not config.peers
    with pytest.raises(BadRequest, match="--join and --peers exclude each other"):
        load_serve_config({**base, "join": "127.0.0.1:7001", "peers": "4=127.0.0.1:7004"}, None)
    with pytest.raises(BadRequest, match="--join needs --listen"):
        load_serve_config({"id": "4", "data_dir": "/d", "join": "127.0.0.1:7001"}, None)
    with pytest.raises(BadRequest, match=r"missing --peers .* or --join"):
        load_serve_config(base, None)
    with pytest.raises(BadRequest, match="--join: bad address"):
        load_serve_config({**base, "join": "nohost"}, None)


def test_memfs_is_a_file_system_here_too() -> None:
    # The simulator keeps FIRST-CONFIG on its MemFileSystem like any other file.
    assert read_first_configuration(MemFileSystem(), "/none") is None
