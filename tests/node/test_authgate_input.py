"""Hostile bytes at the auth edge: the gate refuses with a typed error or lets the
store refuse; nothing else escapes (an exception there would stop the node)."""

from __future__ import annotations

import asyncio
import contextlib

import msgpack  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from paxon.errors import PaxonError
from paxon.kv.auth import AuthEnable, UserAdd
from paxon.kv.authcodec import wrap
from paxon.kv.codec import decode_result
from paxon.kv.model import ErrorResult
from paxon.kv.store import KvStore
from paxon.node.authgate import AuthGate

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
leaves = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | texts
values = st.recursive(leaves | st.binary(max_size=8), lambda inner: st.lists(inner, max_size=4))
tags = st.sampled_from([1, 2, 3, 4, 5, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 48, 50, 51])
payloads = (
    st.binary(max_size=40)
    | st.builds(lambda tag, rest: msgpack.packb([tag, *rest]), tags, st.lists(values, max_size=4))
    | st.builds(
        lambda token, tag, rest: wrap(token, msgpack.packb([tag, *rest])),
        texts,
        tags,
        st.lists(values, max_size=4),
    )
)


def stores() -> list[KvStore]:
    disabled = KvStore()
    enabled = KvStore()
    enabled.auth.apply(UserAdd("root", b"h" * 48), 4096)
    enabled.auth.apply(AuthEnable(b"k" * 32), 4096)
    return [disabled, enabled]


@settings(max_examples=400, deadline=None)
@given(payloads)
def test_hostile_payloads_raise_only_typed_errors_and_apply_nothing(payload: bytes) -> None:
    async def check() -> None:
        for store in stores():
            gate = AuthGate(store)
            try:
                for call in (gate.check, gate.check_query):
                    with contextlib.suppress(PaxonError):
                        call(payload)
                if gate.needs_prepare(payload):
                    with contextlib.suppress(PaxonError):
                        await gate.prepare(payload)
            finally:
                gate.close()
            revision = store.revision
            if store.auth.enabled:
                result = decode_result(store.apply(payload))
                assert isinstance(result, ErrorResult), result
                assert store.revision == revision
            store.query(payload)

    asyncio.run(check())
