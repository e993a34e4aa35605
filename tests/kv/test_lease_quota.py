"""Per-user lease quota and lease ownership under auth (``paxon.kv.leases``,
``paxon.kv.store``): a lease is owned by the user whose token granted it, one
user holds at most ``KvLimits.leases_per_user_max`` live leases, and only the
owner (or root) may keep a lease alive, revoke it or attach keys to it.
Without auth nothing of this applies."""

from __future__ import annotations

from collections.abc import Callable

import msgpack  # type: ignore[import-untyped]
import pytest

from paxon.errors import Busy, PermissionDenied
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
from paxon.kv.codec import KvDecodeError, decode_result, encode_command
from paxon.kv.model import (
    Command,
    ErrorResult,
    KvLimits,
    LeaseGrant,
    LeaseGrantResult,
    LeaseKeepAlive,
    LeaseKeepAliveResult,
    LeaseRevoke,
    LeaseRevokeResult,
    LockAcquire,
    LockAcquireResult,
    Put,
    PutOp,
    PutResult,
    Result,
    Txn,
)
from paxon.kv.store import KvStore

T0 = 1_800_000_000_000  # a log time, in ms
HASH = b"h" * PASSWORD_HASH_BYTES
TOKEN_KEY = b"k" * TOKEN_KEY_BYTES
QUOTA = 3


def auth_store(**limits: int) -> KvStore:
    """Auth enabled; ``alice`` and ``bob`` may read and write everything under
    ``app/`` and ``_paxon/lock/``; ``root`` is root; ``early`` is a lease granted
    before auth was enabled (no owner). Lease quota ``QUOTA`` unless given."""
    store = KvStore(KvLimits(**{"leases_per_user_max": QUOTA, **limits}))
    store.on_log_time(T0)
    early = store.execute(LeaseGrant(60_000))
    assert early == LeaseGrantResult(1, 60_000)
    for command in (
        UserAdd("root", HASH),
        UserAdd("alice", HASH),
        UserAdd("bob", HASH),
        RoleAdd("w"),
        RoleGrant("w", "app/", "readwrite"),
        RoleGrant("w", "_paxon/lock/", "readwrite"),
        UserGrantRole("alice", "w"),
        UserGrantRole("bob", "w"),
        AuthEnable(TOKEN_KEY),
    ):
        store.apply(encode_auth_command(command))
    assert store.auth.enabled
    return store


def token(store: KvStore, user: str) -> str:
    return issue_token(TOKEN_KEY, user, store.auth.users[user].generation, 0)


def run(store: KvStore, user: str, command: Command) -> Result:
    return decode_result(store.apply(wrap(token(store, user), encode_command(command))))


def grant(store: KvStore, user: str) -> int:
    result = run(store, user, LeaseGrant(60_000))
    assert isinstance(result, LeaseGrantResult), result
    return result.lease


def refused(result: Result, code: str) -> bool:
    return isinstance(result, ErrorResult) and result.code == code


# ------------------------------------------------------------------ quota


def test_a_user_at_its_quota_is_refused_and_another_user_is_not() -> None:
    store = auth_store()
    for _ in range(QUOTA):
        grant(store, "alice")
    over = run(store, "alice", LeaseGrant(60_000))
    assert refused(over, Busy.code)
    assert isinstance(over, ErrorResult) and "'alice' holds 3 live leases" in over.message
    for _ in range(QUOTA):
        grant(store, "bob")  # alice's leases took nothing of bob's
    assert refused(run(store, "bob", LeaseGrant(60_000)), Busy.code)
    assert store.leases.owned == {"alice": QUOTA, "bob": QUOTA}
    store.check_invariants()


def test_a_revoked_or_expired_lease_frees_its_place_in_the_quota() -> None:
    store = auth_store()
    short = run(store, "alice", LeaseGrant(5_000))
    assert isinstance(short, LeaseGrantResult)
    held = [grant(store, "alice") for _ in range(QUOTA - 1)]
    assert refused(run(store, "alice", LeaseGrant(60_000)), Busy.code)
    assert run(store, "alice", LeaseRevoke(held[0])) == LeaseRevokeResult(0, store.revision)
    grant(store, "alice")
    store.on_log_time(T0 + 5_000)  # ``short`` expires
    assert store.leases.owned == {"alice": QUOTA - 1}
    grant(store, "alice")
    assert refused(run(store, "alice", LeaseGrant(60_000)), Busy.code)
    store.check_invariants()


def test_the_table_limit_still_holds_across_users() -> None:
    store = auth_store(leases_max=4)  # the early lease and three more
    grant(store, "alice")
    grant(store, "alice")
    grant(store, "bob")
    over = run(store, "bob", LeaseGrant(60_000))
    assert isinstance(over, ErrorResult) and "the lease table is full" in over.message


def test_without_auth_there_is_no_quota_and_no_owner() -> None:
    store = KvStore(KvLimits(leases_per_user_max=1))
    for _ in range(3):
        assert isinstance(store.execute(LeaseGrant(60_000)), LeaseGrantResult)
    assert store.leases.owned == {}
    assert all(lease.owner is None for lease in store.leases)


def test_the_limit_is_written_down_and_checked() -> None:
    assert KvLimits().leases_per_user_max == 10_000
    with pytest.raises(ValueError):
        KvLimits(leases_per_user_max=-1)


