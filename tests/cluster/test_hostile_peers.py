"""A stranger on the network against a real cluster whose peers authenticate.

The attacker is this test process: it has no certificate from the cluster's CA
(TLS) and does not know the cluster secret. It tries what took an
unauthenticated cluster over: a peer Hello as each member id, forged Learn,
Accept, a Prepare with a huge round, a SnapshotChunk, a LearnRequest from slot
0, on the peer port and on the client port, and link hijacking in a loop, all
while a client writes. The cluster must never let it past the handshake, keep
serving, lose no acknowledged write, and stay in agreement.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from tests.cluster.harness import HOST, Cluster, http_request

from paxon.kv.codec import encode_command
from paxon.kv.model import Put
from paxon.net import encode
from paxon.net.client_messages import PROTOCOL_VERSION, Hello, PeerProof
from paxon.net.codec import decode_body
from paxon.net.peer_messages import SnapshotChunk
from paxon.protocol.messages import Accept, ChosenPrefix, Learn, LearnRequest, Prepare
from paxon.protocol.types import Ballot, Command, Entry, Value

pytestmark = pytest.mark.cluster

CLUSTER_ID = "paxon"
ROUND_MAX = 2**63 - 1
ATTACK_ROUNDS = 6
IO_TIMEOUT_S = 5.0


def _forged(src: int, dst: int) -> list[object]:
    """Every forged peer message the attacker sends to node ``dst`` posing as ``src``."""
    evil = Value((Command(9_999, 1, encode_command(Put("owned", b"by the attacker"))),))
    return [
        Learn(src, dst, (Entry(0, Ballot(ROUND_MAX, src), evil), Entry(2**62, Ballot(1, 1), evil))),
        Accept(src, dst, Ballot(ROUND_MAX, src), 1, evil, ChosenPrefix(2)),
        Prepare(src, dst, Ballot(ROUND_MAX, src), 0),
        SnapshotChunk(src, dst, 2**40, 0, b"\x93garbage", True),
        LearnRequest(src, dst, 0),
    ]


async def _exchange(
    host: str,
    port: int,
    frames: Sequence[bytes],
    context: ssl.SSLContext | None = None,
) -> tuple[list[object], str | None]:
    """Connects, sends ``frames``, reads until the node closes; the messages it sent
    back, and why the connection failed if it never got going (TLS)."""
    try:
        async with asyncio.timeout(IO_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
    except (OSError, ssl.SSLError, TimeoutError) as error:
        return [], f"{type(error).__name__}: {error}"
    received: list[object] = []
    try:
        async with asyncio.timeout(IO_TIMEOUT_S):
            for frame in frames:
                writer.write(frame)
            await writer.drain()
            while True:
                header = await reader.readexactly(4)
                (size,) = struct.unpack(">I", header)
                received.append(decode_body(await reader.readexactly(size)))
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass  # the node closed the connection: what every attack must end in
    finally:
        writer.close()
    return received, None


async def _attack(cluster: Cluster, context: Callable[[], ssl.SSLContext | None]) -> list[str]:
    """One round of every attack on every node; what the nodes answered, for the report."""
    answers: list[str] = []
    for node in cluster.nodes:
        peer_port = node.peer_listen[1] if node.peer_listen else node.listen[1]
        for claimed in (1, 2, 3):
            hello = encode(Hello(CLUSTER_ID, claimed, PROTOCOL_VERSION))
            forged = [encode(m) for m in _forged(claimed, node.node_id)]  # type: ignore[arg-type]
            proof = encode(PeerProof(b"n" * 32, b"\x00" * 32, "evil:1"))
            # On the peer port: the forged messages instead of a proof, then a wrong proof.
            for frames in ([hello, *forged], [hello, proof, *forged]):
                received, failure = await _exchange(HOST, peer_port, frames, context())
                names = [type(m).__name__ for m in received]
                assert "PeerWelcome" not in names, f"node {node.node_id} welcomed {claimed}"
                answers.append(failure or ",".join(names))
            # On the client port: posing as a client, then sending peer messages.
            if node.peer_listen:
                client_hello = encode(Hello("", 0, PROTOCOL_VERSION))
                received, _ = await _exchange(HOST, node.listen[1], [client_hello, *forged])
                # Dropped at the first peer message (the Welcome may not get out first).
                assert [type(m).__name__ for m in received] in ([], ["Welcome"])
                received, _ = await _exchange(HOST, node.listen[1], [hello])
                assert [type(m).__name__ for m in received] == ["Refused"]
    return answers


def _metric(cluster: Cluster, node_id: int, name: str) -> float:
    body = http_request(cluster.node(node_id).http, "GET", "/metrics").body.decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def _run_attacks_under_load(
    cluster: Cluster, context: Callable[[], ssl.SSLContext | None]
) -> list[str]:
    cluster.wait_for_leader()
    acknowledged: dict[str, bytes] = {}
    answers: list[str] = []
    with cluster.client() as kv:
        for attack_round in range(ATTACK_ROUNDS):
            for i in range(10):
                key, value = f"k{attack_round}-{i}", f"v{attack_round}-{i}".encode()
                kv.put(key, value)
                acknowledged[key] = value
            answers += asyncio.run(_attack(cluster, context))
        # Still serving, nothing lost, nothing forged, no ballot pushed to the end of its range.
        kv.put("after", b"the attacks")
        acknowledged["after"] = b"the attacks"
        for key, value in acknowledged.items():
            item = kv.get(key)
            assert item is not None and item.value == value, key
        assert kv.get("owned") is None
    for node in cluster.nodes:
        cluster.wait_caught_up(node.node_id)
        with node.client() as local:
            for key, value in acknowledged.items():
                item = local.get(key, serializable=True)
                assert item is not None and item.value == value, (node.node_id, key)
            assert local.get("owned", serializable=True) is None
        assert _metric(cluster, node.node_id, "paxon_ballot_round") < 1_000
        assert _metric(cluster, node.node_id, "paxon_handshakes_refused_total") > 0
    return answers


def test_without_the_cluster_secret_a_stranger_gets_nowhere(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"0123456789abcdef0123456789abcdef")
    secret.chmod(0o600)
    cluster = Cluster(tmp_path / "cluster", extra_args=("--cluster-secret-file", str(secret)))
    try:
        cluster.start()
        answers = _run_attacks_under_load(cluster, lambda: None)
        # A peer Hello gets at most a Challenge and a refusal, never a welcome.
        said = {name for answer in answers for name in answer.split(",") if name}
        assert said == {"Challenge", "Refused"}, said
        logs = "".join(node.log_tail(10_000) for node in cluster.nodes)
        assert "did not prove it holds the cluster secret" in logs
        assert "PEERS ARE NOT AUTHENTICATED" not in logs
    finally:
        cluster.close()


def test_an_unauthenticated_cluster_says_so_loudly(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "cluster", size=1)
    try:
        cluster.start()
        assert "PEERS ARE NOT AUTHENTICATED" in cluster.node(1).log_tail(10_000)
    finally:
        cluster.close()


def test_without_a_member_certificate_a_stranger_gets_nowhere(tmp_path: Path) -> None:
    from paxon.security.certs import write_cluster_certs

    certs = write_cluster_certs(tmp_path / "certs", CLUSTER_ID, [1, 2, 3], clients=["app"])
    foreign = write_cluster_certs(tmp_path / "foreign", CLUSTER_ID, [1, 2, 3])

    def node_args(node_id: int) -> list[str]:
        files = certs.nodes[node_id]
        return ["--peer-cert", str(files.cert), "--peer-key", str(files.key)]

    cluster = Cluster(
        tmp_path / "cluster",
        extra_args=("--peer-ca", str(certs.ca.cert)),
        peer_ports=True,
        node_args=node_args,
    )
    attempts = [0]

    def attacker_context() -> ssl.SSLContext:
        """In turn: no certificate; node 1's name from another CA; a real client's certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the attacker trusts anything
        kind = attempts[0] % 3
        attempts[0] += 1
        if kind == 1:
            context.load_cert_chain(foreign.nodes[1].cert, foreign.nodes[1].key)
        elif kind == 2:
            context.load_cert_chain(certs.clients["app"].cert, certs.clients["app"].key)
        return context

    try:
        cluster.start()
        answers = _run_attacks_under_load(cluster, attacker_context)
        # TLS stops the first two kinds in its handshake; a client's certificate
        # gets through TLS and is refused for not naming the node it claims.
        assert any("SSL" in answer or answer == "" for answer in answers)
        assert any("Refused" in answer for answer in answers)
        logs = "".join(node.log_tail(10_000) for node in cluster.nodes)
        assert "its certificate is for client 'app'" in logs
        assert "PEERS ARE NOT AUTHENTICATED" not in logs
    finally:
        cluster.close()
