"""The first configuration kept in the data directory, and ``--join`` in one process.

Real nodes over loopback TCP (``tests/node/test_node.py``'s ``LocalCluster``).
Cost: about 3 s.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import pytest
from tests.node.test_node import Counter, LocalCluster, eventually, free_ports, run

from paxon.errors import BadRequest
from paxon.net.client_messages import PeerProof, PeerWelcome
from paxon.net.codec import decode_body, encode_body
from paxon.net.peer_auth import HandshakeTranscript, proofs_match
from paxon.node import Node
from paxon.node import join as join_module
from paxon.node.join import fetch_configuration, held_state
from paxon.node.members import bind_incarnations, describe, from_description, next_configuration
from paxon.protocol.membership import Configuration, InvalidConfiguration, Member
from paxon.server.config import load_serve_config
from paxon.storage import MemFileSystem, OsFileSystem, Storage
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


def test_a_node_with_state_is_never_made_again_from_a_joined_configuration(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    data_dir = tmp_path / "n1"
    assert held_state(str(data_dir)) is None  # missing
    data_dir.mkdir()
    assert held_state(str(data_dir)) is None  # empty

    async def scenario() -> None:
        node = Node(1, {1: f"127.0.0.1:{port}"}, str(data_dir), Counter())
        await node.start()
        assert await node.submit(b"1") == b"1"  # records in its log
        config = node._replica.configuration_newest
        await node.stop()
        with pytest.raises(BadRequest, match="already holds node 1's state"):
            again = Node(1, {1: f"127.0.0.1:{port}"}, str(data_dir), Counter(), joined=config)
            await again.start()

    run(scenario)
    assert held_state(str(data_dir)) == "FIRST-CONFIG"
    (data_dir / "FIRST-CONFIG").unlink()  # as a release before FIRST-CONFIG left it
    assert held_state(str(data_dir)) == "IDENTITY"  # beside a log that holds records


def test_a_first_start_stopped_before_it_kept_its_configuration_joins_again(
    tmp_path: Path,
) -> None:
    """A ``--join`` start makes its identity, then keeps the configuration it
    joined with (FIRST-CONFIG). Killed between the two, the directory holds an
    IDENTITY and an empty log: no state (nothing promised or accepted), so the
    next start with the same flags joins again. Were the IDENTITY taken for
    state, ``paxon serve`` would ignore ``--join`` and start the node from
    ``--peers`` naming only itself: a cluster of one that elects itself and
    answers clients apart from the real cluster."""
    data_dir = tmp_path / "n4"
    Storage.open(str(data_dir), node_id=4, cluster_id="paxon").close()  # then killed
    assert (data_dir / "IDENTITY").exists() and not (data_dir / "FIRST-CONFIG").exists()
    assert held_state(str(data_dir)) is None  # --join takes effect again
    port = free_ports(1)[0]
    first = Configuration.initial({1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3"})
    joined = first.successor([*first.members, Member(4, f"127.0.0.1:{port}", False)])

    async def scenario() -> None:
        peers = {m.node_id: m.address for m in joined.members}
        node = Node(4, peers, str(data_dir), Counter(), joined=joined)
        await node.start()
        try:
            assert node._replica.configuration_newest == joined
            assert 4 not in node._replica.configuration_newest.voters
        finally:
            await node.stop()

    run(scenario)
    assert read_first_configuration(OsFileSystem(), str(data_dir)) == joined


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


# ------------------------------------------------------------------ incarnations


def test_members_carry_incarnations_and_old_encodings_still_decode() -> None:
    old = Configuration.decode(b'[2,64,[[1,"a:1",true],[2,"b:1",false]]]')
    assert old.members == (Member(1, "a:1"), Member(2, "b:1", voter=False))
    assert old.encode() == b'[2,64,[[1,"a:1",true],[2,"b:1",false]]]'  # unbound: as before
    bound = old.successor([Member(1, "a:1", True, 2**64 - 1), Member(2, "b:1", False)])
    assert Configuration.decode(bound.encode()) == bound
    assert from_description(describe(bound)) == bound
    with pytest.raises(InvalidConfiguration):
        Configuration.decode(b'[2,64,[[1,"a:1",true,-1]]]')
    with pytest.raises(InvalidConfiguration):
        Configuration.decode(b'[2,64,[[1,"a:1",true,"7"]]]')


def test_binding_keeps_members_and_roles_and_later_changes_keep_or_drop_it() -> None:
    first = Configuration.initial({1: "a:1", 2: "b:1", 3: "c:1"})
    assert bind_incarnations(first, {}) is None
    bound = bind_incarnations(first, {1: 11, 3: 33, 9: 99})
    assert bound is not None and bound.epoch == 1 and bound.voters == first.voters
    assert [m.incarnation for m in bound.members] == [11, None, 33]
    assert bind_incarnations(bound, {1: 12, 3: 34}) is None  # bound ones stay bound
    # add of a member already there (bound) is a retry; promote keeps the binding.
    assert next_configuration(bound, "add", 3, "c:1") is None
    learner = bound.successor([*bound.members, Member(4, "d:1", voter=False)])
    learner = bind_incarnations(learner, {4: 44})
    assert learner is not None
    promoted = next_configuration(learner, "promote", 4, "")
    assert promoted is not None and promoted.member(4) == Member(4, "d:1", True, 44)
    # Removed, then added again: a fresh, unbound entry.
    removed = next_configuration(promoted, "remove", 3, "")
    assert removed is not None
    again = next_configuration(removed, "add-learner", 3, "c:1")
    assert again is not None and again.member(3) == Member(3, "c:1", False, None)


def test_the_incarnations_are_in_the_secret_mode_proofs() -> None:
    secret = b"s" * 32
    transcript = HandshakeTranscript("c", 1, 2, b"a" * 32, b"d" * 32, "x:1", 5)
    tampered = dataclasses.replace(transcript, incarnation_dialer=6)
    assert not proofs_match(transcript.dialer_proof(secret), tampered.dialer_proof(secret))
    assert not proofs_match(
        transcript.acceptor_proof(secret, "y:1", 7), transcript.acceptor_proof(secret, "y:1", 8)
    )
    message = PeerProof(b"d" * 32, transcript.dialer_proof(secret), "x:1", 2**64 - 1)
    assert decode_body(encode_body(message)) == message
    welcome = PeerWelcome(2, b"", "y:1", 7)
    assert decode_body(encode_body(welcome)) == welcome


def test_a_wiped_member_back_under_its_id_is_refused_and_never_counts(tmp_path: Path) -> None:
    """The leader binds every member's incarnation; node 3's data directory wiped
    and started again under id 3 is refused by the others (metric, one warning),
    while writes go on with nodes 1 and 2."""

    async def scenario() -> None:
        cluster = LocalCluster(tmp_path)
        await cluster.start_all()
        try:
            await cluster.nodes[1].submit(b"1")
            incarnations = {
                n: node._storage.identity.incarnation for n, node in cluster.nodes.items()
            }

            def bound() -> bool:
                members = cluster.nodes[1]._replica.configuration_newest.members
                return {m.node_id: m.incarnation for m in members} == incarnations

            await eventually(bound)
            await cluster.stop(3)
            shutil.rmtree(tmp_path / "n3")
            wiped = await cluster.start(3)
            assert wiped._storage.identity.incarnation != incarnations[3]
            for _ in range(5):
                assert await cluster.nodes[1].submit(b"1")

            def refused() -> bool:
                stats = [cluster.nodes[n]._transport.stats() for n in (1, 2)]
                return sum(s.incarnations_refused for s in stats) >= 2

            await eventually(refused)
            assert not wiped._transport.reachable(1) and not wiped._transport.reachable(2)
            assert wiped.machine.machine.total == 0  # type: ignore[attr-defined]
            await eventually(lambda: cluster.total(1) == 6)  # applied, maybe after the reply
        finally:
            await cluster.stop_all()

    run(scenario)
