"""The liveness rules after healing (``paxon.sim.healing``) fire on a planted bug each."""

from __future__ import annotations

import pytest

from paxon.errors import Busy
from paxon.protocol.messages import ProbeReply
from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica
from paxon.sim import SimConfig
from paxon.sim.healing import settle_bound
from paxon.sim.runtime import RuntimeCluster


class DeafToHeartbeats(Replica):
    """A follower's election timer ignores its leader: it stands again and again."""

    def _follow(self, leader: int, ballot: object) -> None:
        deadline = self._election_deadline
        super()._follow(leader, ballot)  # type: ignore[arg-type]
        self._election_deadline = deadline


class GrantsNoProbe(Replica):
    """Refuses every probe: no candidate ever reaches Prepare, so nobody leads."""

    def _send(self, message: object) -> None:
        if isinstance(message, ProbeReply) and message.granted:
            message = ProbeReply(message.src, message.dst, message.ballot, False)
        super()._send(message)  # type: ignore[arg-type]


class StopsServingLate(Replica):
    """A leader refuses every command once its clock passes the heal (4 s)."""

    def propose_many(self, commands: object) -> Ready:
        if self.now > 4.0:
            raise Busy("tired")
        return super().propose_many(commands)  # type: ignore[arg-type]


_CONFIG = SimConfig(nodes=3, faults=frozenset({"partition", "crash"}))


def _rules(factory: type[Replica], seeds: range) -> set[str]:
    rules: set[str] = set()
    for seed in seeds:
        cluster = RuntimeCluster(seed, _CONFIG, replica_factory=factory)
        cluster.run()
        rules |= {violation.rule for violation in cluster.checker.violations}
    return rules


def test_the_settle_bound_fits_the_default_run() -> None:
    assert settle_bound(_CONFIG) < _CONFIG.heal_phase_s


@pytest.mark.sim
@pytest.mark.mutation
@pytest.mark.parametrize(
    ("factory", "rule"),
    [
        (DeafToHeartbeats, "quiet-stable"),
        (GrantsNoProbe, "heal-settles"),
        (StopsServingLate, "quiet-progress"),
    ],
    ids=["deaf-to-heartbeats", "grants-no-probe", "stops-serving"],
)
def test_a_cluster_that_does_not_settle_or_serve_is_named(
    factory: type[Replica], rule: str
) -> None:
    assert rule in _rules(factory, range(2))


@pytest.mark.sim
def test_the_real_replica_settles_and_serves() -> None:
    assert _rules(Replica, range(2)) == set()