# ------------------------------------------------------------------ the owner


def test_the_owner_is_the_tokens_user_and_no_command_field_can_name_another() -> None:
    store = auth_store()
    lease = grant(store, "alice")
    assert store.leases.get(lease).owner == "alice"
    # A grant that tries to carry an owner of its own is not a command at all.
    forged = msgpack.packb([7, 60_000, "bob"])
    answer = decode_result(store.apply(wrap(token(store, "alice"), forged)))
    assert refused(answer, "bad_request")
    # Nor is a token for bob made with the wrong key.
    fake = issue_token(b"x" * TOKEN_KEY_BYTES, "bob", store.auth.users["bob"].generation, 0)
    answer = decode_result(store.apply(wrap(fake, encode_command(LeaseGrant(60_000)))))
    assert refused(answer, "unauthenticated")
    assert store.leases.owned == {"alice": 1}


def test_the_grant_command_keeps_its_old_wire_form() -> None:
    """The owner travels as the token around the command, so logs written
    before owners replay unchanged."""
    assert msgpack.unpackb(encode_command(LeaseGrant(5_000))) == [7, 5_000]


# ------------------------------------------------------------------ who may use a lease


@pytest.mark.parametrize(
    "make",
    [
        lambda lease: LeaseKeepAlive(lease),
        lambda lease: LeaseRevoke(lease),
        lambda lease: Put("app/x", b"v", None, lease),
        lambda lease: Txn((), (), (PutOp("app/x", b"v", lease),)),
        lambda lease: LockAcquire("job", lease),
    ],
    ids=["keep-alive", "revoke", "put", "txn put", "lock"],
)
def test_only_the_owner_or_root_may_use_a_lease(make: Callable[[int], Command]) -> None:
    store = auth_store()
    lease = grant(store, "alice")
    before = store.revision
    assert refused(run(store, "bob", make(lease)), PermissionDenied.code)
    assert store.revision == before and store.leases.get(lease).keys == set()
    assert not refused(run(store, "alice", make(lease)), PermissionDenied.code)
    other = grant(store, "alice")
    assert not refused(run(store, "root", make(other)), PermissionDenied.code)


def test_a_lease_from_before_auth_has_no_owner_and_keeps_the_old_rules() -> None:
    store = auth_store()
    assert store.leases.get(1).owner is None and store.leases.owned == {}
    assert isinstance(run(store, "bob", LeaseKeepAlive(1)), LeaseKeepAliveResult)
    assert isinstance(run(store, "alice", Put("app/x", b"v", None, 1)), PutResult)
    assert isinstance(run(store, "alice", LockAcquire("job", 1)), LockAcquireResult)
    assert isinstance(run(store, "bob", LeaseRevoke(1)), LeaseRevokeResult)


def test_the_nodes_early_check_refuses_another_users_lease_too() -> None:
    store = auth_store()
    lease = grant(store, "alice")
    with pytest.raises(PermissionDenied):
        store.authorize(token(store, "bob"), encode_command(LeaseKeepAlive(lease)))
    assert store.authorize(token(store, "alice"), encode_command(LeaseKeepAlive(lease))) == "alice"


# ------------------------------------------------------------------ snapshots


def test_owners_and_counts_survive_a_snapshot() -> None:
    store = auth_store()
    alice = [grant(store, "alice") for _ in range(QUOTA)]
    grant(store, "bob")
    rows = msgpack.unpackb(store.snapshot())[6][2]
    assert rows[0] == [1, 60_000, T0 + 60_000, []], "a lease without owner keeps 4 fields"
    assert rows[1] == [alice[0], 60_000, T0 + 60_000, [], "alice"]
    copy = KvStore(store.limits)
    copy.restore(store.snapshot())
    copy.check_invariants()
    assert copy.leases.owned == {"alice": QUOTA, "bob": 1}
    assert [lease.owner for lease in copy.leases] == [None, "alice", "alice", "alice", "bob"]
    assert refused(run(copy, "alice", LeaseGrant(60_000)), Busy.code)
    assert refused(run(copy, "bob", LeaseRevoke(alice[0])), PermissionDenied.code)
    assert copy.snapshot() == store.snapshot()


def test_a_snapshot_without_owners_loads_and_has_its_old_form() -> None:
    store = KvStore()
    store.on_log_time(T0)
    store.execute(LeaseGrant(60_000))
    fields = msgpack.unpackb(store.snapshot())
    assert fields[0] == 3 and fields[6][2] == [[1, 60_000, T0 + 60_000, []]]
    copy = auth_store()  # auth on, but the snapshot replaces it
    copy.restore(msgpack.packb(fields))
    assert copy.leases.get(1).owner is None and copy.leases.owned == {}
    copy.check_invariants()


@pytest.mark.parametrize("owner", [5, "", "x" * 65, None, b"alice"])
def test_a_snapshot_with_an_impossible_owner_is_refused(owner: object) -> None:
    store = auth_store()
    grant(store, "alice")
    fields = msgpack.unpackb(store.snapshot())
    fields[6][2][1][4] = owner
    with pytest.raises(KvDecodeError):
        KvStore(store.limits).restore(msgpack.packb(fields))
