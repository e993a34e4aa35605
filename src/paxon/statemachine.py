"""The interface a replicated state machine implements.

Every replica applies the same commands in the same order, so ``apply`` must be
deterministic: the same state and command give the same state and reply on
every machine (no clocks, randomness, or iteration over unordered sets whose
order can differ between processes). ``apply`` must not raise for a command it
cannot understand: a bad command is in the log of every replica, so it answers
with an error reply instead (raising stops the node).

Client sessions are not the state machine's job: the runtime applies each
``(client_id, seq)`` once and remembers the reply (``paxon.kv.sessions``).
"""

from __future__ import annotations

import abc

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

    def validate(self, command: bytes) -> None:
        """Refuse a command before it is proposed (raise ``BadRequest``).

        Called on the leader only, so it is a courtesy to clients, not a
        safety check: ``apply`` must still cope with any bytes.
        """
        return None

    def query(self, query: bytes) -> bytes:
        """Answer a read-only query from the current state (must not change it)."""
        raise NotSupported(f"{type(self).__name__} does not answer queries")
