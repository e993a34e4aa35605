"""Health and readiness of one node: what ``GET /readyz``, ``GET /health`` and
``paxon endpoint health`` report.

A node is **ready** when each of three checks passes, judged in this order (the
first that fails is named in the report):

| check    | passes when                                                         |
|----------|---------------------------------------------------------------------|
| ``leader`` | it knows a leader within ``contact_max_s``: a follower (or learner) |
|          | heard from the leader it follows; a leader heard from enough voters |
|          | to make a majority with itself                                      |
| ``caught_up`` | it has applied all but at most ``READY_LAG_MAX_SLOTS`` of the   |
|          | chosen prefix it has heard of                                       |
| ``disk`` | a probe write to its data directory (write, fsync, remove, in      |
|          | ``DISK_PROBE_NAME``) finished without error within                  |
|          | ``DISK_PROBE_TIMEOUT_S``, no longer than ``DISK_PROBE_MAX_AGE_S`` ago |

``contact_max_s`` is the node's ``election_timeout_max_s``: the same bound after
which a leader without a quorum steps down and a follower stands for election.

The report says which node, its role and the leader's id, the lag in slots, and
per check ``ok`` or why not; it holds no key, value, user, path or address, so
the routes that serve it need no token (as etcd's ``/health``).

The disk probe runs on a worker thread every ``DISK_PROBE_INTERVAL_S``
(``DiskProbe.run``, started by ``paxon serve``); judging reads only its last
result, so a report costs nothing and a hung disk shows as a probe still running
past its timeout. ``judge`` is pure: facts in, report out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from paxon.storage.layout import DISK_PROBE_NAME, TMP_SUFFIX

if TYPE_CHECKING:
    from paxon.node.node import Node

READY_LAG_MAX_SLOTS: Final = 64
"""At most this many chosen slots not yet applied (one pipeline window by default)."""
DISK_PROBE_INTERVAL_S: Final = 1.0
DISK_PROBE_TIMEOUT_S: Final = 2.0
"""A probe write running longer counts as a disk that does not answer."""
DISK_PROBE_MAX_AGE_S: Final = 5.0
"""A last good probe older than this (the prober stopped) no longer counts."""
DISK_PROBE_BYTES: Final = 4096

CHECKS: Final = ("leader", "caught_up", "disk")


@dataclass(frozen=True, slots=True)
class DiskState:
    """What the disk probe last found, on the monotonic clock."""

    ok_at: float | None = None  # when the last probe succeeded
    error: str | None = None  # the last probe's error, if it failed
    running_since: float | None = None  # a probe under way, started then


@dataclass(frozen=True, slots=True)
class Facts:
    """What readiness is judged from, all read at ``now`` (monotonic seconds)."""

    node_id: int
    role: str
    leader: int | None
    contact_age_s: float | None  # since the leader was last known leading; None: never
    contact_max_s: float
    slot_applied: int
    slot_chosen_heard: int
    disk: DiskState
    now: float


def judge(facts: Facts) -> dict[str, Any]:
    """The readiness report: ``{"ready", "failed", "node_id", "role", "leader",
    "lag_slots", "checks": {name: "ok" or why not}}``; ``failed`` is the first
    failing check's name, or None."""
    checks = {
        "leader": _leader_check(facts),
        "caught_up": _lag_check(facts),
        "disk": _disk_check(facts.disk, facts.now),
    }
    failed = next((name for name in CHECKS if checks[name] != "ok"), None)
    return {
        "ready": failed is None,
        "failed": failed,
        "node_id": facts.node_id,
        "role": facts.role,
        "leader": facts.leader,
        "lag_slots": max(facts.slot_chosen_heard - facts.slot_applied, 0),
        "checks": checks,
    }


class Readiness:
    """A node's readiness: its facts judged with the disk probe's last result."""

    def __init__(self, node: Node, probe: DiskProbe) -> None:
        self._node = node
        self.probe = probe

    def report(self) -> dict[str, Any]:
        return judge(self.facts())

    def facts(self) -> Facts:
        """This node's facts now (on the event loop of a started node)."""
        node = self._node
        replica = node._replica
        status = replica.status()
        contact = replica.leader_contact_at()
        role = status.role.value
        if node.node_id in replica.configuration_newest.learners and role != "leader":
            role = "learner"
        return Facts(
            node_id=node.node_id,
            role=role,
            leader=status.leader_hint,
            contact_age_s=None if contact is None else max(node._loop.time() - contact, 0.0),
            contact_max_s=node.config.replica.election_timeout_max_s,
            slot_applied=node.machine.slot_applied,
            slot_chosen_heard=replica.slot_chosen_heard,
            disk=self.probe.state,
            now=self.probe.clock(),
        )


class DiskProbe:
    """Writes, fsyncs and removes a small file in ``directory``, over and over."""

    def __init__(
        self,
        directory: str,
        *,
        interval_s: float = DISK_PROBE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = os.path.join(directory, DISK_PROBE_NAME + TMP_SUFFIX)
        self.interval_s = interval_s
        self.state = DiskState()
        self.clock = clock

    async def run(self) -> None:
        """Probe every ``interval_s`` until cancelled (one probe at a time)."""
        loop = asyncio.get_running_loop()
        while True:
            started = self.clock()
            self.state = DiskState(self.state.ok_at, self.state.error, started)
            try:
                await loop.run_in_executor(None, self.probe_once)
            except OSError as error:
                self.state = DiskState(self.state.ok_at, _describe(error))
            else:
                self.state = DiskState(self.clock())
            await asyncio.sleep(self.interval_s)

    def probe_once(self) -> None:
        """One probe (blocking): ``OSError`` when the disk refuses."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0" * DISK_PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


# ------------------------------------------------------------------- helpers


def _leader_check(facts: Facts) -> str:
    if facts.contact_age_s is None:
        if facts.role == "leader":
            return "leading without a majority of voters heard from"
        return "no leader known"
    if facts.contact_age_s > facts.contact_max_s:
        whom = "a majority of voters" if facts.role == "leader" else f"leader {facts.leader}"
        return (
            f"last heard from {whom} {facts.contact_age_s:.1f} s ago "
            f"(more than {facts.contact_max_s:g} s)"
        )
    return "ok"


def _lag_check(facts: Facts) -> str:
    lag = facts.slot_chosen_heard - facts.slot_applied
    if lag > READY_LAG_MAX_SLOTS:
        return f"{lag} chosen slots not applied yet (more than {READY_LAG_MAX_SLOTS})"
    return "ok"


def _disk_check(disk: DiskState, now: float) -> str:
    if disk.running_since is not None and now - disk.running_since > DISK_PROBE_TIMEOUT_S:
        return f"a probe write has not finished in {now - disk.running_since:.1f} s"
    if disk.error is not None:
        return f"a probe write failed: {disk.error}"
    if disk.ok_at is None:
        return "not probed yet"
    if now - disk.ok_at > DISK_PROBE_MAX_AGE_S + DISK_PROBE_TIMEOUT_S:
        return f"last probed {now - disk.ok_at:.1f} s ago"
    return "ok"


def _describe(error: OSError) -> str:
    """An error without the path (the report is served without a token)."""
    return error.strerror or type(error).__name__
