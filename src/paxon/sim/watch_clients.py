"""The watchers of a ``RuntimeCluster``: clients that follow a prefix through
held ``Events`` queries, resuming on another member when one fails them.

Each of ``config.watch_clients`` watchers follows one prefix (watcher 0 the
whole key space, the others one drawn from ``PREFIXES``: the registers, the
lease holders' keys, the lock waiters, the guarded key) from revision 1, as
``paxon.watching`` does: one serializable ``Events(prefix, from_revision,
after_key, limit=PAGE, wait_ms=WAIT_MS)`` at a time (``paxon.sim.requests``),
held by the member until a change it asks for is applied
(``paxon.node.watches``), then the next from the answer's cursor
(``next_revision``, ``next_key``). At a timeout (the member crashed, paused,
or was cut off) it asks the next member from the same cursor; after an
answer it moves to another member now and then (``ROTATE``), so streams are
resumed across members, leader changes and restarts.

Every page goes to the watch check (``paxon.sim.watch_check``), which holds
it to the store's changes. A ``RevisionCompacted`` answer ends the stream
(the check judges the cut it names); the watcher starts a new one after it.

Contract: every random choice comes from their own stream (``{seed}:watches``).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from paxon.kv.codec import decode_result, encode_query
from paxon.kv.model import ErrorResult, Events, EventsResult
from paxon.net.client_messages import ClientResponse, Failure, Reply
from paxon.sim.network import CLIENT_BASE
from paxon.sim.requests import Requester

if TYPE_CHECKING:
    from paxon.sim.runtime import RuntimeCluster

PREFIXES: Final = ("k", "L", "_paxon/lock/", "F")
"""The prefixes watchers after the first follow (the first follows everything)."""

PAGE: Final = 8
"""Events per answer at most: small, so streams resume inside a revision too."""

WAIT_MS: Final = 300
"""How long a member holds a query with nothing to answer yet."""

ROTATE: Final = 0.1
"""The odds of moving to another member after an answer."""

_COMPACTED = "compacted"


@dataclass(slots=True)
class Watcher:
    index: int
    prefix: str
    requester: Requester
    from_revision: int = 1
    after_key: str = ""


class WatchClients:
    """The cluster's watchers (``config.watch_clients`` of them)."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self._rng = random.Random(f"{seed}:watches")
        config = cluster.config
        members = cluster.first_members
        # After the register clients, the operator, the lease holders and the contenders.
        self._base = CLIENT_BASE + config.clients + 1 + config.lease_clients + config.lock_clients
        self.all: list[Watcher] = []
        for index in range(config.watch_clients):
            prefix = "" if index == 0 else self._rng.choice(PREFIXES)
            target = members[index % len(members)]
            answer = functools.partial(self._answer_of, index)
            requester = Requester(cluster, self._base + index, target, answer)
            self.all.append(Watcher(index, prefix, requester))

    def holds(self, endpoint: int) -> bool:
        return 0 <= endpoint - self._base < len(self.all)

    def receive(self, endpoint: int, response: ClientResponse) -> None:
        """An answer reaches watcher ``endpoint``."""
        self.all[endpoint - self._base].requester.receive(response)

    def start(self) -> None:
        for watcher in self.all:
            self._cluster.watches.start(watcher.index, watcher.prefix, watcher.from_revision)
            at = 0.08 + 0.01 * watcher.index
            self._cluster.push(at, functools.partial(self._ask, watcher))

    def _ask(self, watcher: Watcher) -> None:
        if watcher.requester.busy:
            return
        query = Events(
            watcher.prefix,
            True,
            watcher.from_revision,
            watcher.after_key,
            PAGE,
            False,
            WAIT_MS,
        )
        watcher.requester.query(encode_query(query), wait_s=WAIT_MS / 1000)

    def _answer_of(self, index: int, response: Reply | Failure) -> None:
        cluster = self._cluster
        watcher = self.all[index]
        endpoint = watcher.requester.endpoint
        if isinstance(response, Failure):
            code, message = response.code, response.message
        else:
            result = decode_result(response.payload)
            if isinstance(result, EventsResult):
                if cluster.tracing:
                    cluster.log(
                        f"watcher {endpoint} from n{watcher.requester.target} at "
                        f"({watcher.from_revision}, {watcher.after_key!r}): "
                        f"{[(e.revision, e.kv.key) for e in result.events]}, next "
                        f"({result.next_revision}, {result.next_key!r}) of {result.revision}"
                    )
                cluster.watches.on_received(index, result.events, cluster.time)
                watcher.from_revision = result.next_revision
                watcher.after_key = result.next_key
                if self._rng.random() < ROTATE:
                    watcher.requester.rotate()
                self._later(watcher, 0.001)
                return
            code, message = (
                (result.code, result.message)
                if isinstance(result, ErrorResult)
                else ("reply", repr(result))
            )
        if code == _COMPACTED:
            watcher.from_revision = cluster.watches.on_compacted(
                index, watcher.from_revision, message, cluster.time
            )
            watcher.after_key = ""
        else:
            cluster.checker.fail(
                cluster.time,
                "client-error",
                f"watcher {endpoint} (prefix {watcher.prefix!r}) was answered {code}: {message}",
            )
        self._later(watcher, 0.05)

    def _later(self, watcher: Watcher, delay: float) -> None:
        cluster = self._cluster
        cluster.push(cluster.time + delay, functools.partial(self._ask, watcher))


__all__ = ["PAGE", "PREFIXES", "WAIT_MS", "WatchClients"]
