"""Leases of the key-value store: grant, keep-alive, revoke, expiry by log time,
keys deleted with their lease at one revision, and a leader change that never
shortens a lease (``paxon.kv.leases``, ``paxon.kv.store``, ``paxon.node.machine``)."""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paxon.errors import Busy, LeaseNotFound, PermissionDenied
from paxon.kv.auth import (
    PASSWORD_HASH_BYTES,
    TOKEN_KEY_BYTES,
    AuthEnable,
    RoleAdd,
    RoleGrant,
    UserAdd,
    UserGrantRole,
    issue_token,
)
from paxon.kv.authcodec import encode_auth_command, wrap
from paxon.kv.codec import (
    KvDecodeError,
    decode_command,
    decode_query,
    decode_result,
    encode_command,
    encode_query,
    encode_result,
)
from paxon.kv.model import (
    LEASE_TTL_MAX_MS,
    LEASE_TTL_MIN_MS,
    Delete,
    ErrorResult,
    Get,
    GetResult,
    KvLimits,
    LeaseGrant,
    LeaseGrantResult,
    LeaseKeepAlive,
    LeaseKeepAliveResult,
    LeaseList,
    LeaseListResult,
    LeaseRevoke,
    LeaseRevokeResult,
    LeaseTimeToLive,
    LeaseTimeToLiveResult,
    Put,
    PutOp,
    PutResult,
    Txn,
    TxnResult,
)
from paxon.kv.store import KvStore
from paxon.node.logclock import clock_command
from paxon.node.machine import ReplicatedMachine
from paxon.protocol.ready import ChosenEntry
from paxon.protocol.types import Command, Value

T0 = 1_800_000_000_000  # a log time, in ms
HASH = b"h" * PASSWORD_HASH_BYTES
TOKEN_KEY = b"k" * TOKEN_KEY_BYTES


def grant(store: KvStore, ttl_ms: int) -> int:
    result = store.execute(LeaseGrant(ttl_ms))
    assert isinstance(result, LeaseGrantResult), result
    return result.lease


def keys(store: KvStore) -> set[str]:
    result = store.read(Get("", prefix=True))
    assert isinstance(result, GetResult)
    return {kv.key for kv in result.items}


def timed_store(**limits: int) -> KvStore:
    store = KvStore(KvLimits(**limits))
    store.on_log_time(T0)
    return store


def test_a_lease_ends_when_log_time_passes_its_expiry_and_takes_its_keys_at_one_revision() -> None:
    store = timed_store()
    lease = grant(store, 5_000)
    store.execute(Put("a", b"1", lease=lease))
    store.execute(Put("b", b"2", lease=lease))
    store.execute(Put("free", b"3"))
    assert store.revision == 3
    store.on_log_time(T0 + 4_999)
    assert keys(store) == {"a", "b", "free"}
    store.on_log_time(T0 + 5_000)
    assert keys(store) == {"free"}
    assert store.revision == 4, "both keys went at one revision"
    assert store.read(LeaseList()) == LeaseListResult(())
    store.check_invariants()


def test_keep_alive_gives_a_whole_ttl_from_its_log_time() -> None:
    store = timed_store()
    lease = grant(store, 5_000)
    store.on_log_time(T0 + 4_000)
    assert store.execute(LeaseKeepAlive(lease)) == LeaseKeepAliveResult(lease, 5_000)
    store.on_log_time(T0 + 8_999)
    assert store.read(LeaseList()) == LeaseListResult((lease,))
    ttl = store.read(LeaseTimeToLive(lease))
    assert ttl == LeaseTimeToLiveResult(lease, 5_000, 1, ())
    store.on_log_time(T0 + 9_000)
    result = store.execute(LeaseKeepAlive(lease))
    assert isinstance(result, ErrorResult) and result.code == LeaseNotFound.code


