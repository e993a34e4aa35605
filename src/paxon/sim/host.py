"""The simulated machine a ``Node`` runs on: its host, disk, group commit and links.

A ``Host`` outlives crashes with its ``SimDisk``; its ``Process`` (one
incarnation of ``paxon serve``) does not. What the node's ``Environment`` gets
in place of real I/O lives here:

- ``SimDisk``: a ``MemFileSystem`` whose power can fail *inside* a multi-step
  disk operation (``arm_power_cut``), and whose directory may reach the media
  without an fsync (``commit_directory``);
- ``SimCommitter``: the group committer, with the write and the fsync as two
  simulator events, so a power cut can fall between them;
- ``SimTransport`` and ``Connection``: peer links and client connections that
  hand every message to the simulated network. A peer link exists as the real
  transport's TCP link does (``paxon.net.transport``): only while each side
  has the other in its peer map (the smaller id dials only its peers, the
  larger accepts only its peers' handshakes, and ``set_peers`` hangs up on the
  ones gone). ``SimTransport.send`` drops and counts (``dropped_sends``) a
  message over a link that is not up, as the real one does; the receiving
  side drops, silently, one that arrives after it hung up or over a link that
  came up only after the message left (a new connection never carries an old
  one's bytes). Kept lenient, as the simulated network is elsewhere: a link
  comes up at once (no reconnect backoff), and a message sent to a node that
  is down may reach its next life when that life has the sender as a peer
  from its start.

Contract: none of these keeps time, draws randomness or schedules anything on
its own; each asks its ``World`` (the cluster: ``RuntimeCluster``) when an
event happens, how long the disk takes, and whether to crash here. Every
object belongs to one incarnation of its host and goes quiet once the host
has moved on (crashed, stopped, restarted).
"""

from __future__ import annotations

import dataclasses
import heapq
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from paxon.net.client_messages import ClientRequest, ClientResponse, Reply
from paxon.net.peer_messages import PeerMessage
from paxon.net.transport import TransportStats
from paxon.node.environment import ClientAnswers
from paxon.node.node import Node
from paxon.protocol.records import AcceptRecord, SnapshotRecord
from paxon.protocol.types import Ballot
from paxon.sim.loop import SimLoop
from paxon.sim.network import SimNetwork
from paxon.storage.codec import StorageRecord
from paxon.storage.config import StorageConfig
from paxon.storage.errors import StorageError
from paxon.storage.memfs import MemFileSystem, PowerCut
from paxon.storage.storage import Storage


