"""paxon: Multi-Paxos for Python.

The replicated-state-machine library and key-value service are built in
layers; see ``docs/architecture.md``. This module is the public API:

- ``Client`` / ``SyncClient``: talk to a running cluster (``paxon serve``),
  over TLS with ``tls=ClientTls(cacert=..., cert=..., key=...)``; leases
  through ``grant_lease`` and the rest (results ``Lease*Result``), or
  ``client.lease(ttl)`` (a ``KeptLease`` / ``SyncKeptLease``);
- the requests and results of the key-value API: ``Txn`` with its ``Compare``
  conditions and ``PutOp`` / ``GetOp`` / ``DeleteOp`` operations (``TxnOp``),
  and what calls return: ``KeyValue``, ``PutResult``, ``GetResult``,
  ``DeleteResult``, ``TxnResult`` (``TxnResponse`` each), ``CompactResult``,
  ``Event`` (a watch), ``KvLimits``;
- ``StateMachine`` and ``Node``: replicate your own deterministic state machine;
- the error hierarchy of ``paxon.errors``.

``docs/api.md`` is the contract: what of this is stable, with the CLI and HTTP API.

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
    CompactResult,
    Compare,
    DeleteOp,
    DeleteResult,
    Event,
    GetOp,
    GetResult,
    KeyValue,
    KvLimits,
    LeaseGrantResult,
    LeaseKeepAliveResult,
    LeaseRevokeResult,
    LeaseTimeToLiveResult,
    PutOp,
    PutResult,
    Txn,
    TxnOp,
    TxnResponse,
    TxnResult,
)
from paxon.node import Node, NodeConfig
from paxon.security.client_tls import ClientTls
from paxon.statemachine import StateMachine
from paxon.version import __version__

__all__ = [
    "BadRequest",
    "Busy",
    "Client",
    "ClientTls",
    "CompactResult",
    "Compare",
    "DeleteOp",
    "DeleteResult",
    "Event",
    "GetOp",
    "GetResult",
    "KeptLease",
    "KeyValue",
    "KvLimits",
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
    "PutOp",
    "PutResult",
    "RevisionCompacted",
    "SessionExpired",
    "SessionsFull",
    "StateMachine",
    "SyncClient",
    "SyncKeptLease",
    "Timeout",
    "Txn",
    "TxnOp",
    "TxnResponse",
    "TxnResult",
    "Unauthenticated",
    "Unavailable",
    "ValueTooLarge",
    "__version__",
]
