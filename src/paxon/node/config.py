"""Settings of one node's runtime, with the core's and the network's inside."""

from __future__ import annotations

from dataclasses import dataclass, field

from paxon.net.config import NetConfig
from paxon.node.history import HistoryRetention
from paxon.protocol.config import ReplicaConfig
from paxon.protocol.membership import ALPHA_DEFAULT
from paxon.storage.config import StorageConfig

# Headroom for everything in a record or frame besides the commands' payloads.
_RECORD_SLACK = 1_048_576


@dataclass(frozen=True, slots=True)
class NodeConfig:
    cluster_id: str = "paxon"
    # How often the core's timers (heartbeats, elections, retries) are driven.
    tick_interval_s: float = 0.01
    replica: ReplicaConfig = field(default_factory=ReplicaConfig)
    net: NetConfig = field(default_factory=NetConfig)
    # A client command's payload, as proposed; larger ones are refused (413).
    command_max_bytes: int = 1_048_576 + 8192
    # A snapshot is taken after this many applied slots, or this many bytes of
    # applied commands, whichever comes first; the in-memory log keeps one
    # interval more, so a lagging peer can still learn. The byte bound is what
    # bounds memory under load, when a slot carries hundreds of commands.
    snapshot_interval_slots: int = 20_000
    snapshot_interval_bytes: int = 32 * 1024**2
    # Snapshots sent to a lagging peer go in chunks of this size; a snapshot
    # received over the limit is refused.
    snapshot_chunk_bytes: int = 1_048_576
    snapshot_max_bytes: int = 4 * 1024**3
    # A peer sent a whole snapshot is not sent the same one again this soon
    # (it keeps asking while it installs).
    snapshot_resend_s: float = 10.0
    # Default deadline of a request (submit, query) made through the node.
    request_timeout_s: float = 10.0
    # The history a leader keeps of a KvStore (``paxon.node.history``).
    history: HistoryRetention = field(default_factory=HistoryRetention)
    # The alpha of the first configuration (made from --peers at a data
    # directory's first start): a change chosen at slot i takes effect at
    # slot i + alpha; later configurations keep it (docs/membership.md).
    alpha: int = ALPHA_DEFAULT

    def __post_init__(self) -> None:
        if self.tick_interval_s <= 0 or self.request_timeout_s <= 0:
            raise ValueError("tick_interval_s and request_timeout_s must be > 0")
        if self.command_max_bytes < 1:
            raise ValueError("command_max_bytes must be >= 1")
        if self.alpha < 1:
            raise ValueError("alpha must be >= 1")
        # A slot's value is one log record and one frame: the largest command
        # must fit both, with room for the rest of the batch around it.
        room = min(StorageConfig().record_max_bytes, self.net.frame_max_bytes)
        largest = max(self.command_max_bytes, self.replica.batch_max_bytes) + _RECORD_SLACK
        if largest > room:
            raise ValueError(
                f"command_max_bytes {self.command_max_bytes} does not fit a log record "
                f"or frame of {room} bytes"
            )
        if self.snapshot_chunk_bytes < 1 or self.snapshot_max_bytes < 1:
            raise ValueError("snapshot_chunk_bytes and snapshot_max_bytes must be >= 1")
        if self.snapshot_interval_slots < 1 or self.snapshot_interval_bytes < 1:
            raise ValueError("snapshot_interval_slots and snapshot_interval_bytes must be >= 1")
