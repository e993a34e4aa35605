"""The file layers: one conformance suite for both, then the faults of the in-memory one."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_helpers import keep_bytes

from paxon.storage import FileSystem, MemFileSystem, OsFileSystem, PowerCut
from paxon.storage.fs import write_durably


@pytest.fixture(params=["os", "mem"])
def any_fs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[FileSystem, str]]:
    if request.param == "os":
        yield OsFileSystem(), str(tmp_path)
    else:
        fs = MemFileSystem()
        fs.mkdir("/tmp")
        yield fs, "/tmp"


def test_conformance_files(any_fs: tuple[FileSystem, str]) -> None:
    fs, root = any_fs
    path = os.path.join(root, "a")
    file = fs.open_append(path, create=True)
    file.write(b"hello ")
    file.write(b"world")
    file.fdatasync()
    assert file.size() == 11
    file.truncate(5)
    file.fsync()
    file.close()
    assert fs.read(path) == b"hello"
    assert fs.size(path) == 5
    with pytest.raises(FileExistsError):
        fs.open_append(path, create=True)
    appended = fs.open_append(path)
    appended.write(b"!")
    appended.close()
    reader = fs.open_read(path)
    assert reader.read(3) == b"hel"
    assert reader.read(100) == b"lo!"
    assert reader.read(1) == b""
    reader.close()


def test_conformance_names(any_fs: tuple[FileSystem, str]) -> None:
    fs, root = any_fs
    sub = os.path.join(root, "sub")
    fs.mkdir(sub)
    assert fs.is_dir(sub) and fs.exists(sub)
    for name in ("b", "a"):
        fs.open_append(os.path.join(sub, name), create=True).close()
    assert fs.listdir(sub) == ["a", "b"]
    fs.rename(os.path.join(sub, "a"), os.path.join(sub, "b"))
    assert fs.listdir(sub) == ["b"]
    fs.unlink(os.path.join(sub, "b"))
    fs.fsync_dir(sub)
    assert fs.listdir(sub) == []
    assert not fs.exists(os.path.join(sub, "b"))
    with pytest.raises(FileNotFoundError):
        fs.read(os.path.join(sub, "b"))
    with pytest.raises(FileNotFoundError):
        fs.unlink(os.path.join(sub, "b"))


def test_conformance_lock(any_fs: tuple[FileSystem, str]) -> None:
    fs, root = any_fs
    path = os.path.join(root, "LOCK")
    first = fs.lock(path)
    assert first is not None
    if isinstance(fs, MemFileSystem):
        assert fs.lock(path) is None  # flock is per open file, so only memfs sees this in-process
    first.release()
    again = fs.lock(path)
    assert again is not None
    again.release()


# ------------------------------------------------------------------ memfs faults


def make(fs: MemFileSystem, path: str, data: bytes, *, sync: bool, dir_sync: bool) -> None:
    file = fs.open_append(path, create=True)
    file.write(data)
    if sync:
        file.fsync()
    file.close()
    if dir_sync:
        fs.fsync_dir(os.path.dirname(path))


def test_crash_loses_unsynced_bytes_and_keeps_synced() -> None:
    fs = MemFileSystem()
    make(fs, "/f", b"durable", sync=True, dir_sync=True)
    file = fs.open_append("/f")
    file.write(b"-volatile")
    fs.crash()
    assert fs.read("/f") == b"durable"


def test_crash_tears_unsynced_bytes_at_any_byte() -> None:
    for keep in range(10):
        fs = MemFileSystem()
        make(fs, "/f", b"ok", sync=True, dir_sync=True)
        file = fs.open_append("/f")
        file.write(b"012345678")
        fs.crash(tear=keep_bytes(keep))
        assert fs.read("/f") == b"ok" + b"012345678"[:keep]


def test_a_name_is_durable_only_after_fsync_dir() -> None:
    fs = MemFileSystem()
    fs.mkdir("/one")
    fs.mkdir("/two")
    make(fs, "/one/synced-file-only", b"x", sync=True, dir_sync=False)
    make(fs, "/two/both", b"y", sync=True, dir_sync=True)
    fs.crash()
    assert fs.listdir("/one") == []
    assert fs.listdir("/two") == ["both"]


def test_unsynced_rename_and_unlink_are_undone() -> None:
    fs = MemFileSystem()
    make(fs, "/a", b"a", sync=True, dir_sync=False)
    make(fs, "/b", b"b", sync=True, dir_sync=True)
    fs.rename("/b", "/c")
    fs.unlink("/a")
    fs.crash()
    assert fs.listdir("/") == ["a", "b"]
    assert fs.read("/b") == b"b"


def test_unsynced_truncate_is_undone() -> None:
    fs = MemFileSystem()
    make(fs, "/f", b"abcdef", sync=True, dir_sync=True)
    file = fs.open_append("/f")
    file.truncate(2)
    file.write(b"Z")
    fs.crash(tear=lambda path, unsynced: unsynced)
    assert fs.read("/f") == b"abcdef"


def test_handles_from_before_a_crash_are_dead() -> None:
    fs = MemFileSystem()
    make(fs, "/f", b"x", sync=True, dir_sync=True)
    file = fs.open_append("/f")
    fs.crash()
    with pytest.raises(OSError):
        file.write(b"late")


def test_flip_bit_damages_durable_bytes() -> None:
    fs = MemFileSystem()
    make(fs, "/f", b"\x00\x00", sync=True, dir_sync=True)
    fs.flip_bit("/f", 9)
    fs.crash()
    assert fs.read("/f") == b"\x00\x02"


def test_injected_errors_hit_the_matching_call_once() -> None:
    fs = MemFileSystem()
    make(fs, "/f", b"x", sync=True, dir_sync=True)
    fs.fail("fdatasync", "/f", OSError(errno.ENOSPC, "full"))
    file = fs.open_append("/f")
    with pytest.raises(OSError) as raised:
        file.fdatasync()
    assert raised.value.errno == errno.ENOSPC
    file.fdatasync()


def test_power_cut_after_n_operations() -> None:
    fs = MemFileSystem()
    fs.cut_power_after(2)
    file = fs.open_append("/f", create=True)  # 1
    file.write(b"a")  # 2
    with pytest.raises(PowerCut):
        file.fsync()
    with pytest.raises(PowerCut):
        fs.listdir("/")
    with pytest.raises(PowerCut):
        file.write(b"b")  # after the cut: nothing of it was on its way
    fs.crash()
    assert fs.listdir("/") == []


def test_a_write_cut_by_the_power_may_land_torn() -> None:
    fs = MemFileSystem()
    file = fs.open_append("/f", create=True)
    file.fsync()
    fs.fsync_dir("/")
    fs.cut_power_after(0)
    with pytest.raises(PowerCut):
        file.write(b"abcd")  # the cut falls in this write: its bytes were on their way
    with pytest.raises(PowerCut):
        file.write(b"efgh")  # a later call: never on its way
    fs.crash(tear=lambda _path, unsynced: unsynced)
    assert fs.read("/f") == b"abcd"


def test_write_durably_survives_a_crash_right_after_it() -> None:
    """The new file, and not its temporary, is there after a power cut: the
    rename's directory fsync is what makes it so (identity and snapshots rely on it)."""
    fs = MemFileSystem()
    fs.mkdir("/d")
    fs.fsync_dir("/")
    assert write_durably(fs, "/d", "IDENTITY", lambda file: file.write(b"node 1") or 6) == 6
    fs.crash()
    assert fs.read("/d/IDENTITY") == b"node 1"
    assert fs.listdir("/d") == ["IDENTITY"]
    write_durably(fs, "/d", "IDENTITY", lambda file: file.write(b"node 2"))
    fs.crash()
    assert fs.read("/d/IDENTITY") == b"node 2"


