"""An in-memory ``FileSystem`` that fails the way disks and power cuts do.

Used by the storage tests and by the simulator. It keeps the contract of
``fs.py`` to the letter, so code that forgets an fsync loses data here:

- Each file has a durable length: bytes up to it survive a crash, bytes after
  it were written but not yet fsynced. ``crash(tear=...)`` keeps, per file, a
  prefix of those unsynced bytes of the length ``tear`` picks (none by
  default): that is "lose everything not yet fsynced" and "tear the last
  write at any byte" in one rule. ``zero_fill`` then appends zero bytes, at
  most as many as were torn off: the file's size reached the media, its data
  did not (as on file systems that log the size before the data). A truncate
  that was not fsynced is undone.
- Each directory has a durable set of names, taken at ``fsync_dir``. A crash
  puts every directory back to it: a created file whose directory was never
  fsynced vanishes, an unsynced rename or unlink is undone.
- ``flip_bit`` damages stored bytes (durable ones included), as bit rot does.

Faults of a device that lies (it acknowledged, the fsync returned, the bytes
are not what was written); ``paxon.sim.storage_faults`` chooses among them:

- ``lose_write(path, offset, length)``: a write that never reached the media;
  its bytes read as zeros (durably). ``write_ranges(path)`` lists the
  ``(offset, length)`` of each write call still in the file, to aim at one.
- ``misdirect_write(...)``: a write that landed at another offset or in
  another file: its own place reads as zeros, and its bytes overwrite those
  at the other place (never past that file's end).
- ``lose_last_dir_sync(directory)``: the last ``fsync_dir`` since the last
  crash never reached the media; the next crash puts the names back to what
  they were before it (``last_dir_sync`` says what that changes).
- ``durable_view(directory)``: what a crash now would leave, to plan a fault.
- ``fail`` makes the next matching call raise an ``OSError`` (EIO by default).
- ``cut_power_after(n)`` lets ``n`` more mutating calls succeed, then every
  call raises ``PowerCut`` until ``crash()``: a crash at an exact point inside
  a multi-step operation (a roll-over, a snapshot, a start-up). When the cut
  falls on a ``write``, its bytes count as written but unsynced, so the tear
  of ``crash`` cuts that very write at any byte.
- ``on_sync`` (if set) is called, outside the lock, before each file sync: a
  test can hold the syncing thread there to see what piles up behind it.

Simplifications: directories themselves are durable once made; there is one
namespace of absolute paths; handles from before a crash are dead.
The object is thread-safe (one lock), as the group committer's thread uses it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from paxon.storage.fs import DIR_MODE, FILE_MODE, AppendFile, DirLock, FileAccess, ReadFile

Tear = Callable[[str, int], int]
"""``tear(path, unsynced_bytes) -> bytes kept`` (clamped to [0, unsynced_bytes])."""

ZeroFill = Callable[[str, int], int]
"""``zero_fill(path, bytes_torn_off) -> zero bytes appended`` (clamped to [0, bytes_torn_off])."""

WRITES_KEPT = 4096
"""Write ranges remembered per file (the oldest are forgotten first)."""

_MUTATING = frozenset(
    {"create", "write", "fdatasync", "fsync", "truncate", "rename", "unlink", "fsync_dir", "mkdir"}
)


class PowerCut(Exception):
    """The simulated machine lost power; nothing more happens until ``crash()``."""


@dataclass(slots=True)
class _Inode:
    data: bytearray = field(default_factory=bytearray)
    durable_len: int = 0
    # Set when the current bytes no longer extend the durable ones (an
    # unsynced truncate): then this holds the durable contents.
    durable_copy: bytes | None = None
    # ``(offset, length)`` of each write call, oldest first, within ``data``.
    writes: list[tuple[int, int]] = field(default_factory=list)

    def sync(self) -> None:
        self.durable_len = len(self.data)
        self.durable_copy = None

    def durable(self) -> bytes:
        if self.durable_copy is not None:
            return self.durable_copy
        return bytes(self.data[: self.durable_len])

    def wrote(self, offset: int, length: int) -> None:
        if length:  # sim: one-way: paxon never writes an empty buffer
            self.writes.append((offset, length))
            if (  # sim: one-way: a simulated file takes far fewer writes
                len(self.writes) > WRITES_KEPT
            ):
                del self.writes[: len(self.writes) - WRITES_KEPT]

    def cut_writes(self, size: int) -> None:
        """Forget the part of every write range at or past ``size``."""
        self.writes = [(at, min(length, size - at)) for at, length in self.writes if at < size]

    def overwrite(self, offset: int, data: bytes) -> None:
        """Replace stored bytes in place, durable ones included (damage, not a write)."""
        end = offset + len(data)
        self.data[offset:end] = data
        if (  # sim: one-way: faults strike after crash(), which settles truncates
            self.durable_copy is not None and offset < len(self.durable_copy)
        ):
            copy = bytearray(self.durable_copy)
            copy[offset:end] = data[: len(copy) - offset]
            self.durable_copy = bytes(copy)


@dataclass(slots=True)
class _Fault:
    op: str
    path_contains: str
    error: OSError
    count: int


class MemFileSystem:
    # The simulator's own disk. Its "sim: one-way" markers are on branches the
    # simulator cannot take: argument errors paxon never makes (the conformance
    # tests of tests/storage/test_storage_memfs.py check each against the OS),
    # hooks and options only tests use.
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._inodes: dict[int, _Inode] = {}
        self._next_ino = 1
        self._dirs: dict[str, dict[str, int]] = {"/": {}}
        self._dirs_durable: dict[str, dict[str, int]] = {"/": {}}
        # The durable names of a directory before its last fsync_dir (since the last crash).
        self._dirs_before_sync: dict[str, dict[str, int]] = {}
        self._epoch = 0
        self._held_locks: set[str] = set()
        self._faults: list[_Fault] = []
        self._ops_until_cut: int | None = None
        self._dead = False
        self._was_dead_before = False
        self.on_sync: Callable[[str], None] | None = None
        self.stats: Counter[str] = Counter()
        self.ops: list[tuple[str, str]] = []

    @contextlib.contextmanager
    def unobserved(self) -> Iterator[None]:
        """Calls made inside neither strike an injected fault nor count in
        ``stats``: the simulator's offline look at a disk (``paxon check``)
        leaves the run as it would have been without it."""
        with self._lock:
            faults, stats = self._faults, self.stats
            self._faults, self.stats = [], Counter()
        try:
            yield
        finally:
            with self._lock:
                self._faults, self.stats = faults, stats

    # ------------------------------------------------------------ fault injection

    def crash(self, tear: Tear | None = None, *, zero_fill: ZeroFill | None = None) -> None:
        """A power cut and reboot: keep only what was durable (plus torn prefixes)."""
        with self._lock:
            self._dirs_before_sync.clear()
            self._dirs = {path: dict(names) for path, names in self._dirs_durable.items()}
            live: dict[int, str] = {}
            for path, names in self._dirs.items():
                for name, ino in names.items():
                    live.setdefault(ino, os.path.join(path, name))
            for ino in list(self._inodes):
                if ino not in live:
                    del self._inodes[ino]
            for ino, path in live.items():
                inode = self._inodes[ino]
                if inode.durable_copy is not None:
                    inode.data = bytearray(inode.durable_copy)
                    inode.writes = []
                else:
                    unsynced = len(inode.data) - inode.durable_len
                    kept = min(max(tear(path, unsynced), 0), unsynced) if tear and unsynced else 0
                    del inode.data[inode.durable_len + kept :]
                    inode.cut_writes(len(inode.data))
                    torn_off = unsynced - kept
                    if zero_fill is not None and torn_off:
                        inode.data += bytes(min(max(zero_fill(path, torn_off), 0), torn_off))
                inode.sync()
            self._epoch += 1
            self._held_locks.clear()
            self._ops_until_cut = None
            self._dead = False

    def cut_power_after(self, ops: int) -> None:
        with self._lock:
            self._ops_until_cut = ops

    @property
    def power_is_cut(self) -> bool:
        return self._dead

    def fail(
        self, op: str, path_contains: str = "", error: OSError | None = None, count: int = 1
    ) -> None:
        """The next ``count`` calls of ``op`` on a path containing ``path_contains`` raise."""
        with self._lock:
            error = error or OSError(errno.EIO, os.strerror(errno.EIO))
            self._faults.append(_Fault(op, path_contains, error, count))

    def flip_bit(self, path: str, bit: int) -> None:
        """Flip one stored bit of ``path`` (in what is durable too)."""
        with self._lock:
            inode = self._inodes[self._lookup(path)]
            byte, mask = bit // 8, 1 << (bit % 8)
            inode.data[byte] ^= mask
            if (  # sim: one-way: flips strike after crash(), which settles truncates
                inode.durable_copy is not None and byte < len(inode.durable_copy)
            ):
                copy = bytearray(inode.durable_copy)
                copy[byte] ^= mask
                inode.durable_copy = bytes(copy)

    def unsynced_bytes(self, path: str) -> int:
        """Bytes of the file a crash now would leave at ``path`` that a tear may cut.

        Looked up by durable name (no fault, no power cut applies); 0 while an
        unsynced truncate is pending (the crash puts the durable bytes back).
        """
        with self._lock:
            inode = self._inodes[self._lookup_durable(path)]
            if inode.durable_copy is not None:
                return 0
            return len(inode.data) - inode.durable_len

    def unsynced_data(self, path: str) -> bytes:
        """The bytes ``unsynced_bytes`` counts: what a tear may cut, past the durable end."""
        with self._lock:
            inode = self._inodes[self._lookup_durable(path)]
            if inode.durable_copy is not None:  # sim: one-way: planned after unsynced_bytes > 0
                return b""
            return bytes(inode.data[inode.durable_len :])

    def write_ranges(self, path: str) -> list[tuple[int, int]]:
        """``(offset, length)`` of each durable write call of ``path``, oldest first.

        Looked up by durable name, as ``unsynced_bytes``. Only the last
        ``WRITES_KEPT`` writes are remembered, only the part a tear kept, and
        none while an unsynced truncate is pending or from before one a crash undid.
        """
        with self._lock:
            inode = self._inodes[self._lookup_durable(path)]
            if inode.durable_copy is not None:
                return []
            durable = inode.durable_len
            return [(at, length) for at, length in inode.writes if at + length <= durable]

    def lose_write(self, path: str, offset: int, length: int) -> None:
        """The durable bytes ``[offset, offset + length)`` of ``path`` never reached the media."""
        with self._lock:
            inode = self._durable_range(path, offset, length)
            inode.overwrite(offset, bytes(length))

    def lose_tail(self, path: str, size: int) -> None:
        """The durable bytes of ``path`` from ``size`` on, and the size itself, never
        reached the media (a write cache that lied about a flush): it reads shorter."""
        with self._lock:
            length = len(self._inodes[self._lookup(path)].durable()) - size
            inode = self._durable_range(path, size, length)
            del inode.data[size:]
            inode.cut_writes(size)
            inode.sync()

    def misdirect_write(
        self, path: str, offset: int, length: int, *, to_path: str | None, to_offset: int = 0
    ) -> int:
        """The write at ``[offset, offset + length)`` of ``path`` landed at ``to_offset`` of
        ``to_path`` instead (nowhere visible when None): its own place reads as zeros, and
        its bytes overwrite the other place's, never past that file's durable end.

        Returns how many of its bytes landed in ``to_path``.
        """
        with self._lock:
            source = self._durable_range(path, offset, length)
            data = source.durable()[offset : offset + length]
            source.overwrite(offset, bytes(length))
            if to_path is None:
                return 0
            target = self._inodes[self._lookup(to_path)]
            landed = data[: max(len(target.durable()) - to_offset, 0)]
            target.overwrite(to_offset, landed)
            return len(landed)

    def last_dir_sync(self, directory: str) -> tuple[frozenset[str], frozenset[str]] | None:
        """``(names made durable, names removed durably)`` by the last ``fsync_dir`` of
        ``directory`` since the last crash, or None when there was none."""
        with self._lock:
            before = self._dirs_before_sync.get(os.path.normpath(directory))
            if before is None:
                return None
            after = self._dirs_durable[os.path.normpath(directory)]
            made = frozenset(n for n, ino in after.items() if before.get(n) != ino)
            removed = frozenset(n for n, ino in before.items() if after.get(n) != ino)
            return made, removed

    def lose_last_dir_sync(self, directory: str) -> None:
        """The last ``fsync_dir`` of ``directory`` never reached the media: the next
        crash puts its names back to what they were before it."""
        with self._lock:
            directory = os.path.normpath(directory)
            before = self._dirs_before_sync.pop(directory, None)
            if before is None:  # sim: one-way: the planner asks last_dir_sync first
                raise ValueError(f"{directory}: no directory fsync since the last crash")
            self._dirs_durable[directory] = before

    def durable_view(
        self, directory: str, *, without_last_dir_sync: bool = False
    ) -> dict[str, bytes]:
        """What a crash now (no tear) would leave of the files of ``directory``: name -> bytes.

        ``without_last_dir_sync``: as if that ``fsync_dir`` had been lost too.
        """
        with self._lock:
            directory = os.path.normpath(directory)
            names = self._dirs_durable[directory]
            if without_last_dir_sync:
                names = self._dirs_before_sync.get(directory, names)
            return {name: self._inodes[ino].durable() for name, ino in sorted(names.items())}

    def durable_size(self, path: str) -> int:  # sim: unreachable: a helper for tests
        with self._lock:
            inode = self._inodes[self._lookup(path)]
            if inode.durable_copy is not None:
                return len(inode.durable_copy)
            return inode.durable_len

    def write_raw(self, path: str, data: bytes) -> None:
        """Replace a file's contents, durably, bypassing every check (for damage
        tests, and the simulator's scratch copies of a directory)."""
        with self._lock:
            inode = self._inodes[self._lookup(path)]
            inode.data = bytearray(data)
            inode.writes = [(0, len(data))] if data else []
            inode.sync()

    # ------------------------------------------------------------ FileSystem

    def open_append(self, path: str, *, create: bool = False) -> AppendFile:
        with self._lock:
            path = self._op("create" if create else "open_append", path)
            directory, name = self._split(path)
            names = self._dirs[directory]
            if create:
                if name in names:  # sim: one-way: paxon creates only new names
                    raise FileExistsError(errno.EEXIST, "file exists", path)
                ino = self._next_ino
                self._next_ino += 1
                self._inodes[ino] = _Inode()
                names[name] = ino
            else:
                ino = self._lookup(path)
            return _MemAppendFile(self, ino, path, self._epoch)

    def open_read(self, path: str) -> ReadFile:
        with self._lock:
            path = self._op("open_read", path)
            return _MemReadFile(self, self._lookup(path), self._epoch)

    def read(self, path: str) -> bytes:
        with self._lock:
            path = self._op("read", path)
            return bytes(self._inodes[self._lookup(path)].data)

    def size(self, path: str) -> int:
        with self._lock:
            path = self._op("size", path)
            return len(self._inodes[self._lookup(path)].data)

    def exists(self, path: str) -> bool:
        with self._lock:
            path = self._op("exists", path)
            if path in self._dirs:  # sim: one-way: paxon asks exists() of files only
                return True
            directory, name = self._split(path, must_exist=False)
            return name in self._dirs.get(directory, {})

    def is_dir(self, path: str) -> bool:
        with self._lock:
            return self._op("is_dir", path) in self._dirs

    def listdir(self, path: str) -> list[str]:
        with self._lock:
            path = self._op("listdir", path)
            if path not in self._dirs:  # sim: one-way: paxon lists its own directory
                raise FileNotFoundError(errno.ENOENT, "no such directory", path)
            subdirs = [os.path.basename(d) for d in self._dirs if d != path and _parent(d) == path]
            return sorted([*self._dirs[path], *subdirs])

    def mkdir(self, path: str) -> None:
        with self._lock:
            path = self._op("mkdir", path)
            if (  # sim: one-way: paxon makes a directory only when absent
                path in self._dirs or self.exists(path)
            ):
                raise FileExistsError(errno.EEXIST, "file exists", path)
            if _parent(path) not in self._dirs:  # sim: one-way: parents are made first
                raise FileNotFoundError(errno.ENOENT, "no such directory", _parent(path))
            self._dirs[path] = {}
            self._dirs_durable[path] = {}

    def rename(self, src: str, dst: str) -> None:
        with self._lock:
            src = self._op("rename", src)
            dst = os.path.normpath(dst)
            src_dir, src_name = self._split(src)
            dst_dir, dst_name = self._split(dst)
            ino = self._lookup(src)
            del self._dirs[src_dir][src_name]
            self._dirs[dst_dir][dst_name] = ino

    def unlink(self, path: str) -> None:
        with self._lock:
            path = self._op("unlink", path)
            directory, name = self._split(path)
            self._lookup(path)
            del self._dirs[directory][name]

    def fsync_dir(self, path: str) -> None:
        with self._lock:
            path = self._op("fsync_dir", path)
            if path not in self._dirs:  # sim: one-way: paxon syncs its own directory
                raise FileNotFoundError(errno.ENOENT, "no such directory", path)
            self._dirs_before_sync[path] = self._dirs_durable[path]
            self._dirs_durable[path] = dict(self._dirs[path])

    def lock(self, path: str) -> DirLock | None:
        with self._lock:
            path = self._op("lock", path)
            if (  # sim: one-way: one process per disk; a crash or stop frees it
                path in self._held_locks
            ):
                return None
            directory, name = self._split(path)
            if name not in self._dirs[directory]:
                self._inodes[self._next_ino] = _Inode()
                self._dirs[directory][name] = self._next_ino
                self._next_ino += 1
            self._held_locks.add(path)
            return _MemLock(self, path, self._epoch)

    def access(self, path: str) -> FileAccess:
        """Always private and ours: this file system has no other users.

        Not an operation of the fault model (no power cut or failure hits it)."""
        with self._lock:
            path = os.path.normpath(path)
            if path in self._dirs:
                return FileAccess(os.geteuid(), DIR_MODE)
            self._lookup(path)
            return FileAccess(os.geteuid(), FILE_MODE)

    # ------------------------------------------------------------ internals

    def _op(self, op: str, path: str) -> str:
        """Count ``op``; raise an injected fault or a power cut. Call with the lock held."""
        path = os.path.normpath(path)
        self._was_dead_before = self._dead
        # Each storage path stops at its first OSError and the simulator buries
        # the process at the cut (test_storage_memfs.py tries later calls).
        if self._dead:  # sim: one-way: paxon makes no disk call after a PowerCut
            raise PowerCut(f"{op} {path}: the power is off")
        if op in _MUTATING and self._ops_until_cut is not None:
            if self._ops_until_cut == 0:  # sim: one-way: the simulator cuts with cut_power_after(0)
                self._dead = True
                raise PowerCut(f"{op} {path}: power cut")
            self._ops_until_cut -= 1
        for fault in self._faults:
            if fault.op == op and fault.path_contains in path:
                fault.count -= 1
                if fault.count <= 0:  # sim: one-way: the simulator's faults strike once
                    self._faults.remove(fault)
                raise fault.error
        self.stats[op] += 1
        if op in _MUTATING:
            self.ops.append((op, path))
        return path

    def _split(self, path: str, *, must_exist: bool = True) -> tuple[str, str]:
        directory, name = os.path.split(path)
        if (  # sim: one-way: paxon names paths in its directory
            must_exist and directory not in self._dirs
        ):
            raise FileNotFoundError(errno.ENOENT, "no such directory", directory)
        return directory, name

    def _lookup(self, path: str) -> int:
        directory, name = os.path.split(os.path.normpath(path))
        ino = self._dirs.get(directory, {}).get(name)
        if ino is None:  # sim: one-way: paxon opens files it listed or made
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        return ino

    def _lookup_durable(self, path: str) -> int:
        directory, name = os.path.split(os.path.normpath(path))
        ino = self._dirs_durable.get(directory, {}).get(name)
        if ino is None:  # sim: one-way: the planner names durable files
            raise FileNotFoundError(errno.ENOENT, "no such durable file", path)
        return ino

    def _durable_range(self, path: str, offset: int, length: int) -> _Inode:
        inode = self._inodes[self._lookup(path)]
        if (  # sim: one-way: the planner names durable write ranges
            offset < 0 or length <= 0 or offset + length > len(inode.durable())
        ):
            raise ValueError(f"{path}: [{offset}, {offset + length}) is not durable data")
        return inode

    def _inode(self, ino: int, epoch: int, op: str, path: str) -> _Inode:
        self._op(op, path)
        if epoch != self._epoch:  # sim: one-way: no handle outlives its process's crash
            raise OSError(errno.EBADF, "handle from before a crash", path)
        return self._inodes[ino]


