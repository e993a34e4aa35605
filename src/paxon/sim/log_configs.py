"""The configurations a run's chosen log makes, as the checkers derive them.

The checkers watch every vote leave its node, so they know a slot is chosen
before any replica does. They learn the membership as every replica does
(``paxon.protocol.membership``): the values chosen are read in slot order, and
a change chosen at slot ``i`` takes effect at ``i + alpha``. ``C(s)``, the
configuration that decides slot ``s``, is therefore final once every slot up to
``s - alpha`` is chosen (``known(s)``). A correct leader proposes ``s`` only
while ``s < slot_chosen + alpha``, and its ``slot_chosen`` never runs ahead of
the observer's prefix, so a vote at a slot whose configuration is not known yet
comes from a broken leader; a checker keeps such votes until it is known.

A chosen slot whose value no ``Accept`` carried (only a configuration of one
member sends none; the simulator keeps two at least) is read as no change.

The rule of which change counts (the next epoch, the same alpha) is written
out here rather than borrowed from ``ConfigHistory``: an oracle that shares
the code it judges agrees with its bugs (a fresh mutation sample showed it:
``ConfigHistory.chosen`` counting no change at all went unseen, since the
checkers then counted none either). So is which command of a value is a
change (``change_of``): ``change_in`` made to miss every change went unseen
too, the checkers reading the log through it (flipped guards, session 15).
Only the decoding of one configuration's bytes is shared.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_right

from paxon.protocol.membership import (
    CONFIG_MAGIC,
    SYSTEM_CLIENT_ID,
    Configuration,
    InvalidConfiguration,
)
from paxon.protocol.types import NodeId, Slot, Value


class LogConfigs:
    """The history of configurations read from the chosen prefix so far."""

    __slots__ = ("_changes", "_configs", "_effects", "alpha", "effect_times", "prefix_end")

    def __init__(self, initial: Configuration) -> None:
        self.alpha = initial.alpha
        self.prefix_end = 0  # every slot below is chosen and read
        # (slot chosen at, configuration), oldest first; the initial one at -1.
        self._changes: list[tuple[Slot, Configuration]] = [(-1, initial)]
        # Each configuration with the slot it takes effect at, oldest first.
        self._effects: list[Slot] = [0]
        self._configs: list[Configuration] = [initial]
        # When the chosen prefix passed each change's effect slot (read with a
        # time), by epoch: the moment it took effect.
        self.effect_times: dict[int, float] = {}

    def read(self, value: Value | None, time: float | None = None) -> Configuration | None:
        """``value`` was chosen at ``prefix_end``: take the change it carries, if it
        counts: a configuration of the next epoch, with the same alpha, takes
        effect alpha slots after the slot it was chosen at."""
        slot = self.prefix_end
        self.prefix_end += 1
        if time is not None:
            for effect, config in zip(self._effects, self._configs, strict=True):
                if effect == slot:
                    self.effect_times[config.epoch] = time
        change = None if value is None else change_of(value)
        newest = self._configs[-1]
        if change is None or change.epoch != newest.epoch + 1 or change.alpha != newest.alpha:
            return None
        self._effects.append(slot + self.alpha)
        self._configs.append(change)
        self._changes.append((slot, change))
        return change

    def known(self, slot: Slot) -> bool:
        """Whether every change that could decide ``slot`` has been read."""
        return slot < self.prefix_end + self.alpha

    def at(self, slot: Slot) -> Configuration:
        """``C(slot)``, as far as the prefix read so far says (final if ``known(slot)``)."""
        return self._configs[bisect_right(self._effects, max(slot, 0)) - 1]

    @property
    def changes_chosen(self) -> int:
        return len(self._changes) - 1

    def removals(self) -> list[tuple[NodeId, float]]:
        """Each node a change took out of the configuration, never put back by a
        later one, with the time that change took effect (read with a time)."""
        found = []
        for index in range(1, len(self._configs)):
            config = self._configs[index]
            taken = self._configs[index - 1].ids - config.ids
            later = frozenset().union(*(c.ids for c in self._configs[index:]))
            at = self.effect_times.get(config.epoch)
            found += [(node_id, at) for node_id in sorted(taken - later) if at is not None]
        return found

    def removed_known_at(self, slot_chosen: Slot, *, since_epoch: int = 0) -> frozenset[NodeId]:
        """The nodes such a replica knows removed: members of a configuration in
        effect at or before ``slot_chosen``, from ``since_epoch`` on, that are in
        none it holds from there on (``ahead_known_at``)."""
        index = bisect_right(self._effects, max(slot_chosen, 0)) - 1
        first = max(0, since_epoch - self._configs[0].epoch)
        were = frozenset().union(*(c.ids for c in self._configs[first : index + 1]))
        return were - frozenset().union(*(c.ids for c in self.ahead_known_at(slot_chosen)))

    def effects_after(self, slot: Slot) -> int:
        """How many changes read so far take effect above ``slot``."""
        return sum(1 for effect in self._effects[1:] if effect > slot)

    def newest_known_at(self, slot_chosen: Slot) -> Configuration:
        """The newest configuration a replica whose chosen prefix ends at
        ``slot_chosen`` holds: the last change chosen below it."""
        newest = self._changes[0][1]
        for slot, config in self._changes:
            if slot >= slot_chosen:
                break
            newest = config
        return newest

    def ahead_known_at(self, slot_chosen: Slot) -> list[Configuration]:
        """The configurations such a replica holds from ``slot_chosen`` on:
        ``C(slot_chosen)`` and every change chosen below it that takes effect later."""
        ahead = [self.at(slot_chosen)]
        for slot, config in self._changes[1:]:
            if slot < slot_chosen < slot + self.alpha:
                ahead.append(config)
        return ahead

    def voters_ahead_known_at(self, slot_chosen: Slot) -> frozenset[NodeId]:
        """Who may stand, or be promised, in the eyes of such a replica."""
        return frozenset().union(*(config.voters for config in self.ahead_known_at(slot_chosen)))

    def members_from(self, slot: Slot) -> frozenset[NodeId]:
        """Every member of ``C(slot)`` and of every configuration read after it."""
        configs = [self.at(slot)] + [c for s, c in self._changes[1:] if s + self.alpha > slot]
        return frozenset().union(*(config.ids for config in configs))


def change_of(value: Value) -> Configuration | None:
    """The change ``value`` carries, if any: its last command from the system
    client whose payload is a configuration (docs/membership.md)."""
    found = None
    for command in value.commands:
        if command.client_id != SYSTEM_CLIENT_ID or not command.payload.startswith(CONFIG_MAGIC):
            continue
        # One that does not decode is not a change: a no-op on every replica alike.
        with contextlib.suppress(InvalidConfiguration):
            found = Configuration.decode(command.payload[len(CONFIG_MAGIC) :])
    return found
