"""A real cluster with peer and client TLS, as docs/security.md sets one up."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from tests.cluster.harness import Cluster

import paxon
from paxon.security.certs import write_cluster_certs

pytestmark = pytest.mark.cluster


def test_clients_and_peers_over_tls_end_to_end(tmp_path: Path) -> None:
    certs = write_cluster_certs(tmp_path / "certs", "paxon", [1, 2, 3], clients=["app"])
    ca = str(certs.ca.cert)

    def node_args(node_id: int) -> list[str]:
        cert, key = str(certs.nodes[node_id].cert), str(certs.nodes[node_id].key)
        return ["--peer-cert", cert, "--peer-key", key, "--cert", cert, "--key", key]

    app = certs.clients["app"]
    tls = paxon.ClientTls(cacert=ca, cert=app.cert, key=app.key)
    cluster = Cluster(
        tmp_path / "cluster",
        extra_args=("--peer-ca", ca, "--client-ca", ca),
        peer_ports=True,
        node_args=node_args,
        http_tls=tls.context(),
    )
    try:
        cluster.start()  # not waiting for a leader: calls right after start-up must get through
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
        result = subprocess.run(
            [sys.executable, "-m", "paxon", "get", "native", "--json", "--cacert", ca,
             "--cert", str(app.cert), "--key", str(app.key),
             "--endpoints", cluster.endpoints[2]],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
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
    finally:
        cluster.close()
