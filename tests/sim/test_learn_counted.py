"""``learn-counted`` (``sim/duties.py``): an honest ``Learn`` is never counted
out of bounds. Its planted counterpart, every honest ``Learn`` counted, is
``honest-learns-counted-out-of-bounds`` in ``test_mutations.py``."""

from __future__ import annotations

import pytest

from paxon.sim import SimConfig
from paxon.sim.runtime import RuntimeCluster
from paxon.sim.swarm import draw

pytestmark = pytest.mark.sim


def test_honest_learns_are_judged_and_none_is_counted_out_of_bounds() -> None:
    cluster = RuntimeCluster(0, draw(0, SimConfig(nodes=0, swarm=True)))
    cluster.run()
    assert cluster.duties.judged["learn-counted"] > 0
    assert not cluster.checker.violations, cluster.checker.violations[:3]
