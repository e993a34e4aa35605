"""A node syncing its log from its own loop when the disk is idle
(``storage/commit.py``'s ``sync_here``, ``Node._sync_here``), run by the
simulator: swarm seeds drawing ``sync_here`` (a quarter of 0-299) play it, and
the persist-before-speak properties are checked on that path as on the other.
"""

from __future__ import annotations

import pytest

from paxon.node.node import Node
from paxon.sim import SimConfig
from paxon.sim.host import SimCommitter
from paxon.sim.runtime import RuntimeCluster
from paxon.sim.swarm import draw

SWARM = SimConfig(nodes=0, swarm=True)
SEED = 22  # the first swarm seed of 0-299 drawing sync_here


def _run(seed: int) -> RuntimeCluster:
    cluster = RuntimeCluster(seed, draw(seed, SWARM))
    cluster.run()
    return cluster


def test_a_seed_drawing_it_syncs_from_the_nodes_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    assert draw(SEED, SWARM).sync_here
    assert not draw(0, SWARM).sync_here  # pinned seeds draw it not
    synced: list[int] = []
    sync_here = SimCommitter.sync_here

    def counted(self: SimCommitter, lsn: int) -> None:
        synced.append(lsn)
        sync_here(self, lsn)

    monkeypatch.setattr(SimCommitter, "sync_here", counted)
    cluster = _run(SEED)
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    assert len(synced) > 100


def test_votes_sent_before_that_sync_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted bug: what waited for durability leaves before the sync."""

    def early(self: Node) -> None:
        lsn, self._sync_here_due = self._sync_here_due, None
        assert lsn is not None
        while self._after_persist and self._after_persist[0][0] <= lsn:
            for message in self._after_persist.popleft()[1]:
                self._send(message)
        self._committer.sync_here(lsn)

    monkeypatch.setattr(Node, "_sync_here", early)
    violations = _run(SEED).checker.violations
    assert any("durable" in str(violation) for violation in violations), violations[:3]
