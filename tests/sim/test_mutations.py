"""Proof that the checks can fail: each broken core is caught within a few seeds.

Each mutant (``mutants.py``) breaks one rule of the protocol. For each, the
simulator must report a violation of the expected kind within ``MAX_SEEDS``
seeds, for 3 and for 5 nodes. The fault kinds listed are the ones that expose
the broken rule; the rest stay off so the search is short.

The property mutants go further: the violation must name the property that
states the broken rule (``paxon.sim.properties``), not only the damage done
downstream (agreement, linearizability). One of them, votes counted across
ballots, needs a vote held back across two reigns of one leader, which the
random simulator does not produce; a scripted schedule (``property_env.py``)
plays it instead.

A wiped member accepted back (``AcceptsWipedMember``: a node that never hands
its bindings to the transport) runs on the runtime engine with the "wipe"
fault: the property ``incarnation-bound`` names it at the first message the
wiped node exchanges with a member that binds its old incarnation.
"""

from __future__ import annotations

import functools
import inspect
import textwrap
from collections.abc import Callable

import pytest
from tests.mutate.budget import (
    DEPOSED_CONFIG,
    DISK_CONFIG,
    LEASE_CONFIGS,
    RECONFIG_CONFIG,
    RESTART_CONFIG,
    ROLL_CONFIG,
)
from tests.protocol.harness import Env
from tests.sim.mutants import (
    NO_COORDINATION,
    AcceptsLowerBallot,
    AcceptsWipedMember,
    AppliesBeforeChosen,
    AsksAgainAfterAnyLearn,
    BeatsOnEveryTick,
    CandidateSpeaksEarly,
    ChoosesWithoutMajority,
    ConfirmsReadsWithoutMajority,
    CountsVotesAcrossBallots,
    DropsAStaleGrantedProbe,
    ForgetsVotesAboveSnapshot,
    ForwardsPastTheBound,
    HandsToItsOwnChoice,
    HandsToTheFurthest,
    IgnoresSlotWindow,
    IgnoresStrangersAhead,
    IgnoresTimeoutNow,
    KeepsCompactedSlots,
    KeepsStandingAtAnInstall,
    LeadsWithoutMajority,
    NeverAsksANewConfiguration,
    NeverHandsOver,
    PreparesWithoutProbe,
    PromisesBeforePersist,
    PromisesThroughALease,
    RefusesBeforeTheBound,
    RefusesEveryChange,
    RefusesForAStaleLease,
    ReleasesOneFsyncEarly,
    ReportsOnlyItsChosenPrefix,
    RetriesAtOnce,
    RewritesTheChosenMark,
    SendsNoRuns,
    ServesPastTheBound,
    ServesReadsBeforeApplied,
    SkipsReproposal,
    SpeaksBeforePersist,
    StopsAskingAtAPromiser,
    StopsForwardingEarly,
    StopsLearningAtAChosenSlot,
    TrustsAnyRound,
    TrustsStrangers,
    WaitsWhenItMayNotStand,
)
from tests.sim.property_env import PropertyEnv

from paxon.protocol import membership
from paxon.protocol import replica as replica_module
from paxon.protocol.config import ReplicaConfig
from paxon.protocol.membership import ConfigHistory
from paxon.protocol.messages import ChosenPrefix, Heartbeat, HeartbeatReply, LearnRequest
from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import Ballot, Command
from paxon.sim import FAULT_KINDS, SimCluster, SimConfig, moments, run_seed
from paxon.sim.checkers import Violation
from paxon.sim.duties import DutyChecker
from paxon.sim.failfast import FailFastChecker
from paxon.sim.host import ROLL_CUT_SHORT
from paxon.sim.lagging_candidate import CONFIG as LAGGING
from paxon.sim.promptness import PromptnessChecker
from paxon.sim.runtime import RuntimeCluster
from paxon.sim.split_slot import CONFIG as SPLIT
from paxon.sim.timers import snapshot
from paxon.storage import recovery as recovery_module

MAX_SEEDS = 20

CASES = [
    # mutant, faults that expose it, rules the checker should name
    # (The properties may now name the broken rule before the damage shows.)
    (AcceptsLowerBallot, {"pause", "delay"}, {"agreement", "linearizability", "acceptor-monotone"}),
    (
        SkipsReproposal,
        set(FAULT_KINDS),
        {"agreement", "linearizability", "chosen-claim", "reproposes-highest"},
    ),
    (SpeaksBeforePersist, {"crash", "drop"}, {"agreement", "linearizability", "vote-durable"}),
    (AppliesBeforeChosen, set(FAULT_KINDS), {"apply-unchosen"}),
    # The trust bounds: the buggy member's messages get through.
    # A stranger's Prepare promised is named by promise-non-voter (membership) first.
    (TrustsStrangers, {"buggy"}, {"non-member", "promise-non-voter"}),
    (TrustsAnyRound, {"buggy"}, {"wire-bound", "invariant", "exception"}),
    (IgnoresSlotWindow, {"buggy"}, {"invariant"}),
]


def first_violation(mutant: type[Replica], nodes: int, faults: set[str]) -> tuple[int, str]:
    config = SimConfig(nodes=nodes, faults=frozenset(faults))
    for seed in range(MAX_SEEDS):
        result = run_seed(seed, config, replica_factory=mutant)
        if result.violations:
            return seed, result.violations[0]
    pytest.fail(f"{mutant.__name__} ran {MAX_SEEDS} seeds on {nodes} nodes undetected")


@pytest.mark.mutation
@pytest.mark.parametrize("nodes", [3, 5])
@pytest.mark.parametrize(
    ("mutant", "faults", "rules"), CASES, ids=[case[0].__name__ for case in CASES]
)
def test_broken_rule_is_caught(
    mutant: type[Replica], faults: set[str], rules: set[str], nodes: int
) -> None:
    _, violation = first_violation(mutant, nodes, faults)
    rule = violation.split(":")[0] if violation.startswith("lin") else violation.split()[1]
    assert rule.rstrip(":") in rules, violation


@pytest.mark.mutation
def test_correct_core_passes_the_same_seeds() -> None:
    """The same seeds and faults that catch the mutants pass with the real core."""
    for _, faults, _ in CASES:
        config = SimConfig(nodes=3, faults=frozenset(faults))
        for seed in range(3):
            assert run_seed(seed, config).ok


# ------------------------------------------------------------------ properties

NO_FAULTS: set[str] = set()

PROPERTY_CASES: list[
    tuple[type[Replica] | type[SimCluster], set[str], set[str], tuple[int, ...]]
] = [
    # mutant (of the core, or of the runtime glue), faults, the properties it must
    # break (all of them), cluster sizes
    (CandidateSpeaksEarly, NO_FAULTS, {"prepare-durable"}, (3, 5)),
    (PromisesBeforePersist, NO_FAULTS, {"promise-durable"}, (3, 5)),
    (SpeaksBeforePersist, NO_FAULTS, {"vote-durable"}, (3, 5)),
    (
        ReleasesOneFsyncEarly,
        NO_FAULTS,
        {"prepare-durable", "promise-durable", "vote-durable"},
        (3, 5),
    ),
    (ChoosesWithoutMajority, NO_FAULTS, {"chosen-claim"}, (3, 5)),
    (SkipsReproposal, set(FAULT_KINDS), {"chosen-claim"}, (3, 5)),
    (ServesReadsBeforeApplied, NO_FAULTS, {"read-applied"}, (3, 5)),
    (LeadsWithoutMajority, {"drop", "delay"}, {"lead-quorum"}, (3, 5)),
    (PreparesWithoutProbe, NO_FAULTS, {"probe-quorum"}, (3, 5)),
    (AcceptsLowerBallot, {"pause", "delay"}, {"acceptor-monotone"}, (3, 5)),
    # A deposed leader must still be asked to read: 3 nodes and these faults
    # find it within MAX_SEEDS (5 nodes do not, yet: the adversarial schedules
    # of issue 9, point 2, are meant to).
    (ConfirmsReadsWithoutMajority, {"partition", "pause", "delay"}, {"read-fresh"}, (3,)),
]


