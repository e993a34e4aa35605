"""A file system that skips every fsync: for benchmarks only.

``paxon serve --unsafe-no-fsync`` (issue 13: paxon measured the way
PySyncObj runs by default, which never fsyncs). Writes still reach the page
cache, so a killed process loses nothing; a power loss or a kernel crash loses
every write the kernel had not yet flushed on its own, acknowledged or not,
and can leave promises forgotten and the log torn: agreement itself is then
unsafe. Never for data anyone needs.
"""

from __future__ import annotations

from paxon.storage.fs import AppendFile, OsFileSystem


class UnsyncedFileSystem(OsFileSystem):  # sim: unreachable: the simulator's disk is MemFileSystem
    """``OsFileSystem`` with ``fdatasync``, ``fsync`` and ``fsync_dir`` as no-ops."""

    def open_append(self, path: str, *, create: bool = False) -> AppendFile:
        return _UnsyncedFile(super().open_append(path, create=create))

    def fsync_dir(self, path: str) -> None:
        return None


class _UnsyncedFile:  # sim: unreachable: the simulator's disk is MemFileSystem
    __slots__ = ("_file",)

    def __init__(self, file: AppendFile) -> None:
        self._file = file

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def fdatasync(self) -> None:
        return None

    def fsync(self) -> None:
        return None

    def truncate(self, size: int) -> None:
        self._file.truncate(size)

    def size(self) -> int:
        return self._file.size()

    def close(self) -> None:
        self._file.close()


__all__ = ["UnsyncedFileSystem"]
