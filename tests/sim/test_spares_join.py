"""Spares started as ``paxon serve --join`` starts a node (``SimConfig.spares_join``).

Until session 30 every simulated spare started at the run's start from
``--peers`` (the first members and itself), so the simulator never ran the
path an operator's new node takes: start only once added, from the
configuration the cluster names, and on a restart decide from the data
directory whether ``--join`` still holds (``node/join.held_state``). Swarm
seed 114 with joining spares cuts the power during n6's first start, at its
first segment's header: the directory then holds an IDENTITY and an empty
log, and the next start must join again.
"""

from __future__ import annotations

import pytest

import paxon.sim.runtime as runtime_module
from paxon.sim.config import SimConfig
from paxon.sim.runner import run_seed
from paxon.storage.fs import FileSystem, join
from paxon.storage.layout import FIRST_CONFIG_NAME, IDENTITY_NAME

JOINING = SimConfig(nodes=0, swarm=True, spares_join=True)
SEED = 114


@pytest.mark.sim
def test_a_spare_joins_once_added_and_joins_again_after_its_first_start_is_cut() -> None:
    result = run_seed(SEED, JOINING, trace=True)
    assert result.ok, result.violations
    trace = "\n".join(result.trace)
    assert "spares start with --join once added" in trace
    assert "add-learner n6 done" in trace
    assert "power of n6 fails at its first segment header's fsync" in trace
    # Its first start, then the same flags on an IDENTITY and an empty log.
    assert trace.count("n6 joins with configuration 2") == 2


def _held_state_before_session_30(data_dir: str, fs: FileSystem | None = None) -> str | None:
    """An IDENTITY alone taken for a node's state: --join ignored."""
    assert fs is not None
    for name in (IDENTITY_NAME, FIRST_CONFIG_NAME):
        if fs.exists(join(data_dir, name)):
            return name
    return None


@pytest.mark.sim
@pytest.mark.mutation
def test_a_spare_restarted_as_a_cluster_of_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted: the restart takes the IDENTITY for state, ignores --join and
    starts from --peers naming only n6. It elects itself and applies its own
    values at slots the cluster chose others for: ``agreement`` names it."""
    monkeypatch.setattr(runtime_module, "held_state", _held_state_before_session_30)
    result = run_seed(SEED, JOINING)
    assert not result.ok
    assert any(" agreement: n6 applied" in violation for violation in result.violations), (
        result.violations
    )
