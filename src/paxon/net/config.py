"""Every limit and timer of the network layer, in one place ("a limit on everything").

Going over a limit is never silent: an oversize frame drops its connection, a
full peer queue drops the message (and counts it), a client that stops reading
is disconnected. Tests shrink the timers so failures show up in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
FRAME_MAX_LIMIT = 2**32 - 1
"""The largest length a u32 length prefix can carry."""


@dataclass(frozen=True, slots=True)
class NetConfig:
    # Largest frame body accepted or sent; a longer length prefix drops the connection.
    frame_max_bytes: int = 64 * MIB
    # Bytes buffered for one peer before new messages to it are dropped (Paxos retries).
    peer_queue_max_bytes: int = 64 * MIB
    # Bytes buffered for one client before it is disconnected (it is not reading).
    client_queue_max_bytes: int = 16 * MIB
    # A connection must complete Hello / Welcome within this time.
    handshake_timeout_s: float = 5.0
    # Reconnect backoff for peer links: doubles from min to max, with jitter.
    reconnect_min_s: float = 0.05
    reconnect_max_s: float = 2.0
    # ... but a connection refused outright (nothing listens on the port: the
    # peer's process is starting, or was just added) is retried within this
    # (or reconnect_max_s if smaller): a refusal costs one round trip, and the
    # link is up soon after the peer listens.
    reconnect_refused_max_s: float = 0.25
    # A TCP connect that takes longer than this fails.
    connect_timeout_s: float = 2.0
    # Until its handshake is done a connection may send only frames this small
    # (Hello and PeerProof are under 500 bytes), so a stranger cannot make the
    # node buffer or decode anything large. (Capped by frame_max_bytes.)
    handshake_frame_max_bytes: int = 4096
    # Connections on one port that have not finished their handshake; more are
    # closed at once (each lives at most handshake_timeout_s).
    handshaking_max: int = 256
    # Handshaken clients on one port, and from one address; more are refused.
    # Peers are never counted: they have their own budget (one link each).
    clients_max: int = 2048
    clients_per_address_max: int = 512
    # A client connection with no request for this long, and none in flight, is closed.
    client_idle_timeout_s: float = 300.0
    # Requests one client connection may have waiting for an answer; more are
    # answered at once with a "busy" failure. A request unanswered after
    # client_request_forget_s no longer counts (its client has given up on it).
    client_requests_in_flight_max: int = 4096
    client_request_forget_s: float = 60.0

    def __post_init__(self) -> None:
        if not 64 <= self.frame_max_bytes <= FRAME_MAX_LIMIT:
            raise ValueError(f"frame_max_bytes must be in [64, {FRAME_MAX_LIMIT}]")
        if self.peer_queue_max_bytes < 1 or self.client_queue_max_bytes < 1:
            raise ValueError("queue limits must be >= 1 byte")
        if self.handshake_timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError("timeouts must be > 0")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError("reconnect delays must satisfy 0 < min <= max")
        if self.reconnect_refused_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_refused_max_s must be >= reconnect_min_s")
        if self.handshake_frame_max_bytes < 64:
            raise ValueError("handshake_frame_max_bytes must be >= 64")
        counts = (
            self.handshaking_max,
            self.clients_max,
            self.clients_per_address_max,
            self.client_requests_in_flight_max,
        )
        if min(counts) < 1:
            raise ValueError("connection and request limits must be >= 1")
        if self.client_idle_timeout_s <= 0 or self.client_request_forget_s <= 0:
            raise ValueError("client timeouts must be > 0")


DEFAULT_NET_CONFIG = NetConfig()
