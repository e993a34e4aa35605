"""A real cluster with peer and client TLS, as docs/security.md sets one up: HTTPS
and native clients, the CLI, and ``paxon snapshot save`` over HTTPS.

Cost: one 3-node cluster for the module, about 8 s on 2 busy cores.
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.cluster.harness import Cluster

import paxon
from paxon.security.certs import ClusterCertPaths, write_cluster_certs

pytestmark = pytest.mark.cluster


@dataclass(frozen=True)
class TlsCluster:
    cluster: Cluster
    certs: ClusterCertPaths
    tls: paxon.ClientTls  # the client "app": the CA and its own certificate

    def cli(self, *args: str, endpoint: int = 2) -> subprocess.CompletedProcess[str]:
        """``paxon ARGS`` with app's certificates from flags, through node ``endpoint`` only."""
        app = self.certs.clients["app"]
        return subprocess.run(
            [sys.executable, "-m", "paxon", *args, "--cacert", str(self.certs.ca.cert),
             "--cert", str(app.cert), "--key", str(app.key),
             "--endpoints", self.cluster.endpoints[endpoint - 1]],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCluster]:
    root = tmp_path_factory.mktemp("tls")
    certs = write_cluster_certs(root / "certs", "paxon", [1, 2, 3], clients=["app"])
    ca = str(certs.ca.cert)

    def node_args(node_id: int) -> list[str]:
        cert, key = str(certs.nodes[node_id].cert), str(certs.nodes[node_id].key)
        return ["--peer-cert", cert, "--peer-key", key, "--cert", cert, "--key", key]

    app = certs.clients["app"]
    tls = paxon.ClientTls(cacert=ca, cert=app.cert, key=app.key)
    cluster = Cluster(
        root / "cluster",
        extra_args=("--peer-ca", ca, "--client-ca", ca),
        peer_ports=True,
        node_args=node_args,
        http_tls=tls.context(),
    )
    try:
        cluster.start()  # not waiting for a leader: calls right after start-up must get through
        yield TlsCluster(cluster, certs, tls)
    finally:
        cluster.close()


def test_clients_and_peers_over_tls_end_to_end(tls_cluster: TlsCluster) -> None:
    cluster, tls = tls_cluster.cluster, tls_cluster.tls
    ca = str(tls_cluster.certs.ca.cert)
    context = tls.context()
    for node in cluster.nodes:  # HTTPS on each node; followers forward over client TLS
        connection = http.client.HTTPSConnection(*node.http, context=context, timeout=20)
        connection.request("PUT", f"/v1/kv/https-{node.node_id}", body=b"v")
        answer = connection.getresponse()
        assert answer.status == 200, answer.read()
        connection.close()
    with paxon.SyncClient(cluster.endpoints, tls=tls, timeout=20) as kv:
        assert kv.put("native", b"over tls") > 0
        assert sorted(item.key for item in kv.get_prefix("https-")) == [
            "https-1",
            "https-2",
            "https-3",
        ]
    # The CLI, through one follower only, with the certificates from flags.
    result = tls_cluster.cli("get", "native", "--json", endpoint=3)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["value"] == "over tls"
    # Without a client certificate the client port does not let it in.
    bare = paxon.ClientTls(cacert=ca)
    with (
        pytest.raises(paxon.PaxonError),
        paxon.SyncClient(cluster.endpoints, tls=bare, timeout=3) as kv,
    ):
        kv.get("native")
    with pytest.raises((ssl.SSLError, OSError)):
        plain = http.client.HTTPSConnection(*cluster.nodes[0].http, context=bare.context())
        plain.request("GET", "/v1/kv/native")
        plain.getresponse()


def test_snapshot_save_over_https(tls_cluster: TlsCluster, tmp_path: Path) -> None:
    """``snapshot save`` learns each node's HTTPS address from its native status view
    and fetches ``GET /v1/snapshot`` over HTTPS, trusting ``--cacert`` and presenting
    the client certificate (the HTTP port demands one under ``--client-ca``)."""
    cluster = tls_cluster.cluster
    leader = cluster.wait_for_leader()
    follower = next(node.node_id for node in cluster.nodes if node.node_id != leader)
    with paxon.SyncClient(cluster.endpoints, tls=tls_cluster.tls, timeout=20) as kv:
        for number in range(5):
            kv.put(f"backup/{number}", f"value {number}")
        revision = kv.put("backup/last", "before the save")
        keys = len(kv.get_prefix(""))
    backup = tmp_path / "tls.paxon"
    saved = tls_cluster.cli("snapshot", "save", str(backup), endpoint=follower)
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.startswith(f"saved {backup}: revision {revision}, {keys} keys")
    assert not Path(f"{backup}.tmp").exists()
    status = subprocess.run(
        [sys.executable, "-m", "paxon", "snapshot", "status", str(backup), "--json"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    row = json.loads(status.stdout)
    assert (row["revision"], row["keys"], row["node_id"]) == (revision, keys, follower)
    assert row["checksum_ok"] and row["cluster_id"] == "paxon"