def test_revoke_deletes_the_keys_and_a_lease_without_keys_moves_no_revision() -> None:
    store = timed_store()
    empty, held = grant(store, 5_000), grant(store, 5_000)
    store.execute(Put("k", b"v", lease=held))
    assert store.execute(LeaseRevoke(empty)) == LeaseRevokeResult(0, 1)
    assert store.execute(LeaseRevoke(held)) == LeaseRevokeResult(1, 2)
    assert keys(store) == set()
    again = store.execute(LeaseRevoke(held))
    assert isinstance(again, ErrorResult) and again.code == "lease_not_found"


def test_a_put_without_a_lease_detaches_and_a_delete_forgets_the_key() -> None:
    store = timed_store()
    lease = grant(store, 5_000)
    store.execute(Put("k", b"v", lease=lease))
    store.execute(Put("k", b"w"))  # detached, as in etcd
    store.execute(Put("gone", b"v", lease=lease))
    store.execute(Delete("gone"))
    store.execute(Put("gone", b"again"))
    assert store.read(LeaseTimeToLive(lease, keys=True)) == LeaseTimeToLiveResult(
        lease, 5_000, 5_000, ()
    )
    store.on_log_time(T0 + 5_000)
    assert keys(store) == {"k", "gone"}
    store.check_invariants()


def test_a_key_moves_to_the_lease_of_its_last_put() -> None:
    store = timed_store()
    first, second = grant(store, 5_000), grant(store, 9_000)
    store.execute(Put("k", b"v", lease=first))
    store.execute(Put("k", b"w", lease=second))
    store.on_log_time(T0 + 5_000)
    assert keys(store) == {"k"}
    store.on_log_time(T0 + 9_000)
    assert keys(store) == set()


def test_an_unknown_lease_refuses_the_put_and_the_whole_txn() -> None:
    store = timed_store()
    result = store.execute(Put("k", b"v", lease=99))
    assert isinstance(result, ErrorResult) and result.code == "lease_not_found"
    lease = grant(store, 5_000)
    txn = Txn((), (PutOp("a", b"1", lease),), (PutOp("b", b"2", 77),))
    refused = store.execute(txn)
    assert isinstance(refused, ErrorResult) and "77" in refused.message
    assert store.revision == 0 and keys(store) == set()
    ok = store.execute(Txn((), (PutOp("a", b"1", lease),), ()))
    assert isinstance(ok, TxnResult) and ok.succeeded
    store.on_log_time(T0 + 5_000)
    assert keys(store) == set()


def test_leases_expiring_together_end_in_order_of_expiry_then_id() -> None:
    store = timed_store()
    late, early = grant(store, 3_000), grant(store, 2_000)
    same = grant(store, 3_000)
    for lease in (late, early, same):
        store.execute(Put(f"k{lease}", b"v", lease=lease))
    store.on_log_time(T0 + 10_000)
    revisions = {}
    # The revision at which each key went, read back from history.
    for revision in range(4, store.revision + 1):
        before = store.read(Get("", prefix=True, revision=revision - 1))
        after = store.read(Get("", prefix=True, revision=revision))
        assert isinstance(before, GetResult) and isinstance(after, GetResult)
        (gone,) = {kv.key for kv in before.items} - {kv.key for kv in after.items}
        revisions[gone] = revision
    assert sorted(revisions, key=revisions.__getitem__) == [f"k{early}", f"k{late}", f"k{same}"]


def test_ttl_limits_and_the_table_limit() -> None:
    store = timed_store(leases_max=2)
    for ttl in (LEASE_TTL_MIN_MS - 1, LEASE_TTL_MAX_MS + 1, 0, -5):
        refused = store.execute(LeaseGrant(ttl))
        assert isinstance(refused, ErrorResult) and refused.code == "bad_request"
    grant(store, LEASE_TTL_MIN_MS)
    grant(store, LEASE_TTL_MAX_MS)
    full = store.execute(LeaseGrant(5_000))
    assert isinstance(full, ErrorResult) and full.code == Busy.code
    for bad in (LeaseKeepAlive(0), LeaseRevoke(-1)):
        refused = store.execute(bad)
        assert isinstance(refused, ErrorResult) and refused.code == "bad_request"


