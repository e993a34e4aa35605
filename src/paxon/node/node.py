"""The node runtime: the one place the pure core meets sockets, disks and clocks.

``Node`` drives a ``Replica`` on an asyncio loop. Every call into the core
returns a ``Ready``, performed by ``_perform`` in the order
``paxon.protocol.ready`` fixes:

1. records go to the ``GroupCommitter`` (appended now, fsynced by its thread,
   many batches per fsync);
2. ``messages`` are sent at once;
3. ``messages_after_persist`` wait in ``_after_persist`` until the committer
   reports their lsn durable, then go out in lsn order (self-addressed ones are
   stepped into the core on the next loop turn);
4. chosen entries are applied to the state machine in slot order, and the
   clients waiting for those commands are answered;
5. read-index answers release the reads waiting on them.

Batching: commands and reads that arrive during one loop turn are handed to
the core together (``propose_many``, one ``read_index`` per batch); the core
packs commands into slots and keeps a window of slots in flight. As leader,
the node heads a batch with a clock entry (its wall clock, at most every
0.1 s; ``paxon.node.logclock``): the only time replicas see, through the log.
A client's command may not use the clock's client id 0. With a ``KvStore``,
the leader also proposes the history retention's compaction entries
(``paxon.node.history``) in that system session.

Who answers a client: the leader proposes and answers when the command is
applied. A follower answers a native client with a ``Redirect`` to the leader
(the client retries there with the same session), and forwards the calls made
on this object (``submit``/``query``, used by the HTTP API and library users)
through an internal ``Client``. When this node stops leading, every request
waiting on it is redirected: its command may still be chosen, and the retry's
session makes sure it is applied once. What cannot be served is refused at
once (``paxon.node.failfast``): a leader that hears no majority answers
``NoQuorum``, a follower that does not hear its leader does not forward.

Auth (``paxon.node.authgate``, ``docs/security.md``): with a ``KvStore``, a
client logs in with ``Authenticate`` on any node (checked on a worker
thread); commands and queries carry the token inside their payload, the node
refuses early what the store would refuse, hashes the password of a ``user
add``/``passwd`` before proposing it, and the store checks again at apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from paxon.client import (
    SESSION_RETRY_MAX_S,
    Client,
    SessionLanes,
    merge_status,
    split_address,
)
from paxon.errors import (
    BadRequest,
    Busy,
    NoQuorum,
    NotLeader,
    NotSupported,
    PaxonError,
    Timeout,
    Unavailable,
    ValueTooLarge,
)
from paxon.kv.store import KvStore
from paxon.net.client_messages import (
    Authenticate,
    ChangeMembers,
    ClientRequest,
    Failure,
    Query,
    Redirect,
    Reply,
    StatusReply,
    StatusRequest,
    Submit,
)
from paxon.net.peer_auth import INSECURE, PeerSecurity
from paxon.net.peer_messages import PeerMessage, SnapshotChunk
from paxon.node import status_view
from paxon.node.authgate import AuthGate
from paxon.node.config import NodeConfig
from paxon.node.environment import REAL, ClientAnswers, Committer, Environment, NodeTransport
from paxon.node.failfast import FailFast
from paxon.node.forwarding import Forwarder
from paxon.node.history import LeaderHistory
from paxon.node.logclock import ClockStamper, LeaderClock, check_client_id, is_stamp
from paxon.node.machine import InvalidSnapshot, ReplicatedMachine, refusal
from paxon.node.member_duties import LeaderMembership
from paxon.node.members import refusal_bindings
from paxon.node.metrics import NodeMetrics
from paxon.node.snapshot_transfer import SnapshotTransfers
from paxon.node.snapshots import LocalSnapshots
from paxon.node.watches import WatchParking
from paxon.protocol.membership import ConfigHistory, Configuration
from paxon.protocol.messages import LearnRequest, Message
from paxon.protocol.ready import ChosenEntry, ReadIndex, Ready
from paxon.protocol.replica import Replica, Role
from paxon.protocol.types import Command, Slot
from paxon.security.client_tls import ClientTls
from paxon.statemachine import StateMachine
from paxon.storage import Storage
from paxon.storage.errors import StorageError, UnrestorableSnapshot
from paxon.storage.first_config import read_first_configuration, write_first_configuration
from paxon.storage.snapshot import SnapshotMeta

Address = tuple[str, int]
# Commit latency is observed for one request in this many (by request id):
# a histogram update per command would cost more than the rest of its reply.
_LATENCY_SAMPLE = 8


DUTIES_INTERVAL_S = 0.1
"""How often the tick loop refreshes the metrics gauges, expires departures and,
leading, looks for incarnations to bind."""

_PEERS_WAIT_S = 0.02
"""How often a call made on a follower that knows no other member yet (its peer
links are still coming up) checks again, within the call's deadline."""


@dataclass(slots=True)
class _RemoteWaiter:
    """A native client's request, answered on its connection."""

    connection: ClientAnswers
    request_id: int
    started: float


_Waiter = _RemoteWaiter | asyncio.Future[bytes]


@dataclass(slots=True)
class _PendingQuery:
    payload: bytes
    answer: _Waiter


HANDOVER_MAX_S = 2.0
"""How long a stopping leader waits for its successor to take over."""

LEAVING_LINK_S = 5.0
"""How long a member gone from the configurations keeps its peer link here. A
removed leader hands over only once a majority of the new voters have told it
they know of its removal; hanging up at once dropped that very reply (the
membership benchmark: an election, and writes held 2 s, instead of a handover)."""


