"""What a node takes from the world outside it: disk, network, randomness, its core.

``Node`` opens its storage, starts its group committer and transport, and
builds its replica through an ``Environment``. ``REAL`` is production: files
on disk, a sync thread, TCP. The simulator (``paxon.sim.runtime``) passes its
own, so the whole runtime (every rule of ``node.py``: persist, then send what
waited; apply in slot order; release reads; answer clients; snapshots and
their transfer) runs over simulated disks, networks and clocks, under every
simulated fault. Time comes from the node's event loop (``loop.time()``) and
the ``wall_time_s`` the node is given, so a simulated loop brings its clock.

The protocols below are exactly what the node uses of each part; a simulated
part implements them and nothing more.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from paxon.net.client_messages import ClientResponse
from paxon.net.peer_messages import PeerMessage
from paxon.net.transport import Transport, TransportStats
from paxon.protocol.replica import Replica
from paxon.storage import GroupCommitter, Storage
from paxon.storage.codec import StorageRecord
from paxon.storage.unsynced import UnsyncedFileSystem


class NodeTransport(Protocol):
    """Peer links and client connections, as the node uses them (``net.transport``)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    @property
    def address(self) -> tuple[str, int]: ...

    def send(self, message: PeerMessage) -> None: ...

    def backlog_bytes(self, peer: int) -> int: ...

    def reachable(self, peer: int) -> bool: ...

    def client_address_of(self, peer: int) -> str | None: ...

    def incarnation_of(self, peer: int) -> int | None: ...

    def set_bound_incarnations(self, bound: Mapping[int, int]) -> None: ...

    def stats(self) -> TransportStats: ...

    def set_peers(self, peers: Mapping[int, tuple[str, int]]) -> None: ...


class ClientAnswers(Protocol):
    """What the runtime answers a client's request through: the real transport's
    ``ClientConnection``, or the simulator's (so mypy holds both to it)."""

    def send(self, response: ClientResponse) -> None: ...

    def reply(self, request_id: int, payload: bytes) -> None:
        """``send(Reply(request_id, payload))``, perhaps without making the Reply."""


class CommitTicket(Protocol):
    @property
    def lsn(self) -> int: ...


class Committer(Protocol):
    """Group commit of the log, as the node uses it (``storage.commit``)."""

    @property
    def lsn_durable(self) -> int: ...

    def submit(self, records: Sequence[StorageRecord], *, sync: bool = True) -> CommitTicket: ...

    def durable_future(self, lsn: int) -> asyncio.Future[None]: ...

    def may_sync_here(self) -> bool: ...

    def sync_here(self, lsn: int) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


StorageOpener = Callable[[str, int, str], Storage]
"""``open(data_dir, node_id, cluster_id)``: the recovered storage (``Storage.open``)."""

CommitterFactory = Callable[[Storage, Callable[[float], None]], Committer]
"""``make(storage, observe_sync_seconds)``."""


def _open_storage(data_dir: str, node_id: int, cluster_id: str) -> Storage:
    return Storage.open(data_dir, node_id=node_id, cluster_id=cluster_id)


def open_unsynced_storage(data_dir: str, node_id: int, cluster_id: str) -> Storage:
    """``paxon serve --unsafe-no-fsync`` (benchmarks only): every fsync skipped."""
    return Storage.open(data_dir, node_id=node_id, cluster_id=cluster_id, fs=UnsyncedFileSystem())


def _make_committer(storage: Storage, observe_sync: Callable[[float], None]) -> Committer:
    return GroupCommitter(storage, observe_sync=observe_sync)


def _make_transport(**settings: Any) -> NodeTransport:
    return Transport(**settings)


@dataclass(frozen=True, slots=True)
class Environment:
    open_storage: StorageOpener = _open_storage
    make_committer: CommitterFactory = _make_committer
    # Called with ``Transport``'s keyword arguments.
    make_transport: Callable[..., NodeTransport] = _make_transport
    # The replica's randomness (election timeouts); the simulator seeds it.
    make_rng: Callable[[], random.Random] = random.Random
    # ``Replica`` or a planted-bug variant of it (the simulator's mutants).
    replica_factory: Callable[..., Replica] = Replica
    # Measures durations for metrics and logs (never for decisions).
    stopwatch: Callable[[], float] = time.perf_counter
    # A leader's log stamps advance by this clock within a tenure (``logclock``).
    monotonic: Callable[[], float] = time.monotonic


REAL = Environment()
UNSYNCED = Environment(open_storage=open_unsynced_storage)
"""The real one, but no fsync ever: ``--unsafe-no-fsync``, for benchmarks only."""

__all__ = ["REAL", "UNSYNCED", "CommitTicket", "Committer", "Environment", "NodeTransport"]