def test_ids_are_never_reused() -> None:
    store = timed_store()
    first = grant(store, 5_000)
    store.execute(LeaseRevoke(first))
    assert grant(store, 5_000) == first + 1


def test_keep_alives_do_not_grow_the_deadline_heap_without_bound() -> None:
    store = timed_store()
    lease = grant(store, 5_000)
    for step in range(1, 10_000):
        store.on_log_time(T0 + step)
        store.execute(LeaseKeepAlive(lease))
    assert len(store.leases._deadlines) <= 2 * len(store.leases) + 64
    assert store.next_deadline_ms() == T0 + 9_999 + 5_000


def test_a_new_leader_renews_every_lease_and_never_shortens_one() -> None:
    store = timed_store()
    short, long = grant(store, 2_000), grant(store, 60_000)
    store.on_log_time(T0 + 1_500)
    store.on_leader_change(T0 + 1_900)  # a new leader, its clock a little ahead
    # Each gets its whole TTL from the new leader's first time, as in etcd.
    assert store.leases.get(short).expiry_ms == T0 + 3_900
    assert store.leases.get(long).expiry_ms == T0 + 61_900
    store.on_leader_change(T0 + 1_000)  # one whose clock is behind: nothing shortens
    assert store.leases.get(short).expiry_ms == T0 + 3_900
    store.on_log_time(T0 + 3_899)
    assert store.read(LeaseList()) == LeaseListResult((short, long))


def test_snapshots_carry_leases_and_log_time() -> None:
    store = timed_store()
    lease = grant(store, 5_000)
    store.execute(Put("k", b"v", lease=lease))
    copy = KvStore()
    copy.restore(store.snapshot())
    copy.check_invariants()
    assert copy.log_time_ms == T0
    assert copy.read(LeaseTimeToLive(lease, keys=True)) == LeaseTimeToLiveResult(
        lease, 5_000, 5_000, ("k",)
    )
    assert grant(copy, 5_000) == lease + 1
    copy.on_log_time(T0 + 5_000)
    assert keys(copy) == set()


def test_a_snapshot_from_before_leases_still_loads() -> None:
    store = timed_store()
    store.execute(Put("k", b"v"))
    fields = msgpack.unpackb(store.snapshot())
    assert fields[0] == 3
    copy = KvStore()
    copy.restore(msgpack.packb([2, *fields[1:6]]))
    assert keys(copy) == {"k"} and len(copy.leases) == 0


@pytest.mark.parametrize(
    "leases",
    [
        [0, 1, [[1, 5_000, 10, []]], []],  # an id at or past next_id
        [0, 3, [[2, 5_000, 10, []], [1, 5_000, 10, []]], []],  # ids out of order
        [0, 3, [[1, 5_000, 10, ["missing"]]], []],  # a key that is not live
        [0, 3, [[1, 5_000, 10, ["k"]], [2, 5_000, 10, ["k"]]], []],  # a key attached twice
        [0, 3, [[1, 0, 10, []]], []],  # no TTL
        [-1, 3, [], []],  # log time before 0
        [0, 3, [[1, 5_000, 10, []]] * 3, []],  # more than leases_max
        [0, 3],  # a short header
        [0, 1, [], [["b", 5], ["a", 5]]],  # lock-delays out of order
        [0, 1, [], [["a", 0]]],  # a lock-delay that ended at 0
    ],
)
def test_a_snapshot_with_impossible_leases_is_refused(leases: list[object]) -> None:
    store = KvStore(KvLimits(leases_max=2))
    store.execute(Put("k", b"v"))
    fields = msgpack.unpackb(store.snapshot())
    fields[6] = leases
    with pytest.raises(KvDecodeError):
        KvStore(KvLimits(leases_max=2)).restore(msgpack.packb(fields))


