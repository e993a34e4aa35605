"""Writes the seed corpora, ``tests/fuzz/seeds/<target>/``, from real encodings.

Run from the repository root: ``PYTHONPATH=src python tests/fuzz/make_seeds.py``.
Each seed is a valid input built by the project's own encoders, so the fuzzer
starts from inside every message, record and command type and mutates outward.
The output is deterministic; re-running it rewrites the same files.
"""

from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(_ROOT), str(_ROOT / "src")]

from paxon.kv.codec import encode_command, encode_query  # noqa: E402
from paxon.kv.model import (  # noqa: E402
    Compare,
    Delete,
    DeleteOp,
    Get,
    GetOp,
    Put,
    PutOp,
    Txn,
)
from paxon.kv.store import KvStore  # noqa: E402
from paxon.net.client_messages import (  # noqa: E402
    Failure,
    Hello,
    Query,
    Redirect,
    Refused,
    Reply,
    StatusReply,
    StatusRequest,
    Submit,
    Welcome,
)
from paxon.net.codec import encode, encode_body  # noqa: E402
from paxon.net.peer_messages import SnapshotChunk  # noqa: E402
from paxon.node.machine import ReplicatedMachine  # noqa: E402
from paxon.protocol.messages import (  # noqa: E402
    Accept,
    Accepted,
    ChosenPrefix,
    Heartbeat,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Nack,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
)
from paxon.protocol.ready import ChosenEntry  # noqa: E402
from paxon.protocol.records import (  # noqa: E402
    AcceptRecord,
    ChosenRecord,
    PromiseRecord,
    SnapshotRecord,
)
from paxon.protocol.types import Ballot, BallotRun, Command, Entry, Value  # noqa: E402
from paxon.storage.codec import ConfigRecord, encode_record, encode_seal  # noqa: E402

SEEDS = Path(__file__).resolve().parent / "seeds"


def kv_commands() -> dict[str, bytes]:
    compare = (
        Compare("a", "version", ">", 0),
        Compare("b", "value", "==", b"x"),
        Compare("c", "mod_revision", "<", 9),
        Compare("d", "create_revision", "!=", 2),
    )
    ops = (PutOp("a", b"1"), DeleteOp("b", True), GetOp("", True))
    return {
        "put": encode_command(Put("a", b"value", None)),
        "put_expect": encode_command(Put("ab", b"v", 1)),
        "delete": encode_command(Delete("a")),
        "delete_prefix": encode_command(Delete("a", True)),
        "txn": encode_command(Txn(compare, ops, (PutOp("z", b"2"),))),
        "get": encode_query(Get("a")),
        "get_prefix_at": encode_query(Get("", True, 2)),
    }


def net_messages() -> dict[str, bytes]:
    ballot = Ballot(3, 1)
    value = Value((Command(7, 1, b"put"), Command(8, 2, b"")))
    chosen = ChosenPrefix(10, (BallotRun(4, 8, Ballot(2, 2)), BallotRun(8, 10, ballot)))
    entries = (Entry(10, ballot, value), Entry(11, ballot, Value(())))
    messages = [
        Probe(1, 2, ballot),
        ProbeReply(2, 1, ballot, True),
        Prepare(1, 2, ballot, 10),
        Promise(2, 1, ballot, 10, entries, 9, 0),
        Nack(2, 1, ballot, Ballot(4, 2)),
        Accept(1, 2, ballot, 12, value, chosen),
        Accepted(2, 1, ballot, 12, 10),
        Heartbeat(1, 2, ballot, chosen, 5),
        HeartbeatReply(2, 1, ballot, 10, 5),
        LearnRequest(2, 1, 10),
        Learn(1, 2, entries),
        SnapshotChunk(1, 2, 100, 0, b"snapshot bytes", True),
        Hello("paxon", 1, 1),
        Welcome("paxon", 2),
        Refused("wrong cluster"),
        Submit(1, 99, 1, encode_command(Put("a", b"1", None))),
        Query(2, encode_query(Get("a")), True),
        StatusRequest(3),
        Reply(1, b"reply"),
        Redirect(1, 2, "127.0.0.1:7001"),
        Redirect(1, None, None),
        Failure(1, "busy", "try again"),
        StatusReply(3, {"node": 1, "peers": [2, 3], "ok": True, "lag": {"2": 0}}),
    ]
    seeds = {f"{type(m).__name__.lower()}_{i}": encode_body(m) for i, m in enumerate(messages)}
    # A stream: the first byte picks the read size (see check_net), then frames.
    seeds["stream_hello_submit"] = bytes([3]) + encode(messages[12]) + encode(messages[15])
    seeds["stream_accepts"] = bytes([15]) + encode(messages[5]) * 3 + encode(messages[6])
    return seeds


def wal_records() -> dict[str, bytes]:
    ballot = Ballot(3, 1)
    records = {
        "promise": PromiseRecord(ballot),
        "accept": AcceptRecord(Entry(5, ballot, Value((Command(7, 1, b"abc"),)))),
        "accept_noop": AcceptRecord(Entry(6, ballot, Value(()))),
        "chosen": ChosenRecord(6),
        "snapshot": SnapshotRecord(4),
        "config": ConfigRecord((1, 2, 3)),
    }
    seeds = {name: _piece(encode_record(record, 1 << 20)) for name, record in records.items()}
    seeds["all_then_seal"] = b"".join(seeds.values()) + _piece(encode_seal(7))
    return seeds


def _piece(frame: bytes) -> bytes:
    """A log frame as a ``check_wal`` piece: type u8, size u16, payload."""
    payload = frame[9:-4]
    return struct.pack("<BH", frame[8], len(payload)) + payload


def snapshots() -> dict[str, bytes]:
    store = KvStore()
    for command in kv_commands().values():
        store.apply(command)
    store.apply(encode_command(Put("a", b"newer", None)))
    machine = ReplicatedMachine(KvStore())
    for slot, command in enumerate(kv_commands().values()):
        value = Value((Command(10 + slot, 1, command),))
        list(machine.apply(ChosenEntry(slot, value)))
    return {
        "empty_store": KvStore().snapshot(),
        "store_with_history": store.snapshot(),
        "replicated_machine": machine.snapshot(),
    }


def main() -> None:
    corpora = {
        "net": net_messages(),
        "wal": wal_records(),
        "snapshot": snapshots(),
        "kv_command": kv_commands(),
    }
    for target, seeds in corpora.items():
        folder = SEEDS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
        print(f"{folder}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
