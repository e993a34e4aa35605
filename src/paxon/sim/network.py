"""A simulated network: per-link delay, loss, duplication and partitions.

Endpoints are integers: replicas 1..N and clients from ``CLIENT_BASE`` on.
Partitions cut directed links between replicas; a symmetric cut is two directed
ones. Client links suffer delay and loss but are never partitioned: a client is
modelled as able to reach every server, as a load balancer would.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CLIENT_BASE = 1000

Links = set[tuple[int, int]]


def draw_partition(
    rng: random.Random, members: Sequence[int], leaders: Sequence[int] | None = None
) -> tuple[str, Links]:
    """A partition's shape and the directed links it cuts.

    ``isolate`` cuts one node off, ``split`` two sides, ``partial`` one link
    both ways, ``asymmetric`` one direction. Given ``leaders`` (the runtime
    engine's), ``isolate`` takes a leader half the time: cut off from its peers,
    not from its clients, it may serve them while a new leader commits.
    """
    shape = rng.choice(("isolate", "split", "partial", "asymmetric"))
    links: Links
    if shape == "isolate" or len(members) < 3:
        if leaders is None:
            alone = rng.choice(members)
        else:
            alone = rng.choice(leaders) if leaders and rng.random() < 0.5 else rng.choice(members)
        links = {(alone, other) for other in members if other != alone}
        links |= {(b, a) for a, b in links}
    elif shape == "split":
        side = set(rng.sample(members, rng.randrange(1, len(members))))
        links = {(a, b) for a in side for b in members if b not in side}
        links |= {(b, a) for a, b in links}
    elif shape == "partial":
        a, b = rng.sample(members, 2)
        links = {(a, b), (b, a)}
    else:
        a, b = rng.sample(members, 2)
        links = {(a, b)}
    return shape, links


@dataclass(slots=True)
class LinkFaults:
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay_min_s: float = 0.0002
    delay_max_s: float = 0.001
    # With probability ``reorder_rate`` a message is held up to ``reorder_max_s``
    # more, so later messages overtake it.
    reorder_rate: float = 0.0
    reorder_max_s: float = 0.0
    # With probability ``stall_rate`` a message is stuck in a buffer for up to
    # ``stall_max_s``: it arrives long after the sender moved on (a stale
    # ballot, an old accept), which is what ballots exist to survive.
    stall_rate: float = 0.0
    stall_max_s: float = 0.0


class SimNetwork:
    def __init__(self, rng: random.Random, faults: LinkFaults) -> None:
        self._rng = rng
        self.faults = faults
        self._cuts: dict[int, set[tuple[int, int]]] = {}
        self._blocked: set[tuple[int, int]] = set()
        self._next_cut_id = 1
        self.dropped = 0
        self.duplicated = 0
        self.stalled = 0
        self.reordered = 0

    def cut(self, links: set[tuple[int, int]]) -> int:
        """Block the given directed links until ``heal(cut_id)``."""
        cut_id = self._next_cut_id
        self._next_cut_id += 1
        self._cuts[cut_id] = links
        self._recompute()
        return cut_id

    def cut_off(self, node_id: int, others: Iterable[int]) -> int:
        """Cut ``node_id`` off from each of ``others``, both ways; the cut's id."""
        links = {(node_id, peer) for peer in others if peer != node_id}
        return self.cut(links | {(peer, node) for node, peer in links})

    def heal(self, cut_id: int) -> None:
        self._cuts.pop(cut_id, None)
        self._recompute()

    def heal_all(self) -> None:
        self._cuts.clear()
        self._recompute()

    def is_cut(self, src: int, dst: int) -> bool:
        return (src, dst) in self._blocked

    def delays(self, src: int, dst: int) -> list[float]:
        """Delivery delays for one message: [] when lost, two when duplicated."""
        if src == dst:
            return [0.0]
        if (src, dst) in self._blocked:
            self.dropped += 1
            return []
        rng = self._rng
        faults = self.faults
        if faults.drop_rate and rng.random() < faults.drop_rate:
            self.dropped += 1
            return []
        copies = 1
        if faults.duplicate_rate and rng.random() < faults.duplicate_rate:
            copies = 2
            self.duplicated += 1
        delays = []
        for _ in range(copies):
            delay = faults.delay_min_s + (faults.delay_max_s - faults.delay_min_s) * rng.random()
            if faults.reorder_rate and rng.random() < faults.reorder_rate:
                delay += faults.reorder_max_s * rng.random()
                self.reordered += 1
            if faults.stall_rate and rng.random() < faults.stall_rate:
                delay += faults.stall_max_s * rng.random()
                self.stalled += 1
            delays.append(delay)
        return delays

    def _recompute(self) -> None:
        self._blocked = set().union(*self._cuts.values()) if self._cuts else set()