def _parent(path: str) -> str:
    return os.path.dirname(path) if path != "/" else ""


class _MemAppendFile:
    def __init__(self, fs: MemFileSystem, ino: int, path: str, epoch: int) -> None:
        self._fs = fs
        self._ino = ino
        self._path = path
        self._epoch = epoch
        self._closed = False

    def write(self, data: bytes) -> None:
        with self._fs._lock:
            self._check()
            try:
                inode = self._fs._inode(self._ino, self._epoch, "write", self._path)
            except PowerCut:
                # The power failed during this write: its bytes were on their way
                # (unsynced), and ``crash(tear=...)`` decides how many landed.
                if (  # sim: one-way: no write follows a PowerCut, no handle a crash
                    self._epoch == self._fs._epoch and not self._fs._was_dead_before
                ):
                    inode = self._fs._inodes[self._ino]
                    inode.wrote(len(inode.data), len(data))
                    inode.data += data
                raise
            inode.wrote(len(inode.data), len(data))
            inode.data += data

    def fdatasync(self) -> None:
        self._sync("fdatasync")

    def fsync(self) -> None:
        self._sync("fsync")

    def truncate(self, size: int) -> None:
        with self._fs._lock:
            self._check()
            inode = self._fs._inode(self._ino, self._epoch, "truncate", self._path)
            if (  # sim: one-way: repairs truncate once, below the durable size
                inode.durable_copy is None and size < inode.durable_len
            ):
                inode.durable_copy = bytes(inode.data[: inode.durable_len])
            if size <= len(inode.data):  # sim: one-way: paxon truncates only to shorten
                del inode.data[size:]
                inode.cut_writes(size)
            else:
                inode.data += bytes(size - len(inode.data))

    def size(self) -> int:
        with self._fs._lock:
            self._check()
            return len(self._fs._inode(self._ino, self._epoch, "size", self._path).data)

    def close(self) -> None:
        self._closed = True

    def _sync(self, op: str) -> None:
        hook = self._fs.on_sync
        if hook is not None:  # sim: one-way: on_sync is a test hook
            hook(self._path)
        with self._fs._lock:
            self._check()
            self._fs._inode(self._ino, self._epoch, op, self._path).sync()

    def _check(self) -> None:
        if self._closed:  # sim: one-way: paxon never uses a closed file
            raise ValueError(f"{self._path}: I/O on a closed file")


class _MemReadFile:
    def __init__(self, fs: MemFileSystem, ino: int, epoch: int) -> None:
        self._fs = fs
        self._ino = ino
        self._epoch = epoch
        self._position = 0

    def read(self, size: int) -> bytes:
        with self._fs._lock:
            if (  # sim: one-way: no handle outlives its process's crash
                self._epoch != self._fs._epoch
            ):
                raise OSError(errno.EBADF, "handle from before a crash")
            data = self._fs._inodes[self._ino].data
            chunk = bytes(data[self._position : self._position + size])
            self._position += len(chunk)
            return chunk

    def close(self) -> None:
        pass


class _MemLock:
    def __init__(self, fs: MemFileSystem, path: str, epoch: int) -> None:
        self._fs = fs
        self._path = path
        self._epoch = epoch

    def release(self) -> None:
        with self._fs._lock:
            if self._epoch == self._fs._epoch:  # sim: one-way: no lock outlives its process's crash
                self._fs._held_locks.discard(self._path)