class Node:
    """One member of a paxon cluster, replicating ``state_machine``."""

    def __init__(
        self,
        node_id: int,
        peers: Mapping[int, str | Address],
        data_dir: str,
        state_machine: StateMachine,
        *,
        config: NodeConfig | None = None,
        listen: str | Address | None = None,
        logger: logging.Logger | None = None,
        peer_listen: str | Address | None = None,
        peer_security: PeerSecurity = INSECURE,
        client_tls: ssl.SSLContext | None = None,
        advertise_client: str | None = None,
        forward_tls: ClientTls | None = None,
        wall_time_s: Callable[[], float] = time.time,
        environment: Environment = REAL,
        joined: Configuration | None = None,
    ) -> None:
        """``peers`` are the members' peer addresses (also their client addresses
        unless ``peer_listen`` gives peers a port of their own); ``advertise_client``
        is the address this node's clients use, told to the other members
        (default: ``listen``). ``forward_tls`` is how this node reaches the
        others' client ports when they use TLS. ``environment`` gives the
        disk, network and randomness (``paxon.node.environment``): the
        simulator passes its own. ``joined`` is the configuration ``paxon serve
        --join`` fetched (``node.join``): the first configuration of this new
        member, whose data directory must be new."""
        self.node_id = node_id
        self._env = environment
        self.addresses: dict[int, Address] = {
            member: _address(address) for member, address in peers.items()
        }
        if node_id not in self.addresses:
            raise BadRequest(f"node {node_id} is not among the peers {sorted(self.addresses)}")
        self.listen = _address(listen) if listen is not None else self.addresses[node_id]
        self.peer_listen = _address(peer_listen) if peer_listen is not None else None
        self.peer_security = peer_security
        self.client_tls = client_tls
        self.advertise_client = advertise_client or _format(self.listen)
        self._forward_tls = forward_tls
        self.data_dir = data_dir
        self.config = config or NodeConfig()
        self.log = logger or logging.getLogger(f"paxon.node.{node_id}")
        self.metrics = NodeMetrics(node_id)
        # The first configuration: from --peers (or --join) at the data
        # directory's first start, then the one kept there (FIRST-CONFIG, set in
        # start()); the later ones come from the log and the snapshot.
        self._joined = joined
        self._initial = joined or Configuration.initial(
            {member: _format(address) for member, address in self.addresses.items()},
            alpha=self.config.alpha,
        )
        self._members: tuple[int, ...] = tuple(sorted(self.addresses))
        self._seed_addresses = dict(self.addresses)
        self.machine = ReplicatedMachine(state_machine, configuration=self._initial)
        self._lanes = SessionLanes()
        # As leader, stamps the log with this node's wall clock (``logclock``).
        self._stamper = ClockStamper(wall_time_s, elapsed_s=self._env.monotonic)
        self._leader_clock = LeaderClock(self, self._stamper)  # stamps for leases
        # Watches held until a change they ask for is applied (``watches``).
        self._watches = WatchParking(self._kv_store, self._query_machine)
        # Users and tokens (``authgate``), when the machine is the key-value store.
        self._gate = (
            AuthGate(state_machine, wall_time_s=wall_time_s)
            if isinstance(state_machine, KvStore)
            else None
        )
        self._auth_work: set[asyncio.Task[None]] = set()  # logins, password hashing
        self._started = False
        self._stopping = False
        self._closed = False
        # Set by start().
        self._loop: asyncio.AbstractEventLoop
        self._storage: Storage
        self._committer: Committer
        self._replica: Replica
        self._transport: NodeTransport
        self._forwarder: Forwarder
        self._failfast = FailFast(node_id, lambda: self._replica, self.client_address)
        self._ticker: asyncio.Task[None] | None = None
        # Messages waiting for their records to be durable: (lsn, messages).
        self._after_persist: deque[tuple[int, list[Message]]] = deque()
        self._durable_wait: asyncio.Future[None] | None = None
        # The lsn the loop will sync itself at its next turn (one call pending at most).
        self._sync_here_due: int | None = None
        # Commands and reads collected during one loop turn.
        self._proposals: list[Command] = []
        self._handing_to: int | None = None  # the transfer target while leading
        self._handing_over = False  # stopping: leadership is being handed over
        # Members gone from the configurations: address and when to hang up.
        self._leaving: dict[int, tuple[Address, float]] = {}
        # The replica's ``removed_version`` the links were last set from.
        self._removed_linked = -1
        self._queries: list[_PendingQuery] = []
        self._flush_posted = False
        # Commands proposed here, by session; reads waiting for their index.
        self._waiting: dict[tuple[int, int], _Waiter] = {}
        self._read_id = 0
        self._reads_confirming: dict[int, list[_PendingQuery]] = {}
        self._reads_applying: deque[tuple[Slot, list[_PendingQuery]]] = deque()
        # Snapshots: taking our own, sending ours to peers, receiving one.
        self._snapshots = LocalSnapshots(self)
        self._transfers = SnapshotTransfers(self)  # sending ours, taking the leader's
        self._role = Role.FOLLOWER
        self._leader: int | None = None
        self._membership = LeaderMembership(self)  # requests, promotions, bindings
        self._history = LeaderHistory(self, self.config.history)  # retention of a KvStore
        # The configurations (in effect, newest) whose bindings the transport knows.
        self._bindings_from: tuple[Configuration, Configuration] | None = None
        self._removal_noticed: int | None = None  # the epoch last logged
        self._failure: asyncio.Future[BaseException] | None = None
        # Set by ``paxon serve``: this node's readiness report (``node/readiness.py``),
        # added to ``status()`` as ``"health"``.
        self.health_report: Callable[[], dict[str, Any]] | None = None
        # Set by ``paxon serve``: where its HTTP port listens (``"http"`` in ``status()``).
        self.http_address: str | None = None

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        """Open the data directory (recovering), bind the port, join the cluster.

        Raises the storage's typed errors for a damaged or foreign data
        directory and ``OSError`` when the port is taken.
        """
        self._loop = asyncio.get_running_loop()
        self._failure = self._loop.create_future()
        self._storage = self._env.open_storage(self.data_dir, self.node_id, self.config.cluster_id)
        committer: Committer | None = None
        try:
            self._settle_first_configuration()
            self._recover()
            committer = self._committer = self._env.make_committer(
                self._storage, self.metrics.fsync_seconds.observe
            )
            self._transport = self._env.make_transport(
                node_id=self.node_id,
                cluster_id=self.config.cluster_id,
                listen=self.listen,
                peers=self._transport_peers(),
                on_peer_message=self._on_peer_message,
                on_client_request=self._on_client_request,
                config=self.config.net,
                logger=self.log,
                peer_listen=self.peer_listen,
                security=self.peer_security,
                client_tls=self.client_tls,
                client_address=self.advertise_client,
                incarnation=self._storage.identity.incarnation,
                on_client_answer=self.metrics.observe_native,
                on_client_reply=self.metrics.observe_native_reply,
            )
            await self._transport.start()
        except BaseException:
            if committer is not None:
                committer.close()
            self._storage.close()
            raise
        self._forwarder = Forwarder(
            self._other_client_addresses,
            timeout_s=self.config.request_timeout_s,
            cluster_id=self.config.cluster_id,
            tls=self._forward_tls,
        )
        self._started = True
        self._follow_incarnations()
        self._perform(self._replica.tick(self._loop.time()))
        self._ticker = self._loop.create_task(self._tick_forever())
        status = self._replica.status()
        self.log.info(
            "[%d %s %d] started: applied through slot %d, listening on %s",
            self.node_id,
            status.ballot_promised,
            status.slot_chosen,
            self.machine.slot_applied,
            _format(self.listen),
        )

    async def stop(self) -> None:
        """Stop serving; finish the in-flight fsync; close the data directory.

        A leader first hands leadership to the voter furthest along (waiting at
        most ``HANDOVER_MAX_S``), so the cluster does not wait out an election
        timeout for it (SIGTERM under ``paxon serve``)."""
        if not self._started or self._closed:
            return
        await self._hand_over()
        self._closed = True
        self._stopping = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self._forwarder.close()
        await self._transport.close()
        for task in list(self._auth_work):
            task.cancel()
        if self._gate is not None:
            self._gate.close()
        self._fail_all_waiting("the node is shutting down")
        self._watches.fail_all("the node is shutting down")
        # Snapshot writes and installs use the data directory: let them finish
        # before it is closed (and its lock released to a successor).
        for work in list(self._snapshots.work):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await work
        await self._loop.run_in_executor(None, self._committer.close)
        self._storage.close()
        self.log.info("[%d] stopped", self.node_id)

    async def _hand_over(self) -> None:
        if self._replica.role is not Role.LEADER or self._failure is None or self._failure.done():
            return
        try:
            self._perform(self._replica.transfer_leadership())
        except ValueError:
            return  # no other voter
        target = self._replica.transferring_to
        deadline = self._loop.time() + HANDOVER_MAX_S
        self._handing_over = True
        # Stay until another node leads, not just until we step down: our promise
        # to the successor leaves only once durable, and it may be the successor's
        # only way to a majority (a voter out of its reach). Closing at once dropped
        # it, and the cluster waited out an election timeout (rolling-restart
        # cluster test; test_a_stopping_leader_stays_until_its_successor_leads).
        # ... but not for a successor we cannot reach: when a whole cluster is
        # stopped at once (paxon dev, a host shutting down), its link goes down
        # and waiting out the deadline would only delay the exit.
        while (
            self._loop.time() < deadline
            and not self._led_by_another()
            and (target is None or self._transport.reachable(target))
        ):
            if self._stopping:
                break  # stopped on an internal error meanwhile: nothing more is sent
            if self._replica.role is Role.LEADER and self._replica.transferring_to is None:
                # The core dropped the transfer (its target not caught up within
                # an election timeout: a lost Accept held it back) and serves
                # on: ask again, or this node would stop leading only by
                # stopping, and the cluster wait out an election (swarm seed
                # 7809 with --sync-here).
                try:
                    self._perform(self._replica.transfer_leadership())
                except ValueError:
                    break  # no other voter any more
                target = self._replica.transferring_to
            await asyncio.sleep(0.01)
        leader = self._replica.leader_hint
        if self._led_by_another():
            outcome = f"handed to node {leader}"
        elif target is not None and not self._transport.reachable(target):
            outcome = f"not taken: the link to node {target} is down"
        else:
            outcome = f"not taken by node {target} in time"
        self.log.info("[%d] stopping: leadership %s", self.node_id, outcome)

    def _led_by_another(self) -> bool:
        leader = self._replica.leader_hint
        return self._replica.role is not Role.LEADER and leader not in (None, self.node_id)

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_failed(self) -> BaseException:
        """Wait until the node stops on an internal error (a broken invariant,
        a failed fsync); the error. A healthy node never returns from this."""
        assert self._failure is not None, "start() the node first"
        return await asyncio.shield(self._failure)

    # ------------------------------------------------------------------ public

    @property
    def is_leader(self) -> bool:
        return self._started and self._replica.role is Role.LEADER

    @property
    def leader_id(self) -> int | None:
        return self._replica.leader_hint if self._started else None

    @property
    def address(self) -> Address:
        """The bound native address (useful when listening on port 0)."""
        return self._transport.address

    async def submit(self, payload: bytes, *, timeout: float | None = None) -> bytes:
        """Replicate one command; the state machine's reply, once it is applied.

        On a follower the command is forwarded to the leader. A retry after a
        leader change keeps the command's session, so it is applied once.
        Raises ``Timeout`` when the outcome is unknown after ``timeout``.
        """
        self._check_command(payload)
        if self._gate is not None and self._gate.needs_prepare(payload):
            payload = await self._gate.prepare(payload)  # hash a password, pick a token key
        timeout = self.config.request_timeout_s if timeout is None else timeout
        # Never retry one session's command near its expiry (``paxon.client``).
        timeout = min(timeout, SESSION_RETRY_MAX_S)
        deadline = self._loop.time() + timeout
        lane = self._lanes.acquire()
        succeeded = False
        try:
            while True:
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    raise Timeout(f"command not applied within {timeout} s (outcome unknown)")
                if self._stopping:
                    raise Unavailable(f"node {self.node_id} is stopped")
                refusal = self._failfast.refusal()
                if refusal is not None and not self._failfast.waits_for_first_leader:
                    raise refusal
                if self._replica.role is Role.LEADER:
                    answer: asyncio.Future[bytes] = self._loop.create_future()
                    self._enqueue(Command(lane.client_id, lane.seq, payload), answer)
                    try:
                        reply = await asyncio.wait_for(answer, remaining)
                    except NotLeader:
                        continue  # lost leadership: retry through the new leader
                    except TimeoutError:
                        continue
                elif not self._forwarder.ready:
                    await asyncio.sleep(min(_PEERS_WAIT_S, remaining))  # links coming up
                    continue
                else:
                    reply = await self._failfast.forward(
                        self._forwarding_client().submit_as(
                            lane.client_id, lane.seq, payload, timeout=remaining
                        )
                    )
                succeeded = True
                return reply
        finally:
            self._lanes.release(lane, succeeded=succeeded)

    async def query(
        self, payload: bytes, *, linearizable: bool = True, timeout: float | None = None
    ) -> bytes:
        """Answer a read-only query; linearizable unless told otherwise."""
        if self._stopping:
            raise Unavailable(f"node {self.node_id} is stopped")
        if self._gate is not None:
            self._gate.check_query(payload)
        if not linearizable:
            if self._watches.wait_of(payload) is None:
                return self._query_machine(payload)
            waiting: asyncio.Future[bytes] = self._loop.create_future()
            self._answer_query(_PendingQuery(payload, waiting))
            return await waiting  # a watch: held until a change it asks for
        timeout = self.config.request_timeout_s if timeout is None else timeout
        deadline = self._loop.time() + timeout
        refusal = self._failfast.refusal()
        if refusal is not None and not self._failfast.waits_for_first_leader:
            raise refusal
        while self._replica.role is not Role.LEADER and not self._forwarder.ready:
            if self._stopping or self._loop.time() + _PEERS_WAIT_S > deadline:
                break  # the forwarder says why it cannot forward
            await asyncio.sleep(_PEERS_WAIT_S)  # no peer link up yet
        if self._replica.role is Role.LEADER:
            answer: asyncio.Future[bytes] = self._loop.create_future()
            self._queries.append(_PendingQuery(payload, answer))
            self._post_flush()
            try:
                return await asyncio.wait_for(answer, timeout)
            except NotLeader:
                pass  # lost leadership before the read was confirmed: ask the new leader
            except TimeoutError:
                raise Timeout(f"no read confirmation within {timeout} s") from None
        remaining = max(0.0, deadline - self._loop.time())
        return await self._failfast.forward(
            self._forwarding_client().query(payload, linearizable=True, timeout=remaining)
        )

    def _forwarding_client(self) -> Client:
        """The forwarder's client, sent first to the leader this node hears (its
        own last guess may be a leader since deposed and cut off)."""
        client = self._forwarder.client()
        leader = self._replica.leader_hint
        if leader is not None and leader != self.node_id and self._replica.leader_live:
            client.prefer(self.client_address(leader))
        return client

    async def authenticate(self, user: str, password: str) -> str:
        """A token for ``user`` that every member accepts (``paxon.node.authgate``).

        Raises ``Unauthenticated`` for a wrong user or password, ``AuthNotEnabled``
        when auth is off, ``NotSupported`` for a machine without users."""
        if self._gate is None:
            raise NotSupported(f"{type(self.machine.machine).__name__} has no users")
        return await self._gate.authenticate(user, password)

    async def change_members(
        self, action: str, node_id: int, address: str, *, token: str | None = None
    ) -> dict[str, Any]:
        """Ask the leader (through the forwarding client) for a membership change;
        the configuration once it is chosen (``node/members.py``)."""
        client = self._forwarder.client()  # follows a redirect to this node too
        return await client.change_members(action, node_id, address, token=token)

    def status(self) -> dict[str, Any]:
        """The ``status --json`` object of docs/api.md, from this node's view."""
        return status_view.node_status(self)

    def recent_slots(self, count: int) -> dict[str, Any]:
        """The dashboard's log view: ``Replica.recent_slots`` and where the log stands."""
        return status_view.recent_slots(self, count)

    async def cluster_status(self) -> dict[str, Any]:
        """``status()`` with every member's row from that member's own view."""
        try:
            others = await self._forwarder.client().node_views()
        except Unavailable:
            others = []  # no peer link up yet: only this node's own view
        addresses = [self.client_address(member) or "?" for member in sorted(self.addresses)]
        return merge_status(addresses, [self.status(), *others])

    def client_address(self, member: int) -> str | None:
        """Where ``member``'s clients reach it, if this node knows."""
        if member == self.node_id:
            return self.advertise_client
        if self.peer_listen is None:
            # One port serves peers and clients. A leader hint may name a node
            # this one no longer lists (removed, still leading until it hands over).
            address = self.addresses.get(member)
            return None if address is None else _format(address)
        return self._transport.client_address_of(member)

    # ------------------------------------------------------------------ inputs

    def _on_peer_message(self, message: PeerMessage) -> None:
        if self._stopping:
            return
        try:
            if isinstance(message, SnapshotChunk):
                self._transfers.on_chunk(message)
            else:
                self._perform(self._replica.step(message))
        except Exception as error:  # a bug or a broken invariant: stop, loudly
            self._fatal(error)

    def _on_client_request(self, connection: ClientAnswers, request: ClientRequest) -> None:
        if self._stopping:
            connection.send(Failure(request.request_id, "unavailable", "shutting down"))
            return
        try:
            self._serve_client(connection, request)
        except Exception as error:
            self._fatal(error)

    def _serve_client(self, connection: ClientAnswers, request: ClientRequest) -> None:
        match request:
            case Submit(request_id, client_id, seq, payload):
                if self._replica.role is not Role.LEADER:
                    connection.send(self._redirect(request_id))
                    return
                try:
                    check_client_id(client_id)
                    self._check_command(payload)
                except PaxonError as error:
                    connection.send(Failure(request_id, error.code, str(error)))
                    return
                if self._gate is not None and self._gate.needs_prepare(payload):
                    self._start_auth_work(self._prepare_and_enqueue(connection, request))
                    return
                waiter = _RemoteWaiter(connection, request_id, self._env.stopwatch())
                self._enqueue(Command(client_id, seq, payload), waiter)
            case Query(request_id, payload, linearizable):
                if self._gate is not None:
                    try:
                        self._gate.check_query(payload)
                    except PaxonError as error:
                        connection.send(Failure(request_id, error.code, str(error)))
                        return
                waiter = _RemoteWaiter(connection, request_id, self._env.stopwatch())
                if not linearizable:
                    self._answer_query(_PendingQuery(payload, waiter))
                elif self._replica.role is not Role.LEADER:
                    connection.send(self._redirect(request_id))
                else:
                    self._queries.append(_PendingQuery(payload, waiter))
                    self._post_flush()
            case StatusRequest(request_id):
                connection.send(StatusReply(request_id, self.status()))
            case Authenticate(request_id, user, password):
                self._start_auth_work(self._authenticate(connection, request_id, user, password))
            case ChangeMembers():
                self._membership.on_request(connection, request)

    def _start_auth_work(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(work)
        self._auth_work.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._auth_work.discard(task)
            if not task.cancelled() and task.exception() is not None and not self._stopping:
                self._fatal(task.exception())  # type: ignore[arg-type]  # a bug: stop, loudly

        task.add_done_callback(done)

    async def _authenticate(
        self, connection: ClientAnswers, request_id: int, user: str, password: str
    ) -> None:
        """Log a native client in: a token from this node's applied users (``authgate``)."""
        if self._gate is None:
            connection.send(Failure(request_id, "not_supported", "this node has no users"))
            return
        try:
            token = await self._gate.authenticate(user, password)
        except PaxonError as error:
            connection.send(Failure(request_id, error.code, str(error)))
        else:
            connection.send(Reply(request_id, token.encode()))

    async def _prepare_and_enqueue(self, connection: ClientAnswers, request: Submit) -> None:
        """Hash the password of a ``user add``/``passwd`` off the loop, then propose it."""
        assert self._gate is not None
        try:
            payload = await self._gate.prepare(request.payload)
        except PaxonError as error:
            connection.send(Failure(request.request_id, error.code, str(error)))
            return
        if self._stopping or self._replica.role is not Role.LEADER:
            connection.send(self._redirect(request.request_id))
            return
        waiter = _RemoteWaiter(connection, request.request_id, self._env.stopwatch())
        self._enqueue(Command(request.client_id, request.seq, payload), waiter)

    def _enqueue(self, command: Command, waiter: _Waiter) -> None:
        # A retry of a command still in flight replaces the earlier asker: the
        # client gave up on that attempt, and the session applies it once.
        self._waiting[(command.client_id, command.seq)] = waiter
        self._proposals.append(command)
        self._post_flush()

    def _propose_system(self, command: Command) -> None:
        """Propose a command of the system session with the next batch; no one
        waits for it (a duty looks at the applied state instead)."""
        self._proposals.append(command)
        self._post_flush()

    def _post_flush(self) -> None:
        if not self._flush_posted:
            self._flush_posted = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Hand this loop turn's commands and reads to the core at once."""
        self._flush_posted = False
        if self._stopping:
            return
        try:
            self._flush_batches()
        except Exception as error:
            self._fatal(error)

    def _flush_batches(self) -> None:
        commands, self._proposals = self._proposals, []
        queries, self._queries = self._queries, []
        moving = self._replica.transferring_to is not None
        if moving and 0 < len(commands) <= self._replica.config.queue_max_commands:
            # Leadership is moving, about a round trip: hold the commands rather
            # than answer busy (a client would back off for longer). They are
            # proposed here if the transfer is dropped, or redirected to the new
            # leader when it leads (_redirect_all_waiting); the tick flushes again.
            self._proposals, commands = commands + self._proposals, []
        if commands:
            # Log time (``logclock``): a clock entry heads the batch now and then.
            stamp = self._stamper.stamp()
            try:
                ready = self._replica.propose_many(
                    commands if stamp is None else [stamp, *commands]
                )
            except (NotLeader, Busy, NoQuorum) as error:
                if stamp is not None or any(map(is_stamp, commands)):
                    # The next batch stamps (``logclock``); a stamp the idle
                    # duty proposed goes through here too (``LeaderClock``).
                    self._stamper.refused()
                for command in commands:
                    self._fail_waiter(command.client_id, command.seq, error)
            else:
                self.metrics.proposals.inc(len(commands))
                self._perform(ready)
        if queries:
            try:
                self._read_id += 1
                self._reads_confirming[self._read_id] = queries
                ready = self._replica.read_index(self._read_id, self._loop.time())
            except (NotLeader, NoQuorum) as error:
                del self._reads_confirming[self._read_id]
                for query in queries:
                    self._fail(query.answer, error)
            else:
                self._perform(ready)

    async def _tick_forever(self) -> None:
        interval = self.config.tick_interval_s
        gauges_due = 0.0
        while not self._stopping:
            await asyncio.sleep(interval)
            try:
                now = self._loop.time()
                if not (self._handing_over and self._replica.role is not Role.LEADER):
                    # Once a stopping leader has stepped down it only answers
                    # (its promise to the successor): no tick, so it never
                    # stands again (swarm seed 6 of the buggy-member test: it
                    # led again, then stopped as leader at the deadline).
                    self._perform(self._replica.tick(now))
                lapsed = self._failfast.on_tick()
                if lapsed is not None:  # leading, but no majority heard: fail what waits
                    self._fail_held(lapsed)
                if self._proposals:  # held while leadership moves
                    self._post_flush()
                self._membership.on_tick()
                self._leader_clock.on_tick()
                self._watches.on_tick(now)
                if now >= gauges_due:
                    self._expire_leaving(now)
                    self._note_removal_notice()
                    self._membership.bind_incarnations()
                    self._history.on_tick(now)
                    # Gauges are read by scrapes, seconds apart: a tenth of a
                    # second is fresh enough, and every tick cost 17% of a
                    # simulated node's time (measured with cProfile).
                    gauges_due = now + DUTIES_INTERVAL_S
                    self._update_gauges()
            except Exception as error:
                self._fatal(error)

    # ------------------------------------------------------------------ outputs

    def _perform(self, ready: Ready) -> None:
        """Carry out one ``Ready`` in the order of ``paxon.protocol.ready``."""
        if self._replica.members != self._members:
            self._follow_membership()  # before sending: a new member gets its Accepts
        if self._replica.removed_version != self._removed_linked and self._started:
            self._set_transport_peers()  # a joiner replaying the log learns who left
        if self._bindings_from != (
            self._replica.configuration,
            self._replica.configuration_newest,
        ):
            self._follow_incarnations()
        if len(self._membership.waiters):
            self._membership.waiters.on_newest(self._replica.configuration_newest)
        sync_here_through: int | None = None
        if ready.records or ready.messages_after_persist:
            # Records no message waits on (a chosen mark, values learned) need
            # no fsync of their own: the next sync, which every later promise
            # or vote waits for, carries them.
            waiting = bool(ready.messages_after_persist)
            # An idle, quick disk is synced from the loop once the rest is
            # out (storage/commit.py): no hand-off to the sync thread and back.
            here = waiting and self._committer.may_sync_here()
            handle = self._committer.submit(ready.records, sync=waiting and not here)
            if waiting:
                self._after_persist.append((handle.lsn, ready.messages_after_persist))
                if here:
                    sync_here_through = handle.lsn
                else:
                    self._watch_durable()
        send = self._send
        for message in ready.messages:
            send(message)
        if ready.apply:
            self._apply(ready.apply)
        for answer in ready.reads:
            self._on_read_index(answer)
        for request in ready.snapshot_requests:
            self._transfers.offer(request.peer)
        if sync_here_through is not None:
            # Behind the flushes this turn's sends queued (frames.FrameWriter):
            # the Accepts and replies leave before this fsync holds the loop.
            # One sync for every Ready of the turn: the latest lsn covers them.
            if self._sync_here_due is None:
                self._loop.call_soon(self._sync_here)
            self._sync_here_due = max(self._sync_here_due or 0, sync_here_through)
        self._after_call()

    def _sync_here(self) -> None:
        """Make the due lsn durable on the loop's thread, then send what waited for it."""
        lsn, self._sync_here_due = self._sync_here_due, None
        if self._stopping or lsn is None:
            return  # stopped, or stopping: close() syncs what was submitted
        try:
            self._committer.sync_here(lsn)
        except Exception as error:  # the log is poisoned: nothing more may be promised or voted
            self._fatal(error)
            return
        self._release_durable()

    def _follow_membership(self) -> None:
        """The members changed (a configuration was chosen or took effect): dial
        the new ones, hang up on those gone."""
        # Until the members first change, --peers is what docs/api.md says it is on a
        # restart, the addresses; after, the log is (docs/membership.md). A
        # change that only binds incarnations changes no member.
        unchanged = _places(self._replica.configuration_newest) == _places(self._initial)
        seeds = self._seed_addresses if unchanged else {}
        addresses = {
            member: seeds.get(member) or _address(address)
            for member, address in self._replica.member_addresses().items()
            if address or member in seeds
        }
        addresses.setdefault(self.node_id, self._seed_addresses[self.node_id])
        gone = sorted(set(self._members) - set(addresses))
        added = sorted(set(addresses) - set(self._members))
        until = self._loop.time() + LEAVING_LINK_S
        for member in gone:
            if member in self.addresses and member != self.node_id:
                self._leaving[member] = (self.addresses[member], until)
        for member in addresses:
            self._leaving.pop(member, None)  # back in a configuration
        self._members = self._replica.members
        self.addresses = addresses
        if not self._started:
            return  # the transport is made with these addresses
        self._set_transport_peers()
        newest = self._replica.configuration_newest
        self.log.info(
            "[%d] members now %s (configuration %d: voters %s, learners %s)%s%s",
            self.node_id,
            list(self._members),
            newest.epoch,
            sorted(newest.voters),
            sorted(newest.learners),
            f"; added {added}" if added else "",
            f"; gone {gone}" if gone else "",
        )
        if self.node_id not in newest.ids:
            self.log.warning("[%d] this node was removed from the cluster", self.node_id)

    def _set_transport_peers(self) -> None:
        self._removed_linked = self._replica.removed_version
        self._transport.set_peers(self._transport_peers())

    def _transport_peers(self) -> dict[int, Address]:
        """Links to the members, and for ``LEAVING_LINK_S`` to those just gone:
        also at a start, to the members --peers named that the log removed (a
        removed leader waits to hear that a majority of the new voters know of
        its removal: swarm seed 152 with the bare reign on in every seed)."""
        peers = {m: a for m, a in self.addresses.items() if m != self.node_id}
        for member, (address, _) in self._leaving.items():
            peers.setdefault(member, address)
        # And to the last nodes removed (``Replica.removed_addresses``), so one
        # that missed its removal hears of it; not to an address a member took
        # over (a node replaced on its old address: the link would reach the
        # new node under the old id).
        taken = set(peers.values()) | {self.addresses.get(self.node_id)}
        for removed, written in self._replica.removed_addresses().items():
            if written and removed not in peers:
                parsed = _address(written)
                if parsed not in taken:
                    peers[removed] = parsed
        return peers

    def _note_removal_notice(self) -> None:
        """Say so once a majority of the voters tell this node it was removed
        (``protocol/removal_notices.py``): its log cannot, they compacted it."""
        epoch = self._replica.removed_by_notice
        if epoch is not None and epoch != self._removal_noticed:
            self.log.warning(
                "[%d] this node was removed from the cluster (configuration %d, a "
                "majority of its voters say; it stands no more): stop it",
                self.node_id,
                epoch,
            )
        self._removal_noticed = epoch

    def _expire_leaving(self, now: float) -> None:
        expired = [m for m, (_, until) in self._leaving.items() if until <= now]
        if expired:
            for member in expired:
                del self._leaving[member]
            self._set_transport_peers()

    def _follow_incarnations(self) -> None:
        """A configuration came or went out of effect: tell the transport whom it
        binds to which data directory, and say so loudly if this node's own is
        not the one bound.

        Every configuration held from the chosen prefix on counts, the oldest
        binding first (``members.refusal_bindings``; the runtime simulator's
        wipe fault found a removed, wiped voter accepted back at once)."""
        replica = self._replica
        self._bindings_from = (replica.configuration, replica.configuration_newest)
        if not self._started:
            return  # start() tells the transport once it is made
        held = (configuration for _, configuration in replica.configs_at(replica.slot_chosen))
        bound = refusal_bindings(held)
        self._transport.set_bound_incarnations(bound)
        own = bound.get(self.node_id)
        if own is not None and own != self._storage.identity.incarnation:
            self.log.error(  # the simulator's "wipe" fault reaches it
                "[%d] this data directory is a new incarnation (%#x), not the one the cluster "
                "bound to node %d (%#x): the other members refuse it. Remove this node and add "
                "it back as a learner (docs/membership.md, replace)",
                self.node_id,
                self._storage.identity.incarnation,
                self.node_id,
                own,
            )

    def _send(self, message: PeerMessage) -> None:
        if message.dst == self.node_id:
            self._loop.call_soon(self._on_peer_message, message)
        else:
            if type(message) is LearnRequest:  # the core asks: a snapshot may answer
                self._transfers.asked(message.dst, self._loop.time())
            self._transport.send(message)

    def _watch_durable(self) -> None:
        if self._durable_wait is not None or not self._after_persist:
            return
        lsn = self._after_persist[0][0]
        if self._committer.lsn_durable >= lsn:
            self._release_durable()
            return
        wait = self._committer.durable_future(lsn)
        self._durable_wait = wait
        wait.add_done_callback(self._on_durable)

    def _on_durable(self, wait: asyncio.Future[None]) -> None:
        self._durable_wait = None
        if wait.cancelled():
            return
        error = wait.exception()
        if error is not None:
            # The log is poisoned: nothing more may be promised or voted.
            self._fatal(error)
            return
        try:
            self._release_durable()
        except Exception as failure:
            self._fatal(failure)

    def _release_durable(self) -> None:
        durable = self._committer.lsn_durable
        while self._after_persist and self._after_persist[0][0] <= durable:
            _, messages = self._after_persist.popleft()
            for message in messages:
                self._send(message)
        self._watch_durable()

    def _apply(self, entries: list[ChosenEntry]) -> None:
        waiting = self._waiting
        commits = 0
        applied_bytes = 0
        for entry in entries:
            for command in entry.value.commands:
                applied_bytes += len(command.payload)
            for applied in self.machine.apply(entry):
                commits += applied.fresh
                waiter = waiting.pop((applied.client_id, applied.seq), None)
                if waiter is None:
                    continue
                if applied.reply is not None:
                    self._answer(waiter, applied.reply)
                else:
                    error = refusal(applied)
                    assert error is not None, f"{applied.verdict} without a reply"
                    self._fail(waiter, error)
        self.metrics.commits.inc(commits)
        self.metrics.slots_chosen.inc(len(entries))
        self._watches.on_applied()
        reads = self._reads_applying
        while reads and reads[0][0] <= self.machine.slot_applied:
            for query in reads.popleft()[1]:
                self._answer_query(query)
        self._snapshots.applied(applied_bytes)

    def _on_read_index(self, answer: ReadIndex) -> None:
        queries = self._reads_confirming.pop(answer.read_id, None)
        if queries is None:
            return
        if answer.slot is None:
            for query in queries:
                self._fail(query.answer, NotLeader(self._replica.leader_hint))
        elif answer.slot <= self.machine.slot_applied:
            for query in queries:
                self._answer_query(query)
        else:
            self._reads_applying.append((answer.slot, queries))

    def _answer_query(self, query: _PendingQuery) -> None:
        try:
            reply = self._query_machine(query.payload)
        except PaxonError as error:
            self._fail(query.answer, error)
            return
        waiter = query.answer

        def answer_later(reply: bytes | None, error: Exception | None) -> None:
            if reply is not None:
                self._answer(waiter, reply)
            else:
                failure = error if isinstance(error, PaxonError) else BadRequest(repr(error))
                self._fail(waiter, failure)

        if not self._watches.park(query.payload, reply, self._loop.time(), answer_later):
            self._answer(waiter, reply)

    def _kv_store(self) -> KvStore | None:
        store = self.machine.machine
        return store if isinstance(store, KvStore) else None

    def _query_machine(self, payload: bytes) -> bytes:
        """The state machine's answer; its own failures are the request's, not the node's."""
        try:
            return self.machine.machine.query(payload)
        except PaxonError:
            raise
        except Exception as error:
            self.log.warning("[%d] the state machine failed a query: %r", self.node_id, error)
            raise BadRequest(f"the state machine refused the query: {error!r}") from error

    def _after_call(self) -> None:
        """Notice role and leader changes: count them, redirect what waits on us."""
        role, leader = self._replica.role, self._replica.leader_hint
        if role is Role.LEADER:
            self._handing_to = self._replica.transferring_to
        elif leader is not None:
            self._handing_to = None  # a leader is known: no need to guess
        if role is self._role and leader == self._leader:
            return
        if role is Role.PREPARING and self._role is not Role.PREPARING:
            self.metrics.elections.inc()
        if leader != self._leader:
            self.metrics.leader_changes.inc()
            self._transfers.leader_changed()
            self.log.info(
                "[%d %s %d] leader is now %s",
                self.node_id,
                self._replica.ballot_promised,
                self._replica.slot_chosen,
                leader,
            )
        was_leader = self._role is Role.LEADER
        self._role, self._leader = role, leader
        if role is Role.LEADER and not was_leader:
            self._stamper.lead()
        if was_leader and role is not Role.LEADER:
            self._redirect_all_waiting()
            self._membership.waiters.fail_all("this node stopped leading; ask the new leader")

    # ------------------------------------------------------------------ answers

    def _answer(self, waiter: _Waiter, reply: bytes) -> None:
        if isinstance(waiter, _RemoteWaiter):
            waiter.connection.reply(waiter.request_id, reply)
            if waiter.request_id % _LATENCY_SAMPLE == 0:
                self.metrics.commit_seconds.observe(self._env.stopwatch() - waiter.started)
        elif not waiter.done():
            waiter.set_result(reply)

    def _fail(self, waiter: _Waiter, error: PaxonError) -> None:
        if isinstance(waiter, _RemoteWaiter):
            if isinstance(error, NotLeader):
                waiter.connection.send(self._redirect(waiter.request_id))
            else:
                waiter.connection.send(Failure(waiter.request_id, error.code, str(error)))
        elif not waiter.done():
            waiter.set_exception(error)

    def _fail_waiter(self, client_id: int, seq: int, error: PaxonError) -> None:
        waiter = self._waiting.pop((client_id, seq), None)
        if waiter is not None:
            self._fail(waiter, error)

    def _redirect_all_waiting(self) -> None:
        # Stepping down for a transfer, it often knows no leader yet: the target
        # it handed to is the best hint (it stands at once).
        self._proposals.clear()  # their waiters are answered here
        self._fail_held(NotLeader(self._replica.leader_hint or self._handing_to))
        # Reads already confirmed stay: their index is valid, they wait for apply.

    def _fail_held(self, error: PaxonError) -> None:
        """Fail the commands and unconfirmed reads waiting here (``failfast``):
        their outcome is unknown, and a retry's session applies a command once.
        Commands not yet handed to the core still go (and fail there, unwaited)."""
        waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            self._fail(waiter, error)
        for queries in self._reads_confirming.values():
            for query in queries:
                self._fail(query.answer, error)
        self._reads_confirming.clear()

    def _fatal(self, error: BaseException) -> None:
        """Stop taking part: the core or the disk can no longer be trusted.

        Nothing more is sent or persisted; what is durable stays correct, and a
        restart recovers from it. ``wait_failed`` tells the owner (``paxon
        serve`` exits non-zero)."""
        if self._stopping and self._failure is not None and self._failure.done():
            return
        self._stopping = True
        self.log.critical(
            "[%d] stopping on an internal error: %r", self.node_id, error, exc_info=error
        )
        if self._ticker is not None:
            self._ticker.cancel()
        self._fail_all_waiting(f"node {self.node_id} stopped on an internal error")
        if self._failure is not None and not self._failure.done():
            self._failure.set_result(error)

    def _fail_all_waiting(self, why: str) -> None:
        error = Unavailable(why)
        for waiter in self._waiting.values():
            self._fail(waiter, error)
        self._waiting.clear()
        for queries in self._reads_confirming.values():
            for query in queries:
                self._fail(query.answer, error)
        for _, queries in self._reads_applying:
            for query in queries:
                self._fail(query.answer, error)

    def _redirect(self, request_id: int) -> Redirect:
        leader = self._replica.leader_hint or self._handing_to
        if leader is None or leader == self.node_id:
            return Redirect(request_id, None, None)
        return Redirect(request_id, leader, self.client_address(leader))

    def _other_client_addresses(self) -> list[str]:
        addresses = (self.client_address(m) for m in sorted(self.addresses) if m != self.node_id)
        return [address for address in addresses if address is not None]

    def _check_command(self, payload: bytes) -> None:
        if len(payload) > self.config.command_max_bytes:
            raise ValueTooLarge(
                f"command of {len(payload)} bytes is over the limit of "
                f"{self.config.command_max_bytes}"
            )
        try:
            self.machine.machine.validate(payload)
        except PaxonError:
            raise
        except Exception as error:
            raise BadRequest(f"the state machine refused the command: {error!r}") from error
        if self._gate is not None:
            self._gate.check(payload)  # early; the store checks again when it applies

    # ------------------------------------------------------------------ state

    def _settle_first_configuration(self) -> None:
        """Keep the first configuration at the directory's first start; take the
        kept one at every later start (``storage.first_config``)."""
        fs, directory = self._storage.fs, self._storage.directory
        kept = read_first_configuration(fs, directory)
        recovered = self._storage.recovered
        # An identity alone (a first start stopped before it kept FIRST-CONFIG)
        # holds no state: it promised and accepted nothing (node/join.held_state).
        holds_state = kept is not None or recovered.lsn_last > 0 or recovered.snapshot is not None
        if self._joined is not None and holds_state:
            raise BadRequest(  # sim: unreachable: it joins only where held_state finds none
                f"--join makes a new member, but {directory} already holds node "
                f"{self.node_id}'s state; restart it without --join"
            )
        if kept is None:
            # A new directory, or one from before paxon kept FIRST-CONFIG: the
            # flags are what its first start read.
            write_first_configuration(fs, directory, self._initial)
        else:
            if kept.ids != self._initial.ids:  # sim: one-way: every start gives the same peers
                self.log.warning(
                    "[%d] --peers names members %s, but this data directory started with "
                    "%s (FIRST-CONFIG): --peers is read only at a cluster's first start; "
                    "the members come from the data directory and its log, --peers only "
                    "gives addresses",
                    self.node_id,
                    sorted(self._initial.ids),
                    sorted(kept.ids),
                )
            self._initial = kept
        if self.machine.configs is not None:
            self.machine.configs = ConfigHistory(((0, self._initial),))

    def _recover(self) -> None:
        recovered = self._storage.recovered
        for warning in recovered.warnings:
            self.log.warning("[%d] %s", self.node_id, warning)
        if recovered.snapshot is not None:
            self._restore_recovered(recovered.snapshot)
            self._snapshots.recovered(recovered.snapshot.slot)
        machine_configs = self.machine.configs
        configs = machine_configs.state(self.machine.slot_applied) if machine_configs else ()
        self._replica = self._env.replica_factory(
            self.node_id,
            self._initial,
            rng=self._env.make_rng(),
            now=asyncio.get_running_loop().time(),
            config=self.config.replica,
            durable=dataclasses.replace(
                recovered.state, configs=configs, removed=self.machine.removed_state()
            ),
        )
        self._follow_membership()
        # The core hands the recovered chosen entries from log_start to the
        # first Ready, to be applied on top of the snapshot.
        if self.machine.slot_applied != self._replica.log_start:
            raise StorageError(
                f"{self.data_dir}: the snapshot covers slots below {self.machine.slot_applied} "
                f"but the log starts at {self._replica.log_start}"
            )
        self.log.info(
            "[%d %s] recovered: snapshot at slot %d, %d log records replayed%s",
            self.node_id,
            recovered.state.ballot_promised,
            self._snapshots.slot,
            recovered.records_replayed,
            "" if recovered.torn is None else f", torn tail cut ({recovered.torn})",
        )

    def _restore_recovered(self, meta: SnapshotMeta) -> None:
        """Restore the state machine from the snapshot recovery starts at.

        A snapshot that does not restore stops the start with
        ``UnrestorableSnapshot`` naming the file (``paxon serve`` exits 2); no
        fall back to an older one (``docs/storage.md`` says why)."""
        with self._storage.open_snapshot(meta) as reader:
            data = reader.read_all()
            path = reader.path
        try:
            self.machine.restore(data)
        except InvalidSnapshot as error:
            raise UnrestorableSnapshot(path, str(error)) from None
        if self.machine.slot_applied != meta.slot:
            raise UnrestorableSnapshot(
                path,
                f"it holds the state below slot {self.machine.slot_applied}, "
                f"its header says slot {meta.slot}",
            )

    def _note_snapshot_installed(self, slot: Slot) -> None:
        """A peer's snapshot is durable and restored: schedule ours after it, tell the core."""
        self._snapshots.installed(slot)
        configs = self.machine.configs.state(slot) if self.machine.configs else ()
        removed = self.machine.removed_state()
        self._perform(self._replica.install_snapshot(slot, configs, removed))

    def _update_gauges(self) -> None:
        status = self._replica.status()
        metrics = self.metrics
        metrics.slot_chosen.set(status.slot_chosen)
        metrics.slot_applied.set(self.machine.slot_applied)
        metrics.apply_lag.set(status.slot_chosen - self.machine.slot_applied)
        metrics.log_start.set(status.log_start)
        metrics.ballot_round.set(status.ballot_promised.round)
        metrics.is_leader.set(1 if status.role is Role.LEADER else 0)
        metrics.observe_core(dataclasses.asdict(status.counters))
        network = self._transport.stats()
        metrics.observe_network(
            {
                "bad_frames": network.bad_frames,
                "handshakes_refused": network.handshakes_refused,
                "connections_refused": network.connections_refused,
                "requests_refused": network.requests_refused,
                "incarnations_refused": network.incarnations_refused,
            }
        )
        for member in self.addresses:
            if member != self.node_id:
                reachable = self._transport.reachable(member)
                metrics.peer_reachable.labels(peer=str(member)).set(1 if reachable else 0)


def _places(configuration: Configuration) -> list[tuple[int, str, bool]]:
    return [(m.node_id, m.address, m.voter) for m in configuration.members]


def _address(address: str | Address) -> Address:
    if isinstance(address, tuple):
        return address
    return split_address(address)


def _format(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


__all__ = ["Node"]