class World(Protocol):
    """What the simulated I/O asks of the cluster that runs it."""

    network: SimNetwork

    def later(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` ``delay`` simulated seconds from now."""

    def disk_times(self, host: Host) -> tuple[float, float]:
        """How long the next write and its fsync take on ``host``'s disk."""

    def crash_host(self, host: Host, why: str) -> None:
        """Crash ``host``'s process now."""

    def crash_point(self, host: Host, where: str) -> bool:
        """Whether ``host`` crashes here, between two steps of its runtime (and do it)."""

    def storage_crash_point(self, host: Host, where: str) -> bool:
        """Whether ``host`` crashes right after a rare storage event (and do it)."""

    def on_records_durable(self, host: Host, records: Sequence[StorageRecord]) -> None:
        """``records`` of ``host``'s log are durable now."""

    def send(self, src: int, message: PeerMessage) -> None:
        """A peer message leaves ``src``."""

    def unsent(self, src: int, message: PeerMessage) -> None:
        """``src`` handed its transport ``message`` but no link carries it: the
        rules about what a node sends still judge it (it did send it)."""

    def handshake_refused(self, a: int, b: int, *, dropping: bool = False) -> bool:
        """Whether a link between ``a`` and ``b`` is refused for an incarnation
        (``dropping``: a message is lost to it)."""

    def data_incarnation(self, node_id: int) -> int:
        """The incarnation of ``node_id``'s data directory now."""

    def runs(self, node_id: int) -> bool:
        """Whether ``node_id``'s process runs now (a handshake needs both ends)."""

    def send_to_client(self, src: int, client: int, response: ClientResponse) -> None:
        """An answer leaves ``src`` for ``client``."""

    def link_up(self, src: int, dst: int) -> bool:
        """Whether ``src``'s running transport and ``dst``'s (when ``dst`` runs) name
        each other as peers: the link between them exists."""

    def link_stamp(self) -> int:
        """A fresh stamp, later than every stamp handed out or seen by a send before."""


@dataclass(slots=True)
class Process:
    """One incarnation of ``paxon serve`` on a host."""

    loop: SimLoop
    node: Node
    started: bool = False
    stopping: bool = False
    # An injected I/O error was set on its disk in this life: a snapshot it
    # then fails to write is the fault's doing (``snapshot-written``).
    io_fault: bool = False


@dataclass(slots=True)
class HeldWhilePaused:
    """A delivery a paused node's socket buffer holds: let in once, at the
    pause's planned end or at a heal that ends the pause sooner."""

    deliver: Callable[[], None]
    done: bool = False

    def let_in(self) -> None:
        if not self.done:
            self.done = True
            self.deliver()


@dataclass(slots=True)
class Host:
    """A simulated machine: its disk outlives crashes; its process does not."""

    node_id: int
    fs: SimDisk
    clock_rate: float
    clock_offset: float
    process: Process | None = None
    # Restarts of its process (``paxon serve`` started again), not its disk's.
    incarnation: int = 0
    # Its data directory's incarnation (the IDENTITY file's): RuntimeCluster
    # opens the first one as the node id; a wipe draws a new one.
    data_incarnation: int = 0
    paused_until: float = 0.0
    # What arrived while it was paused, in order (``RuntimeCluster.hold_while_paused``).
    held_while_paused: deque[HeldWhilePaused] = field(default_factory=deque)
    crash_in_fsync: bool = False
    # An I/O error is due on the next fsync of a log segment (and may have struck).
    io_error: bool = False
    # Set when recovery refused the disk: the host stays down for the run.
    dead: str | None = None
    # Accepts appended to its log, across lives (they aim crash points): per
    # slot the lsn and ballot of the last one, and for an accept that replaced
    # a lower one of its slot, its lsn -> the replaced one's lsn.
    accepts: dict[int, tuple[int, Ballot]] = field(default_factory=dict)
    replaced: dict[int, int] = field(default_factory=dict)


FSYNC_MAX_S = 0.005
"""The slowest a simulated fsync is (each run draws its own bound below it)."""


def storage_config(segment_max_bytes: int) -> StorageConfig:
    """Storage of a simulated node: small segments (``SimConfig.segment_max_bytes``),
    so roll-overs happen often; records stay far above what a batch needs."""
    record_max = min(32 * 1024, segment_max_bytes // 2)
    return StorageConfig(
        segment_max_bytes=segment_max_bytes,
        record_max_bytes=record_max,
        snapshot_chunk_bytes=min(16 * 1024, record_max),
    )


class SimDisk(MemFileSystem):
    """A host's disk whose power can fail *inside* a multi-step disk operation.

    Crashes between simulator events never split a roll-over, a snapshot
    write, a compaction or the repairs of a start-up: each runs in one event.
    ``arm_power_cut(n)`` makes the power fail at the ``n``-th mutating call
    counted from the next structural one (create, rename, unlink, truncate,
    fsync_dir, mkdir: calls only those operations make), so the cut lands
    between two of their steps. At the cut, ``on_power_cut`` is told at once
    (the process stops there) and the call raises ``PowerCut``, as every
    later call does until the simulator crashes the disk.

    ``at_storage_event`` is asked at the storage moments random cuts rarely
    hit: a roll-over just made durable (the new segment's header and the old
    one's seal synced) with the new segment's first record not yet written
    (``ROLLED_OVER``); and a roll-over half done, the new segment durable with
    its directory entry and the old one's seal not yet written
    (``ROLL_CUT_SHORT``). When it answers True the power fails before that
    write: none of its bytes land.
    """

    def __init__(self) -> None:
        super().__init__()
        self.on_power_cut: Callable[[str], None] | None = None
        self.at_storage_event: Callable[[str], bool] | None = None
        self._cut_after: int | None = None
        self._counting = False
        # The roll-over in progress: the new segment whose header was fsynced,
        # and whether the old segment's seal was fdatasynced since.
        self._new_segment: str | None = None
        self._sealed = False
        # Files truncated and not fsynced since (the restart's torn-tail repair
        # cut short): a crash now puts their durable bytes back.
        self._truncated: set[str] = set()

    def arm_power_cut(self, ops_after: int) -> None:
        self._cut_after = ops_after
        self._counting = False

    def disarm_power_cut(self) -> None:
        self._cut_after = None

    @property
    def truncate_pending(self) -> bool:
        """A file was truncated and not fsynced since (a crash now undoes the cut)."""
        return bool(self._truncated)

    def crash(self, *args: Any, **kwargs: Any) -> None:
        self._cut_after = None
        self._new_segment = None
        self._truncated.clear()
        super().crash(*args, **kwargs)

    def commit_directory(self, directory: str) -> None:
        """The file system wrote ``directory``'s names to the media on its own (a
        journal commit): as ``fsync_dir``, but nobody asked, and with the power off.

        A created file may so outlive a crash without its directory's fsync (a
        ``*.tmp`` of a snapshot, a new segment whose header never synced)."""
        with self._lock:
            directory = os.path.normpath(directory)
            if directory in self._dirs:  # not yet made: the power failed before its mkdir
                self._dirs_durable[directory] = dict(self._dirs[directory])

    def clear_faults(self) -> bool:
        """Forget the I/O errors set with ``fail`` that have not struck yet (True: some)."""
        with self._lock:
            pending = bool(self._faults)
            self._faults.clear()
            return pending

    def _op(self, op: str, path: str) -> str:
        asked = self.at_storage_event
        event = self._roll_over_moment(op, path)
        if event is not None and asked is not None and asked(event):
            # The power fails before this call: none of its bytes leave.
            self._dead = True
            self._was_dead_before = True
            if self.on_power_cut is not None:
                self.on_power_cut(f"before {op} {os.path.basename(path)}")
            raise PowerCut(f"{op} {path}: the power failed before it")
        if self._cut_after is not None and op in _MUTATING_OPS and not self.power_is_cut:
            self._counting = self._counting or op in _STRUCTURAL_OPS
            if self._counting:
                if self._cut_after == 0:
                    self._cut_after = None
                    self.cut_power_after(0)  # this very call is where the power fails
                else:
                    self._cut_after -= 1
        try:
            path = super()._op(op, path)
        except PowerCut:
            if not self._was_dead_before and self.on_power_cut is not None:
                self.on_power_cut(f"{op} {os.path.basename(path)}")
            raise
        if op == "truncate":
            self._truncated.add(path)
        elif op in ("fsync", "fdatasync"):
            self._truncated.discard(path)
        return path

    def _roll_over_moment(self, op: str, path: str) -> str | None:
        """The roll-over moment ``op`` would end, if any: the first write to a
        segment whose roll-over is durable (``ROLLED_OVER``), or the old
        segment's seal write, the new one durable (``ROLL_CUT_SHORT``)."""
        if _SEGMENT_MARK not in path or self.power_is_cut:
            return None
        path = os.path.normpath(path)
        if op == "fsync":  # only a new segment's header is fsynced; records are fdatasynced
            self._new_segment, self._sealed = path, False
        elif op == "fdatasync" and self._new_segment not in (None, path):
            self._sealed = True  # the old segment's seal
        elif op == "write" and path == self._new_segment:
            self._new_segment = None
            return ROLLED_OVER if self._sealed else None
        elif op == "write" and self._new_segment is not None and not self._sealed:
            return ROLL_CUT_SHORT  # the seal, after the new segment's directory fsync
        return None


# The storage moments ``at_storage_event`` is asked about.
ROLLED_OVER = "roll-over durable, new segment empty"
ROLL_CUT_SHORT = "roll-over half done, old segment not sealed"
_SEGMENT_MARK = "/wal-"

_MUTATING_OPS = frozenset(
    {"create", "write", "fdatasync", "fsync", "truncate", "rename", "unlink", "fsync_dir", "mkdir"}
)
_STRUCTURAL_OPS = frozenset({"create", "rename", "unlink", "truncate", "fsync_dir", "mkdir"})


@dataclass(slots=True)
class Ticket:
    lsn: int


class SimCommitter:
    """The group committer of one process: one write, then one fsync, at a time.

    ``submit`` appends at once (the log assigns lsns in call order). A sync is
    two simulator events: the *write* (the records reach the page cache) and,
    a disk-dependent time later, the *fsync* (they are durable). Everything
    appended by the write is covered by that fsync; batches submitted while a
    sync runs wait for the next one, as with the real committer's thread.
    """

    def __init__(
        self, world: World, host: Host, storage: Storage, *, sync_here: bool = False
    ) -> None:
        self._world = world
        self._host = host
        self._storage = storage
        self._sync_here = sync_here
        self._lsn_wanted = storage.lsn_durable
        self._lsn_durable = storage.lsn_durable
        self._syncing = False
        self._waiters: list[tuple[int, int, Any]] = []
        self._order = 0
        self.incarnation = host.incarnation
        # Records appended and not yet durable, by the lsn of a batch's last one.
        self._unsynced: deque[tuple[int, Sequence[StorageRecord]]] = deque()
        # Batches (by their last lsn) that end in an accept replacing a lower one.
        self._reaccepts: set[int] = set()
        # Notes about records a crash tore (their lsns are handed out again).
        last = storage.lsn_durable
        host.accepts = {slot: at for slot, at in host.accepts.items() if at[0] <= last}
        host.replaced = {lsn: old for lsn, old in host.replaced.items() if lsn <= last}
        # What the last write event handed to the disk (the next fsync covers it).
        self._lsn_written = storage.lsn_durable
        # A failed write or fsync fails every waiter and every later submit,
        # as GroupCommitter does.
        self._failure: StorageError | None = None
        # Closed: the pending write and fsync events do nothing (the thread stopped).
        self._closed = False

    @property
    def lsn_durable(self) -> int:
        return self._lsn_durable

    @property
    def syncing(self) -> bool:
        """A write or fsync event is pending."""
        return self._syncing

    def submit(self, records: Sequence[StorageRecord], *, sync: bool = True) -> Ticket:
        if self._failure is not None:
            raise self._failure
        lsn = self._storage.append(records)
        if records:
            self._unsynced.append((lsn, records))
            self._note_accepts(lsn, records)
        if sync and lsn > self._lsn_wanted:
            self._lsn_wanted = lsn
            self._start_sync()
        return Ticket(lsn)

    def _note_accepts(self, lsn_last: int, records: Sequence[StorageRecord]) -> None:
        accepts = self._host.accepts
        first = lsn_last - len(records) + 1
        for at, record in enumerate(records, first):
            if isinstance(record, AcceptRecord):
                entry = record.entry
                before = accepts.get(entry.slot)
                accepts[entry.slot] = (at, entry.ballot)
                if before is not None and before[1] < entry.ballot:
                    self._host.replaced[at] = before[0]
                    if at == lsn_last:
                        self._reaccepts.add(lsn_last)

    def durable_future(self, lsn: int) -> Any:
        process = self._host.process
        assert process is not None
        future = process.loop.create_future()
        if self._lsn_durable >= lsn:
            future.set_result(None)
        elif self._failure is not None:
            future.set_exception(self._failure)
        else:
            self._order += 1
            heapq.heappush(self._waiters, (lsn, self._order, future))
        return future

    def may_sync_here(self) -> bool:
        """With ``sync_here`` on: when no write or fsync event is pending and
        nothing waits for one (the real committer's idle disk)."""
        return (
            self._sync_here
            and not self._syncing
            and self._lsn_wanted <= self._lsn_durable
            and self._failure is None
            and self._live()
        )

    def sync_here(self, lsn: int) -> None:
        """Write and fsync through ``lsn`` at once, on the node's own turn: the
        node sends what waited for them only after this returns."""
        if self._failure is not None:
            raise self._failure
        try:
            durable = self._storage.sync_through(lsn)
        except StorageError as error:
            self._fail(error)
            raise
        self._lsn_written = max(self._lsn_written, durable)
        self._reaccepts = {each for each in self._reaccepts if each > durable}
        self._complete_through(durable)

    def close(self, timeout: float | None = None) -> None:
        """Sync everything submitted and complete its handles, as ``GroupCommitter.close``
        does: the sync in flight is finished here, and when it fails (an I/O error
        during a graceful stop) every waiter hears of it and the log closes failed."""
        live = self._live()
        self._closed = True
        if not live or self._failure is not None:
            return
        try:
            durable = self._storage.sync()
        except StorageError as error:
            self._fail(error)
            return
        self._complete_through(durable)

    def _live(self) -> bool:
        return (
            not self._closed
            and self._host.incarnation == self.incarnation
            and self._host.process is not None
        )

    def _start_sync(self) -> None:
        if self._syncing:
            return
        self._syncing = True
        write_s, fsync_s = self._world.disk_times(self._host)
        self._world.later(write_s, self._write)
        self._world.later(write_s + fsync_s, self._fsync)

    def _write(self) -> None:
        """The records reach the page cache (written, not yet synced)."""
        if not self._live():
            return
        try:
            self._lsn_written = self._storage.flush()
        except StorageError as error:
            self._fail(error)
            return
        if self._host.crash_in_fsync:
            # The power fails with the batch written, before its fsync returns:
            # the written bytes may be torn at any byte.
            self._world.crash_host(self._host, "mid-fsync")

    def _fsync(self) -> None:
        if not self._live():
            return
        self._syncing = False
        if self._failure is not None:
            return
        try:
            durable = self._storage.sync_through(self._lsn_written)
        except StorageError as error:
            self._fail(error)
            return
        event = _rare_record(self._unsynced, durable)
        if durable in self._reaccepts:
            # The log now ends in an accept that replaced an older one of its
            # slot: the rarest of them, so it names the event.
            event = REACCEPT_DURABLE
        self._reaccepts = {lsn for lsn in self._reaccepts if lsn > durable}
        if event is not None and self._world.storage_crash_point(self._host, event):
            return
        if self._world.crash_point(self._host, "fsync done, messages unsent"):
            return
        self._complete_through(durable)
        if self._lsn_wanted > self._lsn_durable:
            self._start_sync()

    def _complete_through(self, durable: int) -> None:
        """Records through ``durable`` are durable: tell the world, wake their waiters."""
        if durable <= self._lsn_durable:
            return
        self._lsn_durable = durable
        unsynced = self._unsynced
        while unsynced and unsynced[0][0] <= durable:
            self._world.on_records_durable(self._host, unsynced.popleft()[1])
        waiters = self._waiters
        while waiters and waiters[0][0] <= durable:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)

    def _fail(self, error: StorageError) -> None:
        self._failure = error
        self._syncing = False
        for _, _, future in self._waiters:
            if not future.done():
                future.set_exception(error)
        self._waiters.clear()


def _rare_record(unsynced: deque[tuple[int, Sequence[StorageRecord]]], durable: int) -> str | None:
    """The rare storage moment a sync through ``durable`` makes, if any: a
    ``SnapshotRecord`` (an installed or taken snapshot) or a no-op's accept."""
    for lsn, records in unsynced:
        if lsn > durable:
            break
        for record in records:
            if isinstance(record, SnapshotRecord):
                return SNAPSHOT_RECORD_DURABLE
            if isinstance(record, AcceptRecord) and record.entry.value.is_noop:
                return NOOP_DURABLE
    return None


SNAPSHOT_RECORD_DURABLE = "SnapshotRecord durable"
NOOP_DURABLE = "no-op accept durable"
REACCEPT_DURABLE = "accept replacing a lower one durable, last in the log"
# A crash point: a snapshot file just became durable (taken, or the file of
# one being installed) while the log still reaches back before its lsn; and
# the rarer case where its lsn is an accept that replaced an older one of its
# slot still in the log (a restart replays the log over the snapshot's lsn).
SNAPSHOT_TAKEN = "snapshot file durable, log reaches back before it"
SNAPSHOT_OVER_REACCEPT = (
    "snapshot file durable at a re-accept, the replaced accept still in the log"
)


class SimTransport:
    """Peer links of one process, over ``SimNetwork``. Never blocks, never buffers.

    Membership as the real ``Transport`` keeps it: ``peers`` (given at the
    start, then ``set_peers``) are the only nodes this one links to; a link
    needs both ends (``World.link_up``). Each peer's entry remembers when it
    was made (``linked_since``): a message that left before it came over no
    link this process still has."""

    def __init__(self, world: World, host: Host, settings: dict[str, Any]) -> None:
        self._world = world
        self._host = host
        self.incarnation = host.incarnation
        # What ``set_bound_incarnations`` was last told (``refuses`` reads it).
        self.bound_incarnations: dict[int, int] = {}
        self.on_peer_message: Callable[[PeerMessage], None] = settings["on_peer_message"]
        self.on_client_request: Callable[[ClientAnswers, ClientRequest], None] = settings[
            "on_client_request"
        ]
        node_id = host.node_id
        self._peers: dict[int, tuple[str, int]] = {
            peer: address for peer, address in settings["peers"].items() if peer != node_id
        }
        # Stamp (``World.link_stamp``) at which each peer's entry was made; the
        # peers of the start have 0: as old as any message (see the module docstring).
        self._linked_since: dict[int, int] = dict.fromkeys(self._peers, 0)
        self._dropped_sends = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    @property
    def address(self) -> tuple[str, int]:
        return ("sim", self._host.node_id)

    def send(self, message: PeerMessage) -> None:
        if self._host.incarnation != self.incarnation:
            return
        if not self._world.link_up(self._host.node_id, message.dst):
            self._dropped_sends += 1  # no link: the real transport drops and counts it
            self._world.unsent(self._host.node_id, message)
            return
        if self._refused(message.dst, dropping=True):
            return  # the handshake was refused: no link either
        self._world.send(self._host.node_id, message)

    def backlog_bytes(self, peer: int) -> int:
        return 0

    def has_peer(self, peer: int) -> bool:
        """``peer`` is in this transport's peer map (it dials or accepts it)."""
        return peer in self._peers

    def peer_ids(self) -> set[int]:
        """Every peer in this transport's peer map."""
        return set(self._peers)

    def linked_since(self, peer: int) -> int | None:
        """The stamp at which ``peer`` entered the peer map, None if it is not in it."""
        return self._linked_since.get(peer)

    def reachable(self, peer: int) -> bool:
        node_id = self._host.node_id
        return not self._world.network.is_cut(node_id, peer) and self._world.link_up(node_id, peer)

    def client_address_of(self, peer: int) -> str | None:
        return f"sim{peer}:1"

    def stats(self) -> TransportStats:
        if not self._dropped_sends:
            return _NO_TRAFFIC
        return dataclasses.replace(_NO_TRAFFIC, dropped_sends=self._dropped_sends)

    def set_peers(self, peers: Mapping[int, tuple[str, int]]) -> None:
        """As ``Transport.set_peers``: hang up on the peers gone or moved (their
        entries go), link to the new ones (their entries are made now)."""
        node_id = self._host.node_id
        peers = {peer: address for peer, address in peers.items() if peer != node_id}
        for peer, address in list(self._peers.items()):
            if peers.get(peer) != address:
                del self._peers[peer]
                del self._linked_since[peer]
        for peer, address in sorted(peers.items()):
            if peer not in self._peers:
                self._peers[peer] = address
                self._linked_since[peer] = self._world.link_stamp()

    def incarnation_of(self, peer: int) -> int | None:
        # What a handshake proves (``PeerTransport.incarnation_of``): the
        # peer's data directory, while the link is up: not cut, not refused
        # for an incarnation by either side, and the peer's process running
        # (a peer that is down has made no handshake to prove anything).
        if not self.reachable(peer) or self._refused(peer) or not self._world.runs(peer):
            return None
        return self._world.data_incarnation(peer)

    def set_bound_incarnations(self, bound: Mapping[int, int]) -> None:
        self.bound_incarnations = dict(bound)

    def _refused(self, peer: int, *, dropping: bool = False) -> bool:
        """Whether the link to ``peer`` is refused (its messages dropped, as
        ``PeerTransport`` drops a link whose handshake either side refused)."""
        return self._world.handshake_refused(self._host.node_id, peer, dropping=dropping)


def refuses(binder: Host, peer: Host) -> bool:
    """Whether ``binder``'s running process refuses ``peer``'s handshake: the
    configuration it gave its transport binds ``peer`` to another incarnation
    than ``peer``'s data directory holds (each side of a ``PeerTransport``
    handshake checks the other's incarnation against its own bindings)."""
    process = binder.process
    transport = None if process is None else getattr(process.node, "_transport", None)
    if not isinstance(transport, SimTransport):
        return False
    bound = transport.bound_incarnations.get(peer.node_id)
    return bound is not None and bound != peer.data_incarnation


_NO_TRAFFIC = TransportStats(
    frames_in=0,
    frames_out=0,
    bytes_in=0,
    bytes_out=0,
    dropped_sends=0,
    bad_frames=0,
    handshakes_refused=0,
    connections_refused=0,
    requests_refused=0,
    peers={},
    clients_connected=0,
)


@dataclass(slots=True)
class Connection:
    """A client's connection to one process: answers go back over the network."""

    world: World
    host: Host
    incarnation: int
    client: int

    def send(self, response: ClientResponse) -> None:
        if self.host.incarnation != self.incarnation or self.host.process is None:
            return
        if isinstance(response, Reply) and self.world.crash_point(
            self.host, "applied, not yet answered"
        ):
            return
        self.world.send_to_client(self.host.node_id, self.client, response)

    def reply(self, request_id: int, payload: bytes) -> None:
        """``ClientConnection.reply``: here simply ``send`` of the Reply."""
        self.send(Reply(request_id, payload))

    def peer_name(self) -> str:
        return f"client{self.client}"

    def closed(self) -> bool:
        return self.host.incarnation != self.incarnation
