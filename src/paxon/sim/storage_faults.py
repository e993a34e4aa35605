"""Storage faults at a simulated crash, and what recovery must then do about them.

``strike(fs, directory, rng, kinds)`` is what the simulator calls *instead of*
``fs.crash()`` when it cuts a node's power: it crashes ``fs`` (one node's
``MemFileSystem``) with one fault of the enabled ``kinds``, aimed at
``directory`` (the node's data directory), and returns a ``StorageFault``
whose ``expect`` says what recovery must do: ``"recover"`` (start, with every
synced record back) or ``"refuse"`` (stop with a typed ``DataDirDamaged``).
It returns None, after a plain crash, when no enabled kind can strike this
disk now (nothing unsynced to tear, no directory fsync to lose, ...).
After ``Storage.open`` on that disk, ``check_recovery(fault, error)`` returns
a violation text when recovery classified it wrongly, else None.

Kinds (``KINDS``): ``torn``, ``bitflip``, ``lost``, ``misdirected``, ``dirent``.
``strike_rare(fs, directory, rng, kinds)`` strikes one fault of the same
table, aimed at a target that whole-disk draws seldom meet (``RARE``), and
returns None without touching ``fs`` when the disk holds none of them now:

- a lost last write that leaves the log ending below the newest snapshot;
- a lost seal of an inner segment (now and then landed on its successor's
  first frame, when that frame has a seal's length: a misdirected write);
- a flipped bit in the newest snapshot (the one the log depends on, or the
  only one left after the oldest segments were compacted);
- an inner segment's seal misdirected onto a frame boundary of another
  segment (its successor's first frame when that frame has a seal's length);
- a segment header misdirected onto an older segment's header;
- a tear that keeps 1 to 7 bytes of a frame's 8-byte length header (one of
  them not zero), zero-filled to the written size: torn, recover;
- the seal of the second-to-last segment lost, the last holding no record: as
  zeros, or with the file's size (the segment then ends cleanly, unsealed):
  recover, a roll-over cut short;
- only when the disk holds none of the above, one of two bit flips: a bit
  set in the length of a frame of the last segment, so the frame claims to
  reach past the end of the file (within any record limit): refuse, it is no
  torn tail; or a bit of a segment's 32-byte header: refuse;
- a snapshot's writes lost from inside one of its frames (its 8-byte length
  kept): with the file's size (it ends inside that frame), or that write's
  tail read as zeros: the snapshot rule.

``strike_snapshot_head_misdirected(fs, directory)``, aimed by the fault
injector at a disk holding two snapshots: the newest one's first write (its
header, META and checkpoint frames) lands at offset 0 of an older one, of a
head as long when there is one (every frame after it stays whole, so only the
check that a header names its own file sees it): the snapshot rule for both.

A write lost "with the file's size" is a write cache that lied about a
flush; it is drawn only where no synced record is lost with it (a seal, a
snapshot, which recovery checks whole).

The choice among enabled kinds, the target and the byte are drawn from
``rng`` alone, so a seed replays the same faults. Half the bit flips and lost
writes are aimed: a file is drawn first (a snapshot half the time when there
is one, else any file alike), so the few bytes of IDENTITY, a snapshot, a seal
or a segment header are struck as often as a long log.

Decision table: what each fault does and what recovery must do. A fault
that would lose a synced record (an acknowledged promise or vote) where one
disk cannot tell is never produced: recovery could only start without it,
and no check of the disk can do better; only the peers hold another copy.

| kind        | what strikes                                    | expect                 |
|-------------|-------------------------------------------------|------------------------|
| torn        | the unsynced bytes of a file (the active        | recover: cut the tail; |
|             | segment after ``Storage.flush``) cut at any     | every synced record is |
|             | byte; half the time zero-filled up to the       | back (no synced byte   |
|             | written size, or short of it (size on the       | was touched)           |
|             | media, data not)                                |                        |
| bitflip     | one bit of a segment's or IDENTITY's bytes      | refuse: every header   |
|             | (segments: within their whole frames)           | and frame is checked   |
|             |                                                 | (a header, whole or    |
|             |                                                 | cut, left reading as   |
|             |                                                 | its first bytes then   |
|             |                                                 | zeros: as a lost one)  |
| bitflip     | one bit of a snapshot                           | the snapshot rule      |
| lost        | a synced write of a segment, read back as       | refuse: zeros followed |
|             | zeros, when non-zero bytes follow it in the     | by frames are no torn  |
|             | file, or it is the segment header               | tail; a bad header     |
| lost        | the header of the last segment, holding no      | recover where a roll-  |
|             | record: the file reads as a new segment's       | over (the one before   |
|             | header cut and zero-filled                      | not sealed) or the     |
|             |                                                 | creation (lsn 1, no    |
|             |                                                 | snapshot) may have     |
|             |                                                 | been cut short: drop   |
|             |                                                 | it; else refuse        |
| lost        | the seal of a segment whose successor holds     | refuse: a segment that |
|             | records, or is not the last                     | is not last, torn      |
| lost        | the seal of the second-to-last segment, the     | recover: a roll-over   |
|             | last holding no record                          | cut short; no record   |
|             |                                                 | lost                   |
| lost        | the last write of the last segment (or of the   | refuse: the log ends   |
|             | second-to-last, the last holding no record,     | before the snapshot    |
|             | when that write is no seal), when the log       | (MissingSegment)       |
|             | before it ends below the newest snapshot's lsn  |                        |
| lost        | the last write of the last segment (or as       | never produced: the    |
|             | above), otherwise                               |                        |
|             |                                                 | same bytes as a torn   |
|             |                                                 | tail zero-filled, so   |
|             |                                                 | synced records would   |
|             |                                                 | go unnoticed           |
| lost        | a snapshot write / the IDENTITY write           | snapshot rule / refuse |
| misdirected | a write as in "lost" (refused there, from a     | refuse: its own zeros  |
|             | segment or IDENTITY, not for a snapshot's sake) | stop the start,        |
|             | lands at another offset of any file of the      | wherever it landed     |
|             | directory (half the time where another write    |                        |
|             | began), or nowhere                              |                        |
| misdirected | a snapshot write lands elsewhere in the same    | the snapshot rule      |
|             | snapshot, or nowhere                            |                        |
| misdirected | the newest snapshot's head (aimed) lands on an  | the snapshot rule for  |
|             | older snapshot's: its header names another file | both                   |
| misdirected | any other: landing on other files when the      | never produced: frames |
|             | source's loss alone is not detectable           | carry no lsn or offset |
|             |                                                 | (see Limits)           |
| dirent      | the last fsync_dir of the directory is lost:    | recover: each is       |
|             | names it removed come back (old segments, old   | consistent, or deleted |
|             | snapshots, ``*.tmp``)                           | by the repairs         |
| dirent      | ... the newest segment vanishes, the one        | refuse: the seal names |
|             | before it sealed (a roll-over)                  | it (MissingSegment)    |
| dirent      | ... the newest segment vanishes, the one before | recover if it held no  |
|             | not sealed, or it was the only one              | record; else never     |
|             |                                                 | produced (a fresh log) |
| dirent      | ... a new snapshot vanishes                     | the snapshot rule      |
| dirent      | ... IDENTITY vanishes                           | refuse if log files    |
|             |                                                 | remain, else recover   |

The snapshot rule (a snapshot damaged or gone): recover when the newest
usable snapshot left (or the log from lsn 1, when none is left) is one the
log reaches back to, and no ``SnapshotRecord`` in the log after it marks
slots above it (an installed snapshot the log depends on); else refuse.
Falling back loses nothing: the log is kept back to the older snapshot.

Limits:
- Frames carry no lsn, file or offset: whole frames misdirected onto a frame
  boundary, over frames of the same lengths, pass every checksum, as the
  wrong records. The format cannot see that (a CRC seeded with the lsn, or a
  chained checksum as TigerBeetle's, would); ``strike`` only lets a write
  land elsewhere when its own loss already stops the start (a snapshot's
  header names its lsn: its head may land on another snapshot, aimed above).
- A single disk cannot tell a lost last write, or a lost create of its only
  segment, from a crash just before it (table above): never produced.
- One fault per crash, on a disk that was healthy: the simulator restarts a
  node (recovery runs, repairs are made) before it crashes it again, and
  wipes or replaces a disk recovery refused.
- Torn writes keep a prefix of the unsynced bytes (then maybe zeros); a
  device that persists later sectors of a write before earlier ones is not
  modelled (recovery would see garbage and refuse).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass

from paxon.protocol.records import SnapshotRecord
from paxon.storage.codec import (
    FRAME_OVERHEAD,
    TYPE_SEAL,
    Frame,
    FrameStop,
    StorageRecord,
    scan_frame,
)
from paxon.storage.errors import DataDirDamaged
from paxon.storage.identity import decode_identity
from paxon.storage.layout import (
    IDENTITY_NAME,
    is_paxon_tmp,
    parse_segment_name,
    parse_snapshot_name,
)
from paxon.storage.memfs import MemFileSystem
from paxon.storage.segments import SEGMENT_HEADER_BYTES, encode_segment_header, scan_segment
from paxon.storage.snapshot import SnapshotReader

KINDS = frozenset({"torn", "bitflip", "lost", "misdirected", "dirent"})
RECOVER = "recover"
REFUSE = "refuse"

# Reading files to plan a fault: any frame paxon wrote is under this.
_RECORD_MAX = 1 << 31
# A lost inner seal lands on its successor's first frame, when that frame has
# a seal's length, in this share of the strikes; the draw's generator is
# seeded with this number (``_seal_on_successor``).
_SEAL_ON_SUCCESSOR_SHARE = 0.5
_SEAL_ON_SUCCESSOR_STREAM = 1
# The least record limit a simulated node has (``host.storage_config``: half a
# segment of 1 KiB at least): a frame length grown within it passes that check.
_LENGTH_MAX = 512
# Odds that a bit flip or a lost write is aimed at a file or a write drawn
# alike, not at a byte drawn alike (small files and small writes get hit too).
_AIMED = 0.5


@dataclass(frozen=True, slots=True)
class StorageFault:
    """One fault ``strike`` applied, and what recovery must do (``expect``)."""

    kind: str
    path: str
    offset: int
    detail: str
    expect: str
    # The (lsn, slot) of the snapshot a recovery that starts must start from,
    # (0, 0) for none; None where the fault leaves that unchecked.
    base: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown storage fault kind {self.kind!r}")
        if self.expect not in (RECOVER, REFUSE):
            raise ValueError(f"expect must be {RECOVER!r} or {REFUSE!r}, not {self.expect!r}")

    def __str__(self) -> str:
        return f"{self.kind} at {self.path}:{self.offset} ({self.detail}); must {self.expect}"


def strike(
    fs: MemFileSystem, directory: str, rng: random.Random, kinds: frozenset[str]
) -> StorageFault | None:
    """Crash ``fs`` with one fault of ``kinds`` aimed at ``directory``; see the module table."""
    unknown = kinds - KINDS
    if unknown:
        raise ValueError(f"unknown storage fault kinds: {sorted(unknown)}")
    order = sorted(kinds)
    rng.shuffle(order)
    disk = _Disk.read(fs, os.path.normpath(directory))
    if disk is not None:
        for kind in order:
            plan = _PLANNERS[kind](disk, rng)
            if plan is not None:
                fault, apply = plan
                apply()
                return fault
    fs.crash()
    return None


def strike_rare(
    fs: MemFileSystem, directory: str, rng: random.Random, kinds: frozenset[str]
) -> StorageFault | None:
    """Crash ``fs`` with one fault of ``kinds`` aimed at a rare target (module
    docstring); None, and ``fs`` untouched, when the disk holds none now."""
    unknown = kinds - KINDS
    if unknown:
        raise ValueError(f"unknown storage fault kinds: {sorted(unknown)}")
    disk = _Disk.read(fs, os.path.normpath(directory))
    if disk is None:
        return None
    plans = [plan for kind, planner in _RARE if kind in kinds if (plan := planner(disk, rng))]
    if not plans:
        plans = [
            plan
            for kind, planner in _RARE_FALLBACK
            if kind in kinds
            if (plan := planner(disk, rng))
        ]
    if not plans:
        return None
    fault, apply = rng.choice(plans)
    apply()
    return fault


def snapshot_head_verdict(fs: MemFileSystem, directory: str) -> str | None:
    """What recovery must do after ``strike_snapshot_head_misdirected`` on this
    disk now (planned, not struck); None when it would not strike."""
    plan = _plan_snapshot_head(fs, directory)
    return None if plan is None else plan[0].expect


def strike_snapshot_head_misdirected(fs: MemFileSystem, directory: str) -> StorageFault | None:
    """Crash ``fs`` with the newest snapshot's first write (its header, META and
    checkpoint frames) landed at offset 0 of an older snapshot: a block mapped
    to the wrong file. The older file's header, which passes its CRC, now
    names the newer's lsn; the newer reads zeros where its head was. Both are
    damaged, and recovery must follow the snapshot rule for the two.

    The older one is the newest whose head has the same length, when there is
    one: then every frame after the landed head stays whole, and only the
    check that a header names its own file can see the damage; else the
    snapshot just before. None, and ``fs`` untouched, when the disk holds no
    two snapshots whose first writes are known (``MemFileSystem.write_ranges``).
    """
    plan = _plan_snapshot_head(fs, directory)
    if plan is None:
        return None
    fault, apply = plan
    apply()
    return fault


def snapshot_head_alike(fs: MemFileSystem, directory: str) -> bool:
    """Whether ``strike_snapshot_head_misdirected`` would land the newest
    snapshot's head on an older head as long (every frame after it whole)."""
    disk = _Disk.read(fs, os.path.normpath(directory))
    heads = None if disk is None else _snapshot_heads(disk)
    return heads is not None and heads[2]


