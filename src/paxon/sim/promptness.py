"""Promptness: a replica does at once what it already knows enough to do.

``TimerChecker`` (``timers.py``) judges when a replica stands, steps down and
how much it holds; this module judges duties no safety check and no
timer sees skipped, because skipping them only makes the cluster slower (a
follower learns by a ``Learn`` round trip instead, a transfer times out and
the leader serves on). A runtime reports every call into a replica, as to
``TimerChecker``:

    on_call(node_id, replica, call, args, ready, time)

The rules, by name (``Violation.rule``), each from ``docs/protocol.md``:

- ``runs-learned``: once an ``Accept`` or ``Heartbeat`` from another node got
  past the edge and was followed (answered with ``Accepted`` or
  ``HeartbeatReply``), the receiver's chosen prefix ``c`` is not still below
  the sender's while a run of that message covers ``c`` under the ballot the
  receiver holds at ``c``. ("A receiver whose accepted ballot for a slot
  equals the run's ballot holds the chosen value": it marks it chosen from
  the run, without asking.)
- ``runs-cover``: an ``Accept`` or ``Heartbeat`` a leader sends a peer names,
  below its chosen prefix, the ballots of every slot from where that peer
  last said it stood (``peer_slot_chosen``, not below the leader's
  ``log_start``), in contiguous runs ending at the prefix, unless the runs
  reach ``runs_max``. ("The chosen prefix, with ballots from where ``peer``
  last said it stood.")
- ``config-prepare-asks``: when a leader sends the ``Prepare`` messages of a
  configuration it has not yet prepared (``C(slot_next)``, before it proposes
  there), every voter of it that never sent a ``Promise`` under the leader's
  ballot gets one in the same call. ("Phase 1 for the configuration that
  takes effect at or before ``slot``: ask its voters that have not promised".)
- ``config-prepare-sent``: a leader with something to propose (a command
  queued, a slot to fill, or a configuration to carry the log to), whose
  configuration at ``slot_next`` has it as a voter and whose promises are no
  majority of that configuration's voters, has sent each voter of it that
  never promised a ``Prepare`` under its ballot within ``accept_retry_s``
  when a tick returns (counted from the first such tick of the ballot and
  configuration). ("Phase 1 for the configuration that takes effect at or
  before ``slot``", asked again while unanswered: without it the leader
  proposes nothing there until it is deposed.)
- ``config-prepare-paced``: a leader sends one voter a ``Prepare`` for a
  configuration under one ballot again only ``accept_retry_s`` after it last
  did. ("Asked again while unanswered", at the pace of a retry: session 24's
  sample asked on every call, a write and a reply per voter each time.)
- ``reproposes-at-once``: when a call returns, a leader whose Phase 1
  reported slots it has not proposed yet (``slot_next`` below its fill end)
  has no room left in its window, is no voter at ``slot_next``, or has no
  majority of promises for the configuration there. ("Phase 2 re-proposes,
  slot by slot, what the promises reported ... only then new commands": a
  leader that waits for a command to arrive first holds the slots its
  predecessor left open, and every read behind them. Session 24's sample.)
- ``accept-paced``: a leader sends one peer the ``Accept`` of one slot under
  one ballot again only ``accept_retry_s`` after it last did. ("A proposal not
  chosen is sent again to the peers that have not voted, every
  ``accept_retry_s``": a retry storm costs every follower a write.)
- ``heartbeat-paced``: a leader's tick broadcasts ``Heartbeat`` only once
  ``heartbeat_interval_s`` has passed since it last did (from a tick, a read
  round or the end of Phase 1). ("Every ``heartbeat_interval_s``": a storm of
  heartbeats costs every follower a wake-up and a reply each.)
- ``promise-reports``: a ``Promise`` to a candidate whose ``slot_from`` is
  within ``slots_ahead_max`` of the acceptor's chosen prefix reports from the
  acceptor's own ``log_start``, not from its chosen prefix. ("Only a candidate
  far behind is told the slots below the chosen prefix cannot be reported":
  one told so for less must learn them first, a round trip before it leads.)
- ``transfer-sends``: a leader handing leadership over, with no proposal open
  (``slot_next == slot_chosen``) and a target that said it holds every slot
  chosen here, has sent that target ``TimeoutNow`` within ``accept_retry_s``
  when a tick returns. ("Once ``target`` has every slot chosen here, it gets
  ``TimeoutNow``", sent again each ``accept_retry_s`` until the target's
  Prepare ends the reign or the transfer's time is up.)
- ``transfer-limit``: and a transfer runs at most ``election_timeout_max_s``
  from the ``transfer_leadership`` call that began it (the leader's clock):
  a leader still handing to that target when a later tick returns is named.
  ("A transfer not done within ``election_timeout_max_s`` is dropped": until
  then the leader answers every command ``Busy``. Session 24's sample: a
  limit read as ``now / election_timeout_max_s`` held a leader's commands
  until its target came back.)
- ``learn-paced``: a replica sends ``LearnRequest`` at most once per
  ``learn_retry_s`` (its clock), but at once again after stepping a ``Learn``
  that advanced its chosen prefix and came full (``learn_max_entries``
  entries, or a payload within ``batch_max_bytes`` of ``learn_max_bytes``: a
  page a limit cut, so more waits). ("At most once per ``learn_retry_s``": a
  ``Learn`` that taught nothing, or came whole, asks nothing more; every
  request costs its source a read of its log.)
- ``stranger-asks``: a replica that steps an ``Accept`` or ``Heartbeat`` from a
  node in no configuration it holds, showing a chosen prefix past its own,
  sends a ``LearnRequest`` to a member it knows (not itself) in the same call,
  unless it sent one within ``learn_retry_s``. ("A node behind a leader it
  does not know ... asks a member it does know for the log": the stranger's
  messages it refuses, and nobody else may ever reach it.)

Cost: a walk of the runs of each followed ``Accept`` and ``Heartbeat`` (a
handful) and of each such message a leader sends; two attribute reads per
leader tick; a few per leader call, and a count of its promises while slots
reported in Phase 1 wait with room in the window (a call or two a reign).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from paxon.protocol.messages import (
    Accept,
    Accepted,
    ChosenPrefix,
    Heartbeat,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Message,
    Prepare,
    Promise,
    TimeoutNow,
)
from paxon.protocol.ready import Ready
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import Ballot, NodeId
from paxon.sim.checkers import Violation

# Float slack for comparing two readings of one replica clock.
_EPSILON_S = 1e-9
# Accept sends remembered per leader before those below its chosen prefix go.
_SENT_KEPT_MAX = 4096


class PromptnessChecker:
    """Checks every rule in the module docstring on each call it is told of."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        # Per node: the replica object and its clock when it last sent TimeoutNow.
        self._handed_at: dict[NodeId, tuple[int, float]] = {}
        # Per node: the replica object, the target and its clock when a
        # transfer_leadership call last began a transfer.
        self._transfer_began: dict[NodeId, tuple[int, NodeId, float]] = {}
        # Per node: the ballot it leads or stands under, and who promised it.
        self._promised: dict[NodeId, tuple[Ballot, set[NodeId]]] = {}
        # Per node: its replica object, its ballot, and when it last sent each
        # (slot, peer) an Accept under that ballot (its own clock).
        self._accepts_sent: dict[NodeId, tuple[int, Ballot, dict[tuple[int, NodeId], float]]] = {}
        # Per node: its replica object and ballot, and its clock when it last
        # broadcast heartbeats under that ballot.
        self._beat_at: dict[NodeId, tuple[int, Ballot | None, float]] = {}
        # Per node: its replica object, its clock when it last sent a
        # LearnRequest, and its chosen prefix when the last call returned.
        self._learning: dict[NodeId, tuple[int, float, int]] = {}
        # Per node: its replica object and ballot, when it last sent each voter
        # a Prepare under that ballot as leader, and since when (per epoch) it
        # has waited on a configuration its promises do not prepare.
        self._config_asks: dict[
            NodeId, tuple[int, Ballot, dict[NodeId, float], dict[int, float]]
        ] = {}

    def on_call(
        self,
        node_id: NodeId,
        replica: Replica,
        call: str,
        args: Sequence[Any],
        ready: Ready,
        time: float,
    ) -> None:
        messages = ready.messages
        asked_at = self._check_learn_paced(node_id, replica, call, args, ready, time)
        if call == "step" and isinstance(args[0], Accept | Heartbeat):
            self._check_learned(node_id, replica, args[0], ready, time)
            self._check_stranger(node_id, replica, args[0], ready, asked_at, time)
        elif call == "step" and isinstance(args[0], Promise):
            self._note_promise(node_id, replica, args[0])
        elif call == "step" and isinstance(args[0], Prepare):
            self._check_reported(node_id, replica, ready.messages_after_persist, time)
        if replica.role is not Role.LEADER:
            return
        if call == "transfer_leadership" and replica.transferring_to is not None:
            self._transfer_began[node_id] = (id(replica), replica.transferring_to, replica.now)
        asked: set[NodeId] = set()
        for message in messages:
            if isinstance(message, Accept | Heartbeat) and message.dst != node_id:
                self._check_cover(node_id, replica, message.dst, message.chosen, time)
                if isinstance(message, Accept):
                    self._check_paced(node_id, replica, message, time)
            elif isinstance(message, Prepare) and message.ballot == replica.ballot_own:
                asked.add(message.dst)
                self._check_prepare_paced(node_id, replica, message.dst, time)
            elif isinstance(message, TimeoutNow):
                self._handed_at[node_id] = (id(replica), replica.now)
        if asked:
            self._check_asked(node_id, replica, asked, time)
        if any(isinstance(message, Heartbeat) for message in messages):
            self._check_heartbeats(node_id, replica, call, time)
        self._check_reproposed(node_id, replica, call, time)
        if call == "tick":
            self._check_transfer(node_id, replica, time)
            self._check_transfer_limit(node_id, replica, time)
            self._check_config_prepared(node_id, replica, time)

    def _note_promise(self, node_id: NodeId, replica: Replica, promise: Promise) -> None:
        ballot = replica.ballot_own
        if promise.ballot != ballot:
            return
        held = self._promised.get(node_id)
        if held is None or held[0] != ballot:
            held = self._promised[node_id] = (ballot, set())
        held[1].add(promise.src)

    def _check_asked(
        self, node_id: NodeId, replica: Replica, asked: set[NodeId], time: float
    ) -> None:
        held = self._promised.get(node_id)
        promised = held[1] if held is not None and held[0] == replica.ballot_own else set()
        voters = replica._history.at(replica.slot_next).voters
        missed = sorted(voters - promised - asked - {node_id})
        if missed:
            self._fail(
                time,
                "config-prepare-asks",
                f"n{node_id} asked {sorted(asked)} to promise {replica.ballot_own} for the "
                f"configuration at s{replica.slot_next}, but not {missed}, which never did",
            )

    def _check_reported(
        self, node_id: NodeId, replica: Replica, messages: Sequence[Message], time: float
    ) -> None:
        for promise in messages:
            if not isinstance(promise, Promise) or promise.dst == node_id:
                continue
            near = promise.slot_chosen - promise.slot_from <= replica.config.slots_ahead_max
            if near and promise.log_start != replica.log_start:
                self._fail(
                    time,
                    "promise-reports",
                    f"n{node_id} told n{promise.dst} (slot_from {promise.slot_from}, within "
                    f"{replica.config.slots_ahead_max} of its chosen prefix "
                    f"{promise.slot_chosen}) that it reports from s{promise.log_start}, "
                    f"not from its log_start s{replica.log_start}",
                )

    def _check_learned(
        self,
        node_id: NodeId,
        replica: Replica,
        message: Accept | Heartbeat,
        ready: Ready,
        time: float,
    ) -> None:
        if message.src == node_id or not _answered(message, ready):
            return
        prefix = message.chosen
        chosen = replica.slot_chosen
        if chosen >= prefix.slot_chosen:
            return
        for run in prefix.runs:
            if run.slot_start <= chosen < run.slot_end:
                held = replica.entry(chosen)
                if held is not None and held.ballot == run.ballot:
                    self._fail(
                        time,
                        "runs-learned",
                        f"n{node_id} holds s{chosen} under {run.ballot}, which the run "
                        f"[{run.slot_start}, {run.slot_end}) from n{message.src} names "
                        f"chosen, yet its chosen prefix stayed at {chosen}",
                    )
                return

    def _check_learn_paced(
        self,
        node_id: NodeId,
        replica: Replica,
        call: str,
        args: Sequence[Any],
        ready: Ready,
        time: float,
    ) -> float:
        """``learn-paced``; returns when the replica last sent a LearnRequest
        before this call (its clock; -inf if never in this life)."""
        life, asked_at, before = self._learning.get(node_id, (0, float("-inf"), -1))
        if life != id(replica):
            asked_at, before = float("-inf"), -1  # a new life: nothing known of it
        now = replica.now
        config = replica.config
        sent = [
            m
            for m in (*ready.messages, *ready.messages_after_persist)
            if isinstance(m, LearnRequest) and m.dst != node_id
        ]
        last = asked_at
        for request in sent:
            if now - last < config.learn_retry_s - _EPSILON_S and not (
                call == "step"
                and isinstance(args[0], Learn)
                and 0 <= before < replica.slot_chosen
                and _full(args[0], replica)
            ):
                self._fail(
                    time,
                    "learn-paced",
                    f"n{node_id} asked n{request.dst} to learn from s{request.slot_from} "
                    f"{now - last:.3f} s after its last request (at least "
                    f"{config.learn_retry_s:.3f} s, unless a full Learn just taught it)",
                )
            last = now
        self._learning[node_id] = (id(replica), last, replica.slot_chosen)
        return asked_at

    def _check_stranger(
        self,
        node_id: NodeId,
        replica: Replica,
        message: Accept | Heartbeat,
        ready: Ready,
        asked_at: float,
        time: float,
    ) -> None:
        if (
            message.dst != node_id
            or message.src in replica.members
            or message.chosen.slot_chosen <= replica.slot_chosen
            or replica.now - asked_at < replica.config.learn_retry_s + _EPSILON_S
            or message.src in replica._history.ids()
        ):
            return
        known = set(replica.members) - {node_id}
        if not known:
            return  # alone in its configuration: it leads itself
        if not any(
            isinstance(m, LearnRequest) and m.dst in known
            for m in (*ready.messages, *ready.messages_after_persist)
        ):
            self._fail(
                time,
                "stranger-asks",
                f"n{node_id} (chosen prefix {replica.slot_chosen}) refused n{message.src}, "
                f"in no configuration it holds, showing {message.chosen.slot_chosen}, and "
                f"asked none of {sorted(known)} to learn",
            )

    def _check_cover(
        self, node_id: NodeId, replica: Replica, peer: NodeId, prefix: ChosenPrefix, time: float
    ) -> None:
        said = replica.peer_slot_chosen(peer)
        low = replica.log_start if said is None else max(said, replica.log_start)
        runs = prefix.runs
        if prefix.slot_chosen <= low or len(runs) >= replica.config.runs_max:
            return
        contiguous = all(a.slot_end == b.slot_start for a, b in itertools.pairwise(runs))
        if (
            runs
            and contiguous
            and runs[0].slot_start <= low < prefix.slot_chosen == runs[-1].slot_end
        ):
            return
        shown = ", ".join(f"[{r.slot_start}, {r.slot_end})" for r in runs) or "none"
        self._fail(
            time,
            "runs-cover",
            f"n{node_id} sent n{peer} the chosen prefix {prefix.slot_chosen} with runs "
            f"{shown}, which do not cover it from {low}, where n{peer} last stood",
        )

    def _check_paced(self, node_id: NodeId, replica: Replica, accept: Accept, time: float) -> None:
        held = self._accepts_sent.get(node_id)
        if held is None or held[0] != id(replica) or held[1] != accept.ballot:
            held = self._accepts_sent[node_id] = (id(replica), accept.ballot, {})
        sent = held[2]
        key = (accept.slot, accept.dst)
        now = replica.now
        last = sent.get(key)
        retry = replica.config.accept_retry_s
        if last is not None and now - last < retry - _EPSILON_S:
            self._fail(
                time,
                "accept-paced",
                f"n{node_id} sent n{accept.dst} the Accept of s{accept.slot} under "
                f"{accept.ballot} again {now - last:.3f} s after the last (at least {retry:.3f} s)",
            )
        sent[key] = now
        if len(sent) > _SENT_KEPT_MAX:
            for stale in [k for k in sent if k[0] < replica.slot_chosen]:
                del sent[stale]

    def _check_heartbeats(self, node_id: NodeId, replica: Replica, call: str, time: float) -> None:
        life, ballot, last = self._beat_at.get(node_id, (0, None, float("-inf")))
        if life != id(replica) or ballot != replica.ballot_own:
            last = float("-inf")
        now = replica.now
        interval = replica.config.heartbeat_interval_s
        if call == "tick" and now - last < interval - _EPSILON_S:
            self._fail(
                time,
                "heartbeat-paced",
                f"n{node_id} broadcast heartbeats on a tick {now - last:.6f} s after the "
                f"last broadcast (at least {interval:.6f} s)",
            )
        self._beat_at[node_id] = (id(replica), replica.ballot_own, now)

    def _check_transfer(self, node_id: NodeId, replica: Replica, time: float) -> None:
        target = replica.transferring_to
        if target is None or replica.slot_next != replica.slot_chosen:
            return
        said = replica.peer_slot_chosen(target)
        if said is None or said < replica.slot_chosen:
            return
        life, handed_at = self._handed_at.get(node_id, (0, float("-inf")))
        waited = replica.now - (handed_at if life == id(replica) else float("-inf"))
        if waited >= replica.config.accept_retry_s + _EPSILON_S:
            self._fail(
                time,
                "transfer-sends",
                f"n{node_id} hands leadership to n{target}, which holds its chosen prefix "
                f"{replica.slot_chosen}, but sent it no TimeoutNow for {waited:.3f} s "
                f"(at most {replica.config.accept_retry_s:.3f} s)",
            )
            self._handed_at[node_id] = (id(replica), replica.now)  # once per wait

    def _check_transfer_limit(self, node_id: NodeId, replica: Replica, time: float) -> None:
        target = replica.transferring_to
        began = self._transfer_began.get(node_id)
        if target is None or began is None or began[:2] != (id(replica), target):
            return
        ran = replica.now - began[2]
        limit = replica.config.election_timeout_max_s
        if ran > limit + _EPSILON_S:
            self._fail(
                time,
                "transfer-limit",
                f"n{node_id} still hands leadership to n{target} {ran:.3f} s after it was "
                f"asked (at most election_timeout_max_s, {limit:.3f} s)",
            )
            del self._transfer_began[node_id]  # once per transfer

    def _check_prepare_paced(
        self, node_id: NodeId, replica: Replica, voter: NodeId, time: float
    ) -> None:
        sent = self._asks_of(node_id, replica)[2]
        last = sent.get(voter)
        retry = replica.config.accept_retry_s
        if last is not None and replica.now - last < retry - _EPSILON_S:
            self._fail(
                time,
                "config-prepare-paced",
                f"n{node_id} sent n{voter} a Prepare under {replica.ballot_own} again "
                f"{replica.now - last:.3f} s after the last (at least {retry:.3f} s)",
            )
        sent[voter] = replica.now

    def _check_reproposed(self, node_id: NodeId, replica: Replica, call: str, time: float) -> None:
        slot = replica.slot_next
        if slot >= replica.slot_fill_end:
            return
        window = min(replica.config.pipeline_window_slots, replica._history.newest.alpha)
        config = replica._history.at(slot)
        if slot - replica.slot_chosen >= window or node_id not in config.voters:
            return
        if config.epoch not in replica._prepared_epochs and not _promised_majority(replica, slot):
            return
        self._fail(
            time,
            "reproposes-at-once",
            f"n{node_id} leads with s{slot} to s{replica.slot_fill_end - 1} reported in "
            f"Phase 1 and room in its window (chosen prefix {replica.slot_chosen}, window "
            f"{window}), yet proposed nothing there when its {call} returned",
        )

    def _asks_of(
        self, node_id: NodeId, replica: Replica
    ) -> tuple[int, Ballot, dict[NodeId, float], dict[int, float]]:
        held = self._config_asks.get(node_id)
        if held is None or held[0] != id(replica) or held[1] != replica.ballot_own:
            held = self._config_asks[node_id] = (id(replica), replica.ballot_own, {}, {})
        return held

    def _check_config_prepared(self, node_id: NodeId, replica: Replica, time: float) -> None:
        config = replica._history.at(replica.slot_next)
        voters = config.voters
        waiting = (
            replica._queue
            or replica._fill_end > replica.slot_next
            or replica.slot_next < replica._history.newest_effect
        )
        held = self._promised.get(node_id)
        promised = {node_id} | (
            held[1] if held is not None and held[0] == replica.ballot_own else set()
        )
        if not waiting or node_id not in voters or len(voters & promised) > len(voters) // 2:
            return
        _, _, sent, since = self._asks_of(node_id, replica)
        first = since.setdefault(config.epoch, replica.now)
        retry = replica.config.accept_retry_s
        late = sorted(
            voter
            for voter in voters - promised
            if replica.now - max(first, sent.get(voter, float("-inf"))) > retry + _EPSILON_S
        )
        if late:
            self._fail(
                time,
                "config-prepare-sent",
                f"n{node_id} waits to propose at s{replica.slot_next} with promises from "
                f"{sorted(voters & promised)} of epoch {config.epoch}'s voters {sorted(voters)}, "
                f"but asked {late} nothing for over {retry:.3f} s",
            )
            for voter in late:
                sent[voter] = replica.now  # once per wait

    def _fail(self, time: float, rule: str, detail: str) -> None:
        self.violations.append(Violation(time, rule, detail))


def _promised_majority(replica: Replica, slot: int) -> bool:
    """``Replica._prepared`` without its cache: a majority of the voters deciding
    ``slot`` promised the leader's ballot in promises that cover that slot's
    configuration (read-only: a checker must not warm the replica's cache)."""
    start = max(replica._history.effect_of(slot), replica._slot_prepared)
    covering = [
        src for src, promise in replica._promises.items() if replica._covers(promise, start)
    ]
    return replica._has_quorum(replica._history.at(slot), covering)


def _full(learn: Learn, replica: Replica) -> bool:
    """Whether ``learn`` came as full as a page a limit cut."""
    config = replica.config
    if len(learn.entries) >= config.learn_max_entries:
        return True
    size = sum(len(c.payload) for entry in learn.entries for c in entry.value.commands)
    return size > config.learn_max_bytes - config.batch_max_bytes


def _answered(message: Message, ready: Ready) -> bool:
    """Whether the step followed ``message``: it voted or replied to its sender."""
    kind = Accepted if isinstance(message, Accept) else HeartbeatReply
    return any(
        isinstance(reply, kind) and reply.dst == message.src
        for reply in (*ready.messages, *ready.messages_after_persist)
    )


__all__ = ["PromptnessChecker"]
