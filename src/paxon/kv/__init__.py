"""Deterministic state machines of the service: sessions now; keys, leases and locks next."""

from paxon.kv.sessions import SessionTable, SessionVerdict

__all__ = ["SessionTable", "SessionVerdict"]
