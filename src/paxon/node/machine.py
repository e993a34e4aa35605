"""The replicated state machine as the runtime sees it: user machine + sessions + log time.

Contract:
- ``apply(entry)`` runs every command of a chosen slot, in order. A clock
  entry (client id ``CLOCK_CLIENT_ID``, see ``paxon.node.logclock``) moves the
  log time forward and expires idle sessions; it yields nothing. Every other
  command goes through the session table (``paxon.kv.sessions``): a new
  ``(client_id, seq)`` is applied and its reply recorded; a duplicate is
  skipped and answered with the recorded reply; a stale one is skipped and
  answered with ``None``; a command that would open a session when the table
  is full (FULL), or that names an unknown session past its first seq
  (EXPIRED), is refused and nothing is applied. Every replica applies the same
  slots in the same order, so every replica holds the same user state, the
  same session table and the same log time, and gives the same verdicts.
- ``slot_applied`` is the first slot not yet applied; ``apply`` insists on
  slot order, so a gap or a repeat is a crash, not a silent divergence.
- ``snapshot()`` and ``restore()`` carry the user state, the session table
  and the log time, so a node restored from a snapshot still applies each
  command once and expires sessions exactly when its peers do.
- A snapshot is untrusted bytes (a peer sent it, or a disk kept it):
  ``check_snapshot`` decodes all of it into scratch values (the head, a
  scratch session table, the user machine's ``check_snapshot``) and changes
  nothing; ``restore`` refuses what ``check_snapshot`` refuses. Both raise
  ``InvalidSnapshot`` only. ``prepare_restore`` is ``restore`` split in two:
  decode and check on a worker thread, swap in on the event loop.

Rules of the replicated state (the same on every node; changing one is a
change of the rules, like a format change, and needs every node restarted on
the new release together):

| rule            | value            | why                                                   |
|-----------------|------------------|-------------------------------------------------------|
| ``SESSIONS_MAX``   | 100,000 sessions | bounds the table; a full one refuses new sessions   |
| ``SESSION_TTL_MS`` | 300,000 ms (5 min) of log time | a session idle longer may be dropped |

A client retries one command for at most ``paxon.client.SESSION_RETRY_MAX_S``
(60 s) and renews a lane idle ``paxon.client.LANE_IDLE_MAX_S`` (60 s), far
inside the TTL, so a retry finds its session unless the members' clocks are
minutes apart.

Configurations (``paxon.protocol.membership``): a command of the system
session (client id 0) whose payload starts with ``CONFIG_MAGIC`` is a
configuration change (any other is a clock entry, as before); it yields
nothing, and the machine keeps the same history of configurations as the
core (same rule, same slots), so a snapshot carries what a replica restored
from it needs (``configs_at``). Each node a change drops is remembered
removed (``removed``: the last ``REMOVED_REMEMBERED_MAX``, 16, with address,
effect slot and epoch; one added back is forgotten), and a snapshot carries
that too: a member restarted past a removal still tells the removed node
(``Replica.install_snapshot``). One whose payload starts with
``LEADER_MAGIC`` is a clock entry that a new leader proposes first: the user
machine's ``on_leader_change`` runs, then the clock moves as for any clock
entry (``StateMachine.on_log_time``). One whose payload starts with
``COMPACT_MAGIC`` is the leader's history retention (``paxon.node.history``):
a ``KvStore`` cuts its history there (``KvStore.compact_history``); it yields
nothing and needs no token (no client can use client id 0).

Snapshot layout (version 4): a msgpack array ``[4, slot_applied, log_time_ms,
sessions, configs, removed]`` where ``sessions`` is ``[[client_id, seq, active_ms,
reply], ...]`` least recently active first and ``configs`` is ``[[effect_slot,
configuration], ...]`` (the one in effect at ``slot_applied`` and every later
one; ``configuration`` as ``Configuration.encode`` writes it; empty when the
machine does not track them) and ``removed`` is ``[[node_id, address,
effect_slot, epoch], ...]`` oldest first, then the user state machine's bytes.
Version 3 is version 4 without ``removed``, and is still written while no
member was ever removed (so a release before version 4 reads those). Version 2
is version 3 without ``configs``. Version 1
(``[1, slot_applied, [[client_id, seq, reply], ...]]``, before log time)
still loads: its sessions get log time 0 and count as active at the first
stamp (``SessionTable.rebase``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, assert_never

import msgpack  # type: ignore[import-untyped]

from paxon.errors import BadRequest, PaxonError, SessionExpired, SessionsFull
from paxon.kv.sessions import SessionTable, SessionVerdict
from paxon.kv.store import KvStore
from paxon.node.history import COMPACT_MAGIC, compaction_revision
from paxon.node.logclock import CLOCK_CLIENT_ID, LEADER_MAGIC, LogClock
from paxon.protocol.membership import (
    ADDRESS_BYTES_MAX,
    CONFIG_MAGIC,
    REMOVED_REMEMBERED_MAX,
    ConfigHistory,
    ConfigState,
    Configuration,
    InvalidConfiguration,
    RemovedMember,
    RemovedState,
    remember_removed,
    removed_by,
)
from paxon.protocol.ready import ChosenEntry
from paxon.protocol.types import NodeId, Slot
from paxon.statemachine import StateMachine

_SNAPSHOT_VERSION = 4
_SNAPSHOT_VERSION_NO_REMOVED = 3  # still written while no member was ever removed
_SNAPSHOT_VERSION_NO_CONFIGS = 2
_SNAPSHOT_VERSION_NO_TIME = 1

SESSIONS_MAX = 100_000
"""Client sessions remembered for exactly-once. When the table is full of
unexpired sessions, a command opening a new one is refused (``SessionsFull``);
a live session is never evicted. A rule of the replicated state (see above)."""


class InvalidSnapshot(ValueError):
    """A snapshot ``restore`` refuses; the message says which part is wrong."""


class _Head(NamedTuple):
    slot_applied: Slot
    log_time_ms: int
    sessions: list[tuple[int, int, int, bytes]]
    configs: ConfigState
    removed: RemovedState
    size: int  # bytes of the head; the user machine's image follows


CONFIGS_MAX = 64
"""Configurations a snapshot may carry (one in effect, the rest pending; the
core takes one change at a time, so two is the most it writes)."""

SESSION_TTL_MS = 300_000
"""A session idle this long in log time (5 minutes) is dropped. A rule of the
replicated state (see above)."""


class Applied(NamedTuple):
    """One command's outcome. ``reply`` is None unless the verdict is NEW or
    DUPLICATE; FULL and EXPIRED mean refused, nothing applied.

    A named tuple, not a dataclass: one is made per command on every replica.
    """

    client_id: int
    seq: int
    reply: bytes | None
    verdict: SessionVerdict

    @property
    def fresh(self) -> bool:
        """Whether this command was applied now (not a retry, not refused)."""
        return self.verdict is SessionVerdict.NEW


def refusal(applied: Applied) -> PaxonError | None:
    """The error to answer a command's asker with, or None when it has a reply."""
    match applied.verdict:
        case SessionVerdict.NEW | SessionVerdict.DUPLICATE:
            return None
        case SessionVerdict.STALE:
            return BadRequest("a newer command of this session was applied")
        case SessionVerdict.FULL:
            return SessionsFull(
                "the session table is full of live sessions: new session refused, "
                "nothing applied; retry later"
            )
        case SessionVerdict.EXPIRED:
            return SessionExpired(
                f"session {applied.client_id} is unknown or expired at seq {applied.seq}; "
                "nothing applied by this attempt; start a new session"
            )
    assert_never(applied.verdict)