def _snapshot_heads(disk: _Disk) -> tuple[str, str, bool, int] | None:
    """The newest snapshot whose first write is known, the older one its head
    would land on, whether their heads are as long, and its head's length."""
    heads = sorted(
        (lsn_slot, name, ranges[0][1])
        for name in disk.files
        if (lsn_slot := parse_snapshot_name(name)) is not None
        and (ranges := disk.fs.write_ranges(disk.path(name)))
        and ranges[0][0] == 0
    )
    if len(heads) < 2:
        return None
    *olders, (_, newer, length) = heads
    alike = [name for _, name, older_length in olders if older_length == length]
    return newer, alike[-1] if alike else olders[-1][1], bool(alike), length


def _plan_snapshot_head(fs: MemFileSystem, directory: str) -> _Plan | None:
    disk = _Disk.read(fs, os.path.normpath(directory))
    heads = None if disk is None else _snapshot_heads(disk)
    if disk is None or heads is None:
        return None
    newer, older, _, length = heads
    whole = _usable_snapshots(disk.files, disk.incarnation, frozenset({older, newer}))
    expect = _expect_from_usable(disk.files, disk.incarnation, whole)
    write = _Write(newer, 0, length, expect, "a snapshot's head, onto an older snapshot")
    fault, apply = _misdirected_plan(disk, write, older, 0)
    # Both heads pass their own checksums: only a header that names another
    # file gives the damage away, so which snapshot recovery took is checked
    # too (a recovery that took the older file for the newer one still starts).
    return dataclasses.replace(fault, base=whole[-1] if whole else (0, 0)), apply


