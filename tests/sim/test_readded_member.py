"""A member removed and later added back as a learner, through a leader it never
knew, catches up (found in session 9 beyond the default seeds; issue 10).

5 nodes, 2 spares, ``drop,partition,crash,reconfig``, swarm seed 108: n2 is
removed at 1.12 s and stops at the slot where its removal takes effect (155),
as a removed node does. At 3.79 s the operator adds it back as a learner
through n7, a node added after n2 last heard anything, so n2's configurations
do not name the leader and no link joins them. Before the fix n2 asked no one
(a removed node did not) and was still at slot 155 six seconds after the heal
(1,058 chosen). Now a removed node, after a timeout without a leader, asks a
member it knows what it missed (``Replica._start_probe``): at 4.06 s n4, which
holds the change adding n2 back, answers with a snapshot at slot 1021 whose
configuration names n7; n2 links to n7, learns from it and follows it as a
learner. (Members that hold n2 in no configuration refuse its requests,
counted as ``ignored_non_member_learn_request``.) Replay:

    paxon sim --seed 108 --swarm --nodes 5 --spares 1 --faults drop,partition,crash,reconfig --trace
"""

from __future__ import annotations

import pytest

from paxon.sim import SimConfig, run_seed

READDED = SimConfig(
    nodes=5, spares=1, swarm=True, faults=frozenset({"drop", "partition", "crash", "reconfig"})
)
SEED_READDED = 108


@pytest.mark.sim
def test_a_removed_member_added_back_as_a_learner_catches_up() -> None:
    result = run_seed(SEED_READDED, READDED)
    assert result.ok, result.violations[:3]
