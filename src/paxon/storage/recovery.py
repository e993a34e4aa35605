"""Reading a data directory back: what is there, what is damaged, what state it holds.

``inspect_data_dir`` only reads. It returns an ``Inspection``: the identity,
every segment and snapshot with what was found in it, the repairs a start-up
would make (cut a torn tail, drop the empty segment of a cut-short roll-over,
remove ``*.tmp`` files), the recovered acceptor state, and the first damage.
``Storage.open`` raises that damage or performs those repairs; ``paxon check``
prints them.

Recovery starts from the newest valid snapshot (its checkpoint) and replays
the log after the snapshot's lsn, through ``paxon.protocol.records.recover``.
Every segment still on disk is read and checked, including those below the
snapshot: damage anywhere stops the start.

Decision table (first matching row wins; "last" is the segment with the
highest first lsn, after the roll-over row has been applied):

| where          | what is found                                    | decision             |
|----------------|--------------------------------------------------|----------------------|
| IDENTITY       | unreadable, bad checksum                         | CorruptIdentity      |
| IDENTITY       | missing, but segments or snapshots exist         | CorruptIdentity      |
| IDENTITY       | missing, no segment, no snapshot                 | fresh start          |
| IDENTITY       | other node or cluster (when ``expected`` given)  | IdentityMismatch     |
| seg. / snap.   | header of another incarnation                    | IdentityMismatch     |
| snapshot       | any defect (it was renamed complete)             | skip it, warn        |
| newest usable  | checksums hold, contents refused (``check``)     | UnrestorableSnapshot |
| snapshots      | none valid, and the log does not start at lsn 1  | the newest's damage  |
| segments       | none, but a snapshot exists                      | MissingSegment       |
| first segment  | starts after snapshot lsn + 1 (after 1 without)  | MissingSegment       |
| any segment    | bad header/frame/payload, or data after a seal   | CorruptRecord        |
| last two       | last holds no record (or a short header (*)),    | roll-over cut short: |
|                | the one before it is not sealed                  | drop the last        |
| only segment   | a short header (*), lsn 1, no snapshot           | creation cut short:  |
|                |                                                  | drop it              |
| not last       | sealed, next starts where the seal says          | ok                   |
| not last       | sealed, next starts later                        | MissingSegment       |
| not last       | sealed, next starts earlier                      | CorruptRecord        |
| not last       | not sealed, torn, or a short header              | CorruptRecord        |
| last           | sealed                                           | MissingSegment       |
| last           | ends inside a frame, or in zeros (a frame cut,   | torn tail: cut it    |
|                | then zero-filled to the end, included)           |                      |
| last           | short header (the roll-over row did not apply)   | CorruptRecord        |
| log, snapshot  | the log ends before the snapshot's lsn           | MissingSegment       |
| log, snapshot  | recovered log_start above the snapshot's slot    | MissingSnapshot      |

(*) A short header: the file is the start of the header its name and
incarnation call for, then zeros, if any, to its end, shorter than a header or
not (``segments.py``); a short file with any other byte is damage.

Contents: when ``inspect_data_dir`` is given ``check_snapshot`` (``paxon
check`` gives the KV store's decoder), every snapshot's data is decoded too. A
snapshot that passes its checksums but not the decoder is not disk damage: its
bytes are what a node wrote or accepted, so the cause is a software or format
mismatch that an older snapshot shares. Recovery does not fall back past it:
it stops, naming the file. (The runtime applies the same rule when it restores
the chosen snapshot: ``paxon.node.Node`` raises ``UnrestorableSnapshot``.)

A torn tail is never a bad checksum: a frame that is whole but fails its CRC
is damage even at the very end, because a crash only ever shortens a file
(and zero-fills it on some file systems); it never rewrites bytes already
written. That is also why a flipped bit in the last record is reported, not
cut off and lost. The one whole frame that is torn is a cut write the file
system zero-filled: every byte from inside the frame (its CRC field
included) to the end of the file is zero (``codec.py``'s rules).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from paxon.protocol.records import AcceptRecord, DurableState, Record, recover
from paxon.storage.codec import ConfigRecord, StorageRecord
from paxon.storage.errors import (
    CorruptIdentity,
    CorruptRecord,
    CorruptSnapshot,
    DataDirDamaged,
    MissingSegment,
    MissingSnapshot,
    UnrestorableSnapshot,
)
from paxon.storage.fs import FileSystem, join
from paxon.storage.identity import Identity, check_identity, decode_identity
from paxon.storage.layout import (
    FIRST_CONFIG_NAME,
    IDENTITY_NAME,
    LOCK_NAME,
    is_paxon_tmp,
    parse_segment_name,
    parse_snapshot_name,
    segment_name,
)
from paxon.storage.segments import SegmentScan, scan_segment
from paxon.storage.snapshot import SnapshotMeta, SnapshotReader

# Paxon's files that recovery does not read (LOCK; FIRST-CONFIG is the node's).
_OTHER_PAXON_FILES = (LOCK_NAME, FIRST_CONFIG_NAME)


@dataclass(frozen=True, slots=True)
class TornTail:
    """The end of the last segment that a crash left half written."""

    path: str
    offset: int
    size: int
    reason: str


@dataclass(slots=True)
class SnapshotFile:
    name: str
    lsn: int
    slot: int
    meta: SnapshotMeta | None = None
    damage: DataDirDamaged | None = None


@dataclass(slots=True)
class LogStats:
    """Counts for ``paxon check``."""

    records: Counter[str] = field(default_factory=Counter)
    slot_accepted_min: int | None = None
    slot_accepted_max: int | None = None

    def add(self, record: StorageRecord) -> None:
        self.records[type(record).__name__] += 1
        if isinstance(record, AcceptRecord):
            slot = record.entry.slot
            if self.slot_accepted_min is None or slot < self.slot_accepted_min:
                self.slot_accepted_min = slot
            if self.slot_accepted_max is None or slot > self.slot_accepted_max:
                self.slot_accepted_max = slot


@dataclass(slots=True)
class Inspection:
    directory: str
    identity: Identity | None = None
    segments: list[SegmentScan] = field(default_factory=list)
    snapshots: list[SnapshotFile] = field(default_factory=list)
    snapshot_used: SnapshotMeta | None = None
    lsn_last: int = 0
    records_replayed: int = 0
    state: DurableState | None = None
    config: ConfigRecord | None = None
    stats: LogStats = field(default_factory=LogStats)
    # Repairs a start-up makes; none of them touches a byte that was durable.
    torn: TornTail | None = None
    drop_segment: str | None = None
    tmp_files: list[str] = field(default_factory=list)
    unknown_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    damage: DataDirDamaged | None = None

    @property
    def fresh(self) -> bool:
        """No identity yet: the directory was never used by a node."""
        return self.identity is None and self.damage is None


class _Damaged(Exception):
    def __init__(self, damage: DataDirDamaged) -> None:
        self.damage = damage


def inspect_data_dir(
    fs: FileSystem,
    directory: str,
    *,
    record_max: int,
    expected: tuple[int, str] | None = None,
    check_snapshot: Callable[[bytes], int | None] | None = None,
) -> Inspection:
    """Read and check everything in ``directory``; never writes, never raises damage.

    ``expected`` is ``(node_id, cluster_id)``; when given, an identity that
    differs is damage (``IdentityMismatch``). ``check_snapshot`` decodes a
    snapshot's data and raises when it would not restore (any ``Exception``);
    it returns the slot the data covers, which must be the file's (or None
    when the data does not say).
    """
    found = Inspection(directory)
    try:
        _inspect(fs, found, record_max, expected, check_snapshot)
    except _Damaged as stop:
        found.damage = stop.damage
        found.state = None
    return found


def _inspect(
    fs: FileSystem,
    found: Inspection,
    record_max: int,
    expected: tuple[int, str] | None,
    check_snapshot: Callable[[bytes], int | None] | None,
) -> None:
    directory = found.directory
    segment_names: list[tuple[int, str]] = []
    snapshot_names: list[tuple[int, int, str]] = []
    has_identity = False
    for name in fs.listdir(directory):
        if (first_lsn := parse_segment_name(name)) is not None:
            segment_names.append((first_lsn, name))
        elif (lsn_slot := parse_snapshot_name(name)) is not None:
            snapshot_names.append((*lsn_slot, name))
        elif name == IDENTITY_NAME:
            has_identity = True
        elif is_paxon_tmp(name):
            found.tmp_files.append(name)
        elif name not in _OTHER_PAXON_FILES:  # sim: one-way: simulated dirs hold paxon's only
            found.unknown_files.append(name)
    segment_names.sort()
    snapshot_names.sort()
    identity_path = join(directory, IDENTITY_NAME)
    if not has_identity:
        # A journal commits names in order: a segment's reaches the disk only
        # after IDENTITY's did (test_storage_wal.py removes it by hand).
        if segment_names or snapshot_names:  # sim: one-way: needs IDENTITY deleted by hand
            raise _Damaged(
                CorruptIdentity(identity_path, "missing, but the directory holds log files")
            )
        return
    try:
        found.identity = identity = decode_identity(fs.read(identity_path), identity_path)
        if expected is not None:  # sim: one-way: Storage.open names its node; paxon check does not
            check_identity(identity, *expected, identity_path)
    except DataDirDamaged as damage:
        raise _Damaged(damage) from None
    _inspect_snapshots(fs, found, snapshot_names, identity.incarnation, record_max, check_snapshot)
    _inspect_log(fs, found, segment_names, identity.incarnation, record_max)


def _inspect_snapshots(
    fs: FileSystem,
    found: Inspection,
    names: list[tuple[int, int, str]],
    incarnation: int,
    record_max: int,
    check_snapshot: Callable[[bytes], int | None] | None,
) -> None:
    for lsn, slot, name in names:
        entry = SnapshotFile(name, lsn, slot)
        try:
            with SnapshotReader(fs, found.directory, name, incarnation, record_max) as reader:
                # Contents are decoded here by paxon check only (the runtime checks
                # them when it restores), and only it reaches _check_contents (the
                # simulator runs it before each start: sim/offline_check.py).
                if check_snapshot is None:  # paxon check decodes the contents too
                    meta = reader.verify()
                else:
                    meta, data = reader.read_verified()
            # A CRC-good header names its own file, unless a misdirected write
            # landed another snapshot's head on it (the simulator aims one:
            # sim/storage_faults.py, strike_snapshot_head_misdirected).
            if (meta.lsn, meta.slot) != (lsn, slot):
                raise CorruptSnapshot(
                    reader.path, 0, f"holds lsn {meta.lsn}, slot {meta.slot}; the name disagrees"
                )
            if check_snapshot is not None:
                _check_contents(check_snapshot, data, meta.slot, reader.path)
            entry.meta = meta
        except DataDirDamaged as damage:
            entry.damage = damage
        found.snapshots.append(entry)


def _check_contents(
    check: Callable[[bytes], int | None], data: bytes, slot: int, path: str
) -> None:
    try:
        slot_found = check(data)
    # Any refusal of untrusted bytes: the decoder's own types vary.
    except Exception as error:  # sim: unreachable: bytes whose checksums hold decode
        raise UnrestorableSnapshot(path, str(error) or type(error).__name__) from None
    if slot_found is not None and slot_found != slot:  # sim: one-way: only a writer bug splits them
        raise UnrestorableSnapshot(
            path, f"it holds the state below slot {slot_found}, its header says slot {slot}"
        )


def _inspect_log(
    fs: FileSystem,
    found: Inspection,
    names: list[tuple[int, str]],
    incarnation: int,
    record_max: int,
) -> None:
    directory = found.directory
    snapshot = _choose_snapshot(found, names)
    base = snapshot.lsn if snapshot is not None else 0
    replay: list[StorageRecord] = []

    def visit(lsn: int, record: StorageRecord) -> None:
        found.stats.add(record)
        if lsn > base:
            replay.append(record)

    for first_lsn, name in names:
        path = join(directory, name)
        scan = scan_segment(fs.read(path), path, first_lsn, incarnation, record_max, visit)
        found.segments.append(scan)
        if scan.damage is not None:
            raise _Damaged(scan.damage)
    _check_chain(found, has_snapshot=bool(found.snapshots))
    live = [scan for scan in found.segments if scan.path != found.drop_segment]
    found.lsn_last = live[-1].lsn_last if live else 0
    if snapshot is not None and found.lsn_last < snapshot.lsn:
        last = live[-1].path if live else join(directory, segment_name(base + 1))
        raise _Damaged(
            MissingSegment(
                last,
                f"the log ends at lsn {found.lsn_last}, before snapshot {snapshot.name} "
                f"(lsn {snapshot.lsn})",
            )
        )
    _fold(found, snapshot, replay)


def _choose_snapshot(found: Inspection, names: list[tuple[int, str]]) -> SnapshotMeta | None:
    """The newest valid snapshot the log reaches back to (see the decision table)."""
    first_lsn = names[0][0] if names else None
    directory = found.directory
    # The rows below need segments gone that no single fault removes: only
    # sealed segments below a kept snapshot are deleted, never the active one;
    # a lost directory fsync hides only the newest names; one snapshot at most
    # is damaged per crash (test_storage_recovery.py makes each by hand).
    if first_lsn is None and found.snapshots:  # sim: one-way: see above
        raise _Damaged(
            MissingSegment(join(directory, "wal-*.seg"), "no log segment, but snapshots exist")
        )
    skipped: list[SnapshotFile] = []
    for entry in reversed(found.snapshots):
        meta = entry.meta
        if isinstance(entry.damage, UnrestorableSnapshot):  # sim: one-way: paxon check only
            raise _Damaged(entry.damage)  # no fall back past it (module docstring)
        if meta is None:
            skipped.append(entry)
            continue
        assert first_lsn is not None
        if first_lsn > meta.lsn + 1:  # sim: one-way: see above
            raise _Damaged(
                MissingSegment(
                    join(directory, names[0][1]),
                    f"the log must reach back to lsn {meta.lsn + 1} (snapshot {meta.name}); "
                    f"the first segment starts at lsn {first_lsn}",
                )
            )
        for bad in skipped:
            found.warnings.append(f"skipped damaged snapshot: {bad.damage}")
        found.snapshot_used = meta
        return meta
    if skipped:
        if first_lsn != 1:
            damage = skipped[0].damage
            assert damage is not None
            raise _Damaged(damage)
        for bad in skipped:
            found.warnings.append(f"skipped damaged snapshot: {bad.damage}")
    if first_lsn is not None and first_lsn != 1:  # sim: one-way: see above
        raise _Damaged(
            MissingSegment(
                join(directory, segment_name(1)),
                f"no snapshot, so the log must start at lsn 1; it starts at lsn {first_lsn}",
            )
        )
    return None


def _check_chain(found: Inspection, *, has_snapshot: bool) -> None:
    """Apply the segment rows of the decision table; set ``torn`` and ``drop_segment``."""
    scans = found.segments
    if not scans:
        return
    last = scans[-1]
    if last.records == 0 and last.end in ("open", "header_torn"):
        if len(scans) >= 2 and scans[-2].end != "sealed":
            found.drop_segment = last.path
            scans = scans[:-1]
        elif len(scans) == 1 and last.end == "header_torn":
            # A segment after lsn 1 comes from a roll-over, which keeps its
            # unsealed predecessor: the row above (test_storage_recovery.py).
            if has_snapshot or last.first_lsn != 1:  # sim: one-way: see above
                raise _Damaged(CorruptRecord(last.path, 0, "file shorter than a segment header"))
            found.drop_segment = last.path
            return
    directory = found.directory
    for scan, successor in zip(scans, [*scans[1:], None], strict=True):
        if successor is None:
            _check_last(found, scan)
        elif scan.end != "sealed":
            raise _Damaged(CorruptRecord(scan.path, scan.valid_bytes, _unsealed_reason(scan)))
        # A gap or an overlap between two segments that both scan clean needs a
        # segment lost from the middle, or a seal rewritten consistently: no
        # single fault does either (a lost directory fsync brings back only the
        # oldest, compacted ones; a moved seal fails the seal check in scan).
        elif successor.first_lsn > (seal := scan.seal_next or 0):  # sim: one-way: see above
            raise _Damaged(
                MissingSegment(
                    join(directory, segment_name(seal)),
                    f"missing: {scan.path} is sealed and names it as the next segment",
                )
            )
        elif successor.first_lsn < seal:  # sim: one-way: see above
            raise _Damaged(
                CorruptRecord(
                    successor.path, 0, f"overlaps {scan.path}, which ends at lsn {seal - 1}"
                )
            )


def _check_last(found: Inspection, scan: SegmentScan) -> None:
    if scan.end == "sealed":
        raise _Damaged(
            MissingSegment(
                join(found.directory, segment_name(scan.seal_next or 0)),
                f"missing: {scan.path} is sealed and names it as the next segment",
            )
        )
    # A short header is the last segment only of a roll-over cut short (dropped
    # in _check_chain), or the only segment (handled there too): a segment is
    # sealed, and gets a successor, only after its own header is durable.
    if scan.end == "header_torn":  # sim: one-way: handled by _check_chain
        raise _Damaged(CorruptRecord(scan.path, 0, "file shorter than a segment header"))
    if scan.end == "torn":
        found.torn = TornTail(
            scan.path, scan.valid_bytes, scan.size - scan.valid_bytes, scan.torn_reason
        )


def _unsealed_reason(scan: SegmentScan) -> str:
    # A roll-over makes its seal durable before the new segment gets a record,
    # so a single fault leaves an inner segment unsealed only by zeroing its
    # seal (a lost or misdirected write: torn). A clean end or a short header
    # there needs bytes removed by hand (test_storage_recovery.py).
    if scan.end == "torn":  # sim: one-way: see above
        return f"torn record in a segment that is not the last ({scan.torn_reason})"
    if scan.end == "header_torn":  # sim: unreachable: see above
        return "file shorter than a segment header"
    return "segment ends without a seal, but a later segment holds records"


def _fold(found: Inspection, snapshot: SnapshotMeta | None, replay: list[StorageRecord]) -> None:
    records: list[Record] = snapshot.checkpoint_records() if snapshot is not None else []
    config = snapshot.config if snapshot is not None else None
    for record in replay:
        if isinstance(record, ConfigRecord):  # sim: one-way: the runtime writes no ConfigRecord
            config = record
        else:
            records.append(record)
    found.state = state = recover(records)
    found.config = config
    found.records_replayed = len(replay)
    slot_covered = snapshot.slot if snapshot is not None else 0
    if state.log_start > slot_covered:
        where = snapshot.name if snapshot is not None else "snapshot-*.snap"
        raise _Damaged(
            MissingSnapshot(
                join(found.directory, where),
                f"the log marks slots below {state.log_start} as snapshotted, but the newest "
                f"usable snapshot covers only slots below {slot_covered}",
            )
        )
