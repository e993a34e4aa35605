"""``paxon serve --join``: the configuration a new member starts from, asked of the cluster.

Contract:
- ``held_state(data_dir)`` names the file that shows the directory already
  holds a node's state (``FIRST-CONFIG``, or an ``IDENTITY`` beside a log
  record or a snapshot): ``--join`` makes a new member, and a node that has
  started once recovers its configuration from its own directory, so ``paxon
  serve`` then ignores ``--join`` (a service manager restarts a node with the
  flags it first had). An ``IDENTITY`` with an empty log is a first start
  that stopped before it kept its configuration: ``--join`` holds again.
- ``fetch_configuration(endpoints, node_id, ...)`` asks the members at
  ``endpoints`` (their client ports) for their status, as ``paxon members
  list`` does, and returns the newest configuration any of them reports.
  ``node_id`` must be in it: the operator adds the node first (``paxon
  members add ID=PEER_HOST:PORT --learner``); until then it is ``BadRequest``
  naming that command. ``Unavailable`` when no member answers.
- The status needs no user or token (it is what ``paxon status`` shows).
  With client TLS the node reaches the client ports as it forwards requests:
  trusting ``--peer-ca`` and showing its own ``--peer-cert``.

A change is answered once it is chosen at the leader, so a follower asked
right after ``members add`` may not know it yet: the newest configuration of
all answers is taken, and the question is asked again for up to
``MEMBER_WAIT_S`` before the node is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from paxon.client import Client
from paxon.errors import BadRequest, Unavailable
from paxon.node.members import from_description
from paxon.protocol.membership import Configuration
from paxon.security.client_tls import ClientTls
from paxon.storage.config import StorageConfig
from paxon.storage.fs import FileSystem, OsFileSystem, join
from paxon.storage.layout import FIRST_CONFIG_NAME, IDENTITY_NAME
from paxon.storage.recovery import inspect_data_dir

MEMBER_WAIT_S = 3.0
"""How long a joining node waits to see itself in the configuration."""
_ASK_AGAIN_S = 0.2


def held_state(data_dir: str, fs: FileSystem | None = None) -> str | None:
    """The file that shows ``data_dir`` (on ``fs``, the real disk by default)
    already holds a node's state, or None.

    ``FIRST-CONFIG`` does. So does an ``IDENTITY`` beside any log record or
    snapshot (a directory from before paxon kept ``FIRST-CONFIG``), or one
    whose directory does not read whole (the start then names what is wrong).
    An ``IDENTITY`` beside an empty log is a first start stopped (killed, or
    the power lost) after it made its identity and before it kept its first
    configuration (``Node._settle_first_configuration``): the node promised
    and accepted nothing yet, and ``--join`` takes effect again. Ignored
    there, the node would start from ``--peers`` naming only itself: a
    cluster of one, answering clients apart from the real one."""
    fs = fs or OsFileSystem()
    if fs.exists(join(data_dir, FIRST_CONFIG_NAME)):
        return FIRST_CONFIG_NAME
    if not fs.exists(join(data_dir, IDENTITY_NAME)):
        return None
    found = inspect_data_dir(fs, data_dir, record_max=StorageConfig().record_max_bytes)
    if found.damage is None and found.lsn_last == 0 and not found.snapshots:
        return None
    return IDENTITY_NAME


async def fetch_configuration(
    endpoints: Sequence[str],
    node_id: int,
    *,
    cluster_id: str = "",
    tls: ClientTls | None = None,
    timeout_s: float = 10.0,
) -> Configuration:
    """The newest configuration the members at ``endpoints`` know, holding ``node_id``."""
    loop = asyncio.get_running_loop()
    member_deadline: float | None = None
    async with Client(endpoints, timeout=timeout_s, cluster_id=cluster_id, tls=tls) as client:
        while True:
            status = await client.status(discover=False)  # only the members it was told
            described = status.get("configuration")
            if described is None:
                problem = f": {client.status_problem}" if client.status_problem else ""
                raise Unavailable(f"no member answered at {', '.join(endpoints)}{problem}")
            configuration = from_description(described)
            if node_id in configuration.ids:
                return configuration
            now = loop.time()
            member_deadline = member_deadline or now + MEMBER_WAIT_S
            if now >= member_deadline:
                raise BadRequest(
                    f"node {node_id} is not a member of the cluster (configuration "
                    f"{configuration.epoch}: members {sorted(configuration.ids)}); add it "
                    f"first: paxon members add {node_id}=PEER_HOST:PORT --learner"
                )
            await asyncio.sleep(_ASK_AGAIN_S)