@pytest.mark.parametrize(
    "item",
    [
        LeaseGrant(5_000),
        LeaseKeepAlive(3),
        LeaseRevoke(4),
        Put("k", b"v", None, 7),
        Put("k", b"v", 2, 7),
        Txn((), (PutOp("k", b"v", 9), PutOp("j", b"w")), ()),
    ],
)
def test_lease_commands_round_trip_on_the_wire(item: object) -> None:
    assert decode_command(encode_command(item)) == item  # type: ignore[arg-type]


def test_a_put_without_a_lease_keeps_its_old_wire_form() -> None:
    assert msgpack.unpackb(encode_command(Put("k", b"v"))) == [1, "k", b"v", None]


@pytest.mark.parametrize("query", [LeaseTimeToLive(5), LeaseTimeToLive(5, True), LeaseList()])
def test_lease_queries_round_trip(query: object) -> None:
    assert decode_query(encode_query(query)) == query  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "result",
    [
        LeaseGrantResult(1, 5_000),
        LeaseKeepAliveResult(1, 5_000),
        LeaseRevokeResult(2, 9),
        LeaseTimeToLiveResult(1, 5_000, 12, ("a", "b")),
        LeaseListResult((1, 2, 3)),
    ],
)
def test_lease_results_round_trip(result: object) -> None:
    assert decode_result(encode_result(result)) == result  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [[7, "5000"], [8], [9, 1, 2], [1, "k", b"v", None, "7"], [3, [], [[1, "k", b"v", "x"]], []]],
)
def test_malformed_lease_commands_are_refused(fields: list[object]) -> None:
    with pytest.raises(KvDecodeError):
        decode_command(msgpack.packb(fields))


# ------------------------------------------------------------------ through the log


def chosen(slot: int, *commands: Command) -> ChosenEntry:
    return ChosenEntry(slot, Value(commands))


def grant_command(client: int, seq: int, ttl_ms: int) -> Command:
    return Command(client, seq, encode_command(LeaseGrant(ttl_ms)))


def test_log_time_expires_leases_at_the_same_slot_on_every_replica() -> None:
    replicas = [ReplicatedMachine(KvStore()) for _ in range(3)]
    log = [
        chosen(0, clock_command(T0), grant_command(7, 1, 2_000)),
        chosen(1, Command(7, 2, encode_command(Put("k", b"v", lease=1)))),
        chosen(2, clock_command(T0 + 1_999)),
        chosen(3, clock_command(T0 + 2_000)),
    ]
    gone_at = set()
    for replica in replicas:
        store = replica.machine
        assert isinstance(store, KvStore)
        for entry in log:
            had = keys(store)
            list(replica.apply(entry))
            if had and not keys(store):
                gone_at.add((entry.slot, store.revision))
    assert gone_at == {(3, 2)}


def test_a_new_leaders_first_stamp_renews_before_its_time_can_expire_anything() -> None:
    machine = ReplicatedMachine(KvStore())
    list(machine.apply(chosen(0, clock_command(T0), grant_command(7, 1, 2_000))))
    list(machine.apply(chosen(1, Command(7, 2, encode_command(Put("k", b"v", lease=1))))))
    # A new leader whose clock is 5 s ahead: its first stamp would expire the
    # lease at once if it were a plain stamp; as a leader's first it renews.
    list(machine.apply(chosen(2, clock_command(T0 + 5_000, first_of_leader=True))))
    store = machine.machine
    assert isinstance(store, KvStore)
    assert keys(store) == {"k"}
    assert store.read(LeaseTimeToLive(1)) == LeaseTimeToLiveResult(1, 2_000, 2_000, ())
    list(machine.apply(chosen(3, clock_command(T0 + 7_000))))
    assert keys(store) == set()


