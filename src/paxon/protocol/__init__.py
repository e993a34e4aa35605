"""The pure Multi-Paxos core: no sockets, clocks, files, threads or randomness.

See ``replica.py`` for the theory of operation and ``ready.py`` for the rule by
which a runtime performs the core's outputs.
"""

from paxon.protocol.config import ROUND_END, ROUND_JUMP_MAX, ReplicaConfig
from paxon.protocol.messages import (
    MESSAGE_TYPES,
    Accept,
    Accepted,
    ChosenPrefix,
    Heartbeat,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Message,
    Nack,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
    TimeoutNow,
)
from paxon.protocol.quorum import majority, quorum_floor
from paxon.protocol.ready import ChosenEntry, ReadIndex, Ready, SnapshotRequest
from paxon.protocol.records import (
    AcceptRecord,
    ChosenRecord,
    DurableState,
    PromiseRecord,
    Record,
    SnapshotRecord,
    recover,
)
from paxon.protocol.replica import RandomSource, Replica, ReplicaCounters, ReplicaStatus, Role
from paxon.protocol.types import (
    BALLOT_ZERO,
    NOOP,
    Ballot,
    BallotRun,
    Command,
    Entry,
    NodeId,
    Slot,
    Value,
)

__all__ = [
    "BALLOT_ZERO",
    "MESSAGE_TYPES",
    "NOOP",
    "ROUND_END",
    "ROUND_JUMP_MAX",
    "Accept",
    "AcceptRecord",
    "Accepted",
    "Ballot",
    "BallotRun",
    "ChosenEntry",
    "ChosenPrefix",
    "ChosenRecord",
    "Command",
    "DurableState",
    "Entry",
    "Heartbeat",
    "HeartbeatReply",
    "Learn",
    "LearnRequest",
    "Message",
    "Nack",
    "NodeId",
    "Prepare",
    "Probe",
    "ProbeReply",
    "Promise",
    "PromiseRecord",
    "RandomSource",
    "ReadIndex",
    "Ready",
    "Record",
    "Replica",
    "ReplicaConfig",
    "ReplicaCounters",
    "ReplicaStatus",
    "Role",
    "Slot",
    "SnapshotRecord",
    "SnapshotRequest",
    "TimeoutNow",
    "Value",
    "majority",
    "quorum_floor",
    "recover",
]