def property_rules(
    seed: int, config: SimConfig, mutant: type[Replica] | type[SimCluster]
) -> list[str]:
    if issubclass(mutant, SimCluster):
        cluster = mutant(seed, config)
    else:
        cluster = SimCluster(seed, config, replica_factory=mutant)
    # Stop half a second after the first violation (the damage may show before
    # the rule is next exercised): the rest of the seed cannot clear it.
    cluster.start()
    until = 0.0
    while cluster.run_until(until) and not cluster.checker.violations:
        until += 0.25
    cluster.run_until(until + 0.5)
    return [violation.rule for violation in cluster.checker.violations]


@pytest.mark.mutation
@pytest.mark.parametrize(
    ("mutant", "faults", "properties", "nodes"),
    [
        pytest.param(mutant, faults, properties, nodes, id=f"{mutant.__name__}-{nodes}")
        for mutant, faults, properties, sizes in PROPERTY_CASES
        for nodes in sizes
    ],
)
def test_broken_rule_is_named_by_its_property(
    mutant: type[Replica] | type[SimCluster], faults: set[str], properties: set[str], nodes: int
) -> None:
    config = SimConfig(nodes=nodes, faults=frozenset(faults))
    for seed in range(MAX_SEEDS):
        rules = property_rules(seed, config, mutant)
        if rules:
            missing = properties - set(rules)
            assert not missing, f"seed {seed}: {mutant.__name__} broke {rules}, not {missing}"
            return
    pytest.fail(f"{mutant.__name__} ran {MAX_SEEDS} seeds on {nodes} nodes undetected")


def hold_a_vote_across_two_reigns(env: PropertyEnv) -> None:
    """n1 leads under 1.1; n2's vote for slot 0 is sent but held back; n1 crashes
    before its own vote leaves, leads again under 2.1 and re-proposes slot 0,
    which nobody but itself accepts; then n2's old vote arrives."""
    env.campaign(1)
    env.stabilize()
    env.propose(1, Command(1, 1, b"a"))
    env.deliver(src=1, dst=2, kind="Accept")
    env.drop(src=1, dst=3, kind="Accept")
    env.persist(2)
    stale = env.hold(2, "Accepted")
    env.crash(1)
    env.tick(2, 0.31)  # the old leader is no longer live for n2 and n3
    env.tick(3, 0.31)
    env.campaign(1)
    env.deliver(kind="Probe")
    env.deliver(kind="ProbeReply")
    env.persist(1)
    env.deliver(src=1, kind="Prepare")
    env.persist(2)
    env.persist(3)
    env.deliver(kind="Promise")
    env.persist(1)
    env.deliver(src=1, dst=1, kind="Accepted")
    env.drop(src=1, kind="Accept")
    env.release(stale)
    env.tick(1, env.node(1).now + 0.06)  # a heartbeat announces what n1 thinks is chosen


@pytest.mark.mutation
def test_votes_counted_across_ballots_are_named_by_chosen_claim() -> None:
    correct = PropertyEnv(3)
    hold_a_vote_across_two_reigns(correct)
    assert correct.checker.violations == []
    assert correct.replica(1).slot_chosen == 0

    broken = PropertyEnv(3, CountsVotesAcrossBallots)
    hold_a_vote_across_two_reigns(broken)
    assert broken.replica(1).slot_chosen == 1  # one vote under 2.1, one under 1.1
    rules = [violation.rule for violation in broken.checker.violations]
    assert rules and set(rules) == {"chosen-claim"}, rules


# ------------------------------------------------------------------ a wiped member

# Runtime engine, 3 voters, one wiped in every seed (about 1.5 s a seed).
# No lease, lock or watch clients: the seeds below as picked, before they joined.
WIPE = SimConfig(nodes=3, faults=frozenset({"wipe", "drop"}), wipe_rate=1.0, **NO_COORDINATION)
# Cheap seeds that catch it (each of the first 20 does: see the report
# of issue 10, point 4); the correct runtime passes the same ones and, in
# these two, replaces the wiped member before the heal. (Seeds 0-19: the
# correct runtime replaces it in time in 12. Since a node keeps refusing a
# wiped member until its removal takes effect, seed 0 no longer does: the
# new incarnation waits those 64 slots, and the promotion with it.)
WIPE_SEEDS = (1, 2)


@pytest.mark.mutation
def test_a_wiped_member_accepted_back_is_named_by_incarnation_bound() -> None:
    for seed in WIPE_SEEDS:
        result = run_seed(seed, WIPE, node_class=AcceptsWipedMember)
        assert result.faults["wipe"] == 1
        rules = {violation.split()[1].rstrip(":") for violation in result.violations}
        assert "incarnation-bound" in rules, f"seed {seed}: {result.violations[:3]}"


@pytest.mark.mutation
def test_the_correct_runtime_refuses_a_wiped_member_until_it_is_replaced() -> None:
    for seed in WIPE_SEEDS:
        cluster = RuntimeCluster(seed, WIPE)
        stats = cluster.run()
        assert not cluster.checker.violations, cluster.checker.violations[:3]
        assert stats.faults["wipe"] == 1 and stats.faults["incarnation-refused"] > 0
        # Removed, added back as a learner, promoted: the newest configuration
        # binds every member to the data directory it runs on now.
        assert cluster.operator.done >= 3
        newest = cluster.checker.configs.newest_known_at(cluster.checker.configs.prefix_end)
        wiped = [host for host in cluster.hosts.values() if host.data_incarnation != host.node_id]
        assert len(wiped) == 1
        member = newest.member(wiped[0].node_id)
        assert member is not None and member.voter
        assert member.incarnation == wiped[0].data_incarnation


# Swarm seed 18 installs a snapshot on a follower that accepted slots above it
# (within 0.5 s of the run; about 1 s).
VOTES_SEED = 18


@pytest.mark.mutation
def test_votes_forgotten_at_a_snapshot_install_are_named_by_votes_held() -> None:
    result = run_seed(
        VOTES_SEED, SimConfig(nodes=0, swarm=True), replica_factory=ForgetsVotesAboveSnapshot
    )
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "votes-held" in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_chosen_mark_written_again_is_named_by_chosen_advances() -> None:
    """Swarm seed 0 restarts a node within its first 4 s (about 5 s)."""
    result = run_seed(0, SimConfig(nodes=0, swarm=True), replica_factory=RewritesTheChosenMark)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "chosen-advances" in rules, result.violations[:3]


# Promptness (paxon.sim.promptness): duties whose skipping only slows the cluster.
RECONFIG = SimConfig(nodes=3, spares=1, faults=frozenset({"reconfig", "drop"}))


