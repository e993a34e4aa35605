"""A node crashed again soon after a restart that met an odd log.

Recovery's repairs and the log's first appends after a restart run only at a
start; what they leave is read back only at the next start. Random crashes
seldom hit the same node twice in a row with writes between, so mutation
sample s13 left three bugs unseen there: a torn tail left in place and
written after (#78), appends to the oldest, sealed segment when the log spans
a roll-over (#86), and the next recovery reading either back.

With "crash", a start after a crash that lost log bytes not yet synced (a
torn or emptied tail) or that left the log over two or more segments is
followed, at ``SHARE`` odds, by a plain crash of the node at its first sync
of log records ``AFTER_S`` or more after the start: records appended and
synced on the repaired log. At most ``PER_RUN_MAX`` a run, never after the
heal.

Contract: its draws come from ``{seed}:crash-again`` and only at such a
start; noting the crash's torn log files draws nothing (the tear it wraps
draws as before), so a seed whose starts meet no odd log runs as before.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from paxon.storage.memfs import MemFileSystem, Tear

if TYPE_CHECKING:
    from paxon.sim.host import Host
    from paxon.sim.runtime import RuntimeCluster

# Odds that a start after an odd log is followed by another crash.
SHARE = 0.75
# When that crash comes after the start (seconds), and how many a run.
AFTER_S = (0.0, 0.15)
PER_RUN_MAX = 3
_SEGMENT_PREFIX = "wal-"


class CrashAgain:
    """Plans the crashes of the module docstring for one run of ``cluster``."""

    def __init__(self, cluster: RuntimeCluster, seed: int) -> None:
        self._cluster = cluster
        self._on = "crash" in cluster.config.faults
        self._rng = random.Random(f"{seed}:crash-again")
        # Why each node's next start is worth crashing after (its last crash).
        self._odd: dict[int, str] = {}
        # Crashes planned: node -> (its incarnation, not before, why).
        self._armed: dict[int, tuple[int, float, str]] = {}
        self.planned = 0
        self.done = 0

    def tear(self, host: Host, tear: Tear) -> Tear:
        """``tear``, noting a log file of ``host`` that loses unsynced bytes."""

        def noted(path: str, unsynced: int) -> int:
            kept = tear(path, unsynced)
            if f"/{_SEGMENT_PREFIX}" in path and kept < unsynced:
                self._odd[host.node_id] = f"{unsynced - kept} unsynced log bytes lost"
            return kept

        return noted

    def crashed(self, host: Host) -> None:
        """``host`` just lost its power: note a log that spans a roll-over."""
        segments = _segments(host.fs, f"/node{host.node_id}")
        if segments >= 2 and host.node_id not in self._odd:
            self._odd[host.node_id] = f"a log over {segments} segments"

    def started(self, host: Host) -> None:
        """``host``'s node started from its disk: perhaps crash it again soon."""
        cluster = self._cluster
        why = self._odd.pop(host.node_id, None)
        if why is None or not self._on or cluster.healed_at is not None:
            return
        if self.planned >= PER_RUN_MAX or self._rng.random() >= SHARE:
            return
        self.planned += 1
        not_before = cluster.time + self._rng.uniform(*AFTER_S)
        self._armed[host.node_id] = (host.incarnation, not_before, why)
        cluster.log(
            f"fault: n{host.node_id} will crash again at its first sync after "
            f"{not_before:.3f} s ({why})"
        )

    def synced(self, host: Host) -> None:
        """Records of ``host`` became durable: the planned crash, if it is time."""
        armed = self._armed.get(host.node_id)
        cluster = self._cluster
        if armed is None or cluster.time < armed[1]:
            return
        del self._armed[host.node_id]
        incarnation, _, why = armed

        def crash() -> None:
            if host.incarnation != incarnation or host.process is None:
                return  # crashed meanwhile
            if cluster.healed_at is not None:
                return
            self.done += 1
            cluster.stats.faults["crash-again"] = self.done
            cluster.crash_host(host, f"crash again after a restart ({why})")

        # Not inside the sync's callback: once the messages it released are out.
        cluster.later(0.0, crash)


def _segments(fs: MemFileSystem, directory: str) -> int:
    # The durable directory, read without a file system call: a call would
    # count toward an armed power cut and move it.
    names = fs._dirs_durable.get(directory, {})
    return sum(1 for name in names if name.startswith(_SEGMENT_PREFIX))


__all__ = ["AFTER_S", "PER_RUN_MAX", "SHARE", "CrashAgain"]
