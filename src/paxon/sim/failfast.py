"""Failing fast: the serving bounds of the core, judged at every call into a replica.

``docs/architecture.md`` ("Failing fast") sets two bounds, both
``election_timeout_min_s`` (``B``): a leader that has heard from no majority
within ``B`` refuses commands and linearizable reads with ``NoQuorum``, and a
follower that has not heard its leader within ``B`` refuses with
``LeaderUnreachable`` instead of forwarding. The core decides both
(``Replica.serving``, ``Replica.leader_live``); this module states them from
what it sees arrive, never by asking the core, so a core that gets either
wrong is named. A runtime reports every call into a replica, as to
``TimerChecker``:

    on_call(node_id, replica, call, args, ready, time)   a call returned ``ready``
    on_refused(node_id, replica, call, time)             ``propose_many`` or
                                                         ``read_index`` raised ``NoQuorum``
    on_held_failed(node_id, replica, time)               the runtime failed what the
                                                         leader holds with ``NoQuorum``
                                                         (the tick that saw the bound lapse)

Heard, as the checker counts it (times are the replica's own clock, ``now``,
when the message is stepped: a message is heard when it is delivered, not when
it was sent, and the core knows of it no sooner):

- a leader hears a peer when it steps an ``Accepted`` or ``HeartbeatReply``
  addressed to it under the ballot it leads with (a reply naming a read round
  it never asked is refused at its edge: not heard); every member it talks to
  (``members``: the configurations from its chosen prefix on) counts as heard
  when the reign begins, and a member that joins them mid-reign when it joins
  (it gets a whole bound to answer; the leader only now talks to it);
- a follower (any role but leader) hears a node when it follows an ``Accept``
  or ``Heartbeat`` from it: answers it with ``Accepted`` or ``HeartbeatReply``
  (one below its promise gets a ``Nack``, and is not heard).

The rules, by name (``Violation.rule``), each from ``docs/architecture.md``
"Failing fast" (a majority is of the voters of every configuration the leader
holds from its chosen prefix on, itself counted; within 1e-9 s of the bound
nothing is judged, as two readings of one clock may round apart):

- ``serve-bound``: a leader's ``propose_many`` returns (takes the commands) or
  its ``read_index`` returns (starts the read) only if it heard from a
  majority within ``B`` of its ``now``. A configuration change is exempt (an
  operator's or a duty's: nobody waits on it, and the leader steps down at
  ``election_timeout_max_s`` anyway): a batch that is one configuration
  command (``SYSTEM_CLIENT_ID``, ``CONFIG_MAGIC``).
- ``serve-heard``: a leader that heard from a majority within ``B`` does not
  refuse with ``NoQuorum``: neither call raises it, and the runtime fails
  nothing it holds with it. (A leader handing over refuses with ``Busy``, not
  ``NoQuorum``, so it needs no exemption.)
- ``forward-bound``: a replica that does not lead says the leader it follows
  (``leader_hint``) is live (``leader_live``: the runtime forwards to it) only
  if it heard that node within ``B``.
- ``forward-heard``: and it says so whenever it did: a follower refuses with
  ``LeaderUnreachable`` (``leader_live`` false) only when it has not heard
  its leader within ``B``. (The two ``forward`` rules judge ``leader_live``
  after each call: the simulator's clients speak the native protocol, where
  a follower redirects whatever it hears, so no call of theirs is refused
  with ``LeaderUnreachable``; the runtime reads ``leader_live`` for every
  call on a ``Node`` and every forwarded one.)
- ``transfer-recent``: a leader handing over with no target named
  (``transfer_leadership()``, a graceful stop's) picks a voter it heard from
  within ``B`` whenever it heard one of those it may hand to (voters now and
  in its newest configuration): one down for maintenance, unheard since,
  would leave the cluster to an election timeout (``docs/protocol.md``,
  "Leadership transfer").

- ``read-round-fresh``: a ``read_index`` call that sends a round of
  heartbeats sends a round above every one that replica sent before: an
  acknowledgement of an older round, sent before the read arrived, would
  confirm a leadership that may have ended by then (``docs/protocol.md``,
  "Reads": each ``read_index`` starts a new round).

- ``readiness-contact``: what the core tells ``paxon serve``'s readiness
  (``leader_contact_at``) is what the checker heard, after every call: a
  leader, the time by which it had heard from enough voters of the
  configuration in effect to make a majority with itself (its reign's start,
  or a join, counting as heard; its own clock when it alone is a majority);
  any other role, when it last followed the leader it names (None with no
  leader, or one not followed in this life) (``docs/architecture.md``, the
  core's readiness facts; ``node/readiness.py`` judges from them).
- ``readiness-serving``: and whether it serves (``serving``: the runtime
  fails what a leader holds with ``NoQuorum`` when this lapses, and refuses
  at once while it is false): never on a role but leader; a leader serves
  exactly while it heard from a majority of every configuration ahead within
  ``B`` (its reign's start and a join counting as heard), the bound's edge
  not judged.
- ``readiness-hint``: where it sends clients (``leader_hint``: every
  ``Redirect`` and ``NotLeader`` names it) is itself when it leads; else the
  node it last followed, unless it promised another node's ``Prepare`` or
  stepped down from leading since (either forgets the leader), or that node
  is no voter of its newest configuration (a removed node's hint would send
  clients in circles); else none.
- ``readiness-behind``: and how far the chosen prefix reaches as far as the
  replica has heard (``slot_chosen_heard``) is its own prefix or the highest
  one an ``Accept`` or ``Heartbeat`` it followed in this life carried,
  whichever is higher: readiness reports the lag from it.

- ``lease-voter``: a leader answers a read from its lease (in the
  ``read_index`` call itself, with no heartbeat round sent) only while it
  votes in every configuration it holds from its chosen prefix on: one whose
  removal or demotion is chosen may be outvoted by voters that no longer
  count it (``docs/protocol.md``, "Lease reads").

Cost: per call, a few attribute reads; a leader's, a walk of its heard times
per configuration ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from paxon.protocol.membership import CONFIG_MAGIC, SYSTEM_CLIENT_ID
from paxon.protocol.messages import (
    Accept,
    Accepted,
    Heartbeat,
    HeartbeatReply,
    Message,
    Prepare,
    Promise,
)
from paxon.protocol.quorum import majority
from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import Ballot, Command, NodeId
from paxon.sim.checkers import Violation

# Float slack for comparing two readings of one replica clock.
_EPSILON_S = 1e-9


@dataclass(slots=True)
class _Reign:
    ballot: Ballot
    # The members it talks to as of the last call (the replica's own tuple).
    members: tuple[NodeId, ...]
    # When it last heard each member (its clock).
    heard: dict[NodeId, float]


@dataclass(slots=True)
class _Life:
    """What the checker saw of one replica object (a restart builds a new one)."""

    # The replica object itself, not its id(): a restarted node's new replica
    # may reuse a freed one's id, and would inherit its life (a prefix heard
    # that the new one never heard; seen in a fresh clone's run of seed 230).
    replica: Replica
    reign: _Reign | None = None
    # Read rounds asked so far (each ``read_index`` that returned is one).
    read_rounds: int = 0
    # The highest read round its heartbeats carried so far.
    round_sent_max: int = 0
    # As a follower: when it last followed each node.
    followed: dict[NodeId, float] = field(default_factory=dict)
    # The highest chosen prefix an Accept or Heartbeat it followed carried.
    prefix_heard: int = 0
    # The leader it follows as far as the checker saw (itself while leading):
    # the last node it followed, until it promises another node's Prepare or
    # stops leading.
    following: NodeId | None = None


class FailFastChecker:
    """Checks every rule in the module docstring on each call it is told of."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        self._lives: dict[NodeId, _Life] = {}

    def on_call(
        self,
        node_id: NodeId,
        replica: Replica,
        call: str,
        args: Sequence[Any],
        ready: Ready,
        time: float,
    ) -> None:
        life = self._life(node_id, replica)
        rounds = [m.read_round for m in ready.messages if isinstance(m, Heartbeat)]
        if call == "read_index" and rounds and min(rounds) <= life.round_sent_max:
            self._fail(
                time,
                "read-round-fresh",
                f"n{node_id} started a read at {replica.now:.6f} with heartbeats of round "
                f"{min(rounds)}, not above round {life.round_sent_max} it sent before",
            )
        life.round_sent_max = max(life.round_sent_max, *rounds, 0)
        if call == "read_index":
            life.read_rounds += 1
        for message in ready.messages:
            if isinstance(message, Heartbeat) and message.read_round > life.read_rounds:
                # Lease reads: every round of heartbeats is a read round too.
                life.read_rounds = message.read_round
        if call == "step" and follows(args[0], ready):
            life.prefix_heard = max(life.prefix_heard, args[0].chosen.slot_chosen)
        self._note_following(node_id, replica, life, call, args, ready)
        self._check_hint(node_id, replica, life, time)
        self._check_behind(node_id, replica, life, time)
        if replica.role is not Role.LEADER:
            life.reign = None
            if call == "step":
                self._note_followed(node_id, replica, life, args[0], ready)
            self._check_forward(node_id, replica, life, time)
            self._check_contact(node_id, replica, life.followed.get(replica.leader_id or 0), time)
            if replica.serving:
                self._fail(
                    time,
                    "readiness-serving",
                    f"n{node_id} ({replica.role.value}) says it serves at {replica.now:.6f}",
                )
            return
        reign = self._reign(replica, life)
        if call == "step":
            self._note_heard(node_id, replica, life, reign, args[0])
        elif call == "transfer_leadership" and (not args or args[0] is None):
            self._check_transfer(node_id, replica, reign, time)
        elif call == "read_index" and ready.reads:
            self._check_lease_voter(node_id, replica, ready, time)
        self._check_contact(node_id, replica, self._majority_heard_at(replica, reign), time)
        heard, surely = self._majorities(node_id, replica, reign)
        if replica.serving != heard:
            self._check_serving(node_id, replica, reign, heard, surely, time)
        serves = call == "read_index" or (call == "propose_many" and not _is_change(args[0]))
        if serves and not heard:
            what = "started a read" if call == "read_index" else "took commands"
            self._fail(
                time,
                "serve-bound",
                f"n{node_id} leads under {reign.ballot} and {what} at {replica.now:.6f} "
                f"having heard from no majority {self._heard_text(replica, reign)} "
                f"within {replica.config.election_timeout_min_s:.6f} s",
            )

    def _check_lease_voter(
        self, node_id: NodeId, replica: Replica, ready: Ready, time: float
    ) -> None:
        if any(isinstance(message, Heartbeat) for message in ready.messages):
            return  # a read round went out: not a lease read
        outside = [
            config.epoch
            for config in replica._history.from_slot(replica.slot_chosen)
            if node_id not in config.voters
        ]
        if outside:
            self._fail(
                time,
                "lease-voter",
                f"n{node_id} answered a read from its lease at {replica.now:.6f} while no "
                f"voter of configuration epoch {outside[0]}, which it holds",
            )

    def on_refused(self, node_id: NodeId, replica: Replica, call: str, time: float) -> None:
        """``call`` (``propose_many`` or ``read_index``) raised ``NoQuorum``."""
        self._check_refusal(node_id, replica, f"refused {call} with NoQuorum", time)

    def on_held_failed(self, node_id: NodeId, replica: Replica, time: float) -> None:
        """The runtime failed the commands and reads it holds with ``NoQuorum``."""
        self._check_refusal(node_id, replica, "failed what it holds with NoQuorum", time)

    # ------------------------------------------------------------- leader

    def _reign(self, replica: Replica, life: _Life) -> _Reign:
        """The reign ``replica`` leads now, its members' joins noted."""
        now = replica.now
        members = replica.members
        reign = life.reign
        if reign is None or reign.ballot != replica.ballot_own:
            heard = {member: now for member in members if member != replica.node_id}
            reign = life.reign = _Reign(replica.ballot_own, members, heard)
        elif members is not reign.members and members != reign.members:
            for member in set(members).difference(reign.members, (replica.node_id,)):
                reign.heard[member] = now  # joined: a whole bound to answer
            reign.members = members
        return reign

    def _note_heard(
        self, node_id: NodeId, replica: Replica, life: _Life, reign: _Reign, message: Message
    ) -> None:
        if (
            not isinstance(message, Accepted | HeartbeatReply)
            or message.dst != node_id
            or message.src == node_id
            or message.ballot != reign.ballot
        ):
            return
        if isinstance(message, HeartbeatReply) and message.read_round > life.read_rounds:
            return  # a read round never asked: refused at the edge, not heard
        reign.heard[message.src] = replica.now

    def _check_transfer(
        self, node_id: NodeId, replica: Replica, reign: _Reign, time: float
    ) -> None:
        target = replica.transferring_to
        if target is None:
            return
        recent = replica.now - replica.config.election_timeout_min_s
        newest = replica._history.newest.voters
        eligible = (replica.configuration.voters & newest) - {node_id}
        heard = [p for p in eligible if reign.heard.get(p, float("-inf")) >= recent + _EPSILON_S]
        if heard and reign.heard.get(target, float("-inf")) < recent - _EPSILON_S:
            self._fail(
                time,
                "transfer-recent",
                f"n{node_id} hands leadership to n{target} at {replica.now:.6f}, not heard "
                f"within {replica.config.election_timeout_min_s:.6f} s, while it heard "
                f"{sorted(heard)} {self._heard_text(replica, reign)}",
            )

    def _check_serving(
        self,
        node_id: NodeId,
        replica: Replica,
        reign: _Reign,
        heard: bool,
        surely: bool,
        time: float,
    ) -> None:
        serving = replica.serving
        if serving == heard or (heard and not surely):
            return  # agrees, or at the bound's edge
        self._fail(
            time,
            "readiness-serving",
            f"n{node_id} leads under {reign.ballot} and says it "
            f"{'serves' if serving else 'does not serve'} at {replica.now:.6f}, having heard "
            f"from {'a' if heard else 'no'} majority {self._heard_text(replica, reign)} "
            f"within {replica.config.election_timeout_min_s:.6f} s",
        )

    def _check_refusal(self, node_id: NodeId, replica: Replica, what: str, time: float) -> None:
        life = self._life(node_id, replica)
        reign = life.reign
        if replica.role is not Role.LEADER or reign is None or reign.ballot != replica.ballot_own:
            return  # not a reign this checker saw begin: nothing to judge by
        _, surely = self._majorities(node_id, replica, reign)
        if surely:
            self._fail(
                time,
                "serve-heard",
                f"n{node_id} leads under {reign.ballot} and {what} at {replica.now:.6f} "
                f"having heard from a majority {self._heard_text(replica, reign)} within "
                f"{replica.config.election_timeout_min_s:.6f} s",
            )

    def _majorities(self, node_id: NodeId, replica: Replica, reign: _Reign) -> tuple[bool, bool]:
        """Whether the leader heard from a majority of every configuration ahead
        within the bound: (maybe, surely), the bound's edge counted in and out."""
        recent = replica.now - replica.config.election_timeout_min_s
        maybe = {node_id}
        surely = {node_id}
        for peer, heard_at in reign.heard.items():
            if heard_at >= recent - _EPSILON_S:
                maybe.add(peer)
                if heard_at >= recent + _EPSILON_S:
                    surely.add(peer)
        configs = replica._history.from_slot(replica.slot_chosen)
        return (
            all(config.has_quorum(maybe) for config in configs),
            all(config.has_quorum(surely) for config in configs),
        )

    def _heard_text(self, replica: Replica, reign: _Reign) -> str:
        now = replica.now
        heard = ", ".join(
            f"n{peer} {now - at:.3f} s ago" for peer, at in sorted(reign.heard.items())
        )
        voters = [
            sorted(config.voters) for config in replica._history.from_slot(replica.slot_chosen)
        ]
        return f"of {voters} ({heard or 'none'})"

    # ------------------------------------------------------------- follower

    def _note_followed(
        self, node_id: NodeId, replica: Replica, life: _Life, message: Message, ready: Ready
    ) -> None:
        if message.src != node_id and follows(message, ready):
            life.followed[message.src] = replica.now

    def _check_forward(self, node_id: NodeId, replica: Replica, life: _Life, time: float) -> None:
        leader = replica.leader_hint
        if leader is None:
            return  # no leader to forward to: refused whatever was heard
        bound = replica.config.election_timeout_min_s
        quiet = replica.now - life.followed.get(leader, float("-inf"))
        live = replica.leader_live
        if live and quiet > bound + _EPSILON_S:
            self._fail(
                time,
                "forward-bound",
                f"n{node_id} ({replica.role.value}) says its leader n{leader} is live at "
                f"{replica.now:.6f}, not having heard it for {quiet:.6f} s "
                f"(bound {bound:.6f} s)",
            )
        elif not live and quiet < bound - _EPSILON_S:
            self._fail(
                time,
                "forward-heard",
                f"n{node_id} ({replica.role.value}) says its leader n{leader} is not live at "
                f"{replica.now:.6f}, having heard it {quiet:.6f} s before "
                f"(bound {bound:.6f} s)",
            )

    # ------------------------------------------------------------- readiness

    def _majority_heard_at(self, replica: Replica, reign: _Reign) -> float | None:
        """When the leader had heard from enough voters in effect to make a
        majority with itself (its clock; None: not yet)."""
        voters = replica.configuration.voters
        need = majority(len(voters)) - (1 if replica.node_id in voters else 0)
        if need <= 0:
            return replica.now
        heard = sorted(
            (reign.heard.get(peer, float("-inf")) for peer in voters - {replica.node_id}),
            reverse=True,
        )
        at = heard[need - 1] if len(heard) >= need else float("-inf")
        return None if at == float("-inf") else at

    def _check_contact(
        self, node_id: NodeId, replica: Replica, expected: float | None, time: float
    ) -> None:
        reported = replica.leader_contact_at()
        if reported is None and expected is None:
            return
        if reported is None or expected is None or abs(reported - expected) > _EPSILON_S:
            self._fail(
                time,
                "readiness-contact",
                f"n{node_id} ({replica.role.value}, leader {replica.leader_id}) reports its "
                f"last contact with a leader at {reported}, where what it heard says "
                f"{expected} (now {replica.now:.6f})",
            )

    def _check_behind(self, node_id: NodeId, replica: Replica, life: _Life, time: float) -> None:
        expected = max(replica.slot_chosen, life.prefix_heard)
        if replica.slot_chosen_heard != expected:
            self._fail(
                time,
                "readiness-behind",
                f"n{node_id} reports the chosen prefix heard at {replica.slot_chosen_heard}, "
                f"where its own is {replica.slot_chosen} and the highest it followed "
                f"{life.prefix_heard}",
            )

    def _note_following(
        self,
        node_id: NodeId,
        replica: Replica,
        life: _Life,
        call: str,
        args: Sequence[Any],
        ready: Ready,
    ) -> None:
        if life.reign is not None and replica.role is not Role.LEADER:
            life.following = None  # stepped down from leading: no leader known
        message = args[0] if call == "step" else None
        if message is not None and message.src != node_id:
            if follows(message, ready):
                life.following = message.src
            elif isinstance(message, Prepare) and any(
                isinstance(reply, Promise) and reply.dst == message.src
                for reply in (*ready.messages, *ready.messages_after_persist)
            ):
                life.following = None  # gives the candidate time to finish Phase 1
        if replica.role is Role.LEADER:
            life.following = node_id

    def _check_hint(self, node_id: NodeId, replica: Replica, life: _Life, time: float) -> None:
        following = life.following
        if following != node_id and following not in replica.configuration_newest.voters:
            following = None
        if replica.leader_hint != following:
            self._fail(
                time,
                "readiness-hint",
                f"n{node_id} ({replica.role.value}) sends clients to {replica.leader_hint}, "
                f"where what it heard says {following}",
            )

    # ------------------------------------------------------------- helpers

    def _life(self, node_id: NodeId, replica: Replica) -> _Life:
        life = self._lives.get(node_id)
        if life is None or life.replica is not replica:
            life = self._lives[node_id] = _Life(replica)
        return life

    def _fail(self, time: float, rule: str, detail: str) -> None:
        self.violations.append(Violation(time, rule, detail))


def follows(message: Message, ready: Ready) -> bool:
    """Whether a replica that stepped ``message`` and returned ``ready`` followed
    its sender: an ``Accept`` or ``Heartbeat`` answered with ``Accepted`` or
    ``HeartbeatReply`` (one below its promise gets a ``Nack``)."""
    if not isinstance(message, Accept | Heartbeat):
        return False
    kind = Accepted if isinstance(message, Accept) else HeartbeatReply
    return any(
        isinstance(reply, kind) and reply.dst == message.src
        for reply in (*ready.messages, *ready.messages_after_persist)
    )


def _is_change(commands: Sequence[Command]) -> bool:
    """A batch that is one configuration change (``propose_configuration``'s)."""
    if len(commands) != 1:
        return False
    command = commands[0]
    return command.client_id == SYSTEM_CLIENT_ID and command.payload.startswith(CONFIG_MAGIC)


__all__ = ["FailFastChecker"]