@pytest.mark.mutation
def test_a_transfer_that_never_hands_over_is_named_by_transfer_sends() -> None:
    """Seed 1 of 3 voters, a spare, reconfig and loss transfers leadership
    (about 2 s)."""
    result = run_seed(1, RECONFIG, replica_factory=NeverHandsOver)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "transfer-sends" in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_walk_stopped_at_a_chosen_slot_is_named_by_runs_learned() -> None:
    """Swarm seed 3: a follower knows a slot chosen under an older ballot that
    the new leader re-proposed under its own (seed 30 showed it first, before
    lock and watch clients joined the workload, then seed 6, until a heal
    that ends a pause let the held messages in at once; about 2 s)."""
    result = run_seed(3, SimConfig(nodes=0, swarm=True), replica_factory=StopsLearningAtAChosenSlot)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "runs-learned" in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_prefix_without_ballots_is_named_by_runs_cover() -> None:
    result = run_seed(0, SimConfig(nodes=0, swarm=True), replica_factory=SendsNoRuns)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "runs-cover" in rules, result.violations[:3]


@pytest.mark.mutation
def test_phase_one_that_skips_unpromised_voters_is_named_by_config_prepare_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seed 2 of the same config: a bare election leaves the leader without a
    promise from the spare it then adds as a voter (about 2 s). The seed was
    found before the aimed unheard voter (``moments``), which would stop its
    leader at 0.8 s: off here, so the seed runs as it did."""
    monkeypatch.setattr(moments, "UNHEARD_SHARE", 0.0)
    result = run_seed(2, RECONFIG, replica_factory=StopsAskingAtAPromiser)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "config-prepare-asks" in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_history_that_counts_no_change_is_named_by_config_effect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checkers read the log's configurations with their own rule, so a
    replica whose ``ConfigHistory`` counts no change (a fresh mutation sample's
    survivor: the epoch test made ``!= newest.epoch + 0``) disagrees with them
    at the first change (about 1 s)."""
    monkeypatch.setattr(ConfigHistory, "chosen", lambda self, slot, value: None)
    result = run_seed(0, RECONFIG)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "config-effect" in rules, result.violations[:3]


