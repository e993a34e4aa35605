"""Cluster membership as protocol state: configurations carried in the log.

A *configuration* names the members, each a voter (a majority of the voters
decides a slot) or a learner (it receives the log and votes, but its vote is
never counted and it never stands), with the address the runtime dials, an
``epoch`` that counts changes, and ``alpha``, the distance from the slot where
a change is chosen to the slot where it takes effect.

Rules (docs/protocol.md, "Membership", says why each is safe):
- A change is a command in the log: client id ``SYSTEM_CLIENT_ID`` (0, the
  runtime's reserved session) with a payload that starts with
  ``CONFIG_MAGIC``. Every replica reads it at the slot it is chosen, in slot
  order, so every replica holds the same history.
- A change chosen at slot ``i`` takes effect at slot ``i + alpha``: the
  configuration in effect at slot ``s`` is the last one whose effect slot is
  at most ``s``. A leader proposes slot ``s`` only while ``s < slot_chosen +
  alpha``, so it always knows the configuration that decides ``s``.
- A change counts only if its epoch is one above the newest configuration
  known (pending ones included) and it keeps ``alpha``; any other is a no-op
  on every replica alike, so a change proposed twice, or by two leaders,
  takes effect at most once.

Limits: ``MEMBERS_MAX`` = 64 members, ``ADDRESS_BYTES_MAX`` = 255 bytes per
address, ``CONFIG_BYTES_MAX`` = 32 KiB per encoded configuration; a payload
past them, or one that does not decode, is no change at all.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from paxon.protocol.quorum import majority
from paxon.protocol.types import Command, NodeId, Slot, Value

SYSTEM_CLIENT_ID = 0
"""The session of commands the system writes itself: the runtime's clock
entries (empty payload) and configuration changes (``CONFIG_MAGIC``...)."""

CONFIG_MAGIC = b"paxon-config\x00"
MEMBERS_MAX = 64
REMOVED_REMEMBERED_MAX = 16
"""Nodes a replica remembers it saw removed, newest kept: it tells their
probes no and answers their learn requests, so a removed node that missed its
removal learns it (replica.py, note (***) of the trust bounds). Snapshots carry
the same memory (``RemovedState``), so a restart keeps it."""
ADDRESS_BYTES_MAX = 255
CONFIG_BYTES_MAX = 32 * 1024
ALPHA_DEFAULT = 64
"""Slots from a change's choice to its effect; the default pipeline window, so
a leader with the default window is never slowed by the rule."""


class InvalidConfiguration(ValueError):
    """A configuration that breaks a rule above; the message says which."""


INCARNATION_END = 2**64
"""Incarnations are the 64-bit numbers of a data directory's IDENTITY file."""


@dataclass(frozen=True, slots=True)
class Member:
    """``incarnation``: the data directory this member must run on, once the
    leader has bound it (None until then; docs/membership.md, "Incarnations").
    A peer whose handshake names another one is refused by every member."""

    node_id: NodeId
    address: str = ""
    voter: bool = True
    incarnation: int | None = None
    """The data directory it was bound to (its IDENTITY file), once the leader
    has authenticated it; None until then (docs/membership.md)."""
    auto_promote: bool = False
    """A learner the leader promotes once it has caught up (node/members.py)."""

    def same_place(self, other: Member) -> bool:
        """Same id, address and role, bound or not."""
        return (self.node_id, self.address, self.voter) == (
            other.node_id,
            other.address,
            other.voter,
        )


