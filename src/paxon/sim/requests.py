"""One request at a time to the members, retried as the register clients retry.

The coordination clients of a ``RuntimeCluster`` (``lock_clients``,
``watch_clients``) each keep one request in flight: a command (``Submit``,
with the client's own session: same ``(client_id, seq)`` on every retry) or a
query (``Query``, serializable: any member answers from its applied state).
A ``Requester`` sends it over the simulated network and retries it: at a
timeout on the next member, at a redirect straight to the named leader, at a
retryable failure on the next member after a short pause. Anything else is
handed to the owner's ``on_answer``.

Contract: a reply to an attempt already given up is ignored; ``on_answer``
runs once per request; the requester draws no randomness.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from paxon.net.client_messages import (
    ClientRequest,
    ClientResponse,
    Failure,
    Query,
    Redirect,
    Reply,
    Submit,
)
from paxon.protocol.types import Command

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster

RETRYABLE: Final = frozenset({"busy", "unavailable", "timeout", "not_leader", "no_quorum"})
"""Failures retried on the next member rather than handed to the owner."""

_RETRY_PAUSE_S: Final = 0.005

Answer = Callable[[Reply | Failure], None]
"""The owner's handler of the final answer: a reply, or a failure not retried."""


@dataclass(slots=True)
class Requester:
    """One client's endpoint and session, and its request in flight."""

    cluster: RuntimeCluster
    endpoint: int
    target: int
    on_answer: Answer
    seq: int = 0
    attempt: int = 0
    payload: bytes | None = None  # the request in flight (None: idle)
    is_query: bool = False
    wait_s: float = 0.0  # a held query's wait, added to the timeout
    redirected: bool = False

    @property
    def busy(self) -> bool:
        return self.payload is not None

    def submit(self, payload: bytes) -> None:
        """Send a command under the next sequence number of this client's session."""
        self.seq += 1
        self.cluster.checker.on_submit(Command(self.endpoint, self.seq, payload))
        self._start(payload, is_query=False, wait_s=0.0)

    def query(self, payload: bytes, *, wait_s: float = 0.0) -> None:
        """Send a serializable query (held by the member up to ``wait_s``)."""
        self._start(payload, is_query=True, wait_s=wait_s)

    def rotate(self) -> None:
        """Aim the next request at the next member."""
        members = self.cluster.members
        self.target = members[self.target % len(members)]

    def receive(self, response: ClientResponse) -> None:
        """An answer reaches the endpoint."""
        if self.payload is None or response.request_id != self.attempt:
            return  # an answer to an attempt already given up
        if isinstance(response, Redirect) or (
            isinstance(response, Failure) and response.code in RETRYABLE
        ):
            if isinstance(response, Redirect) and response.leader_id is not None:
                self.target = response.leader_id
                self.redirected = True
            self.attempt += 1  # the pending timeout no longer applies
            cluster = self.cluster
            cluster.push(cluster.time + _RETRY_PAUSE_S, self._retry)
            return
        assert isinstance(response, Reply | Failure)
        self.payload = None
        self.attempt += 1
        self.on_answer(response)

    def _start(self, payload: bytes, *, is_query: bool, wait_s: float) -> None:
        assert self.payload is None, "one request at a time"
        self.payload = payload
        self.is_query = is_query
        self.wait_s = wait_s
        self.redirected = False
        self._send()

    def _retry(self) -> None:
        if self.payload is None:
            return
        if not self.redirected:
            self.rotate()
        self.redirected = False
        self._send()

    def _send(self) -> None:
        cluster = self.cluster
        payload = self.payload
        assert payload is not None
        self.attempt += 1
        request: ClientRequest
        if self.is_query:
            request = Query(self.attempt, payload, False)
        else:
            request = Submit(self.attempt, self.endpoint, self.seq, payload)
        endpoint, target = self.endpoint, self.target
        for delay in cluster.network.delays(endpoint, target):
            cluster.push(
                cluster.time + delay,
                lambda: cluster.deliver_request(endpoint, target, request),
            )
        attempt = self.attempt
        timeout_s = cluster.config.client_timeout_s + self.wait_s
        cluster.push(cluster.time + timeout_s, lambda: self._timeout(attempt))

    def _timeout(self, attempt: int) -> None:
        if self.attempt == attempt and self.payload is not None:
            self._retry()


__all__ = ["RETRYABLE", "Answer", "Requester"]
