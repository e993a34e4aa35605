"""paxon: Multi-Paxos for Python.

The replicated-state-machine library and key-value service are built in
layers; see ``docs/architecture.md``. This module is the public API:

- ``Client`` / ``SyncClient``: talk to a running cluster (``paxon serve``),
  over TLS with ``tls=ClientTls(cacert=..., cert=..., key=...)``; leases
  through ``grant_lease`` and the rest (results ``Lease*Result``), or
  ``client.lease(ttl)`` (a ``KeptLease`` / ``SyncKeptLease``);
- ``StateMachine`` and ``Node``: replicate your own deterministic state machine;
- the error hierarchy of ``paxon.errors``.

The pure protocol core lives in ``paxon.protocol`` and the deterministic
simulator in ``paxon.sim``.
"""

from paxon.client import Client, SyncClient
from paxon.client_lease import KeptLease, SyncKeptLease
from paxon.errors import (
    BadRequest,
    Busy,
    LeaderUnreachable,
    LeaseNotFound,
    NoQuorum,
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
from paxon.kv.model import (
    KeyValue,
    LeaseGrantResult,
    LeaseKeepAliveResult,
    LeaseRevokeResult,
    LeaseTimeToLiveResult,
)
from paxon.node import Node, NodeConfig
from paxon.security.client_tls import ClientTls
from paxon.statemachine import StateMachine

__version__ = "0.1.0"

__all__ = [
    "BadRequest",
    "Busy",
    "Client",
    "ClientTls",
    "KeptLease",
    "KeyValue",
    "LeaderUnreachable",
    "LeaseGrantResult",
    "LeaseKeepAliveResult",
    "LeaseNotFound",
    "LeaseRevokeResult",
    "LeaseTimeToLiveResult",
    "NoQuorum",
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
    "SyncKeptLease",
    "Timeout",
    "Unauthenticated",
    "Unavailable",
    "ValueTooLarge",
    "__version__",
]