@dataclass(frozen=True, slots=True)
class Configuration:
    """Who votes and who learns, from the slot it takes effect at on."""

    epoch: int
    members: tuple[Member, ...]
    alpha: int = ALPHA_DEFAULT

    def __post_init__(self) -> None:
        # The runtime builds one by ``initial`` (its own peers), ``successor``
        # (``node/members.next_configuration``, from an operator's request: a bad
        # id or address lands here) and ``decode`` (only what ``encode`` wrote).
        ids = [member.node_id for member in self.members]
        if self.epoch < 0:
            raise InvalidConfiguration(  # sim: unreachable: from 0, a successor adds one
                f"epoch must be >= 0, got {self.epoch}"
            )
        if self.alpha < 1:
            raise InvalidConfiguration(  # sim: unreachable: a successor keeps a valid alpha
                f"alpha must be >= 1, got {self.alpha}"
            )
        if not 0 < len(ids) <= MEMBERS_MAX:
            raise InvalidConfiguration(  # sim: unreachable: a voter stays; at most 9 nodes run
                f"a configuration has 1 to {MEMBERS_MAX} members"
            )
        if ids != sorted(set(ids)) or ids[0] <= 0:
            raise InvalidConfiguration(f"member ids must be > 0, unique and sorted: {ids}")
        if not any(member.voter for member in self.members):
            raise InvalidConfiguration(  # sim: unreachable: the last voter is never removed
                "a configuration needs at least one voter"
            )
        for member in self.members:
            if len(member.address.encode()) > ADDRESS_BYTES_MAX:
                raise InvalidConfiguration(f"address of node {member.node_id} is too long")
            if member.voter and member.auto_promote:
                raise InvalidConfiguration(  # sim: unreachable: next_configuration makes none
                    f"node {member.node_id} votes: only a learner is promoted"
                )
            if member.incarnation is not None and not 0 <= member.incarnation < INCARNATION_END:
                raise InvalidConfiguration(  # sim: unreachable: IDENTITY holds 64-bit ones
                    f"incarnation of node {member.node_id} is not 64-bit"
                )

    @classmethod
    def initial(
        cls, voters: Iterable[NodeId] | Mapping[NodeId, str], *, alpha: int = ALPHA_DEFAULT
    ) -> Configuration:
        """The first configuration of a cluster: every member votes."""
        addresses = dict(voters) if isinstance(voters, Mapping) else dict.fromkeys(voters, "")
        members = tuple(Member(node_id, addresses[node_id]) for node_id in sorted(addresses))
        return cls(0, members, alpha)

    @property
    def voters(self) -> frozenset[NodeId]:
        return frozenset(member.node_id for member in self.members if member.voter)

    @property
    def learners(self) -> frozenset[NodeId]:
        return frozenset(member.node_id for member in self.members if not member.voter)

    @property
    def ids(self) -> frozenset[NodeId]:
        return frozenset(member.node_id for member in self.members)

    @property
    def quorum(self) -> int:
        return majority(len(self.voters))

    def has_quorum(self, ids: Iterable[NodeId]) -> bool:
        """Whether ``ids`` holds a majority of this configuration's voters."""
        return len(self.voters.intersection(ids)) >= self.quorum

    def member(self, node_id: NodeId) -> Member | None:
        for member in self.members:
            if member.node_id == node_id:
                return member
        return None

    def successor(self, members: Iterable[Member]) -> Configuration:
        """The next configuration: ``members``, one epoch later, same alpha."""
        return Configuration(
            self.epoch + 1, tuple(sorted(members, key=lambda m: m.node_id)), self.alpha
        )

    # ---------------------------------------------------------------- the log

    def command(self) -> Command:
        """The command that, once chosen, makes this the configuration."""
        return Command(SYSTEM_CLIENT_ID, self.epoch, CONFIG_MAGIC + self.encode())

    def encode(self) -> bytes:
        # A member is [id, address, voter], then a map of options only if one is
        # set, so a configuration without them encodes as it did before options.
        members: list[list[object]] = []
        for m in self.members:
            options: dict[str, object] = {}
            if m.incarnation is not None:
                options["incarnation"] = m.incarnation
            if m.auto_promote:
                options["auto_promote"] = True
            base: list[object] = [m.node_id, m.address, m.voter]
            members.append([*base, options] if options else base)
        body = json.dumps([self.epoch, self.alpha, members], separators=(",", ":"))
        return body.encode()

    @classmethod
    def decode(cls, data: bytes) -> Configuration:
        """Raises ``InvalidConfiguration`` on anything ``encode`` cannot have made.

        In the runtime it reads only what ``encode`` wrote, so its checks never
        fail there: a change in the log is a command of session 0, which no
        client may use (``node/logclock.check_client_id``), and a snapshot's or
        the first configuration's bytes pass a checksum first."""
        if len(data) > CONFIG_BYTES_MAX:
            raise InvalidConfiguration(  # sim: unreachable: encode's output (decode's docstring)
                "configuration over CONFIG_BYTES_MAX"
            )
        try:
            epoch, alpha, raw_members = json.loads(data)
            members = tuple(_member(raw) for raw in raw_members)
        except (ValueError, TypeError) as error:  # sim: unreachable: encode's output
            raise InvalidConfiguration(f"configuration does not decode: {error}") from None
        return cls(_int(epoch), members, _int(alpha))


