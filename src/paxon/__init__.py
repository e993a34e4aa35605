"""paxon: Multi-Paxos for Python.

The replicated-state-machine library and key-value service are built in
layers; see ``docs/architecture.md``. This module is the public API:

- ``Client`` / ``SyncClient``: talk to a running cluster (``paxon serve``),
  over TLS with ``tls=ClientTls(cacert=..., cert=..., key=...)``;
- ``StateMachine`` and ``Node``: replicate your own deterministic state machine;
- the error hierarchy of ``paxon.errors``.

The pure protocol core lives in ``paxon.protocol`` and the deterministic
simulator in ``paxon.sim``.
"""

from paxon.client import Client, SyncClient
from paxon.errors import (
    BadRequest,
    Busy,
    NotLeader,
    NotSupported,
    PaxonError,
    PermissionDenied,
    ProtocolError,
    RevisionCompacted,
    SessionExpired,
    SessionsFull,
    Timeout,
    Unauthenticated,
    Unavailable,
    ValueTooLarge,
)
from paxon.kv.model import KeyValue
from paxon.node import Node, NodeConfig
from paxon.security.client_tls import ClientTls
from paxon.statemachine import StateMachine

__version__ = "0.1.0"

__all__ = [
    "BadRequest",
    "Busy",
    "Client",
    "ClientTls",
    "KeyValue",
    "Node",
    "NodeConfig",
    "NotLeader",
    "NotSupported",
    "PaxonError",
    "PermissionDenied",
    "ProtocolError",
    "RevisionCompacted",
    "SessionExpired",
    "SessionsFull",
    "StateMachine",
    "SyncClient",
    "Timeout",
    "Unauthenticated",
    "Unavailable",
    "ValueTooLarge",
    "__version__",
]
