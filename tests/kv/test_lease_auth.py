"""Under auth, ``LeaseTimeToLive(keys=True)`` must not list a lease's keys to a
user who may not read them (found while building the lease API; etcd closed
the same hole by requiring read permission on every attached key, etcd-io/etcd
pull request 15656). Without keys, any logged-in user may ask a lease's TTL."""

from __future__ import annotations

from tests.kv.test_auth import HASH, run, token_of
from tests.kv.test_auth import store as auth_store

from paxon.kv.auth import UserAdd
from paxon.kv.authcodec import wrap
from paxon.kv.codec import decode_result, encode_command, encode_query
from paxon.kv.model import (
    ErrorResult,
    LeaseGrant,
    LeaseGrantResult,
    LeaseTimeToLive,
    Put,
    PutResult,
)


def test_lease_keys_are_not_shown_to_a_user_who_may_not_read_them() -> None:
    store = auth_store.__wrapped__()  # type: ignore[attr-defined]
    writer = token_of(store, "writer")
    granted = decode_result(store.apply(wrap(writer, encode_command(LeaseGrant(10_000)))))
    assert isinstance(granted, LeaseGrantResult)
    put = Put("app/secret-name", b"v", None, granted.lease)
    assert isinstance(decode_result(store.apply(wrap(writer, encode_command(put)))), PutResult)
    run(store, UserAdd("outsider", HASH), token_of(store, "root"))  # a user without roles
    assert "outsider" in store.auth.users
    outsider = token_of(store, "outsider")
    query = encode_query(LeaseTimeToLive(granted.lease, keys=True))
    answer = decode_result(store.query(wrap(outsider, query)))
    assert isinstance(answer, ErrorResult) and answer.code == "permission_denied", answer
    without_keys = encode_query(LeaseTimeToLive(granted.lease))
    assert not isinstance(decode_result(store.query(wrap(outsider, without_keys))), ErrorResult)
    query_writer = decode_result(store.query(wrap(writer, query)))
    assert not isinstance(query_writer, ErrorResult), "a user who may read the keys sees them"