def strike_successor_lost(fs: MemFileSystem, directory: str) -> StorageFault | None:
    """Crash ``fs`` losing its last directory fsync when that fsync made the
    newest segment's name and the segment before it ends with its seal (a
    roll-over just made durable): the seal names a segment that is gone, and
    recovery must refuse (``MissingSegment``). None, and ``fs`` untouched, when
    the disk is not in that state."""
    disk = _Disk.read(fs, os.path.normpath(directory))
    if disk is None:
        return None
    change = fs.last_dir_sync(disk.directory)
    if change is None or not change[0]:
        return None
    made = [name for name in change[0] if parse_segment_name(name) is not None]
    segments = disk.segments()
    if made != sorted(change[0]) or len(segments) < 2 or made != [segments[-1][1]]:
        return None
    plan = _plan_dirent(disk, random.Random(0))  # it draws nothing
    if plan is None or plan[0].expect != REFUSE:
        return None
    fault, apply = plan
    apply()
    return fault


def rare_targets(fs: MemFileSystem, directory: str, kinds: frozenset[str]) -> list[str]:
    """The rare targets of ``kinds`` the disk holds now (planned, not struck)."""
    disk = _Disk.read(fs, os.path.normpath(directory))
    if disk is None:
        return []
    scratch = random.Random(0)  # plans only: what they would strike is not used
    return [
        planner.__name__.removeprefix("_rare_")
        for kind, planner in _RARE
        if kind in kinds and planner(disk, scratch) is not None
    ]


def check_recovery(
    fault: StorageFault | None,
    error: Exception | None,
    started_from: tuple[int, int] = (0, 0),
) -> str | None:
    """A violation text when recovery did not do what ``fault`` requires, else None.

    ``error`` is what ``Storage.open`` raised on the struck disk (None: it
    started), and ``started_from`` the (lsn, slot) of the snapshot it started
    from ((0, 0): none). ``fault`` None means a plain crash: recovery must start.
    """
    if error is not None and not isinstance(error, DataDirDamaged):
        return f"recovery failed with {type(error).__name__}, not a typed DataDirDamaged: {error}"
    if fault is None or fault.expect == RECOVER:
        if error is not None:
            what = (
                "a disk with no storage fault" if fault is None else f"a recoverable disk: {fault}"
            )
            return f"recovery refused {what} ({type(error).__name__}: {error})"
        if fault is not None and fault.base is not None and started_from != fault.base:
            return (
                f"recovery started from the snapshot at (lsn, slot) {started_from}, not "
                f"{fault.base}, the newest whole one: {fault}"
            )
        return None
    if error is None:
        return f"recovery started on a disk it must refuse: {fault}"
    return None


# ------------------------------------------------------------------ the disk a crash would leave

_Plan = tuple[StorageFault, Callable[[], None]]


@dataclass(slots=True)
class _Disk:
    fs: MemFileSystem
    directory: str
    files: dict[str, bytes]
    incarnation: int

    @classmethod
    def read(cls, fs: MemFileSystem, directory: str) -> _Disk | None:
        """The durable view of ``directory``; None when it holds no readable identity."""
        try:
            files = fs.durable_view(directory)
        except KeyError:
            return None
        incarnation = _incarnation(files)
        return None if incarnation is None else cls(fs, directory, files, incarnation)

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def segments(self) -> list[tuple[int, str]]:
        return _segments(self.files)


def _incarnation(files: dict[str, bytes]) -> int | None:
    if IDENTITY_NAME not in files:
        return None
    try:
        return decode_identity(files[IDENTITY_NAME], IDENTITY_NAME).incarnation
    except DataDirDamaged:
        return None


def _segments(files: dict[str, bytes]) -> list[tuple[int, str]]:
    found = ((parse_segment_name(name), name) for name in files)
    return sorted((first, name) for first, name in found if first is not None)


