"""``paxon serve --join`` on real processes: a new member asks the cluster for the
members instead of taking ``--peers``; the refusals an operator can meet.

Cost: about 15 s (one 3-node cluster, one node joining, four refused starts).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.harness import (
    HOST,
    Cluster,
    ServerNode,
    free_ports,
    own_row,
    run_serve,
    serve_argv,
)

pytestmark = pytest.mark.cluster


class JoiningNode(ServerNode):
    """A ``paxon serve`` started with ``--join ENDPOINTS`` instead of ``--peers``."""

    def __init__(self, node_id: int, root: Path, join: list[str], **kwargs: Any) -> None:
        native, http = free_ports(2)
        super().__init__(node_id, (HOST, native), (HOST, http), "", root, **kwargs)
        self.join = join

    def argv(self) -> list[str]:
        return serve_argv(
            "--id",
            str(self.node_id),
            "--data-dir",
            str(self.data_dir),
            "--listen",
            self.endpoint,
            "--http",
            f"{self.http[0]}:{self.http[1]}",
            "--join",
            ",".join(self.join),
            *self.extra_args,
        )


def paxon(cluster: Cluster, *args: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "paxon", *args, "--endpoints", ",".join(cluster.endpoints)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{args}: {result.stderr}\n{cluster.describe()}"
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_a_node_added_as_a_learner_joins_catches_up_and_is_promoted(
    cluster: Cluster, tmp_path: Path
) -> None:
    client = cluster.client()
    for i in range(30):
        client.put(f"k{i}", f"v{i}")
    newcomer = JoiningNode(4, tmp_path, cluster.endpoints[:2])
    not_yet = run_serve(*newcomer.argv()[4:])
    assert not_yet.returncode == 2, not_yet.stderr
    assert "paxon members add 4=PEER_HOST:PORT --learner" in not_yet.stderr
    assert not newcomer.data_dir.exists()  # refused before it made its data dir

    paxon(cluster, "members", "add", f"4={newcomer.endpoint}", "--learner", "--json")
    newcomer.start()
    cluster.nodes.append(newcomer)
    newcomer.wait_ready(deadline=time.monotonic() + 30)
    assert (newcomer.data_dir / "FIRST-CONFIG").exists()
    client.put("during", "learner")
    cluster.wait_caught_up(4)
    assert own_row(newcomer.status() or {})["role"] == "learner"
    paxon(cluster, "members", "promote", "4", "--json")
    client.put("after", "promote")
    reader = newcomer.client()
    for i in range(30):
        assert reader.get(f"k{i}").value == f"v{i}".encode()
    assert reader.get("after").value == b"promote"

    # Restarted with --join again: refused, it has state; without it, it recovers.
    newcomer.stop()
    again = run_serve(*newcomer.argv()[4:])
    assert again.returncode == 2 and "restart that node without --join" in again.stderr
    newcomer.join = []
    newcomer.argv = lambda: serve_argv(  # type: ignore[method-assign]
        "--id",
        "4",
        "--data-dir",
        str(newcomer.data_dir),
        "--listen",
        newcomer.endpoint,
        "--http",
        f"{HOST}:{newcomer.http[1]}",
        "--peers",
        f"4={newcomer.endpoint}",  # only itself: ignored, the data dir knows the members
    )
    newcomer.restart()
    client.put("after", "restart")
    cluster.wait_caught_up(4)
    assert newcomer.client().get("after").value == b"restart"
    assert "--peers is read only at a cluster's first start" in newcomer.log_tail(200)


def test_join_refusals(tmp_path: Path) -> None:
    listen = f"{HOST}:{free_ports(1)[0]}"
    both = run_serve(
        "--id",
        "4",
        "--data-dir",
        str(tmp_path / "a"),
        "--listen",
        listen,
        "--join",
        listen,
        "--peers",
        f"4={listen}",
    )
    assert both.returncode == 2 and "--join and --peers exclude each other" in both.stderr
    nobody = run_serve(
        "--id",
        "4",
        "--data-dir",
        str(tmp_path / "b"),
        "--listen",
        listen,
        "--join",
        f"{HOST}:{free_ports(1)[0]}",
        "--request-timeout-s",
        "2",
    )
    assert nobody.returncode == 3 and "no member answered" in nobody.stderr, nobody.stderr
