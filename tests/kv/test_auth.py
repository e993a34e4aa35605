"""Users, roles and permissions in the store: the rules of ``paxon.kv.auth``, each shown firing."""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]
import pytest

from paxon.errors import BadRequest, PermissionDenied, Unauthenticated
from paxon.kv.auth import (
    PASSWORD_HASH_BYTES,
    PERMISSIONS_PER_ROLE_MAX,
    ROLES_MAX,
    ROLES_PER_USER_MAX,
    TOKEN_KEY_BYTES,
    USERS_MAX,
    AuthDisable,
    AuthEnable,
    AuthResult,
    AuthState,
    PasswordRequest,
    RoleAdd,
    RoleDelete,
    RoleGrant,
    RoleList,
    RoleListResult,
    RoleRevoke,
    UserAdd,
    UserDelete,
    UserGrantRole,
    UserList,
    UserListResult,
    UserPasswd,
    UserRevokeRole,
    decode_auth_state,
    encode_auth_state,
    hash_password,
    issue_token,
    password_matches,
)
from paxon.kv.authcodec import (
    decode_auth_result,
    encode_auth_command,
    encode_auth_query,
    unwrap,
    wrap,
)
from paxon.kv.codec import decode_result, encode_command, encode_query
from paxon.kv.model import (
    Compact,
    CompactResult,
    Compare,
    Delete,
    ErrorResult,
    Get,
    GetOp,
    Put,
    PutOp,
    Txn,
)
from paxon.kv.store import KvStore

HASH = b"h" * PASSWORD_HASH_BYTES
KEY = b"k" * TOKEN_KEY_BYTES


def run(store: KvStore, command: object, token: str | None = None) -> object:
    inner = (
        encode_command(command)  # type: ignore[arg-type]
        if isinstance(command, Put | Delete | Txn | Compact)
        else encode_auth_command(command)  # type: ignore[arg-type]
    )
    reply = store.apply(inner if token is None else wrap(token, inner))
    if isinstance(command, Put | Delete | Txn | Compact):
        return decode_result(reply)
    try:
        return decode_auth_result(reply)
    except (BadRequest, PermissionDenied, Unauthenticated) as error:
        return error


def read(store: KvStore, query: object, token: str | None = None) -> object:
    inner = (
        encode_query(query)  # type: ignore[arg-type]
        if isinstance(query, Get)
        else encode_auth_query(query)  # type: ignore[arg-type]
    )
    reply = store.query(inner if token is None else wrap(token, inner))
    if isinstance(query, Get):
        return decode_result(reply)
    try:
        return decode_auth_result(reply)
    except (BadRequest, PermissionDenied, Unauthenticated) as error:
        return error


def token_of(store: KvStore, user: str) -> str:
    auth = store.auth
    return issue_token(auth.token_key, user, auth.users[user].generation, 0)


@pytest.fixture
def store() -> KvStore:
    """Auth enabled: root; reader may read app/, writer may read and write app/."""
    store = KvStore()
    for command in (
        UserAdd("root", HASH),
        UserAdd("reader", HASH),
        UserAdd("writer", HASH),
        RoleAdd("r"),
        RoleAdd("w"),
        RoleGrant("r", "app/", "read"),
        RoleGrant("w", "app/", "readwrite"),
        UserGrantRole("reader", "r"),
        UserGrantRole("writer", "w"),
        AuthEnable(KEY),
    ):
        assert isinstance(run(store, command), AuthResult), command
    store.auth.check_invariants()
    return store


def error_code(result: object) -> str:
    if isinstance(result, ErrorResult):
        return result.code
    if isinstance(result, Exception):
        return getattr(result, "code", "?")
    return "ok"


def test_auth_enable_needs_the_user_root() -> None:
    store = KvStore()
    assert error_code(run(store, AuthEnable(KEY))) == "bad_request"
    assert not store.auth.enabled
    run(store, UserAdd("root", HASH))
    assert store.auth.users["root"].roles == ["root"]
    assert isinstance(run(store, AuthEnable(KEY)), AuthResult)
    assert store.auth.enabled


