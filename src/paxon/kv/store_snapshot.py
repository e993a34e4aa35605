"""A snapshot of the key-value store read back and checked, field by field.

``decode_snapshot`` trusts nothing in the bytes: a snapshot comes from a peer
or a backup file, and whatever it holds either passes every check below or is
refused with a ``KvDecodeError`` naming what is wrong, before the store is
touched. The store writes snapshots (``KvStore.snapshot_later``) in the layout
``SNAPSHOT_FORMAT`` describes.
"""

from __future__ import annotations

from typing import Final

from paxon.kv.auth import NAME_MAX_BYTES, AuthState, decode_auth_state
from paxon.kv.codec import KvDecodeError, keyvalue_from_fields, unpack
from paxon.kv.leases import LeaseRow
from paxon.kv.model import INT_MAX, KeyValue

SNAPSHOT_FORMAT: Final = 3
"""Snapshot layout: [format, revision, revision_compacted, [kv...], [[key, [entry...]]...], auth,
leases] with kv = [key, value, version, create_revision, mod_revision] sorted by key,
entry = [revision_end, value, version, create_revision, mod_revision] oldest first,
auth as ``paxon.kv.auth.encode_auth_state`` writes it and leases = [log_time_ms,
next_id, [[id, ttl_ms, expiry_ms, [key...]]...]] by id, keys sorted; a lease with an
owner (granted under auth) has the owner's name as a fifth field, one from before
owners or without auth has four. Format 2 (the same without leases, from before
them) and 1 (without auth either) still load."""
_SNAPSHOT_FORMAT_NO_LEASES: Final = 2
_SNAPSHOT_FORMAT_NO_AUTH: Final = 1

HistoryEntry = tuple[int, KeyValue]
"""``(revision_end, kv)``: ``kv`` was the value for revisions [kv.mod_revision, revision_end)."""


_LeaseState = tuple[int, int, list[LeaseRow], list[tuple[str, int]]]
"""``(log_time_ms, next_id, [(id, ttl_ms, expiry_ms, keys, owner)...], [(lock, until_ms)...])``
of a snapshot."""


def decode_snapshot(
    data: bytes, leases_max: int
) -> tuple[int, int, dict[str, KeyValue], dict[str, list[HistoryEntry]], AuthState, _LeaseState]:
    """Parse and check a snapshot; raise ``KvDecodeError`` naming what is wrong."""
    fields = unpack(data, "snapshot")
    lease_fields: object = [0, 1, [], []]
    if (
        type(fields) is list
        and len(fields) == 7
        and type(fields[0]) is int
        and fields[0] == SNAPSHOT_FORMAT
    ):
        lease_fields = fields.pop()
        fields[0] = _SNAPSHOT_FORMAT_NO_LEASES
    if (
        type(fields) is list
        and len(fields) == 6
        and type(fields[0]) is int
        and fields[0] == _SNAPSHOT_FORMAT_NO_LEASES
    ):
        try:
            auth = decode_auth_state(fields.pop())
        except ValueError as error:
            raise KvDecodeError(f"snapshot: auth: {error}") from None
    elif (
        type(fields) is list
        and len(fields) == 5
        and type(fields[0]) is int
        and fields[0] == _SNAPSHOT_FORMAT_NO_AUTH
    ):
        auth = AuthState()
    else:
        raise KvDecodeError(
            f"snapshot: expected format {SNAPSHOT_FORMAT} with 7 fields (or 2 with 6, 1 with 5)"
        )
    _, revision, revision_compacted, kvs, history_fields = fields
    if type(revision) is not int or not 0 <= revision <= INT_MAX:
        raise KvDecodeError("snapshot: revision: expected an integer >= 0")
    if type(revision_compacted) is not int or not 0 <= revision_compacted <= revision:
        raise KvDecodeError("snapshot: revision_compacted: expected 0 <= it <= revision")
    current = _snapshot_kvs(kvs, revision)
    history: dict[str, list[HistoryEntry]] = {}
    for key, entries in _snapshot_history(history_fields, revision_compacted, revision):
        if history and key <= next(reversed(history)):
            raise KvDecodeError(f"snapshot: history keys out of order at {key!r}")
        live = current.get(key)
        if live is not None and entries[-1][0] > live.mod_revision:
            raise KvDecodeError(f"snapshot: history of {key!r} ends after its live value")
        history[key] = entries
    leases = _snapshot_leases(lease_fields, current, leases_max)
    return revision, revision_compacted, current, history, auth, leases


