"""An in-memory environment that drives several ``Replica``s by hand.

The environment plays the runtime of ``paxon.protocol.ready`` for every node,
one explicit step at a time, and describes each step in readable lines:

- every node has its own clock, advanced only by ``tick``/``campaign``;
- ``records`` of a Ready go to the node's *unpersisted* list; ``persist`` moves
  them to its *disk* (a list of records, oldest first);
- ``messages`` go at once to the node's *outbox* (deliverable);
- ``messages_after_persist`` are *held* and move to the outbox only on the
  node's next ``persist``; that includes messages a node sends to itself;
- ``apply`` entries are appended to the node's applied list;
- ``crash`` loses the unpersisted records and the held messages, then rebuilds
  the replica from ``recover(disk)``. Messages already in an outbox were sent.

After every call into a replica the environment runs ``check_invariants()`` and
its own cross-node checks: applied slots are contiguous per node, every node
applies the same value for a slot, and a Promise or Accepted never leaves before
the records it stands for are durable. A failed check raises ``AssertionError``.

Output lines look like this (``N`` is a node id)::

    N: FOLLOWER -> PROBING ballot=1.1      a role change (ballot_own, or promised)
    N: leader 2                            a follower's leader hint changed
    N: write AcceptRecord(0@1.1:[c1#1])    a record to persist
    1->2 Accept(...)                       a message, deliverable at once
    1->1 Accepted(...) (after persist)     a message held until ``persist 1``
    N: apply 0 [c1#1]                      a chosen entry handed to the state machine
    N: read 7 slot=3 | N: read 7 failed    a read-index answer
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from paxon.protocol import (
    Accept,
    Accepted,
    AcceptRecord,
    ChosenEntry,
    ChosenPrefix,
    ChosenRecord,
    Command,
    Entry,
    Heartbeat,
    HeartbeatReply,
    Learn,
    LearnRequest,
    Message,
    Nack,
    NodeId,
    Prepare,
    Probe,
    ProbeReply,
    Promise,
    PromiseRecord,
    ReadIndex,
    Ready,
    Record,
    RemovedNotice,
    Replica,
    ReplicaConfig,
    Role,
    Slot,
    SnapshotRecord,
    SnapshotRequest,
    TimeoutNow,
    Value,
    recover,
)
from paxon.protocol.membership import ConfigState, Configuration, RemovedState

CAMPAIGN_STEP_S = 0.01
"""``campaign`` ticks the node's clock forward in steps of this size."""

CAMPAIGN_LIMIT_S = 10.0
"""``campaign`` gives up when the node has not stood after this long."""

STABILIZE_ROUNDS_MAX = 100
"""``stabilize`` fails if the cluster is not quiet after this many rounds."""

DURABLE_MESSAGE_TYPES = (Promise, Accepted)
"""Messages that stand for durable state and so may leave only after persist."""


# ------------------------------------------------------------------ formatting


def format_time(now: float) -> str:
    return f"{now:.3f}"


def format_entry(entry: Entry) -> str:
    return f"{entry.slot}@{entry.ballot}:{entry.value}"


def format_entries(entries: Iterable[Entry]) -> str:
    return "[" + " ".join(format_entry(entry) for entry in entries) + "]"


def format_prefix(prefix: ChosenPrefix) -> str:
    text = f"chosen={prefix.slot_chosen}"
    if prefix.runs:
        runs = " ".join(f"[{run.slot_start},{run.slot_end})@{run.ballot}" for run in prefix.runs)
        text += f" runs={runs}"
    return text