def test_with_auth_disabled_everything_is_allowed_without_a_token() -> None:
    store = KvStore()
    assert decode_result(store.apply(encode_command(Put("k", b"v")))) is not None
    assert store.revision == 1
    assert isinstance(run(store, RoleAdd("x")), AuthResult)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (Put("app/a", b"1"), {"none": "unauthenticated", "reader": "permission_denied"}),
        (Put("other", b"1"), {"writer": "permission_denied", "reader": "permission_denied"}),
        (Delete("app/", True), {"reader": "permission_denied", "writer": "ok"}),
        (Delete("a", True), {"writer": "permission_denied", "root": "ok"}),
        (
            Txn((Compare("other", "version", "==", 0),), (PutOp("app/a", b"1"),)),
            {"writer": "permission_denied"},
        ),
        (Txn((), (GetOp("app/", True),)), {"reader": "ok", "writer": "ok"}),
        (Txn((), (PutOp("app/b", b"1"),)), {"reader": "permission_denied", "writer": "ok"}),
        (RoleAdd("new"), {"writer": "permission_denied", "root": "ok", "none": "unauthenticated"}),
        (UserDelete("reader"), {"reader": "permission_denied", "root": "ok"}),
        (AuthDisable(), {"writer": "permission_denied", "root": "ok"}),
    ],
)
def test_apply_checks_the_token_and_the_permission(
    store: KvStore, command: object, expected: dict[str, str]
) -> None:
    for who, code in expected.items():
        fresh = KvStore()
        fresh.restore(store.snapshot())
        before = fresh.snapshot()
        token = None if who == "none" else token_of(fresh, who)
        assert error_code(run(fresh, command, token)) == code, who
        if code != "ok":
            assert fresh.snapshot() == before, f"{who}: a refused command changed the state"


def test_compaction_needs_write_on_the_whole_key_space(store: KvStore) -> None:
    """It drops every key's history: write on prefix "" (root, or such a role)."""
    root = token_of(store, "root")
    for command in (
        UserAdd("admin", HASH),
        RoleAdd("all"),
        RoleGrant("all", "", "readwrite"),
        UserGrantRole("admin", "all"),
    ):
        assert isinstance(run(store, command, root), AuthResult), command
    for number in range(3):
        assert error_code(run(store, Put("app/a", str(number).encode()), root)) == "ok"
    expected = {
        "none": "unauthenticated",
        "reader": "permission_denied",
        "writer": "permission_denied",  # readwrite on app/ only
        "admin": "ok",
        "root": "ok",
    }
    for who, code in expected.items():
        fresh = KvStore()
        fresh.restore(store.snapshot())
        token = None if who == "none" else token_of(fresh, who)
        result = run(fresh, Compact(2), token)
        assert error_code(result) == code, who
        if code == "ok":
            assert result == CompactResult(2, 3)
        assert fresh.revision_compacted == (2 if code == "ok" else 0), who


def test_a_forged_or_stale_token_is_refused_at_apply(store: KvStore) -> None:
    forged = issue_token(b"x" * TOKEN_KEY_BYTES, "root", 1, 0)
    assert error_code(run(store, Put("app/a", b"1"), forged)) == "unauthenticated"
    payload, _, mac = token_of(store, "writer").partition(".")
    assert error_code(run(store, Put("app/a", b"1"), f"{payload}.{mac[:-2]}AA")) == (
        "unauthenticated"
    )
    assert error_code(run(store, Put("app/a", b"1"), "not a token")) == "unauthenticated"
    old = token_of(store, "writer")
    run(store, UserPasswd("writer", HASH), token_of(store, "root"))
    assert error_code(run(store, Put("app/a", b"1"), old)) == "unauthenticated"
    assert error_code(run(store, Put("app/a", b"1"), token_of(store, "writer"))) == "ok"
    assert store.revision == 1


def test_a_revoked_permission_refuses_the_next_write(store: KvStore) -> None:
    writer = token_of(store, "writer")
    assert error_code(run(store, Put("app/a", b"1"), writer)) == "ok"
    run(store, RoleRevoke("w", "app/"), token_of(store, "root"))
    assert error_code(run(store, Put("app/a", b"2"), writer)) == "permission_denied"
    assert store.read(Get("app/a")).items[0].value == b"1"  # type: ignore[union-attr]