class ReplicatedMachine:
    def __init__(
        self,
        machine: StateMachine,
        *,
        sessions_max: int = SESSIONS_MAX,
        session_ttl_ms: int = SESSION_TTL_MS,
        slot_applied: Slot = 0,
        configuration: Configuration | None = None,
    ):
        self.machine = machine
        self.sessions: SessionTable[bytes] = SessionTable(sessions_max, ttl_ms=session_ttl_ms)
        self.clock = LogClock()
        self.slot_applied = slot_applied
        # The configurations from slot_applied on, when the runtime tracks them,
        # and the nodes they removed (REMOVED_REMEMBERED_MAX, newest last).
        self.configs = None if configuration is None else ConfigHistory(((0, configuration),))
        self.removed: dict[NodeId, RemovedMember] = {}

    def apply(self, entry: ChosenEntry) -> Iterator[Applied]:
        if entry.slot != self.slot_applied:
            raise AssertionError(f"applying slot {entry.slot}, expected {self.slot_applied}")
        self.slot_applied += 1
        sessions = self.sessions
        for command in entry.value.commands:
            client_id, seq = command.client_id, command.seq
            if client_id == CLOCK_CLIENT_ID:
                if command.payload.startswith(CONFIG_MAGIC):
                    # A configuration change: the core and this history read it
                    # alike (``ConfigHistory.chosen``), once per slot.
                    if self.configs is not None:
                        self._configuration_chosen(self.configs, entry)
                elif command.payload.startswith(COMPACT_MAGIC):
                    self._compact_history(command.payload)
                else:
                    if command.payload == LEADER_MAGIC:
                        # A new leader's first stamp: leases are extended
                        # before the stamp can expire any (``logclock``).
                        self.machine.on_leader_change(max(seq, self.clock.log_time_ms))
                    self._observe_clock(seq)
                continue
            verdict = sessions.verdict(client_id, seq)
            if verdict is SessionVerdict.NEW:
                reply = self.machine.apply(command.payload)
                sessions.record(client_id, seq, reply, self.clock.log_time_ms)
                yield Applied(client_id, seq, reply, verdict)
            elif verdict is SessionVerdict.DUPLICATE:
                sessions.touch(client_id, self.clock.log_time_ms)
                yield Applied(client_id, seq, sessions.reply(client_id, seq), verdict)
            else:
                yield Applied(client_id, seq, None, verdict)

    def snapshot(self) -> bytes:
        return self.snapshot_later()()

    def snapshot_later(self) -> Callable[[], bytes]:
        """The state as of now, encoded when the returned function is called
        (on any thread; see ``StateMachine.snapshot_later``)."""
        configs = [] if self.configs is None else self.configs.state(self.slot_applied)
        body = [
            _SNAPSHOT_VERSION_NO_REMOVED,
            self.slot_applied,
            self.clock.log_time_ms,
            self.sessions.export(),
            [[effect, config.encode()] for effect, config in configs],
        ]
        if self.removed:  # a cluster that never removed a member stays readable by 3
            body[0] = _SNAPSHOT_VERSION
            body.append([[r.node_id, r.address, r.effect, r.epoch] for r in self.removed.values()])
        user = self.machine.snapshot_later()

        def encode() -> bytes:
            head: bytes = msgpack.packb(body, use_bin_type=True)
            return head + user()

        return encode

    def check_snapshot(self, data: bytes) -> Slot:
        """The slot ``data`` covers, if ``restore(data)`` would accept it.

        Changes nothing (any thread): the sessions go into a scratch table and
        the user part to ``StateMachine.check_snapshot``. Raises ``InvalidSnapshot``.
        """
        head = _decode_head(data)
        self._session_table(head)
        try:
            self.machine.check_snapshot(data[head.size :])
        except Exception as error:  # the user machine's own refusal, whatever its type
            raise InvalidSnapshot(f"state machine refused its part: {error!r}") from error
        return head.slot_applied

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot (version 2, or 1 from before log
        time); on ``InvalidSnapshot`` from the head nothing changed."""
        head = _decode_head(data)
        table = self._session_table(head)
        try:
            self.machine.restore(data[head.size :])
        except Exception as error:
            raise InvalidSnapshot(f"state machine refused its part: {error!r}") from error
        self._install_head(head, table)

    def prepare_restore(self, data: bytes) -> tuple[Slot, Callable[[], None]]:
        """``restore`` in two steps: decode all of ``data`` now (any thread; changes
        nothing; ``InvalidSnapshot`` if bad) and return the slot it covers and a
        function that swaps the decoded state in (``StateMachine.prepare_restore``)."""
        head = _decode_head(data)
        table = self._session_table(head)
        try:
            install_user = self.machine.prepare_restore(data[head.size :])
        except Exception as error:
            raise InvalidSnapshot(f"state machine refused its part: {error!r}") from error

        def install() -> None:
            install_user()
            self._install_head(head, table)

        return head.slot_applied, install

    def _install_head(self, head: _Head, table: SessionTable[bytes]) -> None:
        self.sessions = table
        self.clock = LogClock(head.log_time_ms)
        self.slot_applied = head.slot_applied
        if head.configs:
            self.configs = ConfigHistory(head.configs)
        self.removed = {removed.node_id: removed for removed in head.removed}

    def removed_state(self) -> RemovedState:
        """The nodes removed so far that this state remembers, oldest first."""
        return tuple(self.removed.values())

    def _configuration_chosen(self, configs: ConfigHistory, entry: ChosenEntry) -> None:
        """A configuration change was chosen at ``entry.slot``: the history takes
        it (if it counts) and forgets what no slot from here on needs, and every
        node it drops is remembered removed, alike on every replica that applies
        it. A member that joined later replays the changes from before its first
        configuration (``ConfigHistory.replayed``) to the same memory."""
        before = configs.newest
        change = configs.chosen(entry.slot, entry.value)
        if change is not None:
            gone = removed_by(before, change, configs.newest_effect)
            remember_removed(self.removed, gone, change.ids)
        for past, gone in configs.replayed():
            remember_removed(self.removed, gone, past.ids)
        configs.forget_before(self.slot_applied)

    def _session_table(self, head: _Head) -> SessionTable[bytes]:
        table: SessionTable[bytes] = SessionTable(
            self.sessions.max_sessions, ttl_ms=self.sessions.ttl_ms
        )
        try:
            table.load(head.sessions)
        except ValueError as error:
            raise InvalidSnapshot(f"snapshot sessions: {error}") from None
        return table

    def _compact_history(self, payload: bytes) -> None:
        """The leader's retention (``paxon.node.history``): cut the store's history.
        Another machine, or a malformed entry, changes nothing."""
        revision = compaction_revision(payload)
        if revision is not None and isinstance(self.machine, KvStore):
            self.machine.compact_history(revision)

    def _observe_clock(self, stamp_ms: int) -> None:
        untimed = self.clock.log_time_ms == 0
        if not self.clock.observe(stamp_ms):
            return
        if untimed:
            # The log's first time: sessions from before it (log time 0) start now.
            self.sessions.rebase(stamp_ms)
        else:
            self.sessions.expire(stamp_ms)
        self.machine.on_log_time(stamp_ms)


def _decode_head(data: bytes) -> _Head:
    """The head at the start of ``data``, every field checked (``InvalidSnapshot``)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=max(1, len(data)))
    try:
        unpacker.feed(data)
        header = unpacker.unpack()
        size = unpacker.tell()
    except (ValueError, msgpack.UnpackException) as error:
        raise InvalidSnapshot(f"snapshot head does not decode: {error!r}") from None
    try:
        return _parse_header(header)._replace(size=size)
    except ValueError as error:
        raise InvalidSnapshot(str(error)) from None


