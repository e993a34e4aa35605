"""The client's lease calls without a cluster: input refused before sending, and
``KeptLease`` (``paxon.client_lease``) against a fake client that answers at once.

A real cluster runs them end to end in ``tests/node/test_leases_e2e.py``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from paxon import KeptLease, LeaseNotFound, SyncClient
from paxon.client import Client
from paxon.errors import BadRequest, PaxonError, PermissionDenied, Unavailable
from paxon.kv.model import LeaseGrantResult, LeaseKeepAliveResult, LeaseRevokeResult


@pytest.fixture
def closed_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


# ------------------------------------------------------------------ input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.grant_lease(0.5), "ttl: a lease lasts from 1 to 2592000 seconds, got 0.5"),
        (lambda c: c.grant_lease(31 * 24 * 3600), "ttl: a lease lasts from 1 to 2592000"),
        (lambda c: c.grant_lease(float("nan")), "ttl: a lease lasts from 1"),
        (lambda c: c.grant_lease(True), "ttl: expected a number of seconds, got a boolean"),
        (lambda c: c.grant_lease("10"), "ttl: expected a number of seconds, got a string"),
        (lambda c: c.keep_alive(0), "lease: an id is from 1"),
        (lambda c: c.revoke_lease(-3), "lease: an id is from 1"),
        (lambda c: c.lease_time_to_live(0), "lease: an id is from 1"),
        (lambda c: c.put("k", "v", lease=-1), "lease: must be between 0"),
        (lambda c: c.cas("k", "v", expect_version=0, lease=2**63), "lease: must be between 0"),
    ],
)
def test_bad_lease_input_is_refused_before_sending(
    call: Callable[[Client], Awaitable[object]], message: str, closed_endpoint: str
) -> None:
    async def scenario() -> None:
        async with Client(closed_endpoint, timeout=5) as client:
            started = time.monotonic()
            with pytest.raises(BadRequest) as caught:
                await call(client)
            assert time.monotonic() - started < 0.5, "it tried the (closed) endpoint"
            assert str(caught.value).startswith(message)

    run(scenario)


def test_a_kept_lease_needs_an_interval_below_its_ttl(closed_endpoint: str) -> None:
    async def scenario() -> None:
        async with Client(closed_endpoint) as client:
            with pytest.raises(BadRequest, match="keep_alive_interval"):
                client.lease(2, keep_alive_interval=2)
            with pytest.raises(BadRequest, match="keep_alive_interval"):
                client.lease(2, keep_alive_interval=0)
            with pytest.raises(BadRequest, match="ttl"):
                client.lease(0.2)
            lease = client.lease(3)
            assert lease.keep_alive_interval == 1.0
            with pytest.raises(BadRequest, match="granted on entering"):
                _ = lease.id

    run(scenario)


# ------------------------------------------------------------------ KeptLease


class FakeLeases:
    """What ``KeptLease`` calls of a client; ``script`` answers the keep-alives in turn
    (an exception is raised; ``None`` is a success), then success for ever."""

    def __init__(self, script: list[BaseException | None] | None = None) -> None:
        self.script = list(script or [])
        self.keep_alive_calls: list[float | None] = []
        self.revoked: list[int] = []
        self.revoke_error: PaxonError | None = None

    async def grant_lease(self, ttl: float) -> LeaseGrantResult:
        return LeaseGrantResult(7, round(ttl * 1000))

    async def keep_alive(self, lease_id: int, *, timeout: float | None = None) -> Any:
        assert lease_id == 7
        self.keep_alive_calls.append(timeout)
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        return LeaseKeepAliveResult(7, 1000)

    async def revoke_lease(self, lease_id: int) -> LeaseRevokeResult:
        if self.revoke_error is not None:
            raise self.revoke_error
        self.revoked.append(lease_id)
        return LeaseRevokeResult(1, 9)


def kept(fake: FakeLeases, interval_s: float = 0.01) -> KeptLease:
    return KeptLease(fake, 1, keep_alive_interval=interval_s)  # type: ignore[arg-type]


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def test_a_kept_lease_is_kept_alive_while_the_block_runs_and_revoked_after() -> None:
    fake = FakeLeases()

    async def scenario() -> None:
        async with kept(fake) as lease:
            assert lease.id == 7
            await until(lambda: lease.keep_alives >= 5)
            assert not lease.lost and lease.lost_reason is None
            assert fake.revoked == []
        assert fake.revoked == [7]
        calls = len(fake.keep_alive_calls)
        await asyncio.sleep(0.05)
        assert len(fake.keep_alive_calls) == calls, "keep-alives went on after the block"
        # Each attempt is bounded by what is left of the TTL (1 s).
        assert all(t is not None and 0 < t <= 1.0 for t in fake.keep_alive_calls)

    run(scenario)


def test_lease_not_found_loses_the_lease_at_once_and_it_is_not_revoked() -> None:
    fake = FakeLeases([None, LeaseNotFound("lease 7 does not exist")])

    async def scenario() -> None:
        async with kept(fake) as lease:
            await asyncio.wait_for(lease.wait_lost(), 2)
            assert lease.lost and lease.keep_alives == 1
            assert lease.lost_reason == "LeaseNotFound: lease 7 does not exist"
            calls = len(fake.keep_alive_calls)
            await asyncio.sleep(0.05)
            assert len(fake.keep_alive_calls) == calls, "keep-alives went on after the loss"
        assert fake.revoked == []

    run(scenario)


def test_unavailability_is_retried_and_a_success_in_time_keeps_the_lease() -> None:
    down = [Unavailable("no node") for _ in range(5)]
    fake = FakeLeases([*down, None])

    async def scenario() -> None:
        async with kept(fake) as lease:
            await until(lambda: lease.keep_alives >= 1)
            assert not lease.lost
            assert len(fake.keep_alive_calls) >= 6

    run(scenario)


def test_unavailability_for_a_whole_ttl_loses_the_lease_then_not_before() -> None:
    fake = FakeLeases([Unavailable("no node")] * 10_000)

    async def scenario() -> None:
        started = time.monotonic()
        async with kept(fake, interval_s=0.05) as lease:
            await asyncio.sleep(0.6)
            assert not lease.lost, "lost before its TTL (1 s) could have run out"
            await asyncio.wait_for(lease.wait_lost(), 2)
            assert time.monotonic() - started >= 0.95
            assert lease.lost_reason is not None and "within its TTL" in lease.lost_reason
            assert len(fake.keep_alive_calls) >= 5, "the failures were not retried"
        assert fake.revoked == [], "a lost lease is not revoked"

    run(scenario)


def test_another_refusal_loses_the_lease_at_once() -> None:
    fake = FakeLeases([PermissionDenied("no")])

    async def scenario() -> None:
        async with kept(fake) as lease:
            await asyncio.wait_for(lease.wait_lost(), 2)
            assert lease.lost_reason == "PermissionDenied: no"
            assert len(fake.keep_alive_calls) == 1

    run(scenario)


def test_a_failed_revoke_is_raised_unless_the_block_raised() -> None:
    async def scenario() -> None:
        fake = FakeLeases()
        fake.revoke_error = Unavailable("gone")
        with pytest.raises(Unavailable, match="gone"):
            async with kept(fake):
                pass
        with pytest.raises(KeyError, match="mine"):
            async with kept(fake):
                raise KeyError("mine")
        fake.revoke_error = LeaseNotFound("expired meanwhile")
        async with kept(fake):
            pass  # LeaseNotFound on leaving is no error

    run(scenario)


def test_the_sync_twin_keeps_the_lease_on_the_client_thread(closed_endpoint: str) -> None:
    fake = FakeLeases([None, None, LeaseNotFound("expired")])
    with SyncClient(closed_endpoint) as client:
        for name in ("grant_lease", "keep_alive", "revoke_lease"):
            setattr(client._client, name, getattr(fake, name))
        with client.lease(1, keep_alive_interval=0.01) as lease:
            assert lease.id == 7 and lease.ttl == 1.0
            assert lease.wait_lost(timeout=2)
            assert lease.keep_alives == 2 and lease.lost_reason == "LeaseNotFound: expired"
        assert fake.revoked == []
        with client.lease(1, keep_alive_interval=0.01) as lease:
            assert not lease.wait_lost(timeout=0.05)
        assert fake.revoked == [7]
