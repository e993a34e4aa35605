"""Golden interaction scripts for the replica (after etcd-io/raft's interaction tests).

A script is a text file of commands. Each command is followed by a line ``----``
and the output it must produce, ended by a blank line (or the end of the file).
Lines starting with ``#`` between commands are comments. Output is compared
exactly; run pytest with ``PAXON_REWRITE=1`` to write the actual output into the
files, then review the diff: every expected block is a claim about Paxos.

Commands (``NODE`` is a node id; ``NODES`` is ``1``, ``1,2`` or ``all``)::

    cluster COUNT [seed=N] [FIELD=VALUE ...]
        Start COUNT replicas with ids 1..COUNT, clocks at 0. FIELD=VALUE set
        ``ReplicaConfig`` fields. Must come first.
    tick NODES SECONDS
        Set each node's clock to the absolute time SECONDS and tick it.
    campaign NODE
        Tick a follower in 10 ms steps until its election timeout fires.
    deliver [FROM->TO] [TYPE]
        Deliver the deliverable messages pending now, optionally only those of a
        link (FROM or TO may be ``*``) and/or of a message type (``Accept``).
        Replies are not delivered; each delivery's output is indented under it.
    drop FROM->TO [TYPE]
        Throw away matching deliverable messages.
    persist NODES
        Make the nodes' records durable and release their after-persist messages.
    stabilize
        Persist on every node and deliver every message, until nothing is left.
    propose NODE CLIENT SEQ PAYLOAD
        Propose the command (CLIENT, SEQ, PAYLOAD) at the node.
    read-index NODE ID
        Ask the node for a read index.
    crash NODE
        Lose the node's unpersisted records and held messages; restart it from
        ``recover(disk)``. Messages already deliverable stay in the network.
    status [NODE]
        Role, ballot, leader hint, slot counters and clock of one or all nodes.
    log NODE
        The entries the node holds: ``slot@ballot:value``.
    pending [NODE]
        Deliverable messages, then those held until a persist.
    partition A,B|C
        Cut the links between nodes of different groups (``1|3`` cuts only 1-3;
        unnamed nodes keep all links). Replaces the previous partition.
    heal
        Restore every link.

Errors the replica raises on purpose (``NotLeader``, ``Busy``, ...) print as
``error: Type: message``; any other exception fails the script.
See ``harness.py`` for the shape of the output lines.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from tests.protocol.harness import Env

from paxon.errors import PaxonError
from paxon.protocol import MESSAGE_TYPES, Command, NodeId, ReplicaConfig

SEPARATOR = "----"
REWRITE_VARIABLE = "PAXON_REWRITE"
MESSAGE_TYPE_NAMES = frozenset(kind.__name__ for kind in MESSAGE_TYPES)


class ScriptError(Exception):
    """The script itself is malformed (not a failure of the replica)."""


@dataclass(slots=True)
class Case:
    line_number: int
    command: str
    expected: list[str]


Chunk = str | Case
"""A script is comment/blank lines kept verbatim, and cases."""


def parse(text: str) -> list[Chunk]:
    chunks: list[Chunk] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip() or line.startswith("#"):
            chunks.append(line)
            index += 1
            continue
        if index + 1 >= len(lines) or lines[index + 1] != SEPARATOR:
            raise ScriptError(f"line {index + 1}: expected {SEPARATOR!r} after {line!r}")
        case = Case(index + 1, line, [])
        index += 2
        while index < len(lines) and lines[index].strip():
            case.expected.append(lines[index])
            index += 1
        index += 1  # the blank line that ends the case
        chunks.append(case)
    return chunks


def render(chunks: list[Chunk], outputs: dict[int, list[str]] | None = None) -> str:
    """The script text, with each case's output taken from ``outputs`` if given."""
    lines: list[str] = []
    for chunk in chunks:
        if isinstance(chunk, str):
            lines.append(chunk)
            continue
        output = chunk.expected if outputs is None else outputs[chunk.line_number]
        lines += [chunk.command, SEPARATOR, *output, ""]
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines) + "\n"


