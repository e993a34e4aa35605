"""Point 9 of issue 8: a data directory only its own user can touch.

Real files in ``tmp_path`` (``OsFileSystem``): modes are what is tested.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from storage_helpers import numbered

from paxon.storage import DataDirInsecure, OsFileSystem, Storage, StorageConfig, StorageError
from paxon.storage.fs import AppendFile, write_durably
from paxon.storage.private import find_exposure

CONFIG = StorageConfig(segment_max_bytes=4096, record_max_bytes=1024, snapshot_chunk_bytes=256)


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def open_dir(directory: str) -> Storage:
    return Storage.open(directory, node_id=1, cluster_id="prod", config=CONFIG)


@pytest.fixture(autouse=True)
def _permissive_umask() -> object:
    # The modes must not rely on a strict umask: under 000 they are still private.
    old = os.umask(0)
    yield
    os.umask(old)


def test_the_directory_is_made_0700_and_every_file_0600(tmp_path: Path) -> None:
    directory = str(tmp_path / "parent" / "node1")
    storage = open_dir(directory)
    storage.append([numbered(lsn) for lsn in range(1, 80)])
    storage.sync()
    storage.save_snapshot(10, b"state")
    storage.close()
    assert mode(directory) == 0o700
    assert mode(tmp_path / "parent") == 0o700  # made by mkdir -p as well
    names = sorted(os.listdir(directory))
    assert "IDENTITY" in names and "LOCK" in names
    assert any(name.startswith("wal-") for name in names)
    assert any(name.startswith("snapshot-") for name in names)
    assert {name: mode(os.path.join(directory, name)) for name in names} == dict.fromkeys(
        names, 0o600
    )


def test_a_temporary_file_is_0600_while_it_is_written(tmp_path: Path) -> None:
    directory = str(tmp_path)
    seen: list[int] = []

    def fill(file: AppendFile) -> None:
        seen.append(mode(tmp_path / "IDENTITY.tmp"))
        file.write(b"x")

    write_durably(OsFileSystem(), directory, "IDENTITY", fill)
    assert seen == [0o600]


def test_a_world_writable_directory_is_refused_with_one_line(tmp_path: Path) -> None:
    directory = str(tmp_path / "node1")
    open_dir(directory).close()
    os.chmod(directory, 0o777)
    with pytest.raises(DataDirInsecure) as refused:
        open_dir(directory)
    message = str(refused.value)
    assert "\n" not in message and isinstance(refused.value, StorageError)
    assert message == (
        f"{directory}: writable by other users (mode 0777); refusing it: run chmod go-w {directory}"
    )
    os.chmod(directory, 0o770)  # group write is refused too
    with pytest.raises(DataDirInsecure):
        open_dir(directory)
    os.chmod(directory, 0o700)
    open_dir(directory).close()  # fixed: it opens


def test_a_group_writable_file_is_refused(tmp_path: Path) -> None:
    directory = str(tmp_path / "node1")
    open_dir(directory).close()
    segment = next(name for name in sorted(os.listdir(directory)) if name.startswith("wal-"))
    os.chmod(os.path.join(directory, segment), 0o620)
    with pytest.raises(DataDirInsecure, match=segment):
        open_dir(directory)


def test_a_fresh_directory_made_writable_before_start_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "node1"
    directory.mkdir()
    os.chmod(directory, 0o707)
    with pytest.raises(DataDirInsecure):
        open_dir(str(directory))
    assert os.listdir(directory) == []  # refused before anything was written


def test_a_directory_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    directory = str(tmp_path / "node1")
    open_dir(directory).close()
    other = os.geteuid() + 1
    found = find_exposure(OsFileSystem(), directory, uid=other)
    assert found.writable and "owned by uid" in str(found.writable[0])
    assert f"not by this user (uid {other})" in str(found.writable[0])
    assert not find_exposure(OsFileSystem(), directory).writable


def test_a_readable_directory_opens_with_a_warning(tmp_path: Path) -> None:
    directory = str(tmp_path / "node1")
    open_dir(directory).close()
    os.chmod(directory, 0o755)
    with open_dir(directory) as storage:
        assert any("readable by other users (mode 0755)" in w for w in storage.recovered.warnings)
