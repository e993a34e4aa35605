"""A node started on another member's data directory is refused: ``wrong-disk``.

An operator who mounts the wrong volume, or copies a directory to the wrong
host, starts node A on node B's data: B's promises and votes would then speak
as A's, and two acceptors' states would merge into one. ``Storage.open``
names the node and cluster it opens for, and recovery refuses a directory whose
``IDENTITY`` names another (``IdentityMismatch``, ``docs/storage.md``).

At a start (the first or a restart), in ``ODDS`` of them (drawn from a
random stream of its own, so every other draw of the seed stays as it was),
the check copies what another member's directory durably holds into a
scratch file system and opens it as the starting node. The rule:

    ``wrong-disk``: opening another member's data directory (its IDENTITY
    whole on disk) as this node's raises ``IdentityMismatch``, and nothing
    else; opening the node's own directory with one log segment that recovery
    must read (past every snapshot) replaced by the other member's segment of
    the same name, its header whole (a file restored from the wrong backup),
    is refused as damage (``DataDirDamaged``), whichever check finds it
    first.

The copy is scratch: the other member's disk is never touched, and the
restart then opens the node's own directory as usual. Cost: one copy of a
directory (a few hundred kilobytes at most in the simulator) per checked
restart.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from paxon.sim.checkers import Violation
from paxon.storage.config import StorageConfig
from paxon.storage.errors import DataDirDamaged, IdentityMismatch, StorageError
from paxon.storage.identity import decode_identity
from paxon.storage.layout import IDENTITY_NAME, parse_segment_name, parse_snapshot_name
from paxon.storage.memfs import MemFileSystem
from paxon.storage.segments import SEGMENT_HEADER_BYTES, encode_segment_header
from paxon.storage.storage import Storage

# The share of starts that first try another member's directory (or files).
ODDS = 0.25
# Of those, the share that mixes one of its log segments into the node's own
# directory instead of handing it the whole directory.
MIXED_SHARE = 0.5


class WrongDiskCheck:
    """Tries another member's directory at some restarts (module docstring)."""

    def __init__(self, seed: int, violations: list[Violation]) -> None:
        self._rng = random.Random(f"{seed}:wrong-disk")
        self.violations = violations
        self.tried = 0

    def on_restart(
        self,
        node_id: int,
        disks: Mapping[int, MemFileSystem],
        cluster_id: str,
        config: StorageConfig,
        time: float,
    ) -> None:
        """``node_id`` is about to open its own directory; ``disks``: every host's."""
        others = sorted(other for other, fs in disks.items() if other != node_id)
        if not others or self._rng.random() >= ODDS:
            return
        other = self._rng.choice(others)
        mixed = self._rng.random() < MIXED_SHARE
        theirs = _durable_files(disks[other], f"/node{other}")
        if mixed:
            self._try_mixed(node_id, other, disks, theirs, cluster_id, config, time)
            return
        if not _identity_whole(theirs):
            # Nothing there yet (a directory never made is just a new one), or an
            # IDENTITY whose entry reached the disk before its bytes: refused as
            # damage for that alone, which says nothing of the identity check.
            return
        self.tried += 1
        directory = f"/node{other}"
        try:
            storage = Storage.open(
                directory,
                node_id=node_id,
                cluster_id=cluster_id,
                fs=_scratch_copy(directory, theirs),
                config=config,
            )
        except IdentityMismatch:
            return
        except StorageError as error:
            detail = f"refused it for another reason: {type(error).__name__}: {error}"
        else:
            storage.close()
            detail = "opened it as its own"
        self.violations.append(
            Violation(
                time, "wrong-disk", f"n{node_id}, started on n{other}'s data directory, {detail}"
            )
        )

    def _try_mixed(
        self,
        node_id: int,
        other: int,
        disks: Mapping[int, MemFileSystem],
        theirs: dict[str, bytes],
        cluster_id: str,
        config: StorageConfig,
        time: float,
    ) -> None:
        """``node_id``'s own directory with one log segment past its snapshots
        replaced by the other member's segment of the same name (a file
        restored from the wrong backup): refused as damage, whatever check
        finds it first."""
        directory = f"/node{node_id}"
        ours = _durable_files(disks[node_id], directory)
        # Segments both hold under one name (the first lsn), with other bytes,
        # that recovery must read: past every snapshot (a segment wholly below
        # the newest snapshot may be skipped, as compaction would delete it:
        # swarm seed 287), and whose header reached their disk whole (a torn
        # one is a torn tail, cut as such: seed 287 again). Whole means the
        # very header their identity calls for: 32 bytes whose incarnation and
        # checksum are still zeros hold nothing of theirs, and read as this
        # node's own header cut short (swarm seed 2002326).
        their_incarnation = _incarnation(theirs)
        if their_incarnation is None:
            return
        snapshots = [parse_snapshot_name(name) for name in ours]
        past = max((found[0] for found in snapshots if found is not None), default=-1)
        common = sorted(
            name
            for name, data in ours.items()
            if (first := parse_segment_name(name)) is not None
            and first > past
            and theirs.get(name, b"")[:SEGMENT_HEADER_BYTES]
            == encode_segment_header(first, their_incarnation)
            and theirs[name] != data
        )
        if not common:
            return
        self.tried += 1
        files = dict(ours)
        files[common[0]] = theirs[common[0]]
        try:
            storage = Storage.open(
                directory,
                node_id=node_id,
                cluster_id=cluster_id,
                fs=_scratch_copy(directory, files),
                config=config,
            )
        except DataDirDamaged:
            return
        storage.close()
        detail = f"n{node_id} opened its directory holding n{other}'s segment {common[0]}"
        self.violations.append(Violation(time, "wrong-disk", detail))


def _identity_whole(files: Mapping[str, bytes]) -> bool:
    return _incarnation(files) is not None


def _incarnation(files: Mapping[str, bytes]) -> int | None:
    """The incarnation a directory's IDENTITY names, None if it is not whole."""
    data = files.get(IDENTITY_NAME)
    if data is None:
        return None
    try:
        return decode_identity(data, IDENTITY_NAME).incarnation
    except DataDirDamaged:
        return None


def _durable_files(fs: MemFileSystem, directory: str) -> dict[str, bytes]:
    try:
        return fs.durable_view(directory)
    except KeyError:  # no directory made durable yet
        return {}


def _scratch_copy(directory: str, files: dict[str, bytes]) -> MemFileSystem:
    scratch = MemFileSystem()
    scratch.mkdir(directory)
    for name, data in files.items():
        path = f"{directory}/{name}"
        scratch.open_append(path, create=True).close()
        scratch.write_raw(path, data)
    scratch.fsync_dir(directory)
    return scratch


__all__ = ["MIXED_SHARE", "ODDS", "WrongDiskCheck"]