class Runner:
    """Runs the commands of one script against an ``Env``."""

    def __init__(self) -> None:
        self.env: Env | None = None

    def run(self, command: str) -> list[str]:
        name, *args = command.split()
        if name == "cluster":
            return self._cluster(args)
        if self.env is None:
            raise ScriptError("the first command must be 'cluster'")
        try:
            lines = self._dispatch(self.env, name, args)
        except PaxonError as error:
            lines = [f"error: {type(error).__name__}: {error}"]
        assert all(line.strip() for line in lines), f"blank output line from {command!r}"
        return lines or ["ok"]

    def _cluster(self, args: list[str]) -> list[str]:
        if not args:
            raise ScriptError("cluster COUNT [seed=N] [FIELD=VALUE ...]")
        seed = 0
        overrides: dict[str, object] = {}
        defaults = ReplicaConfig()
        for arg in args[1:]:
            key, _, text = arg.partition("=")
            if key == "seed":
                seed = int(text)
            elif hasattr(defaults, key):
                overrides[key] = type(getattr(defaults, key))(text)
            else:
                raise ScriptError(f"unknown ReplicaConfig field {key!r}")
        config = dataclasses.replace(defaults, **overrides)
        self.env = Env(int(args[0]), seed=seed, config=config)
        return [self.env.status(node_id) for node_id in self.env.members]

    def _dispatch(self, env: Env, name: str, args: list[str]) -> list[str]:
        match name, args:
            case "tick", [nodes, seconds]:
                return [
                    line for n in self._nodes(env, nodes) for line in env.tick(n, float(seconds))
                ]
            case "campaign", [node]:
                return env.campaign(int(node))
            case "deliver", _:
                return env.deliver(*self._filters(args))
            case "drop", [_, *_]:
                return env.drop(*self._filters(args))
            case "persist", [nodes]:
                return [line for n in self._nodes(env, nodes) for line in env.persist(n)]
            case "stabilize", []:
                return env.stabilize()
            case "propose", [node, client, seq, payload]:
                command = Command(int(client), int(seq), payload.encode())
                return env.propose(int(node), command)
            case "read-index", [node, read_id]:
                return env.read_index(int(node), int(read_id))
            case "crash", [node]:
                return env.crash(int(node))
            case "status", []:
                return [env.status(node_id) for node_id in env.members]
            case "status", [node]:
                return [env.status(int(node))]
            case "log", [node]:
                return env.log(int(node))
            case "pending", []:
                return env.pending()
            case "pending", [node]:
                return env.pending(int(node))
            case "partition", [spec]:
                groups = [[int(n) for n in group.split(",")] for group in spec.split("|")]
                return env.partition(groups)
            case "heal", []:
                return env.heal()
        raise ScriptError(f"bad command: {name} {' '.join(args)}".rstrip())

    @staticmethod
    def _nodes(env: Env, spec: str) -> tuple[NodeId, ...]:
        if spec == "all":
            return env.members
        return tuple(int(n) for n in spec.split(","))

    @staticmethod
    def _filters(args: list[str]) -> tuple[NodeId | None, NodeId | None, str | None]:
        src: NodeId | None = None
        dst: NodeId | None = None
        kind: str | None = None
        for arg in args:
            if "->" in arg:
                left, right = arg.split("->")
                src = None if left == "*" else int(left)
                dst = None if right == "*" else int(right)
            elif kind is None:
                if arg not in MESSAGE_TYPE_NAMES:
                    raise ScriptError(f"unknown message type {arg!r}")
                kind = arg
            else:
                raise ScriptError(f"unexpected argument {arg!r}")
        return src, dst, kind


def run_script(path: Path) -> tuple[str, str]:
    """Run a script; return (expected text, actual text) of the whole file."""
    text = path.read_text()
    chunks = parse(text)
    runner = Runner()
    outputs: dict[int, list[str]] = {}
    for chunk in chunks:
        if isinstance(chunk, Case):
            try:
                outputs[chunk.line_number] = runner.run(chunk.command)
            except Exception as error:
                error.add_note(f"{path.name}:{chunk.line_number}: {chunk.command}")
                raise
    return render(chunks), render(chunks, outputs)


def check_script(path: Path) -> None:
    """Compare a script with its actual output, or rewrite it under PAXON_REWRITE=1."""
    expected, actual = run_script(path)
    if os.environ.get(REWRITE_VARIABLE) == "1":
        if actual != path.read_text():
            path.write_text(actual)
        return
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{path.name} (expected)",
                tofile=f"{path.name} (actual)",
            )
        )
        raise AssertionError(
            f"{path.name}: output differs (rerun with {REWRITE_VARIABLE}=1 to accept):\n{diff}"
        )
