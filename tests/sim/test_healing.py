"""The liveness rules after healing (``paxon.sim.healing``) fire on a planted bug each."""

from __future__ import annotations

import pytest

from paxon.errors import Busy
from paxon.protocol.messages import ProbeReply
from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import BALLOT_ZERO, Ballot
from paxon.sim import SimConfig
from paxon.sim.healing import (
    HealWatch,
    NodeState,
    change_effect_bound,
    confirm_window,
    learner_outbidding,
    settle_bound,
)
from paxon.sim.runner import resolve
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


# Swarm seed 2002105: n2, removed while it stood at ballot 7.2, is added back as
# a learner after the heal; its Nack deposes the settled leader at 7.1 (4.47 s).
OUTBID_SEED = 2002105


class StepsDownOnceLate(Replica):
    """The leader elected after the outbid (ballot round 9 and up) steps down
    once, for no reason, 100 ticks into its reign (0.7 s on this seed)."""

    stepped = False

    def tick(self, now: float) -> Ready:
        if self.role is Role.LEADER and self.ballot_own.round >= 9 and not self.stepped:
            self._reign_ticks = getattr(self, "_reign_ticks", 0) + 1
            if self._reign_ticks > 100:
                StepsDownOnceLate.stepped = True
                self._step_down(preempted=False)
        return super().tick(now)


def test_a_learner_outbids_only_with_a_promise_above_the_leaders_ballot() -> None:
    promised = {2: Ballot(7, 2), 3: Ballot(7, 1), 4: Ballot(9, 4)}
    assert learner_outbidding({2, 3}, promised, Ballot(7, 1)) == 2
    assert learner_outbidding({3}, promised, Ballot(7, 1)) is None  # equal: it accepts
    assert learner_outbidding({5}, promised, Ballot(7, 1)) is None  # not live
    assert learner_outbidding(set(), promised, Ballot(7, 1)) is None  # voters do not count


@pytest.mark.sim
def test_a_learner_added_back_with_a_higher_promise_deposes_once() -> None:
    cluster = RuntimeCluster(OUTBID_SEED, resolve(OUTBID_SEED, SimConfig(nodes=0, swarm=True)))
    cluster.run()
    assert not cluster.checker.violations, cluster.checker.violations[:3]
    assert cluster.healing.settled_at is not None and cluster.healing.settled_at > 4.47


@pytest.mark.sim
@pytest.mark.mutation
def test_a_leader_deposed_after_the_outbid_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outbid starts the rules over; it excuses nothing after them."""
    monkeypatch.setattr(StepsDownOnceLate, "stepped", False)
    cluster = RuntimeCluster(
        OUTBID_SEED,
        resolve(OUTBID_SEED, SimConfig(nodes=0, swarm=True)),
        replica_factory=StepsDownOnceLate,
    )
    cluster.run()
    rules = {violation.rule for violation in cluster.checker.violations}
    assert "quiet-stable" in rules, cluster.checker.violations[:3]


def test_a_node_that_joins_after_settling_may_follow_but_not_stand() -> None:
    """A learner added after the cluster settled becomes a follower on joining
    (swarm seed 4000160); any other change of role is still named."""
    ballot = Ballot(3, 1)
    watch = HealWatch(_CONFIG, [])
    watch.on_heal(4.0)
    states = [
        NodeState(1, Role.LEADER, ballot, ballot),
        NodeState(2, Role.FOLLOWER, BALLOT_ZERO, ballot),
    ]
    for at in (4.1, 4.2, 4.3, 4.4):
        watch.sample(states, at)
    assert watch.settled_at is not None
    for at in (4.5, 4.7, 4.9, 5.1, 5.3, 5.5, 5.7, 5.9):
        watch.on_op_completed(at)  # serving all along
    watch.on_role_change(3, Role.FOLLOWER, 4.5)  # n3 joins
    watch.finish(5.0)
    assert not watch.violations
    watch.on_role_change(3, Role.PROBING, 5.1)  # and then stands
    watch.on_role_change(2, Role.PROBING, 5.2)
    watch.finish(6.0)
    assert [v.rule for v in watch.violations] == ["quiet-stable"]
    assert "2 role changes" in watch.violations[0].detail


@pytest.mark.parametrize(
    ("promised", "names", "calm"),
    [
        (Ballot(3, 1), None, True),  # promised to the leader's ballot
        (Ballot(2, 2), 1, True),  # missed its Prepare, follows its heartbeats
        (Ballot(2, 2), None, False),  # names no leader
        (Ballot(2, 2), 3, False),  # names another
        (Ballot(4, 3), 1, False),  # promised a ballot above the leader's
    ],
)
def test_a_follower_is_under_the_leader_it_names_below_its_promise(
    promised: Ballot, names: int | None, calm: bool
) -> None:
    """Session 33, a cluster with only readers: a leader elected on a bare
    majority hears a voter that missed its Prepare answer its heartbeats
    under a lower promise (a Heartbeat does not raise it), and with no write
    the promise stays there. That voter is under the leader; one that names
    no leader, another, or promised a higher ballot is not."""
    ballot = Ballot(3, 1)
    watch = HealWatch(_CONFIG, [])
    watch.on_heal(4.0)
    states = [
        NodeState(1, Role.LEADER, ballot, ballot, 1),
        NodeState(2, Role.FOLLOWER, BALLOT_ZERO, ballot, 1),
        NodeState(3, Role.FOLLOWER, BALLOT_ZERO, promised, names),
    ]
    for at in (4.1, 4.2, 4.3, 4.4):
        watch.sample(states, at)
    assert (watch.settled_at is not None) is calm


@pytest.mark.parametrize(
    ("changes", "late_s", "named"),
    [(0, 0.01, True), (0, -0.01, False), (1, -0.01, False), (2, -0.01, False), (2, 0.01, True)],
)
def test_each_change_taking_effect_after_the_heal_extends_the_settle_bound(
    changes: int, late_s: float, named: bool
) -> None:
    """Swarm seed 7003556: a window of one slot, and two changes of 64 slots to
    bring into effect after the heal; the cluster settled 0.86 s after it,
    past the 0.745 s an election alone may take. Each change owed adds
    ``change_effect_bound``; past the sum the rule still names it."""
    config = resolve(7003556, SimConfig(nodes=0, swarm=True))
    assert config.replica.pipeline_window_slots == 1 and config.alpha == 64
    per_change = change_effect_bound(config)
    assert 0.7 < per_change < 1.0  # 0.1 s, then 64 slots of a round trip and two fsyncs
    assert 4.0 + settle_bound(config) < 4.86 < 4.0 + settle_bound(config) + 2 * per_change
    settled = 4.0 + settle_bound(config) + changes * per_change + late_s
    watch = HealWatch(config, [])
    watch.changes_after_heal = lambda: changes
    watch.on_heal(4.0)
    ballot = Ballot(22, 2)
    states = [
        NodeState(1, Role.FOLLOWER, Ballot(21, 1), ballot),
        NodeState(2, Role.LEADER, ballot, ballot),
    ]
    watch.sample(states, settled - confirm_window(config) - 0.001)
    watch.sample(states, settled)
    assert watch.settled_at == settled
    for tenth in range(1, 20):
        watch.on_op_completed(settled + tenth / 10)
    watch.finish(settled + 2.0)
    assert [v.rule for v in watch.violations] == (["heal-settles"] if named else [])
    if named and changes:
        assert f"{changes} configuration changes taking effect" in watch.violations[0].detail
