"""``--unsafe-no-fsync`` (benchmarks only): the file system that never fsyncs.

A real directory (``tmp_path``): records written through it are in the page
cache, so a reopen (a killed process, as far as the kernel is concerned)
recovers them all, and not one fsync reaches the kernel on the way.
"""

from __future__ import annotations

import os

import pytest
from tests.storage.storage_helpers import SMALL, numbered

from paxon.errors import BadRequest
from paxon.node.environment import REAL, UNSYNCED
from paxon.server.config import load_serve_config
from paxon.storage import Storage
from paxon.storage.fs import OsFileSystem
from paxon.storage.unsynced import UnsyncedFileSystem


def _open(directory: str, fs: OsFileSystem) -> Storage:
    return Storage.open(
        directory, node_id=1, cluster_id="test", fs=fs, config=SMALL, incarnation=42
    )


def test_nothing_is_fsynced_yet_a_reopen_recovers_every_record(
    tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(fd: int) -> None:
        raise AssertionError("an fsync reached the kernel")

    directory = os.path.join(str(tmp_path), "data")
    records = [numbered(lsn) for lsn in range(1, 61)]
    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", refuse)
        patched.setattr(os, "fdatasync", refuse)
        storage = _open(directory, UnsyncedFileSystem())
        for start in range(0, len(records), 7):
            storage.append(records[start : start + 7])
            storage.sync()
        storage.close()
    reopened = _open(directory, OsFileSystem())  # fsyncs allowed again
    assert reopened.recovered.lsn_last == len(records)
    reopened.close()


def test_the_flag_picks_the_unsynced_environment_and_is_off_by_default() -> None:
    base = {"id": "1", "data_dir": "d", "peers": "1=127.0.0.1:7001"}
    assert not load_serve_config(base, None).unsafe_no_fsync
    assert load_serve_config({**base, "unsafe_no_fsync": "on"}, None).unsafe_no_fsync
    with pytest.raises(BadRequest, match="on or off"):
        load_serve_config({**base, "unsafe_no_fsync": "maybe"}, None)
    assert UNSYNCED.open_storage is not REAL.open_storage
