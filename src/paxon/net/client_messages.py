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
| 35   | Challenge     | node -> peer      | prove you are that peer: a fresh nonce         |
| 36   | PeerProof     | peer -> node      | my nonce, my proof, my client address           |
| 37   | PeerWelcome   | node -> peer      | accepted as a peer; my proof, my client address |
| 64   | Submit        | client -> node    | replicate ``payload`` as command (client_id, seq) |
| 65   | Query         | client -> node    | read-only query, linearizable or local          |
| 66   | StatusRequest | client -> node    | this node's view of the cluster                 |
| 67   | Authenticate  | client -> node    | user and password; a ``Reply`` holds the token  |
| 68   | ChangeMembers | client -> node    | add, promote or remove a member; a         |
|      |               |                   | ``StatusReply`` once the change is chosen       |
| 80   | Reply         | node -> client    | the state machine's answer                      |
| 81   | Redirect      | node -> client    | not the leader; try this one (if known)         |
| 82   | Failure       | node -> client    | a ``paxon.errors`` code and a message           |
| 83   | StatusReply   | node -> client    | a map with str keys                             |

A client's Hello is answered by ``Welcome`` at once; a peer's goes through
``Challenge`` / ``PeerProof`` / ``PeerWelcome`` (see ``paxon.net.peer_auth``), so
nothing reaches the core from a dialer that has not proved it is a member.

Every integer id, sequence number and version is in ``[0, 2**63)``; construction
checks it, so an encoder never meets a value the decoder would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from paxon.frozen import fast_init

PROTOCOL_VERSION: Final = 3
"""2: peers prove who they are (Challenge, PeerProof, PeerWelcome); 3: and tell
the incarnation of their data directory (PeerProof, PeerWelcome)."""
INCARNATION_END: Final = 2**64
"""An incarnation is the random 64-bit number of a data directory's IDENTITY."""
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


NONCE_BYTES: Final = 32
PROOF_MAX_BYTES: Final = 64
ADDRESS_MAX_BYTES: Final = 300
"""A ``HOST:PORT`` text: a DNS name is at most 253 bytes."""


@dataclass(frozen=True, slots=True)
class Challenge:
    nonce: bytes

    def __post_init__(self) -> None:
        _check_type(self.nonce, bytes, "nonce")
        if len(self.nonce) != NONCE_BYTES:
            raise ValueError(f"nonce must be {NONCE_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class PeerProof:
    """``proof`` is empty when TLS (or nothing) authenticates the peers.
    ``incarnation``: the dialer's data directory (``storage.identity``)."""

    nonce: bytes
    proof: bytes
    client_address: str
    incarnation: int = 0

    def __post_init__(self) -> None:
        _check_type(self.nonce, bytes, "nonce")
        _check_type(self.proof, bytes, "proof")
        _check_type(self.client_address, str, "client_address")
        if len(self.nonce) != NONCE_BYTES:
            raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
        _check_sizes(self.proof, self.client_address)
        _check_incarnation(self.incarnation)


@dataclass(frozen=True, slots=True)
class PeerWelcome:
    """``incarnation``: the acceptor's data directory (``storage.identity``)."""

    node_id: int
    proof: bytes
    client_address: str
    incarnation: int = 0

    def __post_init__(self) -> None:
        check_uint(self.node_id, "node_id")
        _check_type(self.proof, bytes, "proof")
        _check_type(self.client_address, str, "client_address")
        _check_sizes(self.proof, self.client_address)
        _check_incarnation(self.incarnation)


def _check_incarnation(incarnation: int) -> None:
    if type(incarnation) is not int or not 0 <= incarnation < INCARNATION_END:
        raise ValueError(f"incarnation must be a 64-bit unsigned integer, got {incarnation!r}")


def _check_sizes(proof: bytes, client_address: str) -> None:
    if len(proof) > PROOF_MAX_BYTES:
        raise ValueError(f"proof must be at most {PROOF_MAX_BYTES} bytes")
    if len(client_address.encode()) > ADDRESS_MAX_BYTES:
        raise ValueError(f"client_address must be at most {ADDRESS_MAX_BYTES} bytes")


@fast_init
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


@fast_init
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


AUTH_FIELD_MAX_BYTES: Final = 1024
"""A user name or password in ``Authenticate`` (the store's own limits are tighter)."""


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Log in: any member checks ``password`` against its applied users and, if it
    matches, answers ``Reply(token)`` (``paxon.kv.auth``). Never logged."""

    request_id: int
    user: str
    password: str

    def __post_init__(self) -> None:
        check_uint(self.request_id, "request_id")
        _check_type(self.user, str, "user")
        _check_type(self.password, str, "password")
        if max(len(self.user), len(self.password)) > AUTH_FIELD_MAX_BYTES:
            raise ValueError(f"user and password must be at most {AUTH_FIELD_MAX_BYTES} characters")

    def __repr__(self) -> str:  # never print the password
        return f"Authenticate(request_id={self.request_id}, user={self.user!r}, password=...)"


@fast_init
@dataclass(frozen=True, slots=True)
class Reply:
    request_id: int
    payload: bytes

    def __post_init__(self) -> None:
        check_uint(self.request_id, "request_id")
        _check_type(self.payload, bytes, "payload")


@fast_init
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


@fast_init
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


HandshakeMessage = Hello | Welcome | Refused | Challenge | PeerProof | PeerWelcome
MEMBER_ACTIONS: Final = (
    "add",
    "add-learner",
    "add-learner-auto-promote",
    "promote",
    "remove",
    "transfer-leader",
)
"""What ``ChangeMembers`` may ask: add a voter or a learner, make a learner a
voter, remove a member, hand leadership to a voter."""


@dataclass(frozen=True, slots=True)
class ChangeMembers:
    """Change the configuration by one member (``paxon.protocol.membership``).

    ``address`` is the new member's peer ``HOST:PORT`` (add only); ``token``
    authenticates a root user when auth is enabled (empty otherwise).
    """

    request_id: int
    action: str
    node_id: int
    address: str
    token: str

    def __post_init__(self) -> None:
        check_uint(self.request_id, "request_id")
        _check_type(self.action, str, "action")
        check_uint(self.node_id, "node_id")
        _check_type(self.address, str, "address")
        _check_type(self.token, str, "token")
        if self.action not in MEMBER_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(MEMBER_ACTIONS)}")
        if len(self.address.encode()) > ADDRESS_MAX_BYTES:
            raise ValueError(f"address must be at most {ADDRESS_MAX_BYTES} bytes")
        if len(self.token) > AUTH_FIELD_MAX_BYTES:
            raise ValueError(f"token must be at most {AUTH_FIELD_MAX_BYTES} characters")

    def __repr__(self) -> str:  # never print the token
        return (
            f"ChangeMembers(request_id={self.request_id}, action={self.action!r}, "
            f"node_id={self.node_id}, address={self.address!r}, token=...)"
        )


ClientRequest = Submit | Query | StatusRequest | Authenticate | ChangeMembers
ClientResponse = Reply | Redirect | Failure | StatusReply

CLIENT_REQUEST_TYPES: Final = (Submit, Query, StatusRequest, Authenticate, ChangeMembers)
CLIENT_RESPONSE_TYPES: Final = (Reply, Redirect, Failure, StatusReply)