def format_message(message: Message) -> str:
    """``SRC->DST Kind(fields)``, one line, fields in a fixed order."""
    match message:
        case Probe(ballot=ballot):
            body = f"ballot={ballot}"
        case ProbeReply(ballot=ballot, granted=granted):
            body = f"ballot={ballot} {'granted' if granted else 'refused'}"
        case Prepare(ballot=ballot, slot_from=slot_from):
            body = f"ballot={ballot} slot_from={slot_from}"
        case Promise():
            body = (
                f"ballot={message.ballot} slot_from={message.slot_from}"
                f" entries={format_entries(message.entries)}"
                f" chosen={message.slot_chosen} log_start={message.log_start}"
            )
        case Nack(ballot=ballot, ballot_promised=promised):
            body = f"ballot={ballot} promised={promised}"
        case Accept(ballot=ballot, slot=slot, value=value, chosen=prefix):
            body = f"ballot={ballot} slot={slot} value={value} {format_prefix(prefix)}"
        case Accepted(ballot=ballot, slot=slot, slot_chosen=slot_chosen):
            body = f"ballot={ballot} slot={slot} chosen={slot_chosen}"
        case Heartbeat(ballot=ballot, chosen=prefix, read_round=read_round):
            body = f"ballot={ballot} {format_prefix(prefix)} read={read_round}"
        case HeartbeatReply(ballot=ballot, slot_chosen=slot_chosen, read_round=read_round):
            body = f"ballot={ballot} chosen={slot_chosen} read={read_round}"
        case LearnRequest(slot_from=slot_from):
            body = f"slot_from={slot_from}"
        case Learn(entries=entries):
            body = f"entries={format_entries(entries)}"
        case TimeoutNow(ballot=ballot):
            body = f"ballot={ballot}"
        case RemovedNotice(epoch=epoch):
            body = f"epoch={epoch}"
        case _:
            raise TypeError(f"unknown message {message!r}")
    return f"{message.src}->{message.dst} {type(message).__name__}({body})"


def format_record(record: Record) -> str:
    match record:
        case PromiseRecord(ballot=ballot):
            return f"PromiseRecord({ballot})"
        case AcceptRecord(entry=entry):
            return f"AcceptRecord({format_entry(entry)})"
        case ChosenRecord(slot_chosen=slot_chosen):
            return f"ChosenRecord({slot_chosen})"
        case SnapshotRecord(slot=slot):
            return f"SnapshotRecord({slot})"
        case _:
            raise TypeError(f"unknown record {record!r}")


def format_ballot_of(replica: Replica) -> str:
    if replica.role is Role.FOLLOWER:
        return f"promised={replica.ballot_promised}"
    return f"ballot={replica.ballot_own}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# ------------------------------------------------------------------ environment


@dataclass(slots=True)
class Node:
    """One replica and the runtime state the environment keeps for it."""

    replica: Replica
    rng: random.Random
    now: float = 0.0
    disk: list[Record] = field(default_factory=list)
    unpersisted: list[Record] = field(default_factory=list)
    held: list[Message] = field(default_factory=list)
    outbox: list[Message] = field(default_factory=list)
    applied: list[ChosenEntry] = field(default_factory=list)
    slot_apply_next: Slot = 0
    reads: list[ReadIndex] = field(default_factory=list)
    snapshot_requests: list[SnapshotRequest] = field(default_factory=list)