def _is_target(name: str) -> bool:
    """A file whose damage recovery must see: a segment, a snapshot or the identity."""
    return (
        name == IDENTITY_NAME
        or parse_segment_name(name) is not None
        or parse_snapshot_name(name) is not None
    )


# ------------------------------------------------------------------ torn


def _plan_torn(disk: _Disk, rng: random.Random) -> _Plan | None:
    unsynced = {name: disk.fs.unsynced_bytes(disk.path(name)) for name in disk.files}
    names = [name for name, count in unsynced.items() if count > 0]
    if not names:
        return None
    name = rng.choice(names)
    path, count = disk.path(name), unsynced[name]
    kept = rng.randrange(count)
    # Half the time zero-filled: to the size the writes reached (the size
    # reached the media, the data did not), or to some point before it.
    zeros = 0
    if rng.random() < 0.5:
        zeros = count - kept if rng.random() < 0.5 else rng.randint(1, count - kept)
    offset = len(disk.files[name]) + kept
    detail = f"kept {kept} of {count} unsynced bytes, then {zeros} zero bytes"
    fault = StorageFault("torn", path, offset, detail, RECOVER)

    def apply() -> None:
        disk.fs.crash(
            tear=lambda torn, _count: kept if torn == path else 0,
            zero_fill=lambda torn, _count: zeros if torn == path else 0,
        )

    return fault, apply


# ------------------------------------------------------------------ bitflip


