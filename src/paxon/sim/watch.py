"""``paxon sim --watch``: one seed played in slow motion, as a live table.

This is what ``make run`` shows until the real cluster exists: three replicas,
faults striking and healing, leaders changing, the chosen prefix growing.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from paxon.protocol.replica import Role
from paxon.sim.cluster import SimCluster
from paxon.sim.config import SimConfig
from paxon.sim.runner import check_linearizable
from paxon.sim.swarm import resolve

_ROLE_STYLE = {
    Role.LEADER: "bold green",
    Role.PREPARING: "yellow",
    Role.PROBING: "yellow",
    Role.FOLLOWER: "white",
}


def watch(seed: int, config: SimConfig, *, speed: float, frame_s: float = 0.05) -> int:
    """Play ``seed`` at ``speed`` x real time; returns the number of violations.

    It shows the core engine's replicas (``SimCluster``): the table reads
    their state directly."""
    config = dataclasses.replace(resolve(seed, config), engine="core")
    cluster = SimCluster(seed, config, trace=True)
    cluster.start()
    with Live(_render(cluster, seed), refresh_per_second=20) as live:
        for _ in _frames(cluster, speed, frame_s):
            live.update(_render(cluster, seed))
        live.update(_render(cluster, seed))
    print()
    violations = [str(v) for v in cluster.checker.violations]
    violations += check_linearizable(cluster.history)
    print(
        f"seed {seed}: {cluster.stats.commands_chosen} commands chosen, "
        f"{cluster.stats.leader_changes} leader changes, {len(violations)} violations"
    )
    for violation in violations:
        print(f"  {violation}")
    return len(violations)


def _frames(cluster: SimCluster, speed: float, frame_s: float) -> Iterator[None]:
    simulated = 0.0
    while cluster.run_until(simulated):
        yield
        time.sleep(frame_s)
        simulated += frame_s * speed


def _is_headline(line: str) -> bool:
    return any(word in line for word in (" -> ", "fault", "restart", "heal"))


def _render(cluster: SimCluster, seed: int) -> Group:
    phase = "faults" if cluster.time < cluster.config.fault_phase_s else "healed"
    table = Table(title=f"paxon sim --seed {seed}   t={cluster.time:7.3f}s   phase: {phase}")
    for column in ("node", "state", "role", "promised", "chosen", "applied"):
        table.add_column(column, justify="right" if column in ("chosen", "applied") else "left")
    for node in cluster.nodes.values():
        replica = node.replica
        if not node.up:
            state = Text("crashed", style="bold red")
        elif node.paused_until > cluster.time:
            state = Text("paused", style="magenta")
        else:
            state = Text("up", style="green")
        table.add_row(
            f"n{node.node_id}",
            state,
            Text(replica.role.value, style=_ROLE_STYLE[replica.role]),
            str(replica.ballot_promised),
            str(replica.slot_chosen),
            str(replica.slot_applied),
        )
    events = [line for line in cluster.trace if _is_headline(line)][-8:]
    stats = cluster.stats
    footer = Text(
        f"chosen commands {stats.commands_chosen}   client ops {stats.ops_completed}   "
        f"leader changes {stats.leader_changes}   violations {len(cluster.checker.violations)}"
    )
    cluster.trace[:-200] = []  # keep memory bounded while watching
    return Group(table, footer, Text("\n".join(events), style="dim"))