def change_in(value: Value) -> Configuration | None:
    """The configuration change a chosen value carries, if any (the last wins)."""
    found = None
    for command in value.commands:
        if command.client_id == SYSTEM_CLIENT_ID and command.payload.startswith(CONFIG_MAGIC):
            try:
                found = Configuration.decode(command.payload[len(CONFIG_MAGIC) :])
            except InvalidConfiguration:
                continue  # not a change: a no-op on every replica alike
    return found


def _member(raw: object) -> Member:
    if type(raw) is not list or len(raw) not in (3, 4):
        raise InvalidConfiguration(  # sim: unreachable: encode's output (see decode)
            f"a member is [id, address, voter(, options)], got {raw!r}"
        )
    options = raw[3] if len(raw) == 4 else {}
    if type(options) is not dict or not set(options) <= {"incarnation", "auto_promote"}:
        raise InvalidConfiguration(  # sim: unreachable: encode's output (see decode)
            f"unknown member options {options!r}"
        )
    incarnation = options.get("incarnation")
    return Member(
        _int(raw[0]),
        _str(raw[1]),
        _bool(raw[2]),
        None if incarnation is None else _int(incarnation),
        _bool(options.get("auto_promote", False)),
    )


def _int(raw: object) -> int:
    if type(raw) is not int:
        raise InvalidConfiguration(  # sim: unreachable: encode's output (see decode)
            f"expected an integer, got {raw!r}"
        )
    return raw


def _str(raw: object) -> str:
    if type(raw) is not str:
        raise InvalidConfiguration(  # sim: unreachable: encode's output (see decode)
            f"expected a string, got {raw!r}"
        )
    return raw


def _bool(raw: object) -> bool:
    if type(raw) is not bool:
        raise InvalidConfiguration(  # sim: unreachable: encode's output (see decode)
            f"expected true or false, got {raw!r}"
        )
    return raw


ConfigState = tuple[tuple[Slot, Configuration], ...]
"""Configurations by the slot each takes effect at, oldest first."""


@dataclass(frozen=True, slots=True)
class RemovedMember:
    """A node gone from the members: the address it had, the slot its removal
    took effect at, and the epoch of the configuration that removed it."""

    node_id: NodeId
    address: str
    effect: Slot
    epoch: int


RemovedState = tuple[RemovedMember, ...]
"""The nodes remembered removed, oldest first: what a snapshot carries beside
its configurations (``node/machine.py``), so that a member restarted or
restored past a removal still tells the removed node (replica.py, (***))."""


def remember_removed(
    memory: dict[NodeId, RemovedMember], gone: Iterable[RemovedMember], members: Iterable[NodeId]
) -> None:
    """Add ``gone`` to ``memory`` as its newest, drop ``members`` (a node added
    back is no longer removed), and keep the newest ``REMOVED_REMEMBERED_MAX``."""
    for removed in gone:
        memory.pop(removed.node_id, None)
        memory[removed.node_id] = removed
    for member in members:
        memory.pop(member, None)
    # A simulated run has at most 9 members: never 16 removed.
    while len(memory) > REMOVED_REMEMBERED_MAX:  # sim: one-way: see above
        del memory[next(iter(memory))]


def removed_by(before: Configuration, change: Configuration, effect: Slot) -> RemovedState:
    """The members of ``before`` that ``change``, taking effect at ``effect``, drops."""
    kept = change.ids
    return tuple(
        RemovedMember(member.node_id, member.address, effect, change.epoch)
        for member in before.members
        if member.node_id not in kept
    )


