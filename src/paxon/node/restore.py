"""Seeding a new member's data directory from a backup (``paxon snapshot restore``).

Disaster recovery makes a **new cluster** from a backup: run the restore once per
member, each with its own ``--id`` and ``--data-dir`` and the same ``--peers``,
then start each with ``paxon serve`` and the same ``--peers``. Every member then
starts from the same state, at the same slot, and elects a leader as a fresh
cluster does.

What a restored directory holds (the files ``paxon serve`` writes, so a start
reads it as any other): ``IDENTITY`` (this id, ``--cluster-id``, a new
incarnation), ``FIRST-CONFIG`` (the members of ``--peers``, all voters), and a
snapshot at the backup's slot (at least 1) holding the backup's store (keys,
values, versions and revisions, history, leases, locks, users and roles), the
backup's log time (lease expiries are counted in it; a new leader renews every
lease, as after any leader change) and no client sessions. The old cluster's
members and incarnations are not carried over.

Rules:
- Refused, with nothing written: a backup that fails its checks or whose data
  does not decode as a store (``CorruptBackup``, exit 2); a data directory that
  exists and is not empty; an id not among ``--peers``.
- Atomic: the directory is built beside the target (``DIR.restoring``, removed
  first if an earlier restore left it) and renamed into place once every file
  in it is durable, so ``DIR`` is either absent (or empty) or whole.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

from paxon.errors import BadRequest
from paxon.kv.codec import KvDecodeError
from paxon.kv.store import KvStore
from paxon.node.logclock import LogClock
from paxon.node.machine import ReplicatedMachine
from paxon.protocol.membership import Configuration
from paxon.protocol.records import SnapshotRecord
from paxon.storage.backup import Backup, CorruptBackup, read_backup
from paxon.storage.first_config import write_first_configuration
from paxon.storage.storage import Storage

RESTORING_SUFFIX = ".restoring"


@dataclass(frozen=True, slots=True)
class Restored:
    backup: Backup
    data_dir: str
    slot: int


def check_backup(path: str) -> Backup:
    """The backup at ``path`` once its file and its data both check
    (``CorruptBackup`` if not)."""
    backup = read_backup(path)
    try:
        KvStore().check_snapshot(backup.data)
    except KvDecodeError as error:
        raise CorruptBackup(path, f"its data does not decode as a store: {error}") from None
    return backup


def restore_data_dir(
    path: str,
    data_dir: str,
    node_id: int,
    peers: Mapping[int, str],
    cluster_id: str,
) -> Restored:
    """Seed ``data_dir`` as member ``node_id`` of a new cluster of ``peers`` (id to
    ``"HOST:PORT"``, as ``--peers`` names them) from the backup at ``path`` (see the
    rules)."""
    if node_id not in peers:
        raise BadRequest(f"--id {node_id} is not among --peers {sorted(peers)}")
    if os.path.exists(data_dir) and (not os.path.isdir(data_dir) or os.listdir(data_dir)):
        raise BadRequest(
            f"{data_dir} exists and is not empty: a restore seeds a new data directory only"
        )
    backup = check_backup(path)
    store = KvStore()
    store.restore(backup.data)
    initial = Configuration.initial(dict(peers))
    machine = ReplicatedMachine(store, configuration=initial)
    slot = max(backup.meta.slot, 1)
    machine.slot_applied = slot
    machine.clock = LogClock(backup.meta.log_time_ms)
    staging = os.path.normpath(data_dir) + RESTORING_SUFFIX
    shutil.rmtree(staging, ignore_errors=True)  # an earlier restore's, cut short
    storage = Storage.open(staging, node_id=node_id, cluster_id=cluster_id)
    try:
        write_first_configuration(storage.fs, storage.directory, initial)
        storage.save_snapshot(slot, machine.snapshot())
        storage.append([SnapshotRecord(slot)])
        storage.sync()
    finally:
        storage.close()
    if os.path.isdir(data_dir):
        os.rmdir(data_dir)  # empty, checked above
    os.rename(staging, data_dir)
    _fsync_dir(os.path.dirname(os.path.abspath(data_dir)))
    return Restored(backup, data_dir, slot)


def _fsync_dir(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
