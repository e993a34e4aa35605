"""Failing fast: a request this node cannot get served is refused at once.

A node that cannot reach the leader, or a leader that cannot reach a majority,
used to hold such requests until the client gave up (issue 12: 1-2% of the
throughput for the whole of a one-way link cut). The core says what it knows
(``Replica.serving``: a leader heard from a majority within
``election_timeout_min_s``; ``Replica.leader_live``: a follower heard from its
leader within the same bound, the one under which it refuses a Probe); this
module maps that to client answers. Decision table (``B`` is
``election_timeout_min_s``, 0.3 s by default):

| this node                       | a call on the ``Node``    | what it holds             |
|                                 | (HTTP, library)           |                           |
|---------------------------------|---------------------------|---------------------------|
| leader, a majority heard        | proposed / read here      | -                         |
| within ``B``                    |                           |                           |
| leader, no majority heard       | ``NoQuorum`` at once      | waiting commands and      |
| within ``B``                    | (503 ``no_quorum``)       | reads fail ``NoQuorum``   |
|                                 |                           | at the tick that sees it  |
|                                 |                           | (outcome unknown); steps  |
|                                 |                           | down at                   |
|                                 |                           | ``election_timeout_max_s``|
| follower, leader heard within   | forwarded to the leader   | -                         |
| ``B``                           |                           |                           |
| follower, leader not heard      | ``LeaderUnreachable`` at  | forwarded calls fail      |
| within ``B``, or no leader      | once (503                 | ``LeaderUnreachable`` at  |
| known                           | ``leader_unreachable``,   | the tick that sees it     |
|                                 | ``leader``,               | (outcome unknown), and so |
|                                 | ``leader_address``)       | do calls forwarded to a   |
|                                 |                           | leader another replaced   |
| just started, never knew a      | waits for one within the  | -                         |
| leader                          | call's deadline (first    |                           |
|                                 | election, links coming up)|                           |

The native port needs no table: a follower answers ``Redirect`` at once
whatever it hears, and a leader's ``NoQuorum`` goes back as a ``Failure``
with code ``no_quorum``, which ``paxon.Client`` retries on another node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from paxon.errors import LeaderUnreachable, NoQuorum, PaxonError
from paxon.protocol.replica import Replica, Role

_T = TypeVar("_T")


@dataclass(slots=True)
class _Forwarded:
    leader: int | None  # the leader heard when the call was forwarded
    error: PaxonError | None = None  # set when this module fails the call


class FailFast:
    """What this node can do with a request now, and the forwarded calls it runs."""

    def __init__(
        self,
        node_id: int,
        replica: Callable[[], Replica],
        address_of: Callable[[int], str | None],
    ) -> None:
        self._node_id = node_id
        self._replica = replica
        self._address_of = address_of
        self._knew_leader = False  # since start: before, a call waits for the first
        self._was_serving = False
        self._forwarded: dict[asyncio.Task[Any], _Forwarded] = {}

    @property
    def waits_for_first_leader(self) -> bool:
        """No leader known since start: a call waits (the first election).

        Read from the replica, not only at ticks: a call made between learning
        the leader and the next tick is a forwarded call like any other (it
        used to run to its own deadline, deaf to the leader's loss)."""
        self._note_leader(self._replica())
        return not self._knew_leader

    def _note_leader(self, replica: Replica) -> None:
        if replica.leader_live and replica.leader_hint is not None:
            self._knew_leader = True

    def refusal(self) -> PaxonError | None:
        """Why a request made on this node cannot be served or forwarded now;
        None when it can (a serving leader, a follower hearing its leader)."""
        replica = self._replica()
        if replica.role is Role.LEADER:
            if replica.serving:
                return None
            bound = replica.config.election_timeout_min_s
            return NoQuorum(
                f"node {self._node_id} leads but has heard from no majority within "
                f"{bound} s; nothing was done; retry on another node"
            )
        if replica.leader_live:
            return None
        return self._unreachable("nothing was done")

    async def forward(self, call: Coroutine[Any, Any, _T]) -> _T:
        """Run a call forwarded to the leader; ``LeaderUnreachable`` (outcome
        unknown) as soon as a tick finds the leader no longer heard. A call made
        before any leader was known runs to its own deadline."""
        task = asyncio.ensure_future(call)
        if self.waits_for_first_leader:
            return await task
        self._forwarded[task] = _Forwarded(self._replica().leader_hint)
        try:
            return await task
        except asyncio.CancelledError:
            forwarded = self._forwarded.get(task)
            if forwarded is None or forwarded.error is None:
                raise
            raise forwarded.error from None
        finally:
            self._forwarded.pop(task, None)
            task.cancel()

    def on_tick(self) -> NoQuorum | None:
        """After each tick: fail the forwarded calls if the leader is no longer
        heard; the error to fail what this leader holds with, once, when it
        stops serving (None otherwise)."""
        replica = self._replica()
        self._note_leader(replica)
        serving = replica.serving
        lapsed = self._was_serving and not serving and replica.role is Role.LEADER
        self._was_serving = serving
        if self._forwarded:
            self._fail_forwarded(replica)
        if not lapsed:
            return None
        bound = replica.config.election_timeout_min_s
        return NoQuorum(
            f"node {self._node_id} leads but has heard from no majority within {bound} s; "
            "the outcome of this request is unknown; retry on another node"
        )

    def _fail_forwarded(self, replica: Replica) -> None:
        """Fail the forwarded calls whose leader is no longer heard, or no longer
        leads (a call may wait on a deposed leader this node cannot reach)."""
        leader, heard = replica.leader_hint, replica.leader_live  # a leader hears itself
        for task, forwarded in self._forwarded.items():
            if forwarded.error is not None or (heard and forwarded.leader == leader):
                continue
            if heard and leader is not None:
                forwarded.error = LeaderUnreachable(
                    f"node {self._node_id} forwarded the request to node {forwarded.leader}, "
                    f"but node {leader} leads now; the outcome is unknown; retry",
                    leader_hint=leader,
                    leader_address=self._address_of(leader),
                )
            else:
                forwarded.error = self._unreachable(
                    "the outcome of the forwarded request is unknown"
                )
            task.cancel()

    def _unreachable(self, outcome: str) -> LeaderUnreachable:
        replica = self._replica()
        leader = replica.leader_hint
        bound = replica.config.election_timeout_min_s
        if leader is None or leader == self._node_id:
            return LeaderUnreachable(
                f"node {self._node_id} knows no live leader (none heard within {bound} s); "
                f"{outcome}; retry on another node"
            )
        address = self._address_of(leader)
        at = f" at {address}" if address else ""
        return LeaderUnreachable(
            f"node {self._node_id} has not heard from the leader, node {leader}, within "
            f"{bound} s; {outcome}; retry at node {leader}{at} or another node",
            leader_hint=leader,
            leader_address=address,
        )


__all__ = ["FailFast"]
