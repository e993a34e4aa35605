"""A transfer to a voter whose promise is below the reign it follows.

A leader elected on a bare majority (its Prepare lost to one voter) is heard
by that voter only through heartbeats, which do not raise a promise; with no
write since (a cluster with only readers), the promise stays below. Until
session 33 the voter refused every ``TimeoutNow`` not under its promise, so an
operator's ``transfer-leader`` to it was answered and never happened, and the
leader served on. Seed 11 of this shape builds it (operator: transfer-leader
n1 at 3.37 s; n1's promise 3.2 or 4.1 under n3's reign 5.3).
"""

from __future__ import annotations

import pytest
from tests.sim.test_mutations import _with_line_changed

from paxon.sim import SimConfig, run_seed
from paxon.sim.runtime import RuntimeCluster

pytestmark = pytest.mark.sim

# One client that only reads, no lease, lock or watch clients: nothing but the
# operator's changes is ever written, so promises move only at elections.
READERS_ONLY = SimConfig(
    nodes=3,
    spares=1,
    faults=frozenset({"reconfig", "drop"}),
    clients=1,
    readers=1,
    lease_clients=0,
    lock_clients=0,
    watch_clients=0,
)


def test_a_transfer_to_a_voter_below_the_reign_makes_it_lead() -> None:
    cluster = RuntimeCluster(11, READERS_ONLY, trace=True)
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    asked = [line for line in cluster.trace if "ask n3 to transfer-leader n1" in line]
    assert asked, "the moment moved: no transfer to n1 asked of n3"
    at = float(asked[0].split()[0])
    stood = [
        line
        for line in cluster.trace
        if "n1 follower -> preparing" in line and at <= float(line.split()[0]) < at + 0.05
    ]
    assert stood, "n1 did not stand at once"


@pytest.mark.mutation
def test_a_timeout_now_taken_only_under_the_promise_is_named() -> None:
    refusing = _with_line_changed(
        "_on_timeout_now",
        "or message.ballot != self._leader_ballot",
        "or message.ballot != self.ballot_promised",
    )
    result = run_seed(11, READERS_ONLY, replica_factory=refusing)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert rules == {"timeout-now-stands"}, result.violations[:3]