def test_disable_then_enable_makes_every_old_token_invalid(store: KvStore) -> None:
    old = token_of(store, "writer")
    run(store, AuthDisable(), token_of(store, "root"))
    assert store.auth.token_key == b""
    run(store, AuthEnable(b"n" * TOKEN_KEY_BYTES))
    assert error_code(run(store, Put("app/a", b"1"), old)) == "unauthenticated"


def test_reads_are_checked_on_the_serving_store(store: KvStore) -> None:
    run(store, Put("app/a", b"1"), token_of(store, "root"))
    assert error_code(read(store, Get("app/a"))) == "unauthenticated"
    assert error_code(read(store, Get("app/a"), token_of(store, "reader"))) == "ok"
    assert error_code(read(store, Get("", True), token_of(store, "reader"))) == "permission_denied"
    assert error_code(read(store, UserList(), token_of(store, "reader"))) == "permission_denied"
    users = read(store, UserList(), token_of(store, "root"))
    assert isinstance(users, UserListResult) and users.enabled
    assert [(u.name, u.roles) for u in users.users] == [
        ("reader", ("r",)),
        ("root", ("root",)),
        ("writer", ("w",)),
    ]
    roles = read(store, RoleList(), token_of(store, "root"))
    assert isinstance(roles, RoleListResult)
    assert [(r.name, r.permissions) for r in roles.roles] == [
        ("root", (("", "readwrite"),)),
        ("r", (("app/", "read"),)),
        ("w", (("app/", "readwrite"),)),
    ]


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (UserDelete("root"), "cannot be deleted"),
        (UserRevokeRole("root", "root"), "cannot be revoked"),
        (RoleGrant("root", "x", "read"), "built in"),
        (RoleDelete("root"), "built in"),
        (UserAdd("reader", HASH), "already exists"),
        (UserGrantRole("reader", "nope"), "no such role"),
        (UserGrantRole("reader", "r"), "already has"),
        (RoleRevoke("r", "nope/"), "no permission"),
        (UserAdd("bad name", HASH), "printable"),
        (UserAdd("x" * 65, HASH), "printable"),
        (UserAdd("x", b"short"), "password hash"),
        (AuthEnable(b"short"), "token key"),
    ],
)
def test_rules_refuse_and_change_nothing(store: KvStore, command: object, words: str) -> None:
    before = store.snapshot()
    result = run(store, command, token_of(store, "root"))
    assert isinstance(result, BadRequest) and words in str(result)
    assert store.snapshot() == before


def test_a_password_in_clear_is_never_applied() -> None:
    store = KvStore()
    result = run(store, PasswordRequest("alice", "secret", True))
    assert isinstance(result, BadRequest) and "hashed" in str(result)
    assert store.auth.users == {}


def test_deleting_a_role_takes_it_from_its_users(store: KvStore) -> None:
    run(store, RoleDelete("r"), token_of(store, "root"))
    assert store.auth.users["reader"].roles == []
    store.auth.check_invariants()


def test_users_and_roles_are_bounded() -> None:
    state = AuthState()
    for index in range(USERS_MAX):
        state.apply(UserAdd(f"u{index}", HASH), 4096)
    with pytest.raises(BadRequest, match="limit"):
        state.apply(UserAdd("one-more", HASH), 4096)
    for index in range(ROLES_MAX):
        state.apply(RoleAdd(f"r{index}"), 4096)
    with pytest.raises(BadRequest, match="limit"):
        state.apply(RoleAdd("one-more"), 4096)


def test_prefix_permissions_cover_keys_and_narrower_prefixes(store: KvStore) -> None:
    auth = store.auth
    assert auth.allowed("reader", "read", "app/x")
    assert auth.allowed("reader", "read", "app/sub/", prefix=True)
    assert not auth.allowed("reader", "read", "app", prefix=True)  # wider than app/
    assert not auth.allowed("reader", "write", "app/x")
    assert not auth.allowed("nobody", "read", "app/x")
    assert auth.allowed("root", "write", "anything")