def _plan_bitflip(disk: _Disk, rng: random.Random) -> _Plan | None:
    names = [name for name in disk.files if _is_target(name)]
    spans = [(name, range(_flippable_bytes(disk, name) * 8)) for name in names]
    if rng.random() < _AIMED:
        # Aimed at a file (see _aim), then any bit of it: the few bytes of
        # IDENTITY or of a snapshot are struck as often as a long log.
        by_name = {name: span for name, span in spans if len(span)}
        spans = [(name, by_name[name])] if (name := _aim(rng, sorted(by_name))) else []
    found = _any_of(rng, spans)
    if found is None:
        return None
    name, bit = found  # every stored bit alike within the span, as bit rot strikes
    path = disk.path(name)
    expect = _expect_damaged(disk, name)
    first_lsn = parse_segment_name(name)
    if first_lsn is not None and _reads_cut(
        disk.files[name], bit, encode_segment_header(first_lsn, disk.incarnation)
    ):
        # The bytes a crash may leave (a header cut short, the rest zeros):
        # recovery must take them as one (swarm seed 2000016 flipped a bit of
        # a 22-byte header, which is damage; clearing the last set bit is not).
        expect = _expect_header_lost(disk, name, disk.segments(), 0)
    fault = StorageFault("bitflip", path, bit // 8, f"bit {bit % 8} of byte {bit // 8}", expect)

    def apply() -> None:
        disk.fs.crash()
        disk.fs.flip_bit(path, bit)

    return fault, apply


def _aim(rng: random.Random, names: list[str]) -> str | None:
    """A file an aimed fault strikes: a snapshot half the time when there is one
    (the newest snapshots, and installed ones, are what the log depends on),
    else any file alike."""
    snapshots = [name for name in names if parse_snapshot_name(name) is not None]
    if snapshots and rng.random() < 0.5:
        return rng.choice(snapshots)
    return rng.choice(names) if names else None


def _flippable_bytes(disk: _Disk, name: str) -> int:
    """The bytes a flip is sure to be damage in: a segment's whole frames, other files whole."""
    data = disk.files[name]
    first_lsn = parse_segment_name(name)
    if first_lsn is None:
        return len(data)
    scan = scan_segment(data, name, first_lsn, disk.incarnation, _RECORD_MAX)
    return scan.valid_bytes if scan.end in ("open", "sealed", "torn") else len(data)


def _expect_damaged(disk: _Disk, name: str) -> str:
    """What recovery must do when ``name`` is damaged (the rest as a crash now leaves it)."""
    if parse_snapshot_name(name) is None:
        return REFUSE
    return _expect_snapshot_unusable(disk.files, disk.incarnation, frozenset({name}))


# ------------------------------------------------------------------ lost


@dataclass(frozen=True, slots=True)
class _Write:
    name: str
    offset: int
    length: int
    expect: str
    why: str
    # Refused only because a snapshot says the log reached further: not a
    # source of misdirected writes, which could land on that snapshot.
    needs_snapshot: bool = False


def _plan_lost(disk: _Disk, rng: random.Random) -> _Plan | None:
    write = _choose_write(rng, _lost_writes(disk))
    return None if write is None else _lost_plan(disk, write)


def _lost_plan(disk: _Disk, write: _Write) -> _Plan:
    path = disk.path(write.name)
    detail = f"{write.length} synced bytes read as zeros ({write.why})"
    fault = StorageFault("lost", path, write.offset, detail, write.expect)

    def apply() -> None:
        disk.fs.crash()
        disk.fs.lose_write(path, write.offset, write.length)

    return fault, apply


def _lost_writes(disk: _Disk) -> dict[str, list[_Write]]:
    """Every synced write whose loss the table allows, by file."""
    segments = disk.segments()
    last = segments[-1][1] if segments else None
    before_last = segments[-2][1] if len(segments) >= 2 else None
    last_is_empty = last is not None and len(disk.files[last]) <= SEGMENT_HEADER_BYTES
    lsn_snapshot = _newest_snapshot_lsn(disk)
    found: dict[str, list[_Write]] = {}
    for name, data in disk.files.items():
        if not _is_target(name):
            continue
        data_end = len(data.rstrip(b"\x00"))
        expect_other = _expect_damaged(disk, name)
        writes: list[_Write] = []
        for offset, length in disk.fs.write_ranges(disk.path(name)):
            if not any(data[offset : offset + length]):
                continue  # already zeros: losing it changes nothing
            if parse_segment_name(name) is None:
                writes.append(_Write(name, offset, length, expect_other, "a checked file"))
            elif offset == 0:
                expect = _expect_header_lost(disk, name, segments, data_end)
                writes.append(_Write(name, offset, length, expect, "the segment header"))
            elif offset + length < data_end:
                writes.append(_Write(name, offset, length, REFUSE, "frames follow it"))
            elif name == before_last and last_is_empty and _is_seal(data, offset, length):
                writes.append(_Write(name, offset, length, RECOVER, "a seal before an empty one"))
            elif name != last and not (name == before_last and last_is_empty):
                writes.append(_Write(name, offset, length, REFUSE, "the end of an inner segment"))
            elif _lsn_last_before(disk, name, offset) < lsn_snapshot:
                why = f"the log's end, below snapshot lsn {lsn_snapshot}"
                writes.append(_Write(name, offset, length, REFUSE, why, needs_snapshot=True))
        if writes:
            found[name] = writes
    return found


def _is_seal(data: bytes, offset: int, length: int) -> bool:
    """Whether the write ``data[offset:offset + length]`` is one seal frame.

    The end of the segment before an empty last one is not always its seal:
    with the seal itself lost or torn, it is a record (swarm seed 2000871 lost
    an accept that way, as "a seal", and a synced vote went undetected)."""
    found = scan_frame(memoryview(data), offset, _RECORD_MAX)
    return (
        isinstance(found, Frame) and found.frame_type == TYPE_SEAL and found.end == offset + length
    )


def _expect_header_lost(
    disk: _Disk, name: str, segments: list[tuple[int, str]], data_end: int
) -> str:
    """What recovery must do when the header of segment ``name`` reads as zeros.

    With nothing after it (the segment holds no record), the file is then the
    same as a new segment whose header was cut and zero-filled: recovery drops
    it where a roll-over or a creation may have been cut short (nothing is
    lost, it held no record), and refuses it elsewhere."""
    if data_end > SEGMENT_HEADER_BYTES or name != segments[-1][1]:
        return REFUSE
    if len(segments) >= 2:
        before_first, before_name = segments[-2]
        scan = scan_segment(
            disk.files[before_name], before_name, before_first, disk.incarnation, _RECORD_MAX
        )
        return REFUSE if scan.end == "sealed" else RECOVER
    has_snapshot = any(parse_snapshot_name(other) for other in disk.files)
    return RECOVER if segments[0][0] == 1 and not has_snapshot else REFUSE


def _newest_snapshot_lsn(disk: _Disk) -> int:
    """The lsn of the newest snapshot that reads back whole (0: none)."""
    snapshots = sorted(
        (*lsn_slot, name) for name in disk.files if (lsn_slot := parse_snapshot_name(name))
    )
    for lsn, _, name in reversed(snapshots):
        if _snapshot_is_valid(disk.files, name, disk.incarnation):
            return lsn
    return 0


def _lsn_last_before(disk: _Disk, name: str, offset: int) -> int:
    """The lsn of the last record of segment ``name`` that lies wholly before ``offset``."""
    first_lsn = parse_segment_name(name)
    assert first_lsn is not None
    data = disk.files[name][:offset]
    return scan_segment(data, name, first_lsn, disk.incarnation, _RECORD_MAX).lsn_last


def _choose_write(rng: random.Random, writes: dict[str, list[_Write]]) -> _Write | None:
    """One of ``writes`` (files in name order): weighted by its length, or, at
    ``_AIMED`` odds, a file drawn first, then one of its writes (a snapshot, a
    seal or a header is one lost I/O as much as a long batch is)."""
    every = [write for name in sorted(writes) for write in writes[name]]
    if not every:
        return None
    if rng.random() < _AIMED and (name := _aim(rng, sorted(writes))) is not None:
        return rng.choice(writes[name])
    return rng.choices(every, weights=[write.length for write in every])[0]


# ------------------------------------------------------------------ misdirected


def _plan_misdirected(disk: _Disk, rng: random.Random) -> _Plan | None:
    sources: dict[str, list[_Write]] = {}
    for name, writes in _lost_writes(disk).items():
        if parse_snapshot_name(name) is not None:
            sources[name] = writes
        elif kept := [w for w in writes if w.expect == REFUSE and not w.needs_snapshot]:
            sources[name] = kept
    write = _choose_write(rng, sources)
    if write is None:
        return None
    to_name, to_offset = _landing(disk, rng, write)
    return _misdirected_plan(disk, write, to_name, to_offset)


def _misdirected_plan(disk: _Disk, write: _Write, to_name: str | None, to_offset: int) -> _Plan:
    path = disk.path(write.name)
    to_path = disk.path(to_name) if to_name is not None else None
    where = "nowhere" if to_name is None else f"{to_name}:{to_offset}"
    detail = f"{write.length} synced bytes landed {where} ({write.why})"
    fault = StorageFault("misdirected", path, write.offset, detail, write.expect)

    def apply() -> None:
        disk.fs.crash()
        disk.fs.misdirect_write(
            path, write.offset, write.length, to_path=to_path, to_offset=to_offset
        )

    return fault, apply


def _landing(disk: _Disk, rng: random.Random, write: _Write) -> tuple[str | None, int]:
    """Where a misdirected ``write`` lands: ``(file, offset)``, or ``(None, 0)``: nowhere.

    A fifth of them land nowhere visible; of the others, half land where
    another write began (devices misdirect whole blocks, so a write lands on
    a boundary: a header over another file's header, a seal over a record;
    half of those, when one exists, where a write began at its own offset),
    half at any byte alike; never over their own place; a snapshot's write
    only in its own file (see Limits).
    """
    if rng.random() < 0.2:
        return None, 0
    if parse_snapshot_name(write.name) is not None:
        names = [write.name]
    else:
        names = [name for name in sorted(disk.files) if _is_target(name)]
    if rng.random() < 0.5:
        starts = [
            (name, at)
            for name in names
            for at, _ in disk.fs.write_ranges(disk.path(name))
            if (name, at) != (write.name, write.offset)
        ]
        # Half of these at its own offset in another file (a block mapped to
        # the wrong file: a header onto another header), when there is one.
        same = [(name, at) for name, at in starts if at == write.offset]
        if same and rng.random() < 0.5:
            return rng.choice(same)
        if starts:
            return rng.choice(starts)
    spans: list[tuple[str, range]] = []
    for name in names:
        size = len(disk.files[name])
        if name != write.name:
            spans.append((name, range(size)))
        else:
            spans.append((name, range(0, max(write.offset - write.length + 1, 0))))
            spans.append((name, range(write.offset + write.length, size)))
    found = _any_of(rng, spans)
    return found if found is not None else (None, 0)


def _any_of(rng: random.Random, spans: list[tuple[str, range]]) -> tuple[str, int] | None:
    """``(name, number)`` drawn from ``spans``, every number of every span alike."""
    index = rng.randrange(total) if (total := sum(len(span) for _, span in spans)) else None
    if index is None:
        return None
    for name, span in spans:
        if index < len(span):
            return name, span[index]
        index -= len(span)
    raise AssertionError("unreachable: index < total")


# ------------------------------------------------------------------ dirent


def _plan_dirent(disk: _Disk, rng: random.Random) -> _Plan | None:
    change = disk.fs.last_dir_sync(disk.directory)
    if change is None:
        return None
    made, removed = (
        sorted(n for n in names if _is_target(n) or is_paxon_tmp(n)) for names in change
    )
    if not made and not removed:
        return None
    after = disk.fs.durable_view(disk.directory, without_last_dir_sync=True)
    expect = _expect_dirent(disk, after, made)
    if expect is None:
        return None
    name = (made or removed)[0]
    detail = f"the last directory fsync is lost: gone {made}, back {removed}"
    fault = StorageFault("dirent", disk.path(name), 0, detail, expect)

    def apply() -> None:
        disk.fs.lose_last_dir_sync(disk.directory)
        disk.fs.crash()

    return fault, apply


def _expect_dirent(disk: _Disk, after: dict[str, bytes], made: list[str]) -> str | None:
    """What recovery must do once the names in ``made`` are gone (None: never produced)."""
    expects = [RECOVER]
    for name in made:
        if name == IDENTITY_NAME:
            log_files = [n for n in after if _is_target(n)]
            expects.append(REFUSE if log_files else RECOVER)
        elif parse_snapshot_name(name) is not None:
            expects.append(_expect_snapshot_unusable(after, disk.incarnation, frozenset()))
        elif parse_segment_name(name) is not None:
            expect = _expect_segment_gone(disk, after, name)
            if expect is None:
                return None
            expects.append(expect)
    return REFUSE if REFUSE in expects else RECOVER


def _expect_segment_gone(disk: _Disk, after: dict[str, bytes], name: str) -> str | None:
    held_records = len(disk.files[name]) > SEGMENT_HEADER_BYTES
    if name in after:
        return None if held_records else RECOVER  # an older file of that name came back
    remaining = _segments(after)
    first_lsn = parse_segment_name(name)
    if remaining and first_lsn is not None and first_lsn > remaining[-1][0]:
        before_first, before_name = remaining[-1]
        scan = scan_segment(
            after[before_name], before_name, before_first, disk.incarnation, _RECORD_MAX
        )
        if scan.end == "sealed":
            return REFUSE
    elif remaining:
        return None  # not the newest segment: no single directory fsync does that
    elif any(parse_snapshot_name(other) for other in after):
        return REFUSE  # snapshots, and no log: MissingSegment
    return None if held_records else RECOVER


# ------------------------------------------------------------------ the snapshot rule


def _expect_snapshot_unusable(
    files: dict[str, bytes], incarnation: int, unusable: frozenset[str]
) -> str:
    """What recovery must do with ``files`` when the snapshots ``unusable`` are damaged."""
    return _expect_from_usable(files, incarnation, _usable_snapshots(files, incarnation, unusable))


def _expect_from_usable(
    files: dict[str, bytes], incarnation: int, usable: list[tuple[int, int]]
) -> str:
    """What recovery must do with ``files`` when ``usable`` are the snapshots
    that read back whole (``_usable_snapshots``)."""
    segments = _segments(files)
    if not segments:
        return REFUSE if any(parse_snapshot_name(name) for name in files) else RECOVER
    lsn_base, slot_base = usable[-1] if usable else (0, 0)
    if segments[0][0] > lsn_base + 1:
        return REFUSE
    marks: list[tuple[int, int]] = []
    lsn_last = 0

    def visit(lsn: int, record: StorageRecord) -> None:
        if isinstance(record, SnapshotRecord):
            marks.append((lsn, record.slot))

    for first_lsn, name in segments:
        scan = scan_segment(files[name], name, first_lsn, incarnation, _RECORD_MAX, visit)
        lsn_last = max(lsn_last, scan.lsn_last)
    if lsn_last < lsn_base:
        return REFUSE
    if any(lsn > lsn_base and slot > slot_base for lsn, slot in marks):
        return REFUSE
    return RECOVER


def _usable_snapshots(
    files: dict[str, bytes], incarnation: int, unusable: frozenset[str]
) -> list[tuple[int, int]]:
    """The (lsn, slot) of each snapshot of ``files`` that reads back whole and
    is not among ``unusable``, oldest first."""
    snapshots = sorted(
        (*lsn_slot, name) for name in files if (lsn_slot := parse_snapshot_name(name))
    )
    return [
        (lsn, slot)
        for lsn, slot, name in snapshots
        if name not in unusable and _snapshot_is_valid(files, name, incarnation)
    ]


def _snapshot_is_valid(files: dict[str, bytes], name: str, incarnation: int) -> bool:
    """Whether snapshot ``name`` reads back whole (its checksums, its END, its name)."""
    scratch = MemFileSystem()
    scratch.mkdir("/snapshot")
    file = scratch.open_append(f"/snapshot/{name}", create=True)
    file.write(files[name])
    file.close()
    try:
        with SnapshotReader(scratch, "/snapshot", name, incarnation, _RECORD_MAX) as reader:
            meta = reader.verify()
    except DataDirDamaged:
        return False
    return (meta.lsn, meta.slot) == parse_snapshot_name(name)


# ------------------------------------------------------------------ rare targets


def _rare_lost(disk: _Disk, rng: random.Random, why: str) -> _Plan | None:
    """A lost write of one kind (``_Write.why`` starting with ``why``)."""
    writes = _writes_lost_for(disk, why)
    return _lost_plan(disk, rng.choice(writes)) if writes else None


def _writes_lost_for(disk: _Disk, why: str) -> list[_Write]:
    return [
        write
        for writes in _lost_writes(disk).values()
        for write in writes
        if write.why.startswith(why)
    ]


def _rare_lost_below_snapshot(disk: _Disk, rng: random.Random) -> _Plan | None:
    return _rare_lost(disk, rng, "the log's end, below snapshot")


def _rare_lost_inner_seal(disk: _Disk, rng: random.Random) -> _Plan | None:
    """A lost seal of an inner segment; or, when its successor's first frame has
    a seal's length, now and then landed there (``_seal_on_successor``): the
    seal names the right lsn and whole frames follow it, which only a
    misdirected write makes of a segment (refuse: a record follows the seal)."""
    seals = _writes_lost_for(disk, "the end of an inner segment")
    if not seals:
        return None
    seal = rng.choice(seals)
    after = _seal_on_successor(disk, seal)
    if after is not None:
        return _misdirected_plan(disk, seal, after, SEGMENT_HEADER_BYTES)
    return _lost_plan(disk, seal)


def _rare_bitflip_newest_snapshot(disk: _Disk, rng: random.Random) -> _Plan | None:
    snapshots = sorted(
        (*lsn_slot, name) for name in disk.files if (lsn_slot := parse_snapshot_name(name))
    )
    if not snapshots:
        return None
    name = snapshots[-1][2]
    if not disk.files[name]:
        return None
    bit = rng.randrange(len(disk.files[name]) * 8)
    path = disk.path(name)
    expect = _expect_damaged(disk, name)
    fault = StorageFault("bitflip", path, bit // 8, f"bit {bit % 8} of byte {bit // 8}", expect)

    def apply() -> None:
        disk.fs.crash()
        disk.fs.flip_bit(path, bit)

    return fault, apply


def _rare_misdirected_seal(disk: _Disk, rng: random.Random) -> _Plan | None:
    """An inner segment's seal lands on a frame boundary of another segment
    (half the time, when it has a seal's length, on its successor's first
    frame: the seal then names the right lsn, and frames follow it)."""
    segments = disk.segments()
    successors = {name: after for (_, name), (_, after) in itertools.pairwise(segments)}
    seals = _writes_lost_for(disk, "the end of an inner segment")
    if not seals:
        return None
    seal = rng.choice(seals)
    after = successors.get(seal.name)
    if (
        after is not None
        and any(at == SEGMENT_HEADER_BYTES for at, _ in disk.fs.write_ranges(disk.path(after)))
        and _first_frame_bytes(disk.files[after]) == seal.length
        and rng.random() < 0.5
    ):
        to_name, to_offset = after, SEGMENT_HEADER_BYTES
    else:
        starts = [
            (name, at)
            for _, name in segments
            if name != seal.name
            for at, _ in disk.fs.write_ranges(disk.path(name))
            if at >= SEGMENT_HEADER_BYTES
        ]
        if not starts:
            return None
        to_name, to_offset = rng.choice(starts)
    return _misdirected_plan(disk, seal, to_name, to_offset)


def _seal_on_successor(disk: _Disk, seal: _Write) -> str | None:
    """The successor of ``seal``'s segment when the seal lands on its first frame
    instead, or None: that frame is not of a seal's length (a chosen mark or a
    snapshot record is), or not drawn (``_SEAL_ON_SUCCESSOR_SHARE``). Drawn
    from a generator of its own, seeded by where the seal stands, so
    ``strike_rare``'s stream and every other plan are as without it."""
    names = [name for _, name in disk.segments()]
    index = names.index(seal.name)
    if index + 1 == len(names):  # not an inner segment: no successor to land on
        return None
    after = names[index + 1]
    if _first_frame_bytes(disk.files[after]) != seal.length:
        return None
    draws = random.Random(f"{seal.name}:{seal.offset}:{_SEAL_ON_SUCCESSOR_STREAM}")
    return after if draws.random() < _SEAL_ON_SUCCESSOR_SHARE else None


def _rare_misdirected_header(disk: _Disk, rng: random.Random) -> _Plan | None:
    """A segment's header lands on an older segment's header (a block mapped to
    the wrong file): the older one, scanned first, names the wrong lsn."""
    segments = disk.segments()
    headers = [
        write
        for writes in _lost_writes(disk).values()
        for write in writes
        if write.offset == 0 and write.expect == REFUSE and not write.needs_snapshot
    ]
    pairs = [
        (header, older)
        for header in headers
        for first, older in segments
        if first < (parse_segment_name(header.name) or 0)
        and (0, SEGMENT_HEADER_BYTES) in disk.fs.write_ranges(disk.path(older))
    ]
    if not pairs:
        return None
    header, older = rng.choice(pairs)
    return _misdirected_plan(disk, header, older, 0)


def _rare_torn_in_frame_header(disk: _Disk, rng: random.Random) -> _Plan | None:
    """A tear that keeps 1 to 7 bytes of a frame's 8-byte length header (at least
    one of them not zero), zero-filled to the size the writes reached, as ext4
    and XFS may leave it: a torn tail, which recovery cuts."""
    cuts: list[tuple[str, int, int, int]] = []  # (name, kept, zeros, frame start)
    for _, name in disk.segments():
        durable = disk.files[name]
        if len(durable) < SEGMENT_HEADER_BYTES:
            continue
        pending = disk.fs.unsynced_data(disk.path(name))
        whole = memoryview(durable + pending)
        offset = len(durable)
        while not isinstance(found := scan_frame(whole, offset, _RECORD_MAX), FrameStop):
            header = bytes(whole[offset : offset + 7])
            last_nonzero = len(header.rstrip(b"\x00"))
            if last_nonzero:
                kept = offset - len(durable) + rng.randint(last_nonzero, 7)
                cuts.append((name, kept, len(pending) - kept, offset))
            offset = found.end
    if not cuts:
        return None
    name, kept, zeros, start = rng.choice(cuts)
    path = disk.path(name)
    detail = (
        f"kept {kept} unsynced bytes, {start + 8 - len(disk.files[name]) - kept} short of the "
        f"frame header at {start}, then {zeros} zero bytes"
    )
    fault = StorageFault("torn", path, len(disk.files[name]) + kept, detail, RECOVER)

    def apply() -> None:
        disk.fs.crash(
            tear=lambda torn, _count: kept if torn == path else 0,
            zero_fill=lambda torn, _count: zeros if torn == path else 0,
        )

    return fault, apply


def _rare_bitflip_segment_header(disk: _Disk, rng: random.Random) -> _Plan | None:
    """One bit of a segment's header flipped (its magic, version, first lsn,
    incarnation or their checksum): 32 bytes that a flip drawn over a whole
    log meets once in hundreds of strikes, as IDENTITY's (mutation s18 #33, a
    header check that took a changed checksum as whole, met none in the
    budget's 22 disk faults). Recovery must refuse: the header is checked on
    every segment. A flip that leaves the header's first bytes followed by
    zeros reads as a header cut short by a crash, and is not drawn."""
    headers = [
        name
        for _, name in disk.segments()
        if len(data := disk.files[name]) >= SEGMENT_HEADER_BYTES
        and any(data[:SEGMENT_HEADER_BYTES])
    ]
    if not headers:
        return None
    name = rng.choice(headers)
    first_lsn = parse_segment_name(name)
    assert first_lsn is not None
    # Judged against the header the segment calls for: its bytes may be a
    # cut one (the first bytes, then zeros), which a flip may extend.
    header = encode_segment_header(first_lsn, disk.incarnation)
    stored = disk.files[name][:SEGMENT_HEADER_BYTES]
    bits = [bit for bit in range(SEGMENT_HEADER_BYTES * 8) if not _reads_cut(stored, bit, header)]
    bit = rng.choice(bits)
    path = disk.path(name)
    fault = StorageFault(
        "bitflip", path, bit // 8, f"bit {bit % 8} of byte {bit // 8}, the segment header", REFUSE
    )

    def apply() -> None:
        disk.fs.crash()
        disk.fs.flip_bit(path, bit)

    return fault, apply


def _reads_cut(data: bytes, bit: int, header: bytes) -> bool:
    """Whether ``data`` with ``bit`` flipped is ``header`` cut short: its first
    bytes, then zeros to the end."""
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    kept = len(bytes(flipped).rstrip(b"\x00"))
    return kept < len(header) and flipped[:kept] == header[:kept]


def _rare_bitflip_frame_length(disk: _Disk, rng: random.Random) -> _Plan | None:
    """A bit set in the length of a frame of the last segment, so the frame now
    claims to reach past the end of the file while its length stays within any
    record limit (``_LENGTH_MAX``): bit rot, not a tear (the frame's check word
    no longer matches), so recovery must refuse, not cut a torn tail there
    (mutation s13 #57 read it as torn, and cut synced records)."""
    segments = disk.segments()
    if not segments:
        return None
    name = segments[-1][1]
    data = disk.files[name]
    whole = memoryview(data)
    bits: list[int] = []
    offset = SEGMENT_HEADER_BYTES
    while len(data) >= offset and not isinstance(
        found := scan_frame(whole, offset, _RECORD_MAX), FrameStop
    ):
        size = int.from_bytes(data[offset : offset + 4], "little")
        for bit in range(32):
            grown = size | (1 << bit)
            if (
                grown != size
                and grown <= _LENGTH_MAX
                and offset + FRAME_OVERHEAD + grown > len(data)
            ):
                bits.append(offset * 8 + bit)  # the length is stored little-endian
        offset = found.end
    if not bits:
        return None
    bit = rng.choice(bits)
    path = disk.path(name)
    detail = f"bit {bit % 8} of byte {bit // 8}, a frame length grown past the end"
    fault = StorageFault("bitflip", path, bit // 8, detail, REFUSE)

    def apply() -> None:
        disk.fs.crash()
        disk.fs.flip_bit(path, bit)

    return fault, apply


def _rare_lost_seal_before_empty(disk: _Disk, rng: random.Random) -> _Plan | None:
    """The seal of the second-to-last segment is lost, the last holding no record
    (a roll-over cut short): read back as zeros, or, half the time, lost with
    the file's size (the segment then ends cleanly where the seal began)."""
    seals = [
        write
        for writes in _lost_writes(disk).values()
        for write in writes
        if write.why == "a seal before an empty one"
    ]
    if not seals:
        return None
    seal = rng.choice(seals)
    if rng.random() < 0.5:
        return _lost_plan(disk, seal)
    return _lost_tail_plan(disk, seal.name, seal.offset, seal.expect, "the seal and its size")


def _rare_snapshot_cut_in_frame(disk: _Disk, rng: random.Random) -> _Plan | None:
    """A snapshot's writes from inside one of its frames on never reached the media:
    half the time the file reads shorter (its size lost too, the file ends inside
    that frame, its 8-byte length kept), else the rest of that write reads as
    zeros (its last sectors lost). The snapshot rule says what recovery must do."""
    cuts: list[tuple[str, int, int]] = []  # (name, cut at, end of that write)
    for name in sorted(disk.files):
        if parse_snapshot_name(name) is None:
            continue
        data = disk.files[name]
        for at, length in disk.fs.write_ranges(disk.path(name)):
            if length > 8 and any(data[at + 8 : at + length]):
                cuts.append((name, at + rng.randint(8, length - 1), at + length))
    if not cuts:
        return None
    name, cut, end = rng.choice(cuts)
    expect = _expect_damaged(disk, name)
    if rng.random() < 0.5 or not any(disk.files[name][cut:end]):
        return _lost_tail_plan(disk, name, cut, expect, "inside a snapshot frame")
    path = disk.path(name)
    detail = f"{end - cut} synced bytes read as zeros (the tail of a snapshot frame's write)"
    fault = StorageFault("lost", path, cut, detail, expect)

    def apply() -> None:
        disk.fs.crash()
        disk.fs.lose_write(path, cut, end - cut)

    return fault, apply


def _lost_tail_plan(disk: _Disk, name: str, size: int, expect: str, why: str) -> _Plan:
    """The synced bytes of ``name`` from ``size`` on are lost with the file's size."""
    path = disk.path(name)
    lost = len(disk.files[name]) - size
    detail = f"the last {lost} synced bytes lost with the file's size ({why})"
    fault = StorageFault("lost", path, size, detail, expect)

    def apply() -> None:
        disk.fs.crash()
        disk.fs.lose_tail(path, size)

    return fault, apply


def _first_frame_bytes(data: bytes) -> int:
    """The length of the frame right after a segment's header (0: none whole)."""
    view = memoryview(data)
    found = scan_frame(view, SEGMENT_HEADER_BYTES, _RECORD_MAX)
    return 0 if isinstance(found, FrameStop) else found.end - found.offset


_RARE: tuple[tuple[str, Callable[[_Disk, random.Random], _Plan | None]], ...] = (
    ("lost", _rare_lost_below_snapshot),
    ("lost", _rare_lost_inner_seal),
    ("bitflip", _rare_bitflip_newest_snapshot),
    ("misdirected", _rare_misdirected_seal),
    ("misdirected", _rare_misdirected_header),
    ("torn", _rare_torn_in_frame_header),
    ("lost", _rare_lost_seal_before_empty),
    ("lost", _rare_snapshot_cut_in_frame),
)


# Struck by ``strike_rare`` only when the disk holds none of ``_RARE`` (a log
# whose last segment holds a frame always holds it), so the choices among
# those stay as they were; not listed by ``rare_targets``.
_RARE_FALLBACK: tuple[tuple[str, Callable[[_Disk, random.Random], _Plan | None]], ...] = (
    ("bitflip", _rare_bitflip_frame_length),
    ("bitflip", _rare_bitflip_segment_header),
)


_PLANNERS: dict[str, Callable[[_Disk, random.Random], _Plan | None]] = {
    "torn": _plan_torn,
    "bitflip": _plan_bitflip,
    "lost": _plan_lost,
    "misdirected": _plan_misdirected,
    "dirent": _plan_dirent,
}