def _snapshot_leases(fields: object, current: dict[str, KeyValue], leases_max: int) -> _LeaseState:
    """The leases of a snapshot, checked: ids rising below ``next_id``, each
    attached key live and attached once, an owner (if any) a possible user
    name, at most ``leases_max``; and the lock-delays, names rising. (An
    owner's count is not held to ``leases_per_user_max``: a lowered limit
    refuses new grants, it does not make a snapshot unreadable.)"""
    if type(fields) is not list or len(fields) != 4:
        raise KvDecodeError(
            "snapshot: leases: expected [log_time_ms, next_id, [lease...], [delay...]]"
        )
    log_time_ms, next_id, rows, delay_rows = fields
    delays = _snapshot_lock_delays(delay_rows)
    if type(log_time_ms) is not int or not 0 <= log_time_ms <= INT_MAX:
        raise KvDecodeError("snapshot: leases: log_time_ms: expected an integer >= 0")
    if type(next_id) is not int or not 1 <= next_id <= INT_MAX:
        raise KvDecodeError("snapshot: leases: next_id: expected an integer >= 1")
    if type(rows) is not list or len(rows) > leases_max:
        raise KvDecodeError(f"snapshot: leases: expected an array of at most {leases_max}")
    leases: list[LeaseRow] = []
    attached: set[str] = set()
    previous_id = 0
    for row in rows:
        if type(row) is not list or len(row) not in (4, 5):
            raise KvDecodeError(
                "snapshot: lease: expected [id, ttl_ms, expiry_ms, [key...]] and maybe an owner"
            )
        lease_id, ttl_ms, expiry_ms, keys = row[:4]
        owner = row[4] if len(row) == 5 else None
        if len(row) == 5 and not (type(owner) is str and 0 < len(owner) <= NAME_MAX_BYTES):
            raise KvDecodeError(f"snapshot: lease {lease_id!r}: owner: expected a user name")
        if not (
            type(lease_id) is int
            and previous_id < lease_id < next_id
            and type(ttl_ms) is int
            and 1 <= ttl_ms <= INT_MAX
            and type(expiry_ms) is int
            and 0 <= expiry_ms <= INT_MAX
            and type(keys) is list
        ):
            raise KvDecodeError(f"snapshot: lease {lease_id!r}: impossible id, TTL or expiry")
        for key in keys:
            if type(key) is not str or key not in current or key in attached:
                raise KvDecodeError(
                    f"snapshot: lease {lease_id}: key {key!r:.80} is not a live key, "
                    "or is attached twice"
                )
            attached.add(key)
        leases.append((lease_id, ttl_ms, expiry_ms, keys, owner))
        previous_id = lease_id
    return log_time_ms, next_id, leases, delays


def _snapshot_lock_delays(rows: object) -> list[tuple[str, int]]:
    if type(rows) is not list:
        raise KvDecodeError("snapshot: lock delays: expected an array")
    delays: list[tuple[str, int]] = []
    for row in rows:
        if (
            type(row) is not list
            or len(row) != 2
            or type(row[0]) is not str
            or type(row[1]) is not int
            or not 0 < row[1] <= INT_MAX
            or (delays and row[0] <= delays[-1][0])
        ):
            raise KvDecodeError("snapshot: lock delay: expected [name, until_ms], names rising")
        delays.append((row[0], row[1]))
    return delays


def _snapshot_kvs(kvs: object, revision: int) -> dict[str, KeyValue]:
    """The live values of a snapshot, by key, checked: sorted unique keys, the
    fields' types, and revisions that can have happened by ``revision``."""
    if type(kvs) is not list:
        raise KvDecodeError("snapshot: kvs: expected an array")
    current: dict[str, KeyValue] = {}
    previous = ""
    make_kv = KeyValue._make
    # One loop with the checks inline: a snapshot holds up to millions of keys,
    # and a call per field (keyvalue_from_fields) doubled the decoding time.
    # Anything that fails a check goes through keyvalue_from_fields for its message.
    for fields in kvs:
        if type(fields) is list and len(fields) == 5:
            key, value, version, create_revision, mod_revision = fields
            if (
                type(key) is str
                and type(value) is bytes
                and type(version) is int
                and type(create_revision) is int
                and type(mod_revision) is int
            ):
                if not (version >= 1 and 1 <= create_revision <= mod_revision <= revision):
                    raise KvDecodeError(f"snapshot: impossible revisions for {key!r}")
                if key <= previous and current:
                    raise KvDecodeError(f"snapshot: keys out of order at {key!r}")
                current[key] = make_kv(fields)
                previous = key
                continue
        try:
            keyvalue_from_fields(fields)  # raises, naming the field
        except KvDecodeError as error:
            raise KvDecodeError(f"snapshot: kvs: {error}") from None
        raise AssertionError(f"snapshot: fields the fast path refused were accepted: {fields!r}")
    return current


def _snapshot_history(
    history: object, revision_compacted: int, revision: int
) -> list[tuple[str, list[HistoryEntry]]]:
    if type(history) is not list:
        raise KvDecodeError("snapshot: history: expected an array")
    found = []
    for item in history:
        if type(item) is not list or len(item) != 2 or type(item[0]) is not str:
            raise KvDecodeError("snapshot: history: expected [key, [entry...]]")
        key, entry_fields = item
        if type(entry_fields) is not list or not entry_fields:
            raise KvDecodeError(f"snapshot: history of {key!r}: expected entries")
        entries: list[HistoryEntry] = []
        revision_end_before = revision_compacted
        for fields in entry_fields:
            if type(fields) is not list or len(fields) != 5:
                raise KvDecodeError(f"snapshot: history of {key!r}: expected 5 fields")
            revision_end = fields[0]
            kv = keyvalue_from_fields([key, *fields[1:]])
            if (
                type(revision_end) is not int
                or not revision_end_before < revision_end <= revision
                or not (kv.version >= 1 and 1 <= kv.create_revision <= kv.mod_revision)
                or kv.mod_revision >= revision_end
            ):
                raise KvDecodeError(f"snapshot: history of {key!r}: impossible revisions")
            entries.append((revision_end, kv))
            revision_end_before = revision_end
        found.append((key, entries))
    return found