def test_the_same_stamp_as_a_plain_clock_entry_expires_the_lease() -> None:
    """The planted bug the test above must catch: a new leader that does not
    renew (its first stamp read as a plain one) expires the lease early."""
    machine = ReplicatedMachine(KvStore())
    list(machine.apply(chosen(0, clock_command(T0), grant_command(7, 1, 2_000))))
    list(machine.apply(chosen(1, Command(7, 2, encode_command(Put("k", b"v", lease=1))))))
    list(machine.apply(chosen(2, clock_command(T0 + 5_000))))
    store = machine.machine
    assert isinstance(store, KvStore)
    assert keys(store) == set()


def test_replicated_snapshots_keep_lease_expiry() -> None:
    machine = ReplicatedMachine(KvStore())
    list(machine.apply(chosen(0, clock_command(T0), grant_command(7, 1, 2_000))))
    list(machine.apply(chosen(1, Command(7, 2, encode_command(Put("k", b"v", lease=1))))))
    copy = ReplicatedMachine(KvStore())
    copy.restore(machine.snapshot())
    list(copy.apply(chosen(2, clock_command(T0 + 2_000))))
    store = copy.machine
    assert isinstance(store, KvStore)
    assert keys(store) == set()


# ------------------------------------------------------------------ auth


def test_revoking_needs_write_access_to_every_key_of_the_lease() -> None:
    store = timed_store()
    for command in (
        UserAdd("root", HASH),
        UserAdd("writer", HASH),
        RoleAdd("w"),
        RoleGrant("w", "app/", "readwrite"),
        UserGrantRole("writer", "w"),
        AuthEnable(TOKEN_KEY),
    ):
        store.apply(encode_auth_command(command))
    assert store.auth.enabled
    writer = issue_token(TOKEN_KEY, "writer", store.auth.users["writer"].generation, 0)
    root = issue_token(TOKEN_KEY, "root", store.auth.users["root"].generation, 0)

    def run(token: str | None, command: object) -> object:
        return decode_result(store.apply(wrap(token, encode_command(command))))  # type: ignore[arg-type]

    anonymous = decode_result(store.apply(encode_command(LeaseGrant(5_000))))
    assert isinstance(anonymous, ErrorResult) and anonymous.code == "unauthenticated"
    granted = run(writer, LeaseGrant(5_000))
    assert isinstance(granted, LeaseGrantResult)
    assert isinstance(run(writer, Put("app/a", b"v", lease=granted.lease)), PutResult)
    assert isinstance(run(root, Put("other", b"v", lease=granted.lease)), PutResult)
    refused = run(writer, LeaseRevoke(granted.lease))  # "other" is outside app/
    assert isinstance(refused, ErrorResult) and refused.code == PermissionDenied.code
    assert isinstance(run(writer, LeaseKeepAlive(granted.lease)), LeaseKeepAliveResult)
    assert run(root, LeaseRevoke(granted.lease)) == LeaseRevokeResult(2, 3)


# ------------------------------------------------------------------ property


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["grant", "keep", "revoke", "put", "put-free", "delete", "tick"]),
            st.integers(1, 4),
            st.integers(0, 3_000),
        ),
        max_size=60,
    )
)
def test_any_sequence_keeps_the_invariants_and_snapshots_are_exact(
    steps: list[tuple[str, int, int]],
) -> None:
    store = timed_store()
    now = T0
    for action, number, amount in steps:
        key = f"k{number}"
        match action:
            case "grant":
                store.execute(LeaseGrant(1_000 + amount))
            case "keep":
                store.execute(LeaseKeepAlive(number))
            case "revoke":
                store.execute(LeaseRevoke(number))
            case "put":
                store.execute(Put(key, b"v", lease=number))
            case "put-free":
                store.execute(Put(key, b"v"))
            case "delete":
                store.execute(Delete(key))
            case "tick":
                now += amount
                store.on_log_time(now)
        store.check_invariants()
    copy = KvStore()
    copy.restore(store.snapshot())
    copy.check_invariants()
    assert copy.snapshot() == store.snapshot()
    now += 5_000
    store.on_log_time(now)
    copy.on_log_time(now)
    assert copy.snapshot() == store.snapshot()
