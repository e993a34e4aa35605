"""The file-system interface storage talks to, and its real implementation.

The WAL, snapshots, identity and recovery reach the disk only through
``FileSystem``; ``OsFileSystem`` is the real one and ``MemFileSystem``
(``memfs.py``) the in-memory one that loses unsynced data and tears writes.

Contract every implementation keeps (the durability model storage relies on):
- ``AppendFile.write`` appends all the bytes or raises. Written bytes are
  durable only after ``fdatasync``/``fsync`` of that file returns.
- Creating, renaming or unlinking a name is durable only after ``fsync_dir``
  of its directory returns. A file whose name is not yet durable may vanish
  on a power cut even if its contents were fsynced.
- ``rename`` replaces the target atomically.
- Errors are ``OSError`` (``FileNotFoundError``, ``FileExistsError``, ...).
- Paths are strings; ``join`` builds them.
- Privacy: ``OsFileSystem`` creates directories 0700 and files 0600 (the
  umask can only narrow that), so no other user can read a value, write a
  record or take the ``LOCK``; ``access`` reports a path's owner and mode so
  ``private.py`` can refuse a directory someone else could write.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from paxon.storage.layout import TMP_SUFFIX

T = TypeVar("T")

DIR_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class FileAccess:
    """Who owns a path and its permission bits (``st_mode & 0o7777``)."""

    uid: int
    mode: int


class AppendFile(Protocol):
    """A file open for appending."""

    def write(self, data: bytes) -> None: ...

    def fdatasync(self) -> None: ...

    def fsync(self) -> None: ...

    def truncate(self, size: int) -> None: ...

    def size(self) -> int: ...

    def close(self) -> None: ...


class ReadFile(Protocol):
    """A file open for sequential reading."""

    def read(self, size: int) -> bytes: ...

    def close(self) -> None: ...


class DirLock(Protocol):
    def release(self) -> None: ...


class FileSystem(Protocol):
    def open_append(self, path: str, *, create: bool = False) -> AppendFile:
        """Open ``path`` for appending; ``create`` makes a new, empty file (it must not exist)."""
        ...

    def open_read(self, path: str) -> ReadFile: ...

    def read(self, path: str) -> bytes:
        """The whole file."""
        ...

    def size(self, path: str) -> int: ...

    def exists(self, path: str) -> bool: ...

    def is_dir(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str]: ...

    def mkdir(self, path: str) -> None:
        """Create one directory (its parent must exist); durable after ``fsync_dir(parent)``."""
        ...

    def rename(self, src: str, dst: str) -> None: ...

    def unlink(self, path: str) -> None: ...

    def fsync_dir(self, path: str) -> None: ...

    def lock(self, path: str) -> DirLock | None:
        """Take an exclusive lock on the file ``path`` (created if needed); None if held."""
        ...

    def access(self, path: str) -> FileAccess:
        """The owner and permission bits of ``path`` (a file or directory)."""
        ...


def join(directory: str, name: str) -> str:
    return os.path.join(directory, name)


def write_durably(fs: FileSystem, directory: str, name: str, write: Callable[[AppendFile], T]) -> T:
    """Create ``directory/name`` so that a power cut leaves the old file or the whole new one.

    ``write`` fills a temporary file; then it is fsynced, renamed into place,
    and the directory is fsynced. Returns what ``write`` returned.
    """
    path = join(directory, name)
    tmp = path + TMP_SUFFIX
    # A *.tmp here is left by an earlier call that failed with an I/O error
    # in this process (Storage.open removes those a crash leaves, see
    # test_leftover_temporary_files_are_removed). The simulator injects I/O
    # errors only on log fsyncs, after which the node stops.
    if fs.exists(tmp):  # sim: one-way: needs a failed write of this file in this process
        fs.unlink(tmp)
    file = fs.open_append(tmp, create=True)
    try:
        result = write(file)
        file.fsync()
    finally:
        file.close()
    fs.rename(tmp, path)
    fs.fsync_dir(directory)
    return result


def parent(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


# ------------------------------------------------------------------ the real one


# The simulator's disk is MemFileSystem (memfs.py); the classes below run on
# a real disk only: tests/storage/test_storage_crash.py (SIGKILL of a real
# node) and test_storage_private.py exercise them.


class OsFileSystem:  # sim: unreachable: the simulator's disk is MemFileSystem
    """The operating system's file system, through ``os`` calls on file descriptors."""

    def open_append(self, path: str, *, create: bool = False) -> AppendFile:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        if create:
            flags |= os.O_CREAT | os.O_EXCL
        return _OsAppendFile(os.open(path, flags, FILE_MODE))

    def open_read(self, path: str) -> ReadFile:
        return _OsReadFile(os.open(path, os.O_RDONLY | os.O_CLOEXEC))

    def read(self, path: str) -> bytes:
        with open(path, "rb") as file:
            return file.read()

    def size(self, path: str) -> int:
        return os.stat(path).st_size

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def mkdir(self, path: str) -> None:
        os.mkdir(path, DIR_MODE)

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def lock(self, path: str) -> DirLock | None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        return _OsLock(fd)

    def access(self, path: str) -> FileAccess:
        found = os.stat(path)
        return FileAccess(found.st_uid, found.st_mode & 0o7777)


class _OsAppendFile:  # sim: unreachable: the simulator's disk is MemFileSystem
    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def fdatasync(self) -> None:
        os.fdatasync(self._fd)

    def fsync(self) -> None:
        os.fsync(self._fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class _OsReadFile:  # sim: unreachable: the simulator's disk is MemFileSystem
    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def read(self, size: int) -> bytes:
        parts: list[bytes] = []
        while size > 0:
            part = os.read(self._fd, size)
            if not part:
                break
            parts.append(part)
            size -= len(part)
        return b"".join(parts)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class _OsLock:  # sim: unreachable: the simulator's disk is MemFileSystem
    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)  # closing the descriptor drops the flock