def _parse_header(header: Any) -> _Head:
    """The head of a snapshot from its decoded header, checked (``size`` 0)."""
    if not isinstance(header, list) or not header or type(header[0]) is not int:
        raise ValueError("snapshot header is not [version, ...]")
    version = header[0]
    configs: ConfigState = ()
    removed: RemovedState = ()
    if version == _SNAPSHOT_VERSION and len(header) == 6:
        _, slot_applied, log_time_ms, rows, config_rows, removed_rows = header
        sessions = [_session_row(row, 4) for row in _rows(rows)]
        configs = _configs(config_rows, slot_applied)
        removed = _removed(removed_rows)
    elif version == _SNAPSHOT_VERSION_NO_REMOVED and len(header) == 5:
        _, slot_applied, log_time_ms, rows, config_rows = header
        sessions = [_session_row(row, 4) for row in _rows(rows)]
        configs = _configs(config_rows, slot_applied)
    elif version == _SNAPSHOT_VERSION_NO_CONFIGS and len(header) == 4:
        _, slot_applied, log_time_ms, rows = header
        sessions = [_session_row(row, 4) for row in _rows(rows)]
    elif version == _SNAPSHOT_VERSION_NO_TIME and len(header) == 3:
        _, slot_applied, rows = header
        log_time_ms = 0
        sessions = [(c, s, 0, r) for c, s, r in (_session_row(row, 3) for row in _rows(rows))]
    else:
        raise ValueError(f"unknown snapshot version {version} (or wrong header length)")
    if not _is_uint(slot_applied) or not _is_uint(log_time_ms) or slot_applied >= 2**63:
        raise ValueError("snapshot slot_applied and log_time_ms must be integers >= 0")
    if any(active_ms > log_time_ms for _, _, active_ms, _ in sessions):
        raise ValueError("a snapshot session is active after the snapshot's log time")
    return _Head(slot_applied, log_time_ms, sessions, configs, removed, 0)