# ------------------------------------------------------------------ faults of a lying device


def test_a_torn_write_can_be_zero_filled() -> None:
    """The size reached the media, the data did not: zeros, at most as many as were torn off."""
    for keep, zeros, expected in (
        (2, 3, b"ok01" + bytes(3)),
        (0, 99, b"ok" + bytes(9)),
        (9, 5, None),
    ):
        fs = MemFileSystem()
        make(fs, "/f", b"ok", sync=True, dir_sync=True)
        file = fs.open_append("/f")
        file.write(b"012345678")
        assert fs.unsynced_bytes("/f") == 9
        fs.crash(tear=keep_bytes(keep), zero_fill=lambda path, torn_off, z=zeros: z)
        assert fs.read("/f") == (expected or b"ok012345678")
        assert fs.unsynced_bytes("/f") == 0


def test_write_ranges_follow_tears_and_truncates() -> None:
    fs = MemFileSystem()
    make(fs, "/f", b"abc", sync=True, dir_sync=True)
    file = fs.open_append("/f")
    file.write(b"de")
    file.fsync()
    file.write(b"fghij")
    assert fs.write_ranges("/f") == [(0, 3), (3, 2)]  # the unsynced write is not durable
    fs.crash(tear=keep_bytes(3))
    assert fs.read("/f") == b"abcdefgh"
    assert fs.write_ranges("/f") == [(0, 3), (3, 2), (5, 3)]
    file = fs.open_append("/f")
    file.truncate(4)
    file.fsync()
    assert fs.write_ranges("/f") == [(0, 3), (3, 1)]


