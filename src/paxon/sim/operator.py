"""The "reconfig" workload of the runtime engine: an operator changing the members.

During the fault phase, every ``SimConfig.reconfig_gap_s``, the operator
sends one ``ChangeMembers`` request over the simulated client network, as
``paxon members`` does: a change drawn by ``reconfig.draw_action`` from the
newest configuration of the node that leads now (add a spare or a removed
node; promote a learner; remove a voter, the leader among them, or a
learner), or, in ``TRANSFER_SHARE`` of the draws, ``transfer-leader`` to
another voter. The request goes to the node the operator last heard lead and
follows redirects, as the clients do.

In ``CARELESS_SHARE`` of the seeds the operator is careless (drawn from
``{seed}:reconfig-runtime-careless``, as are its slips, so a careful
operator's seed runs as before): in ``MISTAKE_SHARE`` of its draws it errs as
a real one can, and the node must refuse (``bad_request``, counted in
``refused``): ``transfer-leader`` to a node that is not a voter (a learner, a
removed node, a spare), an ``add`` of node id 0, or an ``add`` with an
address longer than a configuration holds (``ADDRESS_BYTES_MAX``, though
within the wire's limit); and it leaves ``AUTO_PROMOTE_SHARE`` of the nodes it
adds before they caught up to the leader's auto-promotion
(``add-learner-auto-promote``; ``node/members.auto_promotion``) instead of
promoting them itself.

New voters join as docs/membership.md says they must: a node is promoted, or
added as a voter at once, only once it has caught up (``caught_up``: it holds
the leader's newest configuration, read from the log, and has applied within
``CAUGHT_UP_LAG_SLOTS`` of the leader). Until then a spare holds its
``--peers`` guess, in which it votes; a voter on a guess may promise and stand
on a majority that need not meet the real one's (runtime swarm seed 115). So
an ``add`` draw of a node not caught up adds it as a learner and the operator
then waits for it, at most ``PROMOTE_WAIT_S``, asking nothing else, and
promotes it (or, careless, leaves that to the leader); a ``promote`` draw of a
learner not caught up is no draw.

| answer                                  | what the operator does                    |
|-----------------------------------------|-------------------------------------------|
| ``StatusReply``                         | done; the next change after a gap         |
| ``Redirect`` (to a leader, or none)     | the same request to the leader, or to the |
|                                         | next node not asked yet when it names     |
|                                         | none or one asked (at most ``HOPS_MAX``)  |
| ``Failure`` busy, unavailable,          | given up; the next draw after a quarter   |
| not_leader, timeout                     | gap (a change in progress, a lost leader) |
| ``Failure`` bad_request                 | the same: drawn from a view the node that |
|                                         | answered no longer holds (counted)        |
| any other ``Failure``                   | a violation (``reconfig-error``)          |

Whether a refusal was right is judged in the core, where it is made
(``sim/operator_rules.py``: ``change-refused``, ``transfer-refused``).
| no answer within ``ANSWER_TIMEOUT_S``   | given up, as for busy                     |

A wiped member (the "wipe" fault: same id, empty disk, a new incarnation)
is refused by the others. Once it has been refused for ``REPLACE_AFTER_S``
the operator replaces it as docs/membership.md says: ``remove`` it, then
``add-learner`` it again (the configuration then binds no incarnation for
it, so the links come up), and promotes it once caught up (the promotion
binds the new incarnation). This runs with "wipe" alone too; the random
draws only with "reconfig". No change the operator draws leaves the refused
member and the lost disks a majority of the voters.

In the seeds ``aims`` picks, a turn first asks ``Aims.draw`` for a request
aimed at a branch the swarm missed (a transfer to a node that is not a voter,
one under lease reads, a late removal, a change a bare reign's promises do
not prepare); it goes to the leader directly. ``bare_reign`` may also have
the operator take its turn sooner (``turn_soon``: the turn then due is
dropped, so there is still one).

Once a learner is added, ``MembershipFaults.learner_added`` may cut it off
past its election timeout (``membership_faults``); the operator then waits
that much longer to promote it.

Contract: every random choice comes from the operator's own stream
(``{seed}:reconfig-runtime``), so a seed without "reconfig" runs as before;
one request is in flight at a time; answers to a request given up are
ignored; nothing is asked after the heal (changes chosen before it still take
effect), but for ``lease_removal``'s and ``lone_voter``'s requests in their seeds
(``ask_after_heal``). Nodes whose disk recovery must refuse (``DiskFaults.disks_refused``)
are never added or promoted, and no change leaves them a majority of the
voters: they will not come back, and a majority that never comes back is an
outage the operator made, not a test (the faults keep the same rule when they
strike a disk: ``RuntimeCluster.may_lose``).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from paxon.net.client_messages import ChangeMembers, ClientResponse, Failure, Redirect, StatusReply
from paxon.protocol.membership import ADDRESS_BYTES_MAX, Configuration
from paxon.sim import reconfig
from paxon.sim.network import CLIENT_BASE

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster

# Share of the draws that move the leadership instead of changing the members.
TRANSFER_SHARE = 0.2
# Share of the seeds whose operator is careless (the module docstring), the
# share of its draws that are a mistake the node must refuse, and the share of
# the adds of a node not caught up it leaves to the leader's auto-promotion.
CARELESS_SHARE = 0.5
MISTAKE_SHARE = 0.1
AUTO_PROMOTE_SHARE = 0.5
# Redirects followed for one request before it is given up.
HOPS_MAX = 8
# How long the operator waits for an answer (a change waits until chosen).
ANSWER_TIMEOUT_S = 1.0
# A node has caught up when it has applied this close to the leader.
CAUGHT_UP_LAG_SLOTS = 16
# How long the operator waits for a learner it means to promote to catch up.
PROMOTE_WAIT_S = 2.0
# How long a wiped member is refused before the operator replaces it.
REPLACE_AFTER_S = 0.5
# Answers after which the operator draws again sooner (a quarter gap).
_RETRY_LATER = frozenset({"busy", "unavailable", "not_leader", "timeout", "no_quorum"})
# A drawn request: action, node id, address.
_Drawn = tuple[str, int, str]


def sim_address(node_id: int) -> str:
    """A simulated node's peer address, as its ``Node`` formats it (``host.py``)."""
    return f"sim:{node_id}"