def _configs(rows: Any, slot_applied: Any) -> ConfigState:
    """The snapshot's configurations, checked: effect slots rising, the first at
    or below ``slot_applied``, each one decoding."""
    if not isinstance(rows, list) or len(rows) > CONFIGS_MAX:
        raise ValueError(f"snapshot configurations are not a list of at most {CONFIGS_MAX}")
    state = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 2 or not _is_uint(row[0]):
            raise ValueError(f"snapshot configuration row is not [slot, bytes]: {row!r:.80}")
        if not isinstance(row[1], bytes):
            raise ValueError("snapshot configuration is not bytes")
        try:
            state.append((row[0], Configuration.decode(row[1])))
        except InvalidConfiguration as error:
            raise ValueError(f"snapshot configuration: {error}") from None
    slots = [slot for slot, _ in state]
    if slots != sorted(set(slots)) or (state and slots[0] > slot_applied):
        raise ValueError(f"snapshot configuration slots out of order: {slots}")
    return tuple(state)


def _removed(rows: Any) -> RemovedState:
    """The snapshot's removed nodes, checked: at most ``REMOVED_REMEMBERED_MAX``
    rows ``[id, address, effect slot, epoch]``, ids above 0 and distinct."""
    if not isinstance(rows, list) or len(rows) > REMOVED_REMEMBERED_MAX:
        raise ValueError(f"snapshot removed nodes: not a list of at most {REMOVED_REMEMBERED_MAX}")
    removed = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 4:
            raise ValueError(f"snapshot removed node: not [id, address, slot, epoch]: {row!r:.80}")
        node_id, address, effect, epoch = row
        if not all(_is_uint(number) for number in (node_id, effect, epoch)) or node_id == 0:
            raise ValueError(f"snapshot removed node has a bad number: {row!r:.80}")
        if not isinstance(address, str) or len(address.encode()) > ADDRESS_BYTES_MAX:
            raise ValueError(f"snapshot removed node has a bad address: {row!r:.80}")
        removed.append(RemovedMember(node_id, address, effect, epoch))
    if len({r.node_id for r in removed}) != len(removed):
        raise ValueError("snapshot removed nodes repeat an id")
    return tuple(removed)


def _rows(rows: Any) -> list[Any]:
    if not isinstance(rows, list):
        raise ValueError("snapshot sessions are not a list")
    return rows


def _session_row(row: Any, width: int) -> Any:
    if not isinstance(row, list) or len(row) != width:
        raise ValueError(f"snapshot session is not a {width}-item list: {row!r:.80}")
    *numbers, reply = row
    if not all(_is_uint(number) for number in numbers) or not isinstance(reply, bytes):
        raise ValueError(f"snapshot session has a bad field: {row!r:.80}")
    return tuple(row)


def _is_uint(value: Any) -> bool:
    return type(value) is int and value >= 0