def test_a_lost_write_reads_as_zeros_after_a_crash() -> None:
    fs = MemFileSystem()
    make(fs, "/f", b"abc", sync=True, dir_sync=True)
    file = fs.open_append("/f")
    file.write(b"def")
    file.fsync()
    file.write(b"unsynced")
    with pytest.raises(ValueError):
        fs.lose_write("/f", 3, 4)  # not all durable
    fs.lose_write("/f", 3, 3)
    fs.crash()
    assert fs.read("/f") == b"abc" + bytes(3)


def test_a_misdirected_write_lands_elsewhere() -> None:
    fs = MemFileSystem()
    make(fs, "/f", b"0123456789", sync=True, dir_sync=True)
    make(fs, "/g", b"abcdef", sync=True, dir_sync=True)
    assert fs.misdirect_write("/f", 2, 3, to_path="/f", to_offset=6) == 3
    assert fs.read("/f") == b"01" + bytes(3) + b"5" + b"234" + b"9"
    assert fs.misdirect_write("/f", 7, 3, to_path="/g", to_offset=4) == 2  # never past the end
    assert fs.read("/f") == b"01" + bytes(3) + b"52" + bytes(3)
    assert fs.read("/g") == b"abcd34"
    assert fs.misdirect_write("/g", 0, 2, to_path=None) == 0
    fs.crash()
    assert fs.read("/g") == bytes(2) + b"cd34"


def test_a_lost_directory_fsync_puts_the_names_back_at_the_crash() -> None:
    fs = MemFileSystem()
    fs.mkdir("/d")
    make(fs, "/d/a", b"a", sync=True, dir_sync=True)
    make(fs, "/d/b", b"b", sync=True, dir_sync=False)
    fs.unlink("/d/a")
    fs.fsync_dir("/d")
    assert fs.last_dir_sync("/d") == (frozenset({"b"}), frozenset({"a"}))
    assert fs.durable_view("/d") == {"b": b"b"}
    assert fs.durable_view("/d", without_last_dir_sync=True) == {"a": b"a"}
    fs.lose_last_dir_sync("/d")
    assert fs.listdir("/d") == ["b"]  # the running system still sees its names
    fs.crash()
    assert fs.listdir("/d") == ["a"] and fs.read("/d/a") == b"a"
    assert fs.last_dir_sync("/d") is None  # a crash ends the window of that fault
    with pytest.raises(ValueError):
        fs.lose_last_dir_sync("/d")


def test_reads_made_unobserved_strike_no_fault_and_count_nothing() -> None:
    """``unobserved``: the simulator's look at a disk (``paxon check`` before a
    start) leaves its faults and counts as they were."""
    fs = MemFileSystem()
    make(fs, "/f", b"data", sync=True, dir_sync=True)
    fs.fail("read", "/f", OSError(errno.EIO, "bad sector"))
    counted = dict(fs.stats)
    with fs.unobserved():
        assert fs.read("/f") == b"data"
        assert fs.is_dir("/")
    assert dict(fs.stats) == counted
    with pytest.raises(OSError, match="bad sector"):
        fs.read("/f")