@pytest.mark.mutation
def test_values_read_as_carrying_no_change_are_named_by_config_effect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The checkers find a value's configuration change with their own reading
    too (``sim/log_configs.py``), so a core whose ``change_in`` misses every
    change (its guard flipped, session 15) disagrees with them at the first."""
    # The function itself, as the flip changed it: whoever imported it sees the bug.
    monkeypatch.setattr(membership.change_in, "__code__", (lambda value: None).__code__)
    result = run_seed(0, RECONFIG)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "config-effect" in rules, result.violations[:3]


@pytest.mark.mutation
def test_accepts_sent_again_at_once_are_named_by_accept_paced() -> None:
    result = run_seed(0, SimConfig(nodes=0, swarm=True), replica_factory=RetriesAtOnce)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "accept-paced" in rules, result.violations[:3]


@pytest.mark.mutation
@pytest.mark.parametrize(
    ("mutant", "named"), [(Replica, False), (NeverAsksANewConfiguration, True)]
)
def test_a_leader_that_never_asks_a_new_configurations_voters_is_named(
    mutant: type[Replica], named: bool
) -> None:
    """Swarm seed 482 (268 until session 28; ``bare_reign``): a leader elected
    on a bare majority waits on a configuration its promises do not prepare;
    left unasked, its voters never promise, which ``config-prepare-sent``
    names (and then liveness)."""
    result = run_seed(482, SimConfig(nodes=0, swarm=True), replica_factory=mutant)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert ("config-prepare-sent" in rules) is named, result.violations[:3]
    if not named:
        assert not result.violations, result.violations[:3]


@pytest.mark.mutation
def test_promises_that_report_only_the_chosen_prefix_are_named_by_promise_reports() -> None:
    result = run_seed(0, SimConfig(nodes=0, swarm=True), replica_factory=ReportsOnlyItsChosenPrefix)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "promise-reports" in rules, result.violations[:3]


# Failing fast (paxon.sim.failfast): the serving bounds, judged from what each
# replica heard and when. Swarm seeds, each within its first few seconds: seed 3
# cuts a leader off from its majority while clients still reach it, and has a
# leader's majority answer later than half the bound (seed 1 did, until the
# swarm drew removal cuts in session 28); seed 0 has a follower
# miss its leader's heartbeats for longer than half the bound, and than the bound.
SERVING_CASES = [
    (ServesPastTheBound, 3, "serve-bound"),
    (RefusesBeforeTheBound, 3, "serve-heard"),
    (ForwardsPastTheBound, 0, "forward-bound"),
    (StopsForwardingEarly, 0, "forward-heard"),
]


@pytest.mark.mutation
@pytest.mark.parametrize(
    ("mutant", "seed", "rule"), SERVING_CASES, ids=[case[0].__name__ for case in SERVING_CASES]
)
def test_a_serving_bound_broken_is_named(mutant: type[Replica], seed: int, rule: str) -> None:
    result = run_seed(seed, SimConfig(nodes=0, swarm=True), replica_factory=mutant)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert rule in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_learn_answered_by_another_request_at_once_is_named_by_learn_paced() -> None:
    result = run_seed(0, SimConfig(nodes=0, swarm=True), replica_factory=AsksAgainAfterAnyLearn)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "learn-paced" in rules, result.violations[:3]


# The next two rules state duties whose moment no seed tried so far reaches
# (s14 rows 23 and 14: a member behind a leader it does not know; a transfer
# without a target while a voter went unheard): their checks are driven here
# call by call, as a runtime reports them.


@pytest.mark.mutation
@pytest.mark.parametrize(("mutant", "named"), [(Replica, False), (IgnoresStrangersAhead, True)])
def test_a_node_that_asks_nobody_when_a_stranger_is_ahead_is_named_by_stranger_asks(
    mutant: type[Replica], named: bool
) -> None:
    env = Env(3, replica_factory=mutant)
    replica = env.replica(1)
    # Node 4 leads a configuration node 1 never heard of, 5 slots ahead of it.
    heartbeat = Heartbeat(4, 1, Ballot(3, 4), ChosenPrefix(5), 0)
    ready = replica.step(heartbeat)
    violations: list[Violation] = []
    PromptnessChecker(violations).on_call(1, replica, "step", (heartbeat,), ready, 0.0)
    asked = [m.dst for m in ready.messages if isinstance(m, LearnRequest)]
    assert (asked == []) is named
    assert ["stranger-asks" in str(v) for v in violations] == ([True] if named else []), violations


@pytest.mark.mutation
@pytest.mark.parametrize(("mutant", "named"), [(Replica, False), (HandsToTheFurthest, True)])
def test_a_transfer_to_a_voter_unheard_lately_is_named_by_transfer_recent(
    mutant: type[Replica], named: bool
) -> None:
    env = Env(3, replica_factory=mutant)
    env.campaign(1)
    env.stabilize()
    env.propose(1, Command(1, 1, b"x"))
    env.stabilize()
    leader = env.replica(1)
    assert leader.role is Role.LEADER and leader.slot_chosen > 0
    checker = FailFastChecker(violations := [])
    ballot, start = leader.ballot_own, leader.now

    def call(name: str, args: tuple[object, ...], ready: Ready) -> None:
        checker.on_call(1, leader, name, args, ready, leader.now)

    call("tick", (), leader.tick(start))  # the reign begins: every member heard now
    # Node 3 says it is furthest along, then falls silent; node 2 lags but answers.
    reply = HeartbeatReply(3, 1, ballot, leader.slot_chosen, 0)
    call("step", (reply,), leader.step(reply))
    timing = leader.config
    later = start + (timing.election_timeout_min_s + timing.election_timeout_max_s) / 2
    call("tick", (), leader.tick(later))
    reply = HeartbeatReply(2, 1, ballot, 0, 0)
    call("step", (reply,), leader.step(reply))
    call("transfer_leadership", (), leader.transfer_leadership())
    assert leader.transferring_to == (3 if named else 2)
    assert ["transfer-recent" in str(v) for v in violations] == ([True] if named else [])


@pytest.mark.sim
@pytest.mark.mutation
@pytest.mark.parametrize(("mutant", "named"), [(Replica, False), (HandsToTheFurthest, True)])
def test_the_aimed_unheard_voter_builds_transfer_recents_moment(
    mutant: type[Replica], named: bool
) -> None:
    """Membership-changes seed 0 (``moments.UnheardMoment``): the leader's
    clients are cut off, then the voter it would hand to by slot alone; once
    that voter went unheard past the bound, the leader is stopped gracefully
    and must hand to the voter it heard (s14 row 14's moment)."""
    result = run_seed(0, RECONFIG, replica_factory=mutant, trace=True)
    aimed = [line for line in result.trace if "aimed: an unheard voter" in line]
    assert len(aimed) == 2, aimed  # the clients' cut, then the voter's
    assert any("(a graceful restart)" in line for line in result.trace)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert rules == ({"transfer-recent"} if named else set()), result.violations[:3]


def _with_line_changed(name: str, right: str, wrong: str) -> type[Replica]:
    """``Replica`` with one line of its method (or property) ``name`` changed."""
    found = vars(Replica)[name]
    function = found.fget if isinstance(found, property) else found
    source = textwrap.dedent(inspect.getsource(function))
    assert source.count(right) == 1
    namespace = dict(vars(replica_module))
    exec(source.replace("@property\n", "").replace(right, wrong), namespace)
    changed = namespace[name]
    planted = property(changed) if isinstance(found, property) else changed
    return type(f"Changed_{name}", (Replica,), {name: planted})


def _leases_while_removed() -> type[Replica]:
    """``Replica`` whose lease holds though its removal is chosen (the refusal
    of ``lease_holds`` planted away, as the lease-removal aim found unjudged)."""
    return _with_line_changed(
        "lease_holds",
        "return False  # being removed: voters may stand while they hear us",
        "voter_since = 0 if voter_since is None else voter_since",
    )


@pytest.mark.mutation
def test_a_lease_read_served_while_being_removed_is_named_by_lease_voter() -> None:
    """Swarm seed 230 (``lease_removal``): a leader whose own removal is chosen
    keeps serving reads; its lease no longer holds, which only ``lease-voter``
    names (the window is too short for a new voter to stand)."""
    result = run_seed(230, SimConfig(nodes=0, swarm=True), replica_factory=_leases_while_removed())
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "lease-voter" in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_prober_that_installs_and_keeps_standing_is_named_by_install_steps_down() -> None:
    """Swarm seed 91 (``stalled_chunk``): a snapshot's last chunk reaches its
    receiver while it probes; a core that does not step down there is named."""
    result = run_seed(91, SimConfig(nodes=0, swarm=True), replica_factory=KeepsStandingAtAnInstall)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "install-steps-down" in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_follower_that_ignores_its_leaders_hand_over_is_named_by_timeout_now_stands() -> None:
    """Swarm seed 24 (1 until session 28): a leader hands leadership over
    (``TimeoutNow``); a core whose
    follower does not stand at once is named, where no other rule was (the
    transfer falls back to an election timeout, s14 sample rows 19 and 20)."""
    result = run_seed(24, SimConfig(nodes=0, swarm=True), replica_factory=IgnoresTimeoutNow)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "timeout-now-stands" in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_node_that_may_not_stand_and_never_asks_is_named_by_nonvoter_asks() -> None:
    """Swarm seed 35 (1 until session 28): a learner or removed node hears no
    leader for a timeout; a
    core that only restarts its timer there, and asks no member for the log,
    is named (the flip of the ask's one-way guard survived every rule before)."""
    result = run_seed(35, SimConfig(nodes=0, swarm=True), replica_factory=WaitsWhenItMayNotStand)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "nonvoter-asks" in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_prober_that_drops_a_granted_probe_is_named_by_probe_prepares() -> None:
    """Swarm seed 0: a prober is granted a majority after its probed ballot went
    stale (it saw a higher round meanwhile); a core that steps down there,
    instead of preparing under a fresh ballot, is named."""
    result = run_seed(0, SimConfig(nodes=0, swarm=True), replica_factory=DropsAStaleGrantedProbe)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "probe-prepares" in rules, result.violations[:3]


@pytest.mark.mutation
def test_heartbeats_on_every_tick_are_named_by_heartbeat_paced() -> None:
    """Swarm seed 0: a leader that broadcasts on every tick, not once per
    ``heartbeat_interval_s``, is named (its guard flipped survived every rule)."""
    result = run_seed(0, SimConfig(nodes=0, swarm=True), replica_factory=BeatsOnEveryTick)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "heartbeat-paced" in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_leader_that_refuses_every_change_is_named_by_change_refused() -> None:
    """Swarm seed 0: the leader's first change (binding its members'
    incarnations) is refused ``Busy`` with none on its way; the operator and
    the leader's duties take a refusal as a reason to try later, so only this
    rule names it."""
    result = run_seed(0, SimConfig(nodes=0, swarm=True), replica_factory=RefusesEveryChange)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert rules == {"change-refused"}, result.violations[:3]


@pytest.mark.mutation
def test_a_transfer_to_another_than_the_one_named_is_named_by_transfer_refused() -> None:
    """Membership-changes seed 1: the operator's ``transfer-leader`` names a
    voter; a core that hands to the one it would pick itself is named."""
    result = run_seed(1, RECONFIG, replica_factory=HandsToItsOwnChoice)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "transfer-refused" in rules, result.violations[:3]


def _change_recovery_line(
    monkeypatch: pytest.MonkeyPatch, name: str, right: str, wrong: str
) -> None:
    """Give ``storage/recovery.py``'s function ``name`` one line changed, for
    this test only (recovery runs in this process)."""
    function = getattr(recovery_module, name)
    source = textwrap.dedent(inspect.getsource(function))
    assert source.count(right) == 1
    namespace = dict(vars(recovery_module))
    exec(source.replace(right, wrong), namespace)
    monkeypatch.setattr(function, "__code__", namespace[name].__code__)


@pytest.mark.mutation
def test_a_snapshot_header_naming_a_later_snapshot_is_named_by_recovery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Swarm seed 174 lands the newest snapshot's head on an older snapshot
    (``strike_snapshot_head_misdirected``). Recovery that refuses a header
    naming another file only when it names an earlier one (the check's ``!=``
    made ``<``, row 41 of the s14 sample) takes the older file for the
    newer snapshot; the run must fail."""
    _change_recovery_line(
        monkeypatch,
        "_inspect_snapshots",
        "if (meta.lsn, meta.slot) != (lsn, slot):",
        "if (meta.lsn, meta.slot) < (lsn, slot):",
    )
    result = run_seed(174, SimConfig(nodes=0, swarm=True))
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "recovery" in rules, result.violations[:3]


_TRANSFERS_WITHOUT_LIMIT = _with_line_changed(
    "transfer_leadership",
    "self._transfer_until = self._now + self.config.election_timeout_max_s",
    "self._transfer_until = self._now / self.config.election_timeout_max_s",
)


@pytest.mark.mutation
@pytest.mark.parametrize(("mutant", "named"), [(Replica, False), (_TRANSFERS_WITHOUT_LIMIT, True)])
def test_a_transfer_that_outruns_its_limit_is_named_by_transfer_limit(
    mutant: type[Replica], named: bool
) -> None:
    """A leader asked to hand over to a voter cut off from it waits for that
    voter at most ``election_timeout_max_s``, then serves on; a limit read as
    ``now / election_timeout_max_s`` (session 24's sample, ``replica.py:558``)
    holds its commands ``Busy`` until the target comes back. No seed of the
    budget runs a transfer that long, so the call is driven here as a runtime
    reports it: the leader ticks every heartbeat interval for twice the limit,
    hearing its other follower."""
    env = Env(3, replica_factory=mutant)
    env.campaign(1)
    env.stabilize()
    leader = env.replica(1)
    assert leader.role is Role.LEADER
    config = leader.config
    # Lead for 3 s first: the wrong limit (3 s / 0.6 s) then lies past the test.
    while leader.now < 3.0:
        env.tick(1, leader.now + config.heartbeat_interval_s)
        env.stabilize()
    env.partition([[1, 2], [3]])
    violations: list[Violation] = []
    checker = PromptnessChecker(violations)
    readies: list[Ready] = []

    def reported(call: str, args: tuple[object, ...], run: Callable[[], Ready]) -> None:
        def call_once() -> Ready:
            readies.append(run())
            return readies[-1]

        env._perform(1, call_once)
        checker.on_call(1, leader, call, args, readies[-1], leader.now)
        env.stabilize()

    reported("transfer_leadership", (3,), lambda: leader.transfer_leadership(3))
    assert leader.transferring_to == 3
    now = leader.now
    end = now + 2 * config.election_timeout_max_s
    while now < end and leader.transferring_to:
        now += config.heartbeat_interval_s
        env.node(1).now = now
        reported("tick", (now,), functools.partial(leader.tick, now))
    assert leader.role is Role.LEADER
    assert (leader.transferring_to == 3) is named
    assert ["transfer-limit" in str(v) for v in violations] == ([True] if named else []), violations


LEASES_TWICE_AS_LONG = _with_line_changed(
    "lease_holds",
    "self._now < sent_at + self.config.lease_s",
    "self._now < sent_at + 2 * self.config.lease_s",
)
REFUSES_AT_ITS_PROMISE = _with_line_changed(
    "_on_prepare",
    "if message.ballot > self.ballot_promised and self._keeps_a_lease(",
    "if message.ballot >= self.ballot_promised and self._keeps_a_lease(",
)
# s16 row 9: the runtime always passes its clock, so no read is ever answered
# from the lease: every read costs a round.
NEVER_USES_ITS_LEASE = _with_line_changed(
    "read_index",
    "lease_clock = now is not None and self.config.lease_reads",
    "lease_clock = now is None and self.config.lease_reads",
)


@pytest.mark.mutation
@pytest.mark.parametrize(
    ("factory", "nodes", "seed", "rule"),
    [
        (PromisesThroughALease, 5, 5, "lease-promise"),
        (REFUSES_AT_ITS_PROMISE, 3, 94, "lease-refused"),
        (RefusesForAStaleLease, 5, 0, "probe-denied"),
        (NEVER_USES_ITS_LEASE, 3, 0, "lease-used"),
    ],
    ids=[
        "promises-through-a-lease",
        "refuses-at-its-promise",
        "refuses-for-a-stale-lease",
        "never-uses-its-lease",
    ],
)
def test_each_broken_half_of_the_lease_is_named(
    factory: type[Replica], nodes: int, seed: int, rule: str
) -> None:
    """Lease reads, every fault kind (``tests/mutate/budget.py``'s lease seeds):
    an acceptor that keeps no lease, one that refuses a Prepare at its promise,
    one that keeps the lease of a leader it no longer hears, a leader that
    never answers from its lease, each named by the rule of
    ``sim/lease_rules.py`` that states that half. The refusal at the promise
    is named only outside the budget's eight seeds since session 23's client
    change moved the schedules (3 nodes, seed 94). A lease too long is the
    deposed group's (below)."""
    result = run_seed(seed, SimConfig(nodes=nodes, lease_reads=True), replica_factory=factory)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert rule in rules, result.violations[:3]


def _lease_to_the_election_timeout(config: ReplicaConfig) -> float:
    """The s21 sample's ``config.py:84``: the lease divided by ``1 - rho``,
    not ``1 + rho``, so it runs to ``election_timeout_min_s``, past what the
    drift bound allows."""
    rho = config.clock_drift_max
    return config.election_timeout_min_s * (1 - rho) / (1 - rho)


_BYTES_ONLY_AT_THE_LIMIT = _with_line_changed(
    "_on_learn_request",
    "if entries and size > self.config.learn_max_bytes:",
    "if entries and size == self.config.learn_max_bytes:",
)


@pytest.mark.mutation
@pytest.mark.parametrize(
    ("factory", "lease_s", "seed", "rule"),
    [
        (LEASES_TWICE_AS_LONG, None, 1, "lease-bound"),
        (Replica, _lease_to_the_election_timeout, 1, "lease-bound"),
        (_BYTES_ONLY_AT_THE_LIMIT, None, 0, "learn-bound"),
    ],
    ids=["leases-twice-as-long", "lease-past-the-drift-bound", "learn-page-past-its-bytes"],
)
def test_a_deposed_leader_keeping_its_reader_reads_the_far_end_of_its_lease(
    monkeypatch: pytest.MonkeyPatch,
    factory: type[Replica],
    lease_s: Callable[[ReplicaConfig], float] | None,
    seed: int,
    rule: str,
) -> None:
    """The budget's deposed group (``DEPOSED_CONFIG``): a leader cut off from
    its peers and its writers reads on for its reader through the last tenth
    of its lease, where a lease twice as long (seed 99 of the lease group
    before; no lease seed of 0-7 since session 23) or one past the drift bound
    (the s21 sample's ``config.py:84``, which no budget seed named in session
    23) still answers, and ``lease-bound`` names it; the cut-off nodes then
    learn in pages of 64 bytes, and a page cut only when it meets the limit
    exactly (its ``replica.py:1172``, left to chance before) is named by
    ``learn-bound``. The right core is
    clean on these seeds (``test_the_deposed_groups_seeds_are_clean``)."""
    if lease_s is not None:
        monkeypatch.setattr(ReplicaConfig, "lease_s", property(lease_s))
    result = run_seed(seed, DEPOSED_CONFIG, replica_factory=factory)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert rule in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_recovery_that_stops_at_a_damaged_newest_snapshot_is_named_on_struck_disks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The budget's disk group (``DISK_CONFIG``), seed 0: a crash strikes a disk
    holding two snapshots, the newest one damaged. Recovery that stops there
    instead of falling back to the one before it (``continue`` made ``break``,
    the s24 sample's ``recovery.py:343``) refuses a disk it can start from;
    the run must fail."""
    _change_recovery_line(monkeypatch, "_choose_snapshot", "    continue\n", "    break\n")
    result = run_seed(0, DISK_CONFIG)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "recovery" in rules, result.violations[:3]


@pytest.mark.mutation
def test_a_transfer_without_limit_is_named_on_struck_disks() -> None:
    """The disk group, seed 3: a transfer whose target crashed runs past its
    limit; ``transfer-limit`` names the limit read as ``now / max`` (the s24
    sample's ``replica.py:558``)."""
    result = run_seed(3, DISK_CONFIG, replica_factory=_TRANSFERS_WITHOUT_LIMIT)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "transfer-limit" in rules, result.violations[:3]


@pytest.mark.mutation
@pytest.mark.parametrize("seed", [0, 3])
def test_the_disk_groups_seeds_are_clean(seed: int) -> None:
    assert run_seed(seed, DISK_CONFIG).violations == []


@pytest.mark.mutation
@pytest.mark.parametrize("seed", [3, 5])
def test_a_recovery_that_refuses_a_cut_first_roll_over_is_named_on_cut_roll_overs(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """The budget's roll group (``ROLL_CONFIG``): the power fails between a new
    segment made durable and the old one's seal, while just the two are live.
    Recovery that undoes such a cut only with three segments or more (the s24
    sample's ``recovery.py:381``, ``>= 2`` made ``>= 3``) refuses a disk it
    can start from; the run must fail. No budget seed cut a roll-over there
    before session 25."""
    _change_recovery_line(
        monkeypatch, "_check_chain", "if len(scans) >= 2 and", "if len(scans) >= 3 and"
    )
    result = run_seed(seed, ROLL_CONFIG)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert "recovery" in rules, result.violations[:3]


@pytest.mark.mutation
@pytest.mark.parametrize("seed", [3, 5])
def test_the_roll_groups_seeds_are_clean(seed: int) -> None:
    result = run_seed(seed, ROLL_CONFIG)
    assert result.violations == []
    assert result.faults.get(f"crashpoint: {ROLL_CUT_SHORT}", 0) > 0


_LEASE_THROUGH_A_FORFEIT = _with_line_changed(
    "lease_holds",
    "        or self._transfer_to is not None\n    ):\n        return False",
    "        or self._transfer_to is not None\n    ):\n        return True",
)


@pytest.mark.mutation
@pytest.mark.parametrize(("mutant", "named"), [(Replica, False), (_LEASE_THROUGH_A_FORFEIT, True)])
def test_a_lease_read_while_handing_over_is_named_by_lease_forfeit(
    mutant: type[Replica], named: bool
) -> None:
    """Lease seed 48 (3 nodes; 20 until session 26's refused prober moved the
    schedules): a leader hands over while the clients read on. A
    ``lease_holds`` that answers ``True`` where it refuses (a leader handing
    over, or one that sent ``TimeoutNow``; session 24's sample,
    ``replica.py:421``) answers from the lease there, and only
    ``lease-forfeit`` names it; the right core is clean."""
    result = run_seed(48, SimConfig(nodes=3, lease_reads=True), replica_factory=mutant)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert rules == ({"lease-forfeit"} if named else set()), result.violations[:3]


@pytest.mark.mutation
@pytest.mark.parametrize("seed", [0, 1])
def test_the_deposed_groups_seeds_are_clean(seed: int) -> None:
    assert run_seed(seed, DEPOSED_CONFIG).violations == []


@pytest.mark.mutation
@pytest.mark.parametrize(("seed", "config"), [(170, SimConfig(nodes=0, swarm=True)), (0, SPLIT)])
def test_a_leader_weighing_the_lowest_ballot_first_is_named_by_reproposes_highest(
    seed: int, config: SimConfig
) -> None:
    """A core that keeps the lowest-ballot report (mutant ``replica.py:911`` of
    the s16 sample) re-proposes it, and ``reproposes-highest`` names it before
    agreement breaks: on swarm seed 170, where two promises report different
    values at one slot (72 was, until session 23's client change moved the
    schedules), and on the first seed of ``split_slot``, which builds that
    moment."""
    planted = _with_line_changed(
        "_on_promise",
        "if best is None or entry.ballot > best.ballot:",
        "if best is None or entry.ballot < best.ballot:",
    )
    result = run_seed(seed, config, replica_factory=planted)
    rules = [violation.split()[1].rstrip(":") for violation in result.violations]
    assert rules and rules[0] == "reproposes-highest", result.violations[:3]


_LEADS_ON_UNDER_A_HIGHER_HEARTBEAT = _with_line_changed(
    "_follow",
    "elif self.role is not Role.FOLLOWER and ballot > self.ballot_own:",
    "elif self.role is not Role.FOLLOWER and ballot < self.ballot_own:",
)


@pytest.mark.mutation
@pytest.mark.parametrize(
    ("mutant", "named"), [(Replica, False), (_LEADS_ON_UNDER_A_HIGHER_HEARTBEAT, True)]
)
def test_a_leader_that_answers_a_higher_heartbeat_and_leads_on_is_named_by_yields_to_higher(
    mutant: type[Replica], named: bool
) -> None:
    """A deposed leader that missed its successor's ``Prepare`` and hears its
    ``Heartbeat`` first answers it; a core whose ``_follow`` steps down only for
    a lower ballot (mutant ``replica.py:1540`` of the s16 sample, row 32) leads
    on. Swarm seeds seldom build the moment (the Prepare lost, a Heartbeat
    before any Accept: 97 and 100 of 0-119; membership-changes seed 0 does,
    after a transfer), so the rule itself is pinned here, the call driven as a
    runtime reports it."""
    env = Env(3, replica_factory=mutant)
    env.campaign(1)
    env.stabilize()
    leader = env.replica(1)
    assert leader.role is Role.LEADER
    higher = Ballot(leader.ballot_own.round + 1, 2)
    heartbeat = Heartbeat(2, 1, higher, ChosenPrefix(leader.slot_chosen), 0)
    before = snapshot(leader, "step", (heartbeat,))
    ready = leader.step(heartbeat)
    assert any(isinstance(m, HeartbeatReply) for m in ready.messages)
    violations: list[Violation] = []
    DutyChecker(violations).on_call(1, leader, "step", (heartbeat,), before, ready, leader.now)
    assert (leader.role is Role.LEADER) is named
    assert ["yields-to-higher" in str(v) for v in violations] == ([True] if named else [])


# One line of the core changed, and the rule that must name it on a swarm seed:
# (id, method, right, wrong, seed, rule, named by that rule alone).
LINE_CHANGES = [
    # s24 row replica.py:1400: a new leader with re-proposals to make and no
    # command queued holds them until a command arrives (swarm seed 7: s0 to
    # s11 reported; the steady load of the budget's clients hid it before).
    (
        "reproposals-held-for-a-command",
        "_flush_queue",
        "if slot >= self._fill_end and not self._queue",
        "if slot != self._fill_end and not self._queue",
        7,
        "reproposes-at-once",
        True,
    ),
    # s24 row replica.py:728: the dashboard's log view looks for held slots up
    # to slot_chosen * slots_ahead_max, so a follower that voted for slots
    # before it knew any chosen shows none of them (swarm seed 13).
    (
        "log-view-misses-the-slots-held-past-the-prefix",
        "recent_slots",
        "range(top, self.slot_chosen + self.config.slots_ahead_max)",
        "range(top, self.slot_chosen * self.config.slots_ahead_max)",
        13,
        "dashboard-truthful",
        True,
    ),
    # s21 row 19: a prober whose probed ballot still stands prepares under a
    # fresh one anyway (and keeps a stale one): a higher round for nothing,
    # which probe-prepares accepted until session 22 held it to the ballot.
    (
        "prepares-under-a-fresh-ballot",
        "_start_prepare",
        "if not (probed > self.ballot_promised and probed.round >= self._round_seen):",
        "if not (probed > self.ballot_promised and probed.round < self._round_seen):",
        0,
        "probe-prepares",
        True,
    ),
    # s21 row 18: a Learn page stops after its first entry whenever the payload
    # fits, so a lagging node catches up one slot per ask (session 22's
    # learn-full; judged speed-only before it).
    (
        "learn-pages-of-one",
        "_on_learn_request",
        "if entries and size > self.config.learn_max_bytes:",
        "if entries and size <= self.config.learn_max_bytes:",
        0,
        "learn-full",
        True,
    ),
    # s18 rows 11 and 5: the dashboard's log view (a `# sim: unreachable`
    # accessor until session 19) starting far past its top, so it shows
    # nothing, or capped at 65 slots instead of the 64 documented.
    (
        "log-view-starts-past-its-top",
        "recent_slots",
        "range(max(self.log_start, top - count), top)",
        "range(max(self.log_start, top * count), top)",
        0,
        "dashboard-truthful",
        True,
    ),
    (
        "log-view-shows-65-slots",
        "recent_slots",
        "count = max(0, min(count, RECENT_SLOTS_MAX))",
        "count = max(0, min(count, 65))",
        2,
        "dashboard-truthful",
        True,
    ),
    # s21: a hole shown with a command in it.
    (
        "log-view-shows-a-command-in-a-hole",
        "recent_slots",
        "views.append(SlotView(slot, None, False, False, 0))",
        "views.append(SlotView(slot, None, False, False, 1))",
        0,
        "dashboard-truthful",
        True,
    ),
    # s18 row 10: asked for no slot, the view shows one.
    (
        "log-view-shows-one-when-asked-for-none",
        "recent_slots",
        "count = max(0, min(count, RECENT_SLOTS_MAX))",
        "count = max(1, min(count, RECENT_SLOTS_MAX))",
        0,
        "dashboard-truthful",
        True,
    ),
    # s18 rows 13 and 6: what the core tells readiness (a `# sim: unreachable`
    # accessor until session 19): a leader counting itself out of the majority
    # it needs, and a prefix heard that starts at slot 1.
    (
        "leader-contact-needs-one-more",
        "leader_contact_at",
        "need = self.quorum - (1 if",
        "need = self.quorum * (1 if",
        0,
        "readiness-contact",
        True,
    ),
    (
        "prefix-heard-starts-at-one",
        "__init__",
        "self._slot_chosen_heard: Slot = 0",
        "self._slot_chosen_heard: Slot = 1",
        0,
        "readiness-behind",
        True,
    ),
    # s21: a follower that sends clients nowhere while it follows a leader.
    (
        "hint-forgets-the-leader",
        "leader_hint",
        "if self.leader_id is None or self.leader_id",
        "if self.leader_id is not None or self.leader_id",
        0,
        "readiness-hint",
        True,
    ),
    # s18 row 7: a follower that says it serves (`serving`, read by the
    # runtime's fail-fast); a leader that says it does not while it heard a
    # majority within the bound, and one that says so without a majority.
    (
        "serving-off-a-leader",
        "serving",
        "return False",
        "return True",
        0,
        "readiness-serving",
        True,
    ),
    (
        "serving-ends-at-half-the-bound",
        "serving",
        "recent = self._now - self.config.election_timeout_min_s",
        "recent = self._now - self.config.election_timeout_min_s / 2",
        3,  # 1 until the swarm drew removal cuts (session 28)
        "readiness-serving",
        False,
    ),
    (
        "serving-without-a-majority",
        "serving",
        "return self._has_quorums_ahead(heard)",
        "return True",
        1,
        "readiness-serving",
        False,
    ),
    # The unmarked flips' survivor replica.py:1189: a learned entry held with
    # the same value writes a promise of its ballot when it does not raise the
    # promise (and none when it does): an fsync for nothing.
    (
        "learned-entry-rewrites-the-promise",
        "_on_learn",
        "if entry.ballot > self.ballot_promised:\n"
        "                self._raise_promise(entry.ballot)\n                self._persist(",
        "if not (entry.ballot > self.ballot_promised):\n"
        "                self._raise_promise(entry.ballot)\n                self._persist(",
        5,
        "promise-raises",
        True,
    ),
    # s18 row 21: the chosen prefix advances without its ChosenRecord, so a
    # restart knows none of it and must learn it again.
    (
        "chosen-prefix-never-recorded",
        "_advance_chosen",
        "persist: bool = True",
        "persist: bool = False",
        0,
        "chosen-advances",
        True,
    ),
    # s16 row 24: a learned entry held with the same value is not marked chosen;
    # the prefix stalls until a leader's runs mark it.
    (
        "learned-entry-left-unmarked",
        "_on_learn",
        "held.chosen = True",
        "held.chosen = False",
        5,
        "learn-marks",
        False,
    ),
    # s30 row 17: every honest Learn inside the window counted out of bounds, so
    # the counter an operator reads for hostile peers counts honest ones.
    (
        "honest-learns-counted-out-of-bounds",
        "_on_learn",
        "if message.entries and message.entries[-1].slot >= slot_end:",
        "if message.entries and message.entries[-1].slot <= slot_end:",
        0,
        "learn-counted",
        True,
    ),
    # s16 row 25: a byte-limited Learn taken as cut only at its exact size; the
    # rest waits learn_retry_s (seed 5 draws a small learn page).
    (
        "cut-learn-taken-for-whole",
        "_learn_was_cut",
        "return size > self.config.learn_max_bytes - self.config.batch_max_bytes",
        "return size == self.config.learn_max_bytes - self.config.batch_max_bytes",
        5,
        "learn-continues",
        True,
    ),
    # s16 rows 20 and 21: the compacted-log rule taken at equality too, or for
    # every promise: the candidate asks for a log it has and prepares again.
    *(
        (
            f"compacted-log-rule-{name}",
            "_on_promise",
            "if message.log_start > max(message.slot_from, self.slot_chosen):",
            f"if message.log_start {wrong} max(message.slot_from, self.slot_chosen):",
            0,
            "compacted-learns",
            False,
        )
        for name, wrong in (("at-equality", ">="), ("for-every-promise", "<="))
    ),
    # The unmarked flip of _prepare_again_if_caught_up's guard: a candidate that
    # learned past a compacting acceptor's log_start sits on its old ballot.
    (
        "caught-up-and-still-preparing",
        "_prepare_again_if_caught_up",
        "if self.role is not Role.PREPARING or not 0 < self._catch_up_to <= self.slot_chosen:",
        "if not (self.role is not Role.PREPARING or not 0 < self._catch_up_to"
        " <= self.slot_chosen):",
        7,
        "caught-up-prepares",
        False,
    ),
    # A candidate that leads only on a majority plus one of promises (5 nodes on
    # seed 0). s16 row 18, the fill window halved, breaks the same rule at a
    # moment no budget seed builds: a promise reporting a slot between W and 2W
    # past the candidate's slot_from.
    (
        "waits-for-one-promise-more",
        "_on_promise",
        "if self._prepared(self._slot_prepared):",
        "if len(self._promises) > self.quorum and self._prepared(self._slot_prepared):",
        0,
        "promised-leads",
        True,
    ),
    # The unmarked flip of _step_down's back-off guard: a candidate beaten by a
    # higher ballot stands again at once, and one that stepped down unbeaten
    # (a leader that lost its majority) waits longer; and no back-off at all.
    *(
        (name, "_step_down", "if preempted:", wrong, 3, "election-backoff", True)
        for name, wrong in (
            ("backs-off-unbeaten", "if not preempted:"),
            ("never-backs-off", "if False:"),
        )
    ),
    # s16 (replica.py:585): read_index does not advance the read round, so
    # replies to a round sent before the read arrived confirm it.
    (
        "read-round-reused",
        "read_index",
        "self._read_round += 1",
        "self._read_round += 0",
        0,
        "read-round-fresh",
        False,
    ),
]


SWARM = SimConfig(nodes=0, swarm=True)

# The same, named in a group of the mutation budget other than the swarm's
# (tests/mutate/budget.py): the runs where the moment is dense.
LINE_CHANGES_IN_GROUPS = [
    # s24 row replica.py:969: a leader asks for promises for a configuration
    # on every call, not once per accept_retry_s (membership seed 7: a
    # Prepare to one voter 10 ms after the last; seed 1 until session 27's
    # removed nodes, told of their removal, moved the schedules).
    # config-prepare-sent stated only the lower bound until session 25.
    (
        "configuration-prepares-unpaced",
        "_prepare_configuration",
        "if self._now - self._prepare_sent_at < self.config.accept_retry_s:",
        "if self._now - self._prepare_sent_at == self.config.accept_retry_s:",
        RECONFIG_CONFIG,
        7,
        "config-prepare-paced",
        True,
    ),
    # s21 row 13: read_index keeps the time of the replica's last tick when
    # the runtime gives it the clock of the moment, so a leader resumed from a
    # pause judges its lease as it stood before (lease seed 10; 4 until
    # session 26's refused prober, which asks for the log, moved the
    # schedules). lease-bound judged at the core's own clock until session
    # 22, and passed it.
    (
        "lease-judged-at-the-last-tick",
        "read_index",
        "if now is not None and lease_clock:",
        "if not now is not None and lease_clock:",
        LEASE_CONFIGS[10 % 2],
        10,
        "lease-bound",
        True,
    ),
    # s21: a follower sends clients to a leader its newest configuration
    # removed (which hears from no new leader: clients go in circles).
    (
        "hint-names-a-removed-leader",
        "leader_hint",
        "if self.leader_id is None or self.leader_id not in self._history.newest.voters:",
        "if self.leader_id is None:",
        RECONFIG_CONFIG,
        4,
        "readiness-hint",
        True,
    ),
    # The unmarked flip replica.py:1623: the members are refreshed only when the
    # chosen prefix did not move, so a configuration that takes effect leaves
    # the edge and the links on the old members until some later call.
    (
        "members-left-stale-as-the-prefix-moves",
        "_advance_chosen",
        "if self.slot_chosen > start:\n        self._refresh_members(passed)",
        "if not (self.slot_chosen > start):\n        self._refresh_members(passed)",
        RECONFIG_CONFIG,
        0,
        "invariant",
        True,
    ),
    # s30 row replica.py:1904: the removed are remembered only when the members
    # and the newest configuration both changed since the last refresh, so a
    # member whose history got a removal from a snapshot (a restart, or one
    # installed, between the change's choice and its effect) never remembers
    # the node (membership seed 7: n1 forgot n2; 38, also 65 and 74 of 0-95,
    # since session 32's notices to removed learners moved the schedules).
    # removed-learns counts tellers from the members' own memory and excused
    # it until session 31.
    (
        "removal-forgotten-after-a-snapshot",
        "_refresh_members",
        "if self.members != previous or self._history.newest is not self._newest_seen:",
        "if self.members != previous and self._history.newest is not self._newest_seen:",
        RECONFIG_CONFIG,
        38,
        "removed-remembered",
        True,
    ),
    # The same line on the budget's restart seed 0 (session 33): the member
    # restarted from a snapshot taken inside the removal's window
    # (``change_restart``) forgets the node at the effect.
    (
        "removal-forgotten-after-a-restart-in-its-window",
        "_refresh_members",
        "if self.members != previous or self._history.newest is not self._newest_seen:",
        "if self.members != previous and self._history.newest is not self._newest_seen:",
        RESTART_CONFIG,
        0,
        "removed-remembered",
        True,
    ),
    # s16 row 23: an Accept at a slot known chosen raises the promise only when
    # its ballot is not above it, so the vote outruns the durable promise (lease
    # seed 7, of 5 nodes; 25 from session 23's client change until session
    # 26's refused prober moved the schedules again; promise-raises names it
    # on most lease seeds, so the budget kills it).
    (
        "vote-above-the-durable-promise",
        "_on_accept",
        "if message.ballot > self.ballot_promised:",
        "if message.ballot <= self.ballot_promised:",
        LEASE_CONFIGS[7 % 2],
        7,
        "vote-durable",
        False,
    ),
    # s16 row 26: a node that may not stand asks only members with an id at
    # least its own: the highest asks itself, which sends nothing.
    (
        "nonvoter-asks-only-itself",
        "_start_probe",
        "known = [member for member in self.members if member != self.node_id]",
        "known = [member for member in self.members if member >= self.node_id]",
        RECONFIG_CONFIG,
        7,
        "nonvoter-asks",
        False,
    ),
    # s16 row 18: the fill window halved (W for 2W): a promise reporting a slot
    # in the far half is refused, as if lost, and the candidate sits on a
    # majority of promises until its timer (lagging-candidate seed 0).
    (
        "fill-window-halved",
        "_on_promise",
        "slot_fill_end = message.slot_from + 2 * self.config.slots_ahead_max",
        "slot_fill_end = message.slot_from + 1 * self.config.slots_ahead_max",
        LAGGING,
        0,
        "promised-leads",
        True,
    ),
]


@pytest.mark.mutation
@pytest.mark.parametrize(
    ("method", "right", "wrong", "config", "seed", "rule", "alone"),
    [(*case[1:4], SWARM, *case[4:]) for case in LINE_CHANGES]
    + [case[1:] for case in LINE_CHANGES_IN_GROUPS],
    ids=[case[0] for case in LINE_CHANGES + LINE_CHANGES_IN_GROUPS],
)
def test_a_changed_line_is_named_by_the_rule_it_breaks(
    method: str, right: str, wrong: str, config: SimConfig, seed: int, rule: str, alone: bool
) -> None:
    planted = _with_line_changed(method, right, wrong)
    result = run_seed(seed, config, replica_factory=planted)
    rules = {violation.split()[1].rstrip(":") for violation in result.violations}
    assert (rules == {rule}) if alone else (rule in rules), result.violations[:3]


@pytest.mark.mutation
def test_compacted_slots_kept_are_named_by_the_invariant() -> None:
    """A core whose ``compact`` forgets nothing holds slots below ``log_start``:
    ``Replica.check_invariants``, which the simulator runs after every step,
    names it (``invariant``) on swarm seed 0."""
    result = run_seed(0, SimConfig(nodes=0, swarm=True), replica_factory=KeepsCompactedSlots)
    assert any("a slot below log_start held" in v for v in result.violations), result.violations[:3]