def caught_up(cluster: RuntimeCluster, node_id: int, leader: int) -> bool:
    """Whether ``node_id`` may become a voter now: it runs, holds the leader's
    newest configuration (so it has read every change the leader knows, the one
    that added it included, and stands on no ``--peers`` guess), and has applied
    within ``CAUGHT_UP_LAG_SLOTS`` of the leader (``paxon members list``)."""
    node, leading = cluster.node(node_id), cluster.node(leader)
    if node is None or leading is None:
        return False
    own, newest = node._replica.configuration_newest, leading._replica.configuration_newest
    if (own.epoch, own.voters, own.learners) != (newest.epoch, newest.voters, newest.learners):
        return False  # behind, or on its guess (epoch 0, itself a voter)
    return node.machine.slot_applied + CAUGHT_UP_LAG_SLOTS >= leading.machine.slot_applied


class Operator:
    """Sends one membership change at a time to the cluster (see the module docstring)."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self._rng = random.Random(f"{seed}:reconfig-runtime")
        # A careless operator's slips come from a stream of their own (None:
        # careful), so a careful operator draws exactly as before they existed.
        careless = random.Random(f"{seed}:reconfig-runtime-careless")
        self._slips = careless if careless.random() < CARELESS_SHARE else None
        # After the clients' endpoints, on the same client network.
        self.endpoint = CLIENT_BASE + cluster.config.clients
        self._target = cluster.members[0]
        self._request: ChangeMembers | None = None
        self._request_id = 0
        self._asked_id = 0  # the request id a change was first asked under
        self._voters_drawn: frozenset[int] = frozenset()
        self._hops = 0
        self._visited: set[int] = set()  # nodes this request was sent to
        # The learner to promote once caught up (an ``add`` drawn before it
        # was), and until when the operator waits for it.
        self._promoting: int | None = None
        self._promote_by_s = 0.0
        # A wiped member: when it was first seen refused, and the one removed
        # to be added back as a learner.
        self._refused_since: dict[int, float] = {}
        self._replacing: int | None = None
        # A replaced member added back as a learner, until promoted: a promote
        # refused for now (busy while the leader binds it) is asked again.
        self._rejoining: int | None = None
        # The voters each change asked for may come to be, unless refused
        # outright (a request given up at a timeout may still be chosen): the
        # faults lose no disk that would leave them short of a majority.
        self.voters_asked: dict[int, frozenset[int]] = {}
        # Figures for the trace and the tests.
        self.done = 0
        self.refused = 0
        # The turn scheduled last (``_turn_in``): only it is taken.
        self._turn = 0

    def start(self) -> None:
        config = self._cluster.config
        if "reconfig" in config.faults or ("wipe" in config.faults and config.wipe_rate > 0):
            self._turn_in(0.3 + 0.3 * self._rng.random())

    def receive(self, response: ClientResponse) -> None:
        """An answer reaches the operator."""
        cluster = self._cluster
        request = self._request
        if request is None or response.request_id != request.request_id:
            return  # an answer to a request given up
        if isinstance(response, Redirect):
            self._hops += 1
            if cluster.healed_at is not None:
                self._give_up("the faults are over")
                return
            if self._hops > HOPS_MAX:
                self._give_up(f"{self._hops} redirects")
                return
            # Straight to the leader it names, unless asked already (a removed
            # node's hint may name another removed node): then the next node.
            self._visited.add(self._target)
            leader = response.leader_id
            if leader is None or leader in self._visited:
                leader = self._next_unvisited()
            self._target = leader
            self._request_id += 1
            self._request = ChangeMembers(
                self._request_id, request.action, request.node_id, request.address, ""
            )
            cluster.later(0.005, self._send)
            return
        if isinstance(response, Failure):
            if response.code in ("bad_request", "busy", "not_leader"):
                # Refused before proposing: a repeat of the change on its way
                # (a duplicated request) waits for it instead of busy.
                self.voters_asked.pop(self._asked_id, None)
            if response.code == "bad_request":
                self.refused += 1
            elif response.code not in _RETRY_LATER:
                cluster.checker.fail(
                    cluster.time,
                    "reconfig-error",
                    f"{_describe(request)} failed: {response.code}: {response.message}",
                )
            self._give_up(f"{response.code}: {response.message}")
            return
        if isinstance(response, StatusReply):
            self.done += 1
            cluster.stats.faults["reconfig"] += 1
            cluster.log(f"reconfig: {_describe(request)} done by n{self._target}")
            self._request = None
            if request.node_id == self._rejoining and request.action == "promote":
                self._rejoining = None
            answering = cluster.node(self._target)
            if request.action != "transfer-leader" and answering is not None:
                cluster.change_restarts.chosen(answering._replica.configuration_newest.epoch)
            cut_s = 0.0
            if request.action in ("add-learner", "add-learner-auto-promote"):
                cut_s = cluster.membership_faults.learner_added(request.node_id)
            if request.node_id == self._promoting and request.action == "add-learner":
                self._promote_by_s = cluster.time + cut_s + PROMOTE_WAIT_S
                self._after(reconfig_gap=False)  # look for it to catch up soon
                return
            self._after(reconfig_gap=True)
            return
        cluster.checker.fail(
            cluster.time, "reconfig-error", f"{_describe(request)} answered {response!r}"
        )
        self._give_up("an unexpected answer")

    # ------------------------------------------------------------------ helpers

    def _next(self) -> None:
        """Draw the next change and send it, unless the faults are over."""
        cluster = self._cluster
        if cluster.healed_at is not None or self._request is not None:
            return
        leader = cluster.leader()
        node = cluster.node(leader) if leader is not None else None
        drawn = None
        if leader is not None and node is not None:
            newest = node._replica.configuration_newest
            if self._target in cluster.refused_members():
                self._target = leader  # the wiped node knows nothing: ask the leader
            drawn = self._replacement(newest)
            if drawn is None:
                drawn = self._promotion(newest, leader)
            if drawn is None and self._promoting is not None:
                cluster.log(f"reconfig: wait for n{self._promoting} to catch up")
                self._after(reconfig_gap=False)
                return
            if drawn is None and "reconfig" in cluster.config.faults:
                # A request aimed at a branch the swarm missed (``aims``), if due.
                drawn = cluster.aims.draw(newest, leader, self._checked)
                if drawn is not None:
                    self._target = leader  # aimed at this leader: asked directly
                    if drawn[0] == "transfer-leader":
                        self._voters_drawn = frozenset(newest.voters)
            if drawn is None and "reconfig" in cluster.config.faults:
                drawn = self._draw(newest, leader)
        if drawn is None:
            if "reconfig" in cluster.config.faults:
                cluster.log("reconfig: no leader to ask, or no change to draw")
            self._after(reconfig_gap=False)
            return
        self._ask(drawn)

    def ask_after_heal(self, drawn: _Drawn, target: int) -> bool:
        """Send ``drawn`` (through ``_checked``) to ``target`` now, though the
        faults are over: ``lease_removal``'s or ``lone_voter``'s, in the calm after the
        heal. Any turn due is dropped; False while a request is in flight."""
        if self._request is not None:
            return False
        self._turn += 1
        self._target = target
        self._ask(drawn)
        return True

    def _ask(self, drawn: _Drawn) -> None:
        action, node_id, address = drawn
        self._request_id += 1
        self._request = ChangeMembers(self._request_id, action, node_id, address, "")
        if action != "transfer-leader":
            self.voters_asked[self._request_id] = self._voters_drawn
        self._asked_id = self._request_id
        self._hops = 0
        self._visited.clear()
        self._cluster.log(f"reconfig: ask n{self._target} to {_describe(self._request)}")
        if action == "remove":
            self._cluster.membership_faults.voter_removing(node_id)
        self._send()

    def _promotion(self, newest: Configuration, leader: int) -> _Drawn | None:
        """The promotion of the learner the operator waits for, once it has
        caught up; None while it waits (``_promoting`` stays set) or when it
        gave up (a change took the learner away, or it took too long)."""
        node_id = self._promoting
        if node_id is None:
            return None
        if node_id not in newest.learners or self._cluster.time > self._promote_by_s:
            self._cluster.log(f"reconfig: no longer waiting to promote n{node_id}")
            self._promoting = None
            return None
        if not caught_up(self._cluster, node_id, leader):
            return None
        self._promoting = None
        return self._checked("promote", node_id, newest)

    def _replacement(self, newest: Configuration) -> _Drawn | None:
        """The next step of replacing a wiped member (see the module docstring),
        or None: none refused long enough, or the step is taken already."""
        cluster = self._cluster
        node_id = self._replacing
        if node_id is not None and newest.member(node_id) is None:
            self._replacing = None
            self._promoting = self._rejoining = node_id
            self._promote_by_s = cluster.time + ANSWER_TIMEOUT_S + PROMOTE_WAIT_S
            return "add-learner", node_id, sim_address(node_id)
        refused = cluster.refused_members()
        self._refused_since = {
            n: self._refused_since.get(n, cluster.time) for n in refused if n in cluster.hosts
        }
        for node_id, since in sorted(self._refused_since.items()):
            member = newest.member(node_id)
            if member is None or cluster.time - since < REPLACE_AFTER_S:
                continue
            if member.incarnation == cluster.hosts[node_id].data_incarnation:
                continue  # bound anew: the newest configuration no longer refuses it
            checked = self._checked("remove", node_id, newest)
            if checked is not None:
                self._replacing = node_id
                if self._promoting == node_id:
                    self._promoting = None
            return checked
        return None

    def _lost(self) -> set[int]:
        """Nodes that will not serve as voters: disks recovery refuses, and
        wiped members the others refuse."""
        return self._cluster.faults.disk.disks_refused | self._cluster.refused_members()

    def _draw(self, newest: Configuration, leader: int) -> _Drawn | None:
        rng = self._rng
        if self._slips is not None and self._slips.random() < MISTAKE_SHARE:
            return self._mistake(newest, self._slips)
        others = sorted(newest.voters - {leader})
        if others and rng.random() < TRANSFER_SHARE:
            return "transfer-leader", rng.choice(others), ""
        lost = self._lost()
        alive = [node_id for node_id in self._cluster.members if node_id not in lost]
        drawn = reconfig.draw_action(rng, newest, alive, leader)
        if drawn is None:
            return None
        action, node_id = drawn
        if action == "promote" and not caught_up(self._cluster, node_id, leader):
            return None  # docs/membership.md: promoted only once caught up
        if action == "add" and not caught_up(self._cluster, node_id, leader):
            if self._slips is not None and self._slips.random() < AUTO_PROMOTE_SHARE:
                # The leader promotes it once caught up (its own rule).
                action = "add-learner-auto-promote"
            else:
                # As a learner first; promoted once caught up (``_promotion``).
                self._promoting = node_id
                self._promote_by_s = self._cluster.time + ANSWER_TIMEOUT_S + PROMOTE_WAIT_S
                action = "add-learner"
        return self._checked(action, node_id, newest)

    def _mistake(self, newest: Configuration, slips: random.Random) -> _Drawn:
        """A request the node must refuse (the module docstring)."""
        self._voters_drawn = frozenset(newest.voters)  # refused: nothing changes
        everyone = sorted(newest.ids.union(self._cluster.members))
        not_voters = sorted(set(everyone) - newest.voters)
        kind = slips.randrange(3)
        if kind == 0 and not_voters:
            return "transfer-leader", slips.choice(not_voters), ""
        if kind == 1:
            return "add", 0, sim_address(slips.choice(everyone))
        outside = max(everyone) + 1
        host = "h" * (ADDRESS_BYTES_MAX - len(":1") + 1)
        return "add", outside, f"{host}:1"

    def _checked(self, action: str, node_id: int, newest: Configuration) -> _Drawn | None:
        """``(action, node_id)`` unless it would leave the lost disks a majority."""
        lost = self._lost()
        if action == "promote" and node_id in lost:
            return None
        # A change that leaves the lost nodes a majority of the voters is an
        # outage the operator made, not a test: not asked.
        voters = set(newest.voters)
        if action in ("add", "promote", "add-learner-auto-promote"):
            voters.add(node_id)  # the last: once the leader promotes it
        elif action == "remove":
            voters.discard(node_id)
        quorum = len(voters) // 2 + 1
        if len(voters & lost) > len(voters) - quorum:
            return None
        self._voters_drawn = frozenset(voters)
        address = sim_address(node_id) if action.startswith("add") else ""
        return action, node_id, address

    def _send(self) -> None:
        cluster = self._cluster
        request = self._request
        if request is None:
            return
        target = self._target
        for delay in cluster.network.delays(self.endpoint, target):
            cluster.later(delay, lambda: cluster.deliver_request(self.endpoint, target, request))
        request_id = request.request_id
        cluster.later(ANSWER_TIMEOUT_S, lambda: self._timeout(request_id))

    def _next_unvisited(self) -> int:
        members = self._cluster.members
        target = self._target
        for _ in members:
            target = members[target % len(members)]
            if target not in self._visited:
                return target
        return target

    def _timeout(self, request_id: int) -> None:
        request = self._request
        if request is not None and request.request_id == request_id:
            members = self._cluster.members
            self._target = members[self._target % len(members)]  # down or cut off: the next
            self._give_up("no answer in time")

    def _give_up(self, why: str) -> None:
        request = self._request
        assert request is not None
        self._cluster.log(f"reconfig: {_describe(request)} given up: {why}")
        self._request = None
        if request.action == "promote" and request.node_id == self._rejoining:
            # Asked again once it may be (the leader binds it first: busy).
            self._promoting = request.node_id
            self._promote_by_s = self._cluster.time + PROMOTE_WAIT_S
        self._after(reconfig_gap=False)

    def _after(self, *, reconfig_gap: bool) -> None:
        """The next draw after a gap (a quarter of one after a refusal)."""
        gap = self._rng.uniform(*self._cluster.config.reconfig_gap_s)
        self._turn_in(gap if reconfig_gap else gap / 4)

    def turn_soon(self, delay: float) -> bool:
        """Take the next turn after ``delay`` instead of when it was due (the turn
        then due is dropped), unless a request is in flight or the faults are
        over (False)."""
        if self._request is not None or self._cluster.healed_at is not None or not self._turn:
            return False
        self._turn_in(delay)
        return True

    def _turn_in(self, delay: float) -> None:
        """The next turn (``_next``) after ``delay``; any turn scheduled before is dropped."""
        self._turn += 1
        turn = self._turn

        def take() -> None:
            if turn == self._turn:
                self._next()

        self._cluster.later(delay, take)


def _describe(request: ChangeMembers) -> str:
    return f"{request.action} n{request.node_id}"


__all__ = [
    "ANSWER_TIMEOUT_S",
    "AUTO_PROMOTE_SHARE",
    "CARELESS_SHARE",
    "CAUGHT_UP_LAG_SLOTS",
    "HOPS_MAX",
    "MISTAKE_SHARE",
    "PROMOTE_WAIT_S",
    "REPLACE_AFTER_S",
    "TRANSFER_SHARE",
    "Operator",
    "caught_up",
    "sim_address",
]