class Env:
    """N replicas with ids ``1..count``, a network of outboxes, disks and clocks."""

    def __init__(
        self,
        count: int,
        *,
        seed: int = 0,
        config: ReplicaConfig | None = None,
        replica_factory: type[Replica] = Replica,
        nodes: int | None = None,
        alpha: int | None = None,
    ) -> None:
        """``count`` voters; ``nodes`` (default ``count``) replicas in all: those
        past ``count`` start outside the configuration, as a new node joins."""
        if count < 1:
            raise ValueError("an environment has at least one node")
        self.config = config or ReplicaConfig()
        # Builds every replica, restarts included: a mutant can play a script too.
        self.replica_factory = replica_factory
        self.members: tuple[NodeId, ...] = tuple(range(1, (nodes or count) + 1))
        self.initial = Configuration.initial(
            range(1, count + 1), **({"alpha": alpha} if alpha else {})
        )
        self.nodes: dict[NodeId, Node] = {}
        for node_id in self.members:
            rng = random.Random(seed * 1000 + node_id)
            replica = replica_factory(node_id, self.initial, rng=rng, now=0.0, config=self.config)
            replica.check_invariants()
            self.nodes[node_id] = Node(replica, rng)
        self.cut: set[frozenset[NodeId]] = set()
        # Every value any node applied, by slot: all nodes must agree on it.
        self.chosen: dict[Slot, Value] = {}

    def replica(self, node_id: NodeId) -> Replica:
        return self.node(node_id).replica

    def node(self, node_id: NodeId) -> Node:
        if node_id not in self.nodes:
            raise KeyError(f"no node {node_id}; nodes are {self.members}")
        return self.nodes[node_id]

    # ------------------------------------------------------------ time

    def tick(self, node_id: NodeId, now: float) -> list[str]:
        """Set the node's clock to ``now`` (absolute seconds) and tick it."""
        node = self.node(node_id)
        if now < node.now:
            raise ValueError(f"node {node_id} clock is at {format_time(node.now)}")
        node.now = now
        return self._perform(node_id, lambda: node.replica.tick(now))

    def campaign(self, node_id: NodeId) -> list[str]:
        """Tick a follower in small steps until its election timeout fires."""
        node = self.node(node_id)
        if node.replica.role is not Role.FOLLOWER:
            raise ValueError(f"node {node_id} is {node.replica.role.name}, not FOLLOWER")
        start = node.now
        steps = 0
        lines: list[str] = []
        while node.replica.role is Role.FOLLOWER:
            steps += 1
            if steps * CAMPAIGN_STEP_S > CAMPAIGN_LIMIT_S:
                raise AssertionError(f"node {node_id} did not stand within {CAMPAIGN_LIMIT_S}s")
            node.now = round(start + steps * CAMPAIGN_STEP_S, 6)
            lines += self._perform(node_id, lambda: node.replica.tick(node.now))
        return [f"{node_id}: clock {format_time(node.now)}", *lines]

    # ------------------------------------------------------------ client calls

    def propose(self, node_id: NodeId, command: Command) -> list[str]:
        replica = self.replica(node_id)
        return self._perform(node_id, lambda: replica.propose(command))

    def propose_many(self, node_id: NodeId, commands: Iterable[Command]) -> list[str]:
        replica = self.replica(node_id)
        batch = tuple(commands)
        return self._perform(node_id, lambda: replica.propose_many(batch))

    def read_index(self, node_id: NodeId, read_id: int, *, now: float | None = None) -> list[str]:
        """A read-index call; with ``now`` (the node's clock as it takes the read),
        a lease read may answer at once."""
        replica = self.replica(node_id)
        return self._perform(node_id, lambda: replica.read_index(read_id, now))

    def install_snapshot(self, node_id: NodeId, slot: Slot) -> list[str]:
        """The runtime restored a snapshot covering every slot below ``slot``."""
        node = self.node(node_id)
        node.slot_apply_next = max(node.slot_apply_next, slot)
        return self._perform(node_id, lambda: node.replica.install_snapshot(slot))

    # ------------------------------------------------------------ disk

    def persist(self, node_id: NodeId) -> list[str]:
        """Make the node's records durable, then release its held messages."""
        node = self.node(node_id)
        records, released = len(node.unpersisted), len(node.held)
        node.disk += node.unpersisted
        node.unpersisted = []
        node.outbox += node.held
        node.held = []
        return [
            f"{node_id}: persist {plural(records, 'record')}, release {plural(released, 'message')}"
        ]

    def crash(
        self, node_id: NodeId, *, configs: ConfigState = (), removed: RemovedState = ()
    ) -> list[str]:
        """Lose what is not durable and restart the replica from its disk (and,
        as the runtime's snapshot would give them, ``configs`` and ``removed``)."""
        node = self.node(node_id)
        old = node.replica
        lines = [
            f"{node_id}: crash: lose {plural(len(node.unpersisted), 'unpersisted record')}, "
            f"{plural(len(node.held), 'held message')}"
        ]
        node.unpersisted = []
        node.held = []
        durable = dataclasses.replace(recover(node.disk), configs=configs, removed=removed)
        lines.append(
            f"{node_id}: restart promised={durable.ballot_promised}"
            f" entries={format_entries(durable.entries[slot] for slot in sorted(durable.entries))}"
            f" chosen={durable.slot_chosen} log_start={durable.log_start}"
        )
        node.replica = self.replica_factory(
            node_id, self.initial, rng=node.rng, now=node.now, config=self.config, durable=durable
        )
        node.replica.check_invariants()
        # The state machine is rebuilt from scratch: the recovered chosen entries
        # come back in the first Ready, which a tick at the same time drains.
        node.applied = []
        node.slot_apply_next = durable.log_start
        node.reads = []
        lines += self._perform(node_id, lambda: node.replica.tick(node.now), before=old)
        return lines

    # ------------------------------------------------------------ network

    def partition(self, groups: Iterable[Iterable[NodeId]]) -> list[str]:
        """Cut every link between two nodes named in different groups.

        Nodes named in no group keep every link: ``partition([[1], [3]])`` cuts
        only 1<->3. Replaces any earlier partition. Messages over a cut link are
        dropped when they would be delivered.
        """
        sets = [frozenset(group) for group in groups]
        for group in sets:
            for node_id in group:
                self.node(node_id)
        self.cut = {
            frozenset((a, b))
            for i, left in enumerate(sets)
            for right in sets[i + 1 :]
            for a in left
            for b in right
            if a != b
        }
        pairs = sorted(tuple(sorted(pair)) for pair in self.cut)
        return ["cut " + " ".join(f"{a}-{b}" for a, b in pairs)]

    def heal(self) -> list[str]:
        self.cut = set()
        return ["healed"]

    def deliverable(
        self, src: NodeId | None = None, dst: NodeId | None = None, kind: str | None = None
    ) -> list[Message]:
        """Messages in outboxes matching the filters, by sender id, then in send order."""
        return [
            message
            for node_id in self.members
            for message in self.nodes[node_id].outbox
            if _matches(message, src, dst, kind)
        ]

    def deliver(
        self, src: NodeId | None = None, dst: NodeId | None = None, kind: str | None = None
    ) -> list[str]:
        """Deliver the matching messages pending now (not those sent meanwhile)."""
        lines: list[str] = []
        for message in self.deliverable(src, dst, kind):
            self.nodes[message.src].outbox.remove(message)
            if frozenset((message.src, message.dst)) in self.cut:
                lines.append(f"{format_message(message)} dropped (partition)")
                continue
            lines.append(format_message(message))
            receiver = self.node(message.dst).replica
            lines += self._perform(message.dst, partial(receiver.step, message), indent="  ")
        return lines or ["no messages"]

    def inject(self, message: Message, *, to: NodeId | None = None) -> list[str]:
        """Deliver a message no replica sent (a buggy member, an outsider), now.

        ``to`` is the node it reaches (default ``message.dst``), so a message
        addressed elsewhere can be delivered to the wrong node.
        """
        receiver = self.node(message.dst if to is None else to).replica
        lines = [f"{format_message(message)} injected"]
        return lines + self._perform(receiver.node_id, partial(receiver.step, message), indent="  ")

    def drop(
        self, src: NodeId | None = None, dst: NodeId | None = None, kind: str | None = None
    ) -> list[str]:
        lines: list[str] = []
        for message in self.deliverable(src, dst, kind):
            self.nodes[message.src].outbox.remove(message)
            lines.append(f"{format_message(message)} dropped")
        return lines or ["no messages"]

    def stabilize(self) -> list[str]:
        """Persist everywhere and deliver everything, until nothing is left."""
        lines: list[str] = []
        for _ in range(STABILIZE_ROUNDS_MAX):
            progressed = False
            for node_id in self.members:
                node = self.nodes[node_id]
                if node.unpersisted or node.held:
                    lines += self.persist(node_id)
                    progressed = True
            if self.deliverable():
                lines += self.deliver()
                progressed = True
            if not progressed:
                return lines or ["ok"]
        raise AssertionError(f"not stable after {STABILIZE_ROUNDS_MAX} rounds")

    # ------------------------------------------------------------ inspection

    def status(self, node_id: NodeId) -> str:
        node = self.node(node_id)
        status = node.replica.status()
        leader = "-" if status.leader_hint is None else str(status.leader_hint)
        return (
            f"{node_id}: {status.role.name} {format_ballot_of(node.replica)} leader={leader}"
            f" chosen={status.slot_chosen} applied={status.slot_applied}"
            f" next={status.slot_next} log_start={status.log_start}"
            f" now={format_time(node.now)}"
        )

    def log(self, node_id: NodeId) -> list[str]:
        """The entries the node holds, marked chosen and/or not yet durable."""
        node = self.node(node_id)
        replica = node.replica
        durable = recover(node.disk).entries
        slots = [
            record.entry.slot
            for record in [*node.disk, *node.unpersisted]
            if isinstance(record, AcceptRecord)
        ]
        lines: list[str] = []
        for slot in range(replica.log_start, max(slots, default=-1) + 1):
            entry = replica.entry(slot)
            if entry is None:
                continue
            marks = []
            if slot < replica.slot_chosen:
                marks.append("chosen")
            if durable.get(slot) != entry:
                marks.append("unpersisted")
            suffix = "".join(f" ({mark})" for mark in marks)
            lines.append(f"{node_id}: {format_entry(entry)}{suffix}")
        return lines or [f"{node_id}: empty log from slot {replica.log_start}"]

    def pending(self, node_id: NodeId | None = None) -> list[str]:
        """Messages deliverable now, then messages held until a persist."""
        ids = self.members if node_id is None else (node_id,)
        lines = [format_message(message) for i in ids for message in self.node(i).outbox]
        lines += [
            f"{format_message(message)} (after persist)"
            for i in ids
            for message in self.node(i).held
        ]
        return lines or ["no messages"]

    # ------------------------------------------------------------ the runtime

    def _perform(
        self,
        node_id: NodeId,
        call: Callable[[], Ready],
        *,
        indent: str = "",
        before: Replica | None = None,
    ) -> list[str]:
        """Run one call into a replica and perform its Ready as ready.py says."""
        node = self.nodes[node_id]
        old = before or node.replica
        role, hint, ballot = old.role, old.leader_hint, format_ballot_of(old)
        try:
            ready = call()
        finally:
            node.replica.check_invariants()
        replica = node.replica
        lines: list[str] = []
        if replica.role is not role:
            lines.append(
                f"{node_id}: {role.name} -> {replica.role.name} {format_ballot_of(replica)}"
            )
        elif role is not Role.FOLLOWER and format_ballot_of(replica) != ballot:
            lines.append(f"{node_id}: {role.name} {ballot} -> {format_ballot_of(replica)}")
        if replica.role is not Role.LEADER and replica.leader_hint != hint:
            leader = "none" if replica.leader_hint is None else str(replica.leader_hint)
            lines.append(f"{node_id}: leader {leader}")
        for record in ready.records:
            node.unpersisted.append(record)
            lines.append(f"{node_id}: write {format_record(record)}")
        for message in ready.messages:
            assert message.src == node_id, f"node {node_id} sent as {message.src}"
            assert not isinstance(message, DURABLE_MESSAGE_TYPES), (
                f"persist before speak: {format_message(message)} left before persist"
            )
            node.outbox.append(message)
            lines.append(format_message(message))
        for message in ready.messages_after_persist:
            assert message.src == node_id, f"node {node_id} sent as {message.src}"
            node.held.append(message)
            lines.append(f"{format_message(message)} (after persist)")
        for chosen in ready.apply:
            lines.append(self._apply(node_id, chosen))
        for read in ready.reads:
            node.reads.append(read)
            answer = "failed" if read.slot is None else f"slot={read.slot}"
            lines.append(f"{node_id}: read {read.read_id} {answer}")
        for request in ready.snapshot_requests:
            node.snapshot_requests.append(request)
            lines.append(f"{node_id}: snapshot for {request.peer} from slot {request.slot_from}")
        return [indent + line for line in lines]

    def _apply(self, node_id: NodeId, chosen: ChosenEntry) -> str:
        node = self.nodes[node_id]
        assert chosen.slot == node.slot_apply_next, (
            f"node {node_id} applied slot {chosen.slot}, expected {node.slot_apply_next}"
        )
        agreed = self.chosen.setdefault(chosen.slot, chosen.value)
        assert agreed == chosen.value, (
            f"node {node_id} applied {chosen.value} at slot {chosen.slot}; another applied {agreed}"
        )
        node.applied.append(chosen)
        node.slot_apply_next += 1
        return f"{node_id}: apply {chosen.slot} {chosen.value}"


def _matches(message: Message, src: NodeId | None, dst: NodeId | None, kind: str | None) -> bool:
    return (
        (src is None or message.src == src)
        and (dst is None or message.dst == dst)
        and (kind is None or type(message).__name__ == kind)
    )
