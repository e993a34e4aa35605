"""``links-follow`` (``RuntimeCluster._judge_roles``): at the heal and at the
end, each live node's transport links to exactly the peers its members, those
just gone and those it remembers removed name (``Node._transport_peers``)."""

from __future__ import annotations

import pytest

from paxon.node import Node
from paxon.sim import SimConfig, run_seed

# Membership seed 0 of the mutation budget: 3 voters and a spare, changes and loss.
_CHANGES = SimConfig(nodes=3, spares=1, faults=frozenset({"reconfig", "drop"}))


class _LinksSetOnce(Node):
    """The planted bug: the links are set at the start and never again."""

    def _set_transport_peers(self) -> None:
        return None


@pytest.mark.sim
@pytest.mark.mutation
def test_links_that_do_not_follow_the_members_are_named() -> None:
    assert run_seed(0, _CHANGES).ok
    planted = run_seed(0, _CHANGES, node_class=_LinksSetOnce)
    rules = {violation.split()[1].rstrip(":") for violation in planted.violations}
    assert "links-follow" in rules, planted.violations[:3]