def test_auth_state_is_in_the_snapshot_and_old_snapshots_still_load(store: KvStore) -> None:
    copy = KvStore()
    copy.restore(store.snapshot())
    assert encode_auth_state(copy.auth) == encode_auth_state(store.auth)
    fields = msgpack.unpackb(store.snapshot())
    assert fields[0] == 3
    copy.restore(msgpack.packb([2, *fields[1:6]]))  # before leases
    assert encode_auth_state(copy.auth) == encode_auth_state(store.auth)
    old = msgpack.packb([1, *fields[1:5]])
    copy.restore(old)
    assert not copy.auth.enabled and copy.auth.users == {}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a.__setitem__(1, b""),  # enabled without a key
        lambda a: a[3].append(["ghost", HASH, ["nope"], 1]),  # a role that does not exist
        lambda a: a[3].append(["late", HASH, [], 10**6]),  # generation past the revision
        lambda a: a[3].clear(),  # enabled without root
        lambda a: a[4].append(["root", []]),  # root is built in
        lambda a: a[3][0].__setitem__(1, b"x"),  # a short hash
    ],
)
def test_a_snapshot_with_bad_auth_state_is_refused(store: KvStore, mutate: object) -> None:
    fields = encode_auth_state(store.auth)
    mutate(fields)  # type: ignore[operator]
    with pytest.raises(ValueError):
        decode_auth_state(fields)
    snapshot = msgpack.unpackb(store.snapshot())
    snapshot[5] = fields
    with pytest.raises(BadRequest):
        KvStore().check_snapshot(msgpack.packb(snapshot))


def test_the_envelope_round_trips_and_plain_bytes_pass_through() -> None:
    inner = encode_command(Put("k", b"v"))
    assert unwrap(wrap("t", inner)) == ("t", inner)
    assert unwrap(inner) == (None, inner)


def test_passwords_are_salted_scrypt_hashes() -> None:
    first = hash_password("secret", b"a" * 16)
    second = hash_password("secret", b"b" * 16)
    assert len(first) == PASSWORD_HASH_BYTES and first != second
    assert password_matches(first, "secret") and password_matches(second, "secret")
    assert not password_matches(first, "Secret")
    assert b"secret" not in first


def test_permissions_per_role_and_roles_per_user_are_bounded() -> None:
    state = AuthState()
    state.apply(RoleAdd("big"), 4096)
    for index in range(PERMISSIONS_PER_ROLE_MAX):
        state.apply(RoleGrant("big", f"p{index}/", "read"), 4096)
    state.apply(RoleGrant("big", "p0/", "readwrite"), 4096)  # replacing one is not adding
    with pytest.raises(BadRequest, match="limit"):
        state.apply(RoleGrant("big", "one-more/", "read"), 4096)
    state.apply(UserAdd("u", HASH), 4096)
    for index in range(ROLES_PER_USER_MAX):
        state.apply(RoleAdd(f"r{index}"), 4096)
        state.apply(UserGrantRole("u", f"r{index}"), 4096)
    state.apply(RoleAdd("extra"), 4096)
    with pytest.raises(BadRequest, match="limit"):
        state.apply(UserGrantRole("u", "extra"), 4096)
    with pytest.raises(BadRequest, match="key_max_bytes"):
        state.apply(RoleGrant("big", "k" * 11, "read"), 10)
    state.check_invariants()


def test_a_malformed_envelope_is_a_refusal_not_a_crash() -> None:
    store = KvStore()
    for payload in (
        msgpack.packb([5, 1, b"x"]),
        msgpack.packb([5, "t"]),
        msgpack.packb([5, "t", "not bytes"]),
        wrap("t", wrap("t", encode_command(Put("k", b"v")))),
    ):
        result = decode_result(store.apply(payload))
        assert isinstance(result, ErrorResult) and result.code == "bad_request"
        result = decode_result(store.query(payload))
        assert isinstance(result, ErrorResult) and result.code == "bad_request"
    assert store.revision == 0
