"""Messages of the handshake and of the client protocol: one frozen, slotted dataclass each.

Every connection starts with the handshake; then a peer connection carries
``paxon.protocol`` messages and a client connection carries requests one way
and responses the other. Responses may come back in any order; ``request_id``
(chosen by the client, unique among its requests in flight) matches them.

| code | message       | from -> to        | means                                         |
|------|---------------|-------------------|-----------------------------------------------|
| 32   | Hello         | dialer -> node    | I am ``node_id`` (0: a client) of ``cluster_id`` |
| 33   | Welcome       | node -> dialer    | accepted; I am ``node_id`` of ``cluster_id``   |
| 34   | Refused       | node -> dialer    | not accepted, and why; the node then closes    |
| 64   | Submit        | client -> node    | replicate ``payload`` as command (client_id, seq) |
| 65   | Query         | client -> node    | read-only query, linearizable or local          |
| 66   | StatusRequest | client -> node    | this node's view of the cluster                 |
| 80   | Reply         | node -> client    | the state machine's answer                      |
| 81   | Redirect      | node -> client    | not the leader; try this one (if known)         |
| 82   | Failure       | node -> client    | a ``paxon.errors`` code and a message           |
| 83   | StatusReply   | node -> client    | a map with str keys                             |

Every integer id, sequence number and version is in ``[0, 2**63)``; construction
checks it, so an encoder never meets a value the decoder would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

PROTOCOL_VERSION: Final = 1
CLIENT_NODE_ID: Final = 0
"""The ``node_id`` a client sends in its Hello."""
ANY_CLUSTER: Final = ""
"""The ``cluster_id`` a client sends when it does not care which cluster answers."""

_INT_END: Final = 2**63


def check_uint(value: int, name: str) -> None:
    """Raises ValueError unless ``value`` is an int in ``[0, 2**63)``."""
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < _INT_END:
        raise ValueError(f"{name} must be in [0, 2**63), got {value}")


def _check_type(value: object, kind: type, name: str) -> None:
    if type(value) is not kind:
        raise TypeError(f"{name} must be {kind.__name__}, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Hello:
    cluster_id: str
    node_id: int
    version: int

    def __post_init__(self) -> None:
        _check_type(self.cluster_id, str, "cluster_id")
        check_uint(self.node_id, "node_id")
        check_uint(self.version, "version")


@dataclass(frozen=True, slots=True)
class Welcome:
    cluster_id: str
    node_id: int

    def __post_init__(self) -> None:
        _check_type(self.cluster_id, str, "cluster_id")
        check_uint(self.node_id, "node_id")


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str

    def __post_init__(self) -> None:
        _check_type(self.reason, str, "reason")


@dataclass(frozen=True, slots=True)
class Submit:
    request_id: int
    client_id: int
    seq: int
    payload: bytes

    def __post_init__(self) -> None:
        check_uint(self.request_id, "request_id")
        check_uint(self.client_id, "client_id")
        check_uint(self.seq, "seq")
        _check_type(self.payload, bytes, "payload")


@dataclass(frozen=True, slots=True)
class Query:
    request_id: int
    payload: bytes
    linearizable: bool

    def __post_init__(self) -> None:
        check_uint(self.request_id, "request_id")
        _check_type(self.payload, bytes, "payload")
        _check_type(self.linearizable, bool, "linearizable")


@dataclass(frozen=True, slots=True)
class StatusRequest:
    request_id: int

    def __post_init__(self) -> None:
        check_uint(self.request_id, "request_id")


@dataclass(frozen=True, slots=True)
class Reply:
    request_id: int
    payload: bytes

    def __post_init__(self) -> None:
        check_uint(self.request_id, "request_id")
        _check_type(self.payload, bytes, "payload")


@dataclass(frozen=True, slots=True)
class Redirect:
    """Not the leader. ``leader_id`` / ``leader_address`` are None when unknown."""

    request_id: int
    leader_id: int | None
    leader_address: str | None

    def __post_init__(self) -> None:
        check_uint(self.request_id, "request_id")
        if self.leader_id is not None:
            check_uint(self.leader_id, "leader_id")
        if self.leader_address is not None:
            _check_type(self.leader_address, str, "leader_address")


@dataclass(frozen=True, slots=True)
class Failure:
    """The request failed with ``code``, a ``paxon.errors`` code such as "busy".

    Codes a client does not know map to the base ``PaxonError``; the set is not
    closed, so a newer server can add codes.
    """

    request_id: int
    code: str
    message: str

    def __post_init__(self) -> None:
        check_uint(self.request_id, "request_id")
        _check_type(self.code, str, "code")
        _check_type(self.message, str, "message")


@dataclass(frozen=True, slots=True)
class StatusReply:
    """``status`` is a msgpack map with str keys (arrays in it decode as lists)."""

    request_id: int
    status: dict[str, Any]

    def __post_init__(self) -> None:
        check_uint(self.request_id, "request_id")
        _check_type(self.status, dict, "status")
        for key in self.status:
            _check_type(key, str, "a status key")


HandshakeMessage = Hello | Welcome | Refused
ClientRequest = Submit | Query | StatusRequest
ClientResponse = Reply | Redirect | Failure | StatusReply

CLIENT_REQUEST_TYPES: Final = (Submit, Query, StatusRequest)
CLIENT_RESPONSE_TYPES: Final = (Reply, Redirect, Failure, StatusReply)
