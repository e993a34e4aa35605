"""Who may touch a data directory: only the user the node runs as.

Anyone who can write a data directory can rewrite the node's promises and
votes (and so break agreement), and anyone who can open its ``LOCK`` can stop
the node from starting. So, before anything in it is read:

| what is found (the directory, or a paxon file in it)     | decision          |
|-----------------------------------------------------------|-------------------|
| owned by another user                                     | DataDirInsecure   |
| group or other write bit set                              | DataDirInsecure   |
| the directory has group or other read/search bits         | warning           |
| a paxon file has group or other read bits                 | warning           |
| otherwise (0700 directory, 0600 files, ours)              | ok                |

Paxon creates directories 0700 and files 0600 (``fs.py``), so the warnings
are for directories made by hand or by an older version: the fix is
``chmod -R go-rwx DIR``. Files that are not paxon's are left alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from paxon.storage.errors import DataDirInsecure
from paxon.storage.fs import FileSystem, join
from paxon.storage.layout import (
    IDENTITY_NAME,
    LOCK_NAME,
    is_paxon_tmp,
    parse_segment_name,
    parse_snapshot_name,
)

_OTHERS_WRITE = 0o022
_OTHERS_ANY = 0o077


@dataclass(slots=True)
class Exposure:
    """What other users could do to a data directory (empty lists: nothing)."""

    writable: list[DataDirInsecure] = field(default_factory=list)
    readable: list[str] = field(default_factory=list)


def find_exposure(fs: FileSystem, directory: str, *, uid: int | None = None) -> Exposure:
    """Check ``directory`` and the paxon files in it against the table above."""
    uid = os.geteuid() if uid is None else uid
    found = Exposure()
    _check(fs, directory, uid, found)
    for name in fs.listdir(directory):
        if _is_paxon_file(name):  # sim: one-way: a simulated directory holds paxon's files only
            _check(fs, join(directory, name), uid, found)
    return found


def check_private(fs: FileSystem, directory: str) -> list[str]:
    """Raise ``DataDirInsecure`` if another user could write ``directory``; the warnings."""
    found = find_exposure(fs, directory)
    # MemFileSystem gives every file to this user with private modes, and the
    # simulator never changes them: tests/storage/test_storage_private.py
    # tries other owners and modes on a real directory.
    if found.writable:  # sim: one-way: simulated files are private to this user
        raise found.writable[0]
    return found.readable


def _check(fs: FileSystem, path: str, uid: int, found: Exposure) -> None:
    access = fs.access(path)
    if access.uid != uid:  # sim: one-way: simulated files are owned by this user
        found.writable.append(
            DataDirInsecure(
                path, f"owned by uid {access.uid}, not by this user (uid {uid}); refusing it"
            )
        )
    elif access.mode & _OTHERS_WRITE:  # sim: one-way: simulated files are private
        found.writable.append(
            DataDirInsecure(
                path,
                f"writable by other users (mode {access.mode:04o}); refusing it: "
                f"run chmod go-w {path}",
            )
        )
    elif access.mode & _OTHERS_ANY:  # sim: one-way: simulated files are private
        found.readable.append(
            f"{path}: readable by other users (mode {access.mode:04o}): run chmod go-rwx {path}"
        )


def _is_paxon_file(name: str) -> bool:
    return (
        name in (IDENTITY_NAME, LOCK_NAME)
        or parse_segment_name(name) is not None
        or parse_snapshot_name(name) is not None
        or is_paxon_tmp(name)
    )
