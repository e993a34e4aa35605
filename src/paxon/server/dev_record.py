"""What ``paxon dev`` remembers about its cluster between runs: ``DIR/dev-cluster.json``.

Rules:
- Written when dev first starts a cluster in DIR, and again each time one of
  its ``add`` or ``remove`` commands is chosen; atomically (a temporary file,
  fsync, rename), so a crash leaves the old record or the new one.
- It holds the cluster's port bases (node ``i``'s ports follow from them, and
  the members' configuration names those ports), how many nodes it started
  with (their ``--peers``), the ids of the members, and which of them joined
  with ``add`` (they start with ``--join``, the others with ``--peers``).
- A later ``paxon dev`` on DIR starts exactly the recorded members on the
  recorded ports: nodes added in an earlier run come back, removed ones stay
  down. A port flag or ``--insecure`` that contradicts the record is refused
  with the flags that match it (the members' configuration names the recorded
  ports); a flag left out takes the recorded value. ``--nodes`` applies only
  to a new cluster: one that differs from the record is noted and ignored.
- Only dev's own commands update it: a change made with ``paxon members``
  while dev runs is not in it.
- A directory without the record (a new one, or one an older ``paxon dev``
  made) is planned from the flags, and the record is written then.
- A record that cannot be read, or holds what no dev writes, is ``BadRequest``:
  dev does not start (delete the file, or the whole DIR, to start afresh).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from paxon.errors import BadRequest
from paxon.server.config import format_address
from paxon.server.dev_plan import NODES_MAX, DevNode, PortBases, plan_nodes

RECORD_NAME = "dev-cluster.json"
RECORD_FORMAT = 1
RECORD_BYTES_MAX = 4096  # a few dozen numbers; anything longer is not ours


@dataclass(frozen=True, slots=True)
class DevRecord:
    bases: PortBases
    first_nodes: int  # nodes 1..first_nodes started with --peers naming them all
    members: tuple[int, ...]  # sorted ids
    joined: tuple[int, ...] = ()  # members added by `add`: started with --join

    def __post_init__(self) -> None:
        ids = set(self.members)
        if not 1 <= self.first_nodes <= NODES_MAX:
            raise ValueError(f"first_nodes {self.first_nodes} is not 1..{NODES_MAX}")
        if not self.members or not ids <= set(range(1, NODES_MAX + 1)):
            raise ValueError(f"members {list(self.members)} are not ids 1..{NODES_MAX}")
        if len(ids) != len(self.members) or list(self.members) != sorted(ids):
            raise ValueError(f"members {list(self.members)} are not sorted and distinct")
        if not set(self.joined) <= ids:
            raise ValueError(f"joined {list(self.joined)} are not all members")

    def with_added(self, node_id: int) -> DevRecord:
        members = tuple(sorted({*self.members, node_id}))
        return replace(self, members=members, joined=tuple(sorted({*self.joined, node_id})))

    def with_removed(self, node_id: int) -> DevRecord:
        return replace(
            self,
            members=tuple(i for i in self.members if i != node_id),
            joined=tuple(i for i in self.joined if i != node_id),
        )

    def first_peers(self, data_dir: str) -> str:
        """The ``--peers`` of the nodes the cluster started with."""
        first = [self.bases.plan_node(i, data_dir) for i in range(1, self.first_nodes + 1)]
        return ",".join(f"{node.node_id}={format_address(node.peer_address)}" for node in first)

    def plan(self, data_dir: str) -> list[DevNode]:
        """The members to start: a joined one with ``--join`` naming the others' client
        ports (``serve`` reads them only while its data dir holds no state; a joined
        node left alone names itself, as ``--peers`` would not name it); ``BadRequest``
        if the ports do not fit."""
        highest = max(*self.members, self.first_nodes)
        bases = self.bases
        every = plan_nodes(highest, bases.native, bases.http, data_dir, peer_base_port=bases.peer)
        nodes = [node for node in every if node.node_id in self.members]
        joined = set(self.joined)
        return [
            replace(node, join=_join_list(node, nodes)) if node.node_id in joined else node
            for node in nodes
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "base_port": self.bases.native,
            "http_base_port": self.bases.http,
            "peer_base_port": self.bases.peer,
            "first_nodes": self.first_nodes,
            "members": list(self.members),
            "joined": list(self.joined),
        }

    @classmethod
    def from_json(cls, data: Any) -> DevRecord:
        """``ValueError`` for anything dev does not write."""
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            raise ValueError(f"not a format-{RECORD_FORMAT} record")
        peer = data.get("peer_base_port")
        ints = [data.get("base_port"), data.get("http_base_port"), data.get("first_nodes")]
        lists = [data.get("members"), data.get("joined")]
        if not all(_is_int(value) for value in ints) or not (peer is None or _is_int(peer)):
            raise ValueError("a port or a count is not a number")
        if not all(isinstance(ids, list) and all(_is_int(i) for i in ids) for ids in lists):
            raise ValueError("members and joined must be lists of ids")
        return cls(
            PortBases(data["base_port"], data["http_base_port"], peer),
            data["first_nodes"],
            tuple(data["members"]),
            tuple(data["joined"]),
        )


def record_path(data_dir: str) -> str:
    return os.path.join(data_dir, RECORD_NAME)


def read_record(data_dir: str) -> DevRecord | None:
    """The record in ``data_dir``, None if there is none; ``BadRequest`` if it is bad."""
    path = record_path(data_dir)
    try:
        with open(path, "rb") as file:
            raw = file.read(RECORD_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BadRequest(f"cannot read {path}: {error.strerror or error}") from None
    try:
        if len(raw) > RECORD_BYTES_MAX:
            raise ValueError(f"longer than {RECORD_BYTES_MAX} bytes")
        return DevRecord.from_json(json.loads(raw))
    except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError too
        raise BadRequest(
            f"{path} is not a paxon dev record ({error}); remove it, or the whole "
            "directory, to start a new cluster there"
        ) from None


def write_record(data_dir: str, record: DevRecord) -> None:
    """Replace the record in ``data_dir`` atomically; ``OSError`` if it cannot."""
    path = record_path(data_dir)
    temporary = path + ".tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "w") as file:
        json.dump(record.to_json(), file)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def reconcile(
    record: DevRecord,
    *,
    nodes: int | None,
    base_port: int | None,
    http_base_port: int | None,
    peer_base_port: int | None,
    insecure: bool,
    data_dir: str,
) -> list[str]:
    """``BadRequest`` naming the flags that contradict ``record`` (None: not given);
    the notes to print about flags that are ignored."""
    bases = record.bases
    notes: list[str] = []
    if nodes is not None and nodes != len(record.members):
        members = ", ".join(str(i) for i in record.members)
        notes.append(
            f"{data_dir} holds a dev cluster of {len(record.members)} members ({members}); "
            f"--nodes {nodes} applies to a new cluster only"
        )
    problems: list[str] = []
    given: Sequence[tuple[str, int | None, int | None]] = (
        ("--base-port", base_port, bases.native),
        ("--http-base-port", http_base_port, bases.http),
        ("--peer-base-port", peer_base_port, bases.peer),
    )
    for flag, value, recorded in given:
        if value is not None and recorded is not None and value != recorded:
            problems.append(f"it runs on {flag} {recorded}, not {value}")
    if insecure != (bases.peer is None):
        problems.append(
            "it was started with --insecure"
            if bases.peer is None
            else "it uses peer TLS (no --insecure)"
        )
    if problems:
        flags = f"--base-port {bases.native} --http-base-port {bases.http}"
        flags += " --insecure" if bases.peer is None else f" --peer-base-port {bases.peer}"
        raise BadRequest(
            f"{data_dir} holds a dev cluster that does not match these flags: "
            f"{'; '.join(problems)} (leave them out, or give {flags}; or use another "
            "--data-dir)"
        )
    return notes


def _join_list(node: DevNode, members: Sequence[DevNode]) -> str:
    others = [other for other in members if other.node_id != node.node_id] or [node]
    return ",".join(format_address(other.listen) for other in others)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