class ConfigHistory:
    """The configurations in effect from some slot on, by effect slot.

    Holds the one in effect at the oldest slot still of interest and every
    later one (pending changes included). ``state(slot)`` is what a snapshot
    at ``slot`` must carry so a replica restored from it knows every
    configuration from ``slot`` on.
    """

    __slots__ = ("_configs", "_effects", "_past", "_past_removed")

    def __init__(self, state: ConfigState) -> None:
        # Argument checks: the runtime passes ``state()``'s output, or a snapshot's
        # configurations, which the node checks first (``node/machine._configs``).
        if not state:
            raise ValueError(  # sim: unreachable: argument check (above)
                "a history starts with one configuration"
            )
        slots = [slot for slot, _ in state]
        if slots != sorted(set(slots)):
            raise ValueError(f"effect slots must rise: {slots}")  # sim: unreachable: see above
        self._effects: list[Slot] = slots
        self._configs: list[Configuration] = [config for _, config in state]
        # The changes no newer than the newest held, replayed from the log's
        # first (``_replay``): the last one chained, and what they removed.
        self._past: Configuration | None = None
        self._past_removed: list[tuple[Configuration, RemovedState]] = []

    def at(self, slot: Slot) -> Configuration:
        """The configuration that decides ``slot`` (as far as this history knows)."""
        index = bisect_right(self._effects, slot) - 1
        return self._configs[max(index, 0)]

    def effect_of(self, slot: Slot) -> Slot:
        """The slot where the configuration deciding ``slot`` took effect."""
        index = bisect_right(self._effects, slot) - 1
        return self._effects[max(index, 0)]

    @property
    def newest(self) -> Configuration:
        return self._configs[-1]

    @property
    def newest_effect(self) -> Slot:
        """The slot the newest configuration takes (or took) effect at."""
        return self._effects[-1]

    def voter_since(self, node: NodeId) -> Slot | None:
        """The first slot from which ``node`` is a voter of every configuration
        held, or None when the newest does not have it as a voter."""
        since: Slot | None = None
        for effect, config in zip(reversed(self._effects), reversed(self._configs), strict=True):
            if node not in config.voters:
                break
            since = effect
        return since

    def from_slot(self, slot: Slot) -> list[Configuration]:
        """The configuration in effect at ``slot`` and every one after it."""
        index = max(bisect_right(self._effects, slot) - 1, 0)
        return self._configs[index:]

    def ids(self) -> frozenset[NodeId]:
        """Every member of every configuration held."""
        return frozenset().union(*(config.ids for config in self._configs))

    def chosen(self, slot: Slot, value: Value) -> Configuration | None:
        """``value`` was chosen at ``slot``: record the change it carries, if it counts."""
        change = change_in(value)
        if change is None:
            return None
        newest = self.newest
        if change.epoch <= newest.epoch:
            self._replay(slot, change)
            return None
        if change.epoch != newest.epoch + 1 or change.alpha != newest.alpha:
            return None
        effect = slot + newest.alpha
        if effect <= self._effects[-1]:  # sim: unreachable: changes are chosen in slot order
            return None
        self._effects.append(effect)
        self._configs.append(change)
        return change

    def _replay(self, slot: Slot, change: Configuration) -> None:
        """A change no newer than this history: a member that joined later
        (``paxon serve --join``: its history starts at the configuration it
        joined) replays the log from before it. Chained from the log's first
        change (epoch 1) as ``chosen`` chains the new ones, they say whom each
        removed, so its memory of removed nodes is every member's. The first
        change's own removals are not known: the configuration before it (the
        first start's ``--peers``) is in no log."""
        past = self._past
        if past is None:
            if change.epoch == 1:
                self._past = change
            return
        if change.epoch == past.epoch + 1 and change.alpha == past.alpha:
            self._past = change
            self._past_removed.append((change, removed_by(past, change, slot + past.alpha)))

    def replayed(self) -> list[tuple[Configuration, RemovedState]]:
        """The past changes chained since the last call (``_replay``), each with
        the members it removed, oldest first."""
        replayed = self._past_removed
        if replayed:
            self._past_removed = []
        return replayed

    def state(self, slot: Slot) -> ConfigState:
        """The configurations a snapshot at ``slot`` carries."""
        index = max(bisect_right(self._effects, slot) - 1, 0)
        return tuple(zip(self._effects[index:], self._configs[index:], strict=True))

    def forget_before(self, slot: Slot) -> None:
        """Drop what no slot at or after ``slot`` can be decided by."""
        index = max(bisect_right(self._effects, slot) - 1, 0)
        del self._effects[:index]
        del self._configs[:index]
