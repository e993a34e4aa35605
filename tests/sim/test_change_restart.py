"""``change_restart``: a member restarted inside a change's window (chosen,
not yet in effect) from a snapshot it took there. Its planted counterpart,
the s30 sample's ``replica.py:1904`` (a member that refreshes its memory of
the removed only when its members and its newest configuration change at
once), is ``removal-forgotten-after-a-restart-in-its-window`` in
``test_mutations.py``."""

from __future__ import annotations

import dataclasses

import pytest
from tests.mutate.budget import RECONFIG_CONFIG, RESTART_CONFIG

from paxon.sim import SimConfig
from paxon.sim.change_restart import RESTART_S
from paxon.sim.runner import replay_command
from paxon.sim.runtime import RuntimeCluster

pytestmark = pytest.mark.sim


def test_members_restart_inside_the_windows_and_the_run_stays_clean() -> None:
    cluster = RuntimeCluster(0, RESTART_CONFIG, trace=True)
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    restarts = cluster.change_restarts
    assert restarts.watched >= 1 and restarts.restarted >= 1
    assert cluster.stats.faults["change-restart"] == restarts.restarted
    crashed = [line for line in cluster.trace if "between the choice of epoch" in line]
    assert len(crashed) == restarts.restarted, crashed
    # Each is started again RESTART_S later, as a service manager would.
    restarted = {
        (round(float(line.split()[0]), 6), line.split()[2])
        for line in cluster.trace
        if line.split()[1:2] == ["restart"]
    }
    for line in crashed:
        at, node = float(line.split()[0]), line.split()[3]
        assert (round(at + RESTART_S, 6), node) in restarted, line
    assert "a member restarted inside 1.00 of the changes' windows" in RESTART_CONFIG.describe()


def test_nothing_is_watched_without_a_share() -> None:
    cluster = RuntimeCluster(0, RECONFIG_CONFIG)
    cluster.run()
    assert cluster.change_restarts.watched == 0 and cluster.change_restarts.restarted == 0


def test_the_share_is_checked_and_replayed() -> None:
    with pytest.raises(ValueError, match="change_restart_share"):
        dataclasses.replace(RECONFIG_CONFIG, change_restart_share=1.5)
    assert "--change-restart 1.0" in replay_command(0, RESTART_CONFIG)
    assert "--change-restart" not in replay_command(0, SimConfig(nodes=3))
