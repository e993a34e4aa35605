"""The interface a replicated state machine implements.

Every replica applies the same commands in the same order, so ``apply`` must be
deterministic: the same state and command give the same state and reply on
every machine (no clocks, randomness, or iteration over unordered sets whose
order can differ between processes). ``apply`` must not raise for a command it
cannot understand: a bad command is in the log of every replica, so it answers
with an error reply instead (raising stops the node).

Client sessions are not the state machine's job: the runtime applies each
``(client_id, seq)`` once and remembers the reply (``paxon.kv.sessions``).

Time, for a machine that needs it (leases, TTLs), comes only through the log
(``paxon.node.logclock``): the runtime calls ``on_log_time`` when a clock entry
moves log time forward and ``on_leader_change`` at a new leader's first clock
entry, at the same slot on every replica; ``next_deadline_ms`` tells the
leader when to stamp the log even if no command comes. A machine that ignores
time keeps the defaults, which do nothing.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

from paxon.errors import NotSupported


class StateMachine(abc.ABC):
    @abc.abstractmethod
    def apply(self, command: bytes) -> bytes:
        """Apply one chosen command; return the reply for the client that sent it."""

    @abc.abstractmethod
    def snapshot(self) -> bytes:
        """The whole state, as bytes ``restore`` accepts."""

    @abc.abstractmethod
    def restore(self, data: bytes) -> None:
        """Replace the whole state with a ``snapshot``."""

    def check_snapshot(self, data: bytes) -> None:
        """Raise (any exception) if ``restore(data)`` would refuse ``data``.

        Must not change this machine, and may run on a worker thread while
        ``apply`` goes on: decode into scratch values (or a new, empty
        instance) and throw them away. The runtime calls it on a snapshot
        received from a peer before the snapshot's file is written or anything
        is restored, so a bad snapshot is dropped and the node goes on.

        The default accepts everything, so a machine that does not override it
        finds out only in ``restore``: the node then stops (exit 1), and at the
        next start the file it wrote is refused by name (exit 2).
        """
        return None

    def prepare_restore(self, data: bytes) -> Callable[[], None]:
        """Decode ``data`` now, install it later: ``restore`` in two steps.

        The runtime calls this on a worker thread with a snapshot a peer sent
        (it must not change this machine, like ``check_snapshot``), and the
        returned function on its event loop once the snapshot's file is
        durable; that function should only swap in what was decoded, so a
        large state does not stall the node and is decoded once. Raise (any
        exception) if ``restore(data)`` would refuse ``data``. The default
        checks with ``check_snapshot`` and restores in the returned function.
        """
        self.check_snapshot(data)
        return lambda: self.restore(data)

    def snapshot_later(self) -> Callable[[], bytes]:
        """Capture the state now; the returned function encodes it later.

        The runtime calls this on its event loop and the function on a worker
        thread, while ``apply`` goes on, so a large state does not stall the
        node. Override it when the capture can be cheap (copies of immutable
        values); the default encodes at once with ``snapshot``.
        """
        data = self.snapshot()
        return lambda: data

    def validate(self, command: bytes) -> None:
        """Refuse a command before it is proposed (raise ``BadRequest``).

        Called on the leader only, so it is a courtesy to clients, not a
        safety check: ``apply`` must still cope with any bytes.
        """
        return None

    def on_log_time(self, log_time_ms: int) -> None:
        """Log time moved forward to ``log_time_ms`` (milliseconds, from the
        leaders' clocks, never back). Called between commands, at the same
        point of the log on every replica; may change state (expire what is
        due), as deterministically as ``apply``. The default does nothing."""
        return None

    def on_leader_change(self, log_time_ms: int) -> None:
        """A new leader's first clock entry, just before log time moves to
        ``log_time_ms``: a machine with leases extends them here so that a
        leader change never shortens one. The default does nothing."""
        return None

    def next_deadline_ms(self) -> int | None:
        """The log time at which this machine next wants ``on_log_time`` (its
        earliest expiry), or None. The leader stamps the log when its clock
        reaches it, even with no command to carry the stamp. Default: None."""
        return None

    def query(self, query: bytes) -> bytes:
        """Answer a read-only query from the current state (must not change it)."""
        raise NotSupported(f"{type(self).__name__} does not answer queries")
