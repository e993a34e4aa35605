"""The leader's history retention: when to compact the store's history, decided
from what the log says and carried out by a command in the log.

Rules:
- **No replica compacts by its own flags or clock.** ``--history-revisions`` and
  ``--history-seconds`` are the leader's policy: when it says so, the leader
  proposes a *compaction entry* (``compact_command``), a command of the system
  session (client id 0, which no client may use, so it needs no token), and
  every replica cuts the same history when it applies that entry
  (``KvStore.compact_history``, called by ``ReplicatedMachine``). Members may
  run with different flags; only the leader's count, and only through the log.
- **What the flags keep** (each is a guarantee, so the history kept is the
  larger of the two):
  - ``revisions`` N (default 10,000): a read at least N revisions back works.
    The leader compacts to ``revision - N`` once that is a step (N/8, at least
    1) above what is compacted: the store's behaviour before this module.
  - ``seconds`` S (default off): a read at any revision that was current at
    some log time within the last S seconds works. Log time is the leader
    stamps in the log (``paxon.node.logclock``), the same on every replica.
  With S set, the leader compacts to the smaller of the two targets.
- **Later, never earlier.** The seconds target comes from samples ``(log time,
  revision)`` of this node's applied state, taken on every node at most every
  ``sample_interval_ms`` (so a new leader has them). A sample ``(t, r)`` says
  the log reached revision ``r`` at log time ``t``, so every revision current
  at a log time after t is >= r: compacting to the newest sample's ``r`` with
  ``t < now - S`` never drops a revision current within S. Missing samples (a node
  just started, or restored a snapshot) only make the target older, or none.
- **The store's hard cap** (``KvLimits.history_max_revisions``, 1,000,000,
  ``HISTORY_REVISIONS_MAX``) bounds history even if no leader compacts;
  ``revisions`` may not exceed it, and S keeps no more than it allows.
- Log time moves only when the leader stamps, which it does with writes; on
  an idle cluster history does not grow and is cut at the next write.

Limits: at most ``SAMPLES_MAX`` (256) samples; one compaction entry in flight,
proposed again after ``RETRY_S`` (1 s) if it was not applied (a lost leader).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from paxon.kv.model import HISTORY_REVISIONS_MAX
from paxon.kv.store import KvStore
from paxon.node.logclock import STAMP_INTERVAL_S
from paxon.protocol import Role
from paxon.protocol.membership import SYSTEM_CLIENT_ID
from paxon.protocol.types import Command

if TYPE_CHECKING:
    from paxon.node.node import Node

COMPACT_MAGIC: Final = b"paxon-compact\x00"
"""A system-session payload that compacts history: the magic, then the
revision as an unsigned 64-bit big-endian integer."""
_REVISION: Final = struct.Struct(">Q")

HISTORY_REVISIONS_DEFAULT: Final = 10_000
HISTORY_SECONDS_MAX: Final = 366 * 24 * 3600
"""``--history-seconds`` at most a year (the revision cap bounds memory anyway)."""
SAMPLES_MAX: Final = 256
RETRY_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class HistoryRetention:
    """The leader's retention policy (``paxon serve --history-revisions/--history-seconds``)."""

    revisions: int = HISTORY_REVISIONS_DEFAULT
    seconds: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.revisions <= HISTORY_REVISIONS_MAX:
            raise ValueError(
                f"history revisions must be from 1 to {HISTORY_REVISIONS_MAX} (the store's "
                f"hard cap), got {self.revisions}"
            )
        if self.seconds is not None and not 0 < self.seconds <= HISTORY_SECONDS_MAX:
            raise ValueError(
                f"history seconds must be above 0 and at most {HISTORY_SECONDS_MAX}, "
                f"got {self.seconds}"
            )

    @property
    def step(self) -> int:
        """Compact only once this many revisions can go (amortizes the entries)."""
        return max(1, self.revisions // 8)

    @property
    def sample_interval_ms(self) -> int:
        if self.seconds is None:
            return 0
        return max(int(STAMP_INTERVAL_S * 1000), int(self.seconds * 1000) // SAMPLES_MAX)


def compact_command(revision: int) -> Command:
    """The compaction entry for ``revision`` (system session; seq 0, which a
    release without this module reads as a clock stamp that moves nothing)."""
    return Command(SYSTEM_CLIENT_ID, 0, COMPACT_MAGIC + _REVISION.pack(revision))


def compaction_revision(payload: bytes) -> int | None:
    """The revision of a compaction entry's payload; None if it is not one."""
    if len(payload) != len(COMPACT_MAGIC) + _REVISION.size or not payload.startswith(COMPACT_MAGIC):
        return None
    (revision,) = _REVISION.unpack_from(payload, len(COMPACT_MAGIC))
    return int(revision)


class RetentionPolicy:
    """Pure: samples and targets (no node, no clock); ``LeaderHistory`` drives it."""

    def __init__(self, retention: HistoryRetention) -> None:
        self.retention = retention
        self.samples: deque[tuple[int, int]] = deque(maxlen=SAMPLES_MAX)

    def observe(self, log_time_ms: int, revision: int) -> None:
        """Sample the applied state (log time and revision, read together)."""
        if self.retention.seconds is None or log_time_ms == 0:
            return
        samples = self.samples
        if samples and log_time_ms < samples[-1][0] + self.retention.sample_interval_ms:
            return
        samples.append((log_time_ms, revision))

    def target(self, log_time_ms: int, revision: int, revision_compacted: int) -> int | None:
        """The revision to compact to now, or None."""
        retention = self.retention
        wanted = revision - retention.revisions
        if retention.seconds is not None:
            kept_from = self._revision_at(log_time_ms - int(retention.seconds * 1000))
            if kept_from is None:
                return None
            wanted = min(wanted, kept_from)
        if wanted - revision_compacted < retention.step:
            return None
        return wanted

    def _revision_at(self, cutoff_ms: int) -> int | None:
        """The newest sample's revision strictly before ``cutoff_ms``; older samples go.

        Strictly: log time ``t`` may have been stamped before some of the writes
        that led to the sample's revision, so at log time ``t`` itself an older
        revision was current; at any log time after ``t``, only later ones."""
        samples = self.samples
        found = None
        while samples and samples[0][0] < cutoff_ms:
            found = samples.popleft()
        if found is None:
            return None
        samples.appendleft(found)  # still the newest at or before later cutoffs
        return found[1]


class LeaderHistory:
    """One node's retention duty: sample always, propose while leading."""

    def __init__(self, node: Node, retention: HistoryRetention) -> None:
        self._node = node
        self.policy = RetentionPolicy(retention)
        self._proposed: tuple[int, float] | None = None  # (revision, loop time)

    def on_tick(self, now: float) -> None:
        node = self._node
        store = node.machine.machine
        if not isinstance(store, KvStore):
            return
        node.metrics.kv_revision.set(store.revision)
        node.metrics.kv_revision_compacted.set(store.revision_compacted)
        log_time_ms = node.machine.clock.log_time_ms
        self.policy.observe(log_time_ms, store.revision)
        if node._replica.role is not Role.LEADER:
            return
        if self._proposed is not None:
            revision, at = self._proposed
            if store.revision_compacted < revision and now - at < RETRY_S:
                return  # one on its way
            self._proposed = None
        target = self.policy.target(log_time_ms, store.revision, store.revision_compacted)
        if target is None:
            return
        self._proposed = (target, now)
        node.log.debug(
            "[%d] history retention: proposing compaction to revision %d (revision %d)",
            node.node_id,
            target,
            store.revision,
        )
        node._propose_system(compact_command(target))
