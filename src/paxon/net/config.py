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
    # A TCP connect that takes longer than this fails.
    connect_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if not 64 <= self.frame_max_bytes <= FRAME_MAX_LIMIT:
            raise ValueError(f"frame_max_bytes must be in [64, {FRAME_MAX_LIMIT}]")
        if self.peer_queue_max_bytes < 1 or self.client_queue_max_bytes < 1:
            raise ValueError("queue limits must be >= 1 byte")
        if self.handshake_timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError("timeouts must be > 0")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError("reconnect delays must satisfy 0 < min <= max")


DEFAULT_NET_CONFIG = NetConfig()
