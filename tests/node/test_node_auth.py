"""Auth on three real ``Node``s over loopback: native clients, HTTP, restarts, leader changes.

Roles: ``r`` may read ``app/``, ``w`` may read and write ``app/``; users
``reader`` (r), ``writer`` (w) and ``root``. Every route and command is tried
with no token, a wrong one, the reader and the writer; a refusal must apply
nothing. Waiting is by polling with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from tests.node.test_node import eventually, free_ports, run

from paxon.client import Client
from paxon.errors import (
    AuthNotEnabled,
    Busy,
    PaxonError,
    PermissionDenied,
    Unauthenticated,
)
from paxon.kv.auth import TOKEN_KEY_BYTES, TOKEN_TTL_MS, issue_token
from paxon.kv.authcodec import wrap
from paxon.kv.codec import decode_result, encode_command, encode_query
from paxon.kv.model import ErrorResult, Get, Put, PutOp, Txn
from paxon.kv.store import KvStore
from paxon.node import Node, NodeConfig, authgate
from paxon.node.authgate import HASHES_WAITING_MAX, AuthGate
from paxon.node.kvservice import NodeKvService
from paxon.server.http import start_http

PASSWORDS = {"root": "root-pass-1", "reader": "reader-pass-2", "writer": "writer-pass-3"}


class AuthCluster:
    def __init__(self, root: Path, config: NodeConfig | None = None) -> None:
        self.root = root
        self.config = config or NodeConfig()
        self.peers = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(free_ports(3))}
        self.nodes: dict[int, Node] = {}
        self.http: dict[int, web.AppRunner] = {}

    async def start(self, node_id: int) -> Node:
        node = Node(
            node_id, self.peers, str(self.root / f"n{node_id}"), KvStore(), config=self.config
        )
        await node.start()
        self.nodes[node_id] = node
        self.http[node_id] = await start_http(NodeKvService(node), "127.0.0.1", 0)
        return node

    async def start_all(self) -> None:
        for node_id in self.peers:
            await self.start(node_id)

    async def stop(self, node_id: int) -> None:
        await self.http.pop(node_id).cleanup()
        await self.nodes.pop(node_id).stop()

    async def stop_all(self) -> None:
        for node_id in list(self.nodes):
            await self.stop(node_id)

    def endpoints(self) -> list[str]:
        return [self.peers[n] for n in sorted(self.nodes)]

    def client(self, user: str | None = None, password: str | None = None) -> Client:
        if user is not None and password is None:
            password = PASSWORDS[user]
        return Client(self.endpoints(), timeout=10, user=user, password=password)

    def http_url(self, node_id: int) -> str:
        host, port = self.http[node_id].addresses[0][:2]
        return f"http://{host}:{port}"

    def store(self, node_id: int) -> KvStore:
        machine = self.nodes[node_id].machine.machine
        assert isinstance(machine, KvStore)
        return machine

    async def leader(self) -> int:
        await eventually(lambda: any(n.is_leader for n in self.nodes.values()))
        return next(i for i, n in self.nodes.items() if n.is_leader)


async def set_up_users(cluster: AuthCluster) -> None:
    """Users and roles made while auth is off, then auth turned on."""
    async with cluster.client() as admin:
        await admin.user_add("root", PASSWORDS["root"])
        await admin.user_add("reader", PASSWORDS["reader"])
        await admin.user_add("writer", PASSWORDS["writer"])
        await admin.role_add("r")
        await admin.role_add("w")
        await admin.role_grant("r", "app/", "read")
        await admin.role_grant("w", "app/", "readwrite")
        await admin.user_grant_role("reader", "r")
        await admin.user_grant_role("writer", "w")
        await admin.put("app/seed", "1")
        await admin.put("other", "1")
        await admin.auth_enable()
    await eventually(lambda: all(cluster.store(n).auth.enabled for n in cluster.nodes))


async def settled(cluster: AuthCluster) -> None:
    """Wait until every node applied the leader's auth state: a login is checked
    against the answering node's applied users."""
    revision = cluster.store(await cluster.leader()).auth.revision
    await eventually(lambda: all(cluster.store(n).auth.revision == revision for n in cluster.nodes))


def auth_test(
    tmp_path: Path, body: Callable[[AuthCluster], Awaitable[None]], **config: Any
) -> None:
    async def scenario() -> None:
        cluster = AuthCluster(tmp_path, NodeConfig(**config))
        await cluster.start_all()
        try:
            await cluster.leader()
            await set_up_users(cluster)
            await body(cluster)
        finally:
            await cluster.stop_all()

    run(scenario)


async def outcome(call: Awaitable[object]) -> str:
    try:
        await call
    except PaxonError as error:
        return error.code
    return "ok"


# ------------------------------------------------------------------ native


NATIVE_CALLS: dict[str, Callable[[Client], Awaitable[object]]] = {
    "put app/": lambda c: c.put("app/k", "v"),
    "get app/": lambda c: c.get("app/seed"),
    "get --serializable app/": lambda c: c.get("app/seed", serializable=True),
    "get --prefix app/": lambda c: c.get_prefix("app/"),
    "cas app/": lambda c: c.cas("app/k", "v", expect_version=0),
    "del app/": lambda c: c.delete("app/k"),
    "del --prefix app/": lambda c: c.delete("app/k", prefix=True),
    "txn put app/": lambda c: c.txn(Txn((), (PutOp("app/t", b"1"),))),
    "put other": lambda c: c.put("other", "v"),
    "get other": lambda c: c.get("other"),
    "get --prefix everything": lambda c: c.get_prefix(""),
    "user list": lambda c: c.user_list(),
    "role list": lambda c: c.role_list(),
    "user add": lambda c: c.user_add("mallory", "mallory-pass"),
    "user passwd": lambda c: c.user_passwd("root", "taken-over"),
    "role add": lambda c: c.role_add("x"),
    "role grant": lambda c: c.role_grant("r", "", "readwrite"),
    "user grant-role": lambda c: c.user_grant_role("reader", "root"),
    "auth disable": lambda c: c.auth_disable(),
}
WRITES = {"put app/", "cas app/", "del app/", "del --prefix app/", "txn put app/"}
READS = {"get app/", "get --serializable app/", "get --prefix app/"}


def expected_native(who: str, call: str) -> str:
    if who in ("none", "forged", "wrong password"):
        return "unauthenticated"
    if call in READS or (who == "writer" and call in WRITES):
        return "ok"
    return "permission_denied"


def test_every_native_command_with_no_token_a_wrong_one_a_reader_and_a_writer(
    tmp_path: Path,
) -> None:
    async def body(cluster: AuthCluster) -> None:
        leader = await cluster.leader()
        forged = issue_token(b"f" * TOKEN_KEY_BYTES, "root", 1, 0)
        clients = {
            "none": cluster.client(),
            "wrong password": cluster.client("reader", "not-the-password"),
            "reader": cluster.client("reader"),
            "writer": cluster.client("writer"),
        }
        try:
            for who, client in clients.items():
                for name, call in NATIVE_CALLS.items():
                    revision = cluster.store(leader).revision
                    auth_revision = cluster.store(leader).auth.revision
                    got = await outcome(call(client))
                    assert got == expected_native(who, name), f"{who}: {name}"
                    if got != "ok":
                        assert cluster.store(leader).revision == revision, f"{who}: {name}"
                        assert cluster.store(leader).auth.revision == auth_revision
            # A forged token, sent by hand around the client's own login.
            raw = clients["none"]
            for payload in (encode_command(Put("app/k", b"v")), encode_command(Put("o", b"v"))):
                assert await outcome(raw.submit(wrap(forged, payload))) == "unauthenticated"
            query = encode_query(Get("app/seed"))
            assert await outcome(raw.query(wrap(forged, query))) == "unauthenticated"
            assert cluster.store(leader).revision == revision
        finally:
            for client in clients.values():
                await client.close()
        async with cluster.client("root") as root:
            assert (await root.get("other")).value == b"1"  # type: ignore[union-attr]
            enabled, users = await root.user_list()
            assert enabled and [u.name for u in users] == ["reader", "root", "writer"]

    auth_test(tmp_path, body)


def test_a_revoked_permission_refuses_the_next_write(tmp_path: Path) -> None:
    async def body(cluster: AuthCluster) -> None:
        async with cluster.client("writer") as writer, cluster.client("root") as root:
            await writer.put("app/a", "1")
            await root.role_revoke("w", "app/")
            with pytest.raises(PermissionDenied):
                await writer.put("app/a", "2")
            assert (await root.get("app/a")).value == b"1"  # type: ignore[union-attr]
            await root.role_grant("w", "app/", "read")
            with pytest.raises(PermissionDenied):
                await writer.put("app/a", "3")
            assert (await writer.get("app/a")).value == b"1"  # type: ignore[union-attr]

    auth_test(tmp_path, body)


def test_a_changed_password_ends_old_tokens_and_logins(tmp_path: Path) -> None:
    async def body(cluster: AuthCluster) -> None:
        async with cluster.client("writer") as writer, cluster.client("root") as root:
            old = await writer.login()
            assert old is not None
            await root.user_passwd("writer", "new-writer-pass")
            with pytest.raises(Unauthenticated):  # a renewal with the old password fails too
                await writer.put("app/a", "1")
            raw = cluster.client()
            try:
                assert await outcome(raw.submit(wrap(old, encode_command(Put("app/a", b"1"))))) == (
                    "unauthenticated"
                )
            finally:
                await raw.close()
        await settled(cluster)
        async with cluster.client("writer", "new-writer-pass") as writer:
            await writer.put("app/a", "1")

    auth_test(tmp_path, body)


def test_auth_survives_snapshots_restarts_and_a_leader_change(tmp_path: Path) -> None:
    async def body(cluster: AuthCluster) -> None:
        async with cluster.client("writer") as writer:
            token = await writer.login()
            for index in range(12):  # past snapshot_interval_slots: auth is in a snapshot
                await writer.put(f"app/{index}", "v")
        await cluster.stop_all()
        assert list((tmp_path / "n1").glob("snapshot-*.snap"))
        await cluster.start_all()
        leader = await cluster.leader()
        assert all(cluster.store(n).auth.enabled for n in cluster.nodes)
        assert token is not None
        raw = cluster.client()
        try:
            # The token key is replicated state: a token from before the restart still works.
            reply = await raw.submit(wrap(token, encode_command(Put("app/x", b"1"))))
            assert not isinstance(decode_result(reply), ErrorResult)
            denied = raw.submit(wrap(token, encode_command(Put("other", b"1"))))
            assert await outcome(denied) == "permission_denied"
        finally:
            await raw.close()
        await cluster.stop(leader)
        new_leader = await cluster.leader()
        assert new_leader != leader
        async with cluster.client("reader") as reader, cluster.client("writer") as writer:
            with pytest.raises(PermissionDenied):
                await reader.put("app/x", "2")
            await writer.put("app/x", "3")
            assert (await reader.get("app/x")).value == b"3"  # type: ignore[union-attr]
        async with cluster.client() as anonymous:
            with pytest.raises(Unauthenticated):
                await anonymous.get("app/x")

    auth_test(tmp_path, body, snapshot_interval_slots=5)


def test_a_password_never_reaches_the_log_or_snapshots(tmp_path: Path) -> None:
    secret = "a-very-unusual-password-4711"

    async def body(cluster: AuthCluster) -> None:
        async with cluster.client("root") as root:
            await root.user_add("alice", secret)
            await root.user_passwd("alice", secret + "-2")
            await settled(cluster)
        async with cluster.client("alice", secret + "-2") as alice:
            assert await alice.login() is not None
        await cluster.stop_all()
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path

    auth_test(tmp_path, body, snapshot_interval_slots=5)


def test_with_auth_disabled_a_user_is_not_needed_and_login_says_so(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster = AuthCluster(tmp_path)
        await cluster.start_all()
        try:
            await cluster.leader()
            async with cluster.client() as anonymous:
                await anonymous.put("k", "v")
            async with cluster.client("someone", "any-password") as client:
                assert await client.login() is None  # nothing to log in to
                assert (await client.get("k")).value == b"v"  # type: ignore[union-attr]
            with pytest.raises(AuthNotEnabled):
                await cluster.nodes[1].authenticate("someone", "any-password")
        finally:
            await cluster.stop_all()

    run(scenario)


# ------------------------------------------------------------------ HTTP


HTTP_ROUTES: list[tuple[str, str, str, Any]] = [
    # (name, method, path, json body)
    ("get app/", "GET", "/v1/kv/app/seed", None),
    ("get --prefix app/", "GET", "/v1/kv/app/?prefix=1", None),
    ("get --serializable app/", "GET", "/v1/kv/app/seed?serializable=1", None),
    ("get other", "GET", "/v1/kv/other", None),
    ("get --prefix everything", "GET", "/v1/kv/?prefix=1", None),
    ("put app/", "PUT", "/v1/kv/app/h", None),
    ("put other", "PUT", "/v1/kv/other", None),
    ("del app/", "DELETE", "/v1/kv/app/h", None),
    ("del --prefix app/", "DELETE", "/v1/kv/app/h?prefix=1", None),
    ("txn put app/", "POST", "/v1/txn", {"success": [{"put": {"key": "app/t", "value": "1"}}]}),
    ("txn get other", "POST", "/v1/txn", {"success": [{"get": {"key": "other"}}]}),
]
OPEN_ROUTES = ["/v1/status", "/v1/cluster", "/metrics", "/"]


def expected_http(who: str, name: str) -> int:
    if who in ("none", "forged", "garbage"):
        return 401
    if name in READS or (who == "writer" and name in WRITES):
        return 200
    return 403


def test_every_http_route_with_no_token_a_wrong_one_a_reader_and_a_writer(
    tmp_path: Path,
) -> None:
    async def body(cluster: AuthCluster) -> None:
        leader = await cluster.leader()
        follower = next(n for n in cluster.nodes if n != leader)
        url = cluster.http_url(follower)  # through a follower: forwarded with the token
        async with aiohttp.ClientSession() as http:

            async def login(user: str, password: str) -> tuple[int, dict[str, Any]]:
                body = {"user": user, "password": password}
                async with http.post(f"{url}/v1/auth/authenticate", json=body) as response:
                    return response.status, await response.json()

            status, answer = await login("reader", "wrong")
            assert (status, answer["code"]) == (401, "unauthenticated")
            tokens: dict[str, str | None] = {
                "none": None,
                "forged": issue_token(b"f" * TOKEN_KEY_BYTES, "root", 1, 0),
                "garbage": "not.a-token",
            }
            for user in ("reader", "writer"):
                status, answer = await login(user, PASSWORDS[user])
                assert status == 200
                tokens[user] = answer["token"]
            for who, token in tokens.items():
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                for name, method, path, json_body in HTTP_ROUTES:
                    revision = cluster.store(leader).revision
                    kwargs: dict[str, Any] = {"headers": headers}
                    if json_body is not None:
                        kwargs["json"] = json_body
                    elif method == "PUT":
                        kwargs["data"] = b"v"
                    async with http.request(method, url + path, **kwargs) as response:
                        answer = await response.json()
                        want = expected_http(who, name)
                        assert response.status == want, (who, name, answer)
                        if want == 401:
                            assert answer["code"] == "unauthenticated"
                            assert response.headers["WWW-Authenticate"] == "Bearer"
                        if want == 403:
                            assert answer["code"] == "permission_denied"
                    if want != 200:
                        assert cluster.store(leader).revision == revision, (who, name)
                for path in OPEN_ROUTES:
                    async with http.get(url + path, headers=headers) as response:
                        assert response.status == 200, (who, path)
            for header in ("Basic eDp5", "Bearer", "Bearer " + "a" * 600):
                async with http.get(url + "/v1/kv/x", headers={"Authorization": header}) as r:
                    assert r.status == 401, header

    auth_test(tmp_path, body)


# ------------------------------------------------------------------ the gate


def test_the_gate_refuses_expired_tokens_by_its_clock() -> None:
    async def scenario() -> None:
        store = KvStore()
        now = [1_000.0]
        gate = AuthGate(store, wall_time_s=lambda: now[0])
        try:
            from paxon.kv.auth import AuthEnable, UserAdd, hash_password

            store.auth.apply(UserAdd("root", hash_password("pw-root", b"s" * 16)), 4096)
            store.auth.apply(AuthEnable(b"k" * TOKEN_KEY_BYTES), 4096)
            token = await gate.authenticate("root", "pw-root")
            payload = wrap(token, encode_query(Get("k")))
            gate.check_query(payload)
            now[0] += TOKEN_TTL_MS / 1000 + 1
            with pytest.raises(Unauthenticated, match="expired"):
                gate.check_query(payload)
            with pytest.raises(Unauthenticated, match="expired"):
                gate.check(wrap(token, encode_command(Put("k", b"v"))))
            with pytest.raises(Unauthenticated, match="failed"):
                await gate.authenticate("root", "wrong")
            with pytest.raises(Unauthenticated, match="failed"):
                await gate.authenticate("nobody", "pw-root")
        finally:
            gate.close()

    run(scenario)


def test_a_flood_of_logins_is_bounded_and_answered_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    started = threading.Semaphore(0)

    def slow_check(password_hash: bytes | None, password: str) -> bool:
        started.release()
        release.wait(30)
        return False

    monkeypatch.setattr(authgate, "_password_matches", slow_check)

    async def scenario() -> None:
        store = KvStore()
        from paxon.kv.auth import AuthEnable, UserAdd

        store.auth.apply(UserAdd("root", b"h" * 48), 4096)
        store.auth.apply(AuthEnable(b"k" * TOKEN_KEY_BYTES), 4096)
        gate = AuthGate(store)
        try:
            waiting = [
                asyncio.ensure_future(gate.authenticate("root", "pw"))
                for _ in range(HASHES_WAITING_MAX)
            ]
            await asyncio.sleep(0)
            with pytest.raises(Busy):
                await gate.authenticate("root", "pw")
            # Only HASHES_MAX run at once; the rest wait for a thread.
            await asyncio.get_running_loop().run_in_executor(None, started.acquire)
            await asyncio.get_running_loop().run_in_executor(None, started.acquire)
            assert not started.acquire(blocking=False)
            release.set()
            results = await asyncio.gather(*waiting, return_exceptions=True)
            assert all(isinstance(result, Unauthenticated) for result in results)
        finally:
            release.set()
            gate.close()

    run(scenario)


def test_login_input_is_bounded_before_it_leaves_or_lands() -> None:
    from paxon.errors import BadRequest
    from paxon.net.client_messages import AUTH_FIELD_MAX_BYTES, Authenticate

    with pytest.raises(ValueError):
        Authenticate(1, "u", "x" * (AUTH_FIELD_MAX_BYTES + 1))
    assert "secret" not in repr(Authenticate(1, "u", "secret"))
    with pytest.raises(BadRequest, match="password"):
        Client(["127.0.0.1:1"], user="u", password="x" * 1025)
    with pytest.raises(BadRequest, match="user"):
        Client(["127.0.0.1:1"], user="bad name", password="pw")
    with pytest.raises(BadRequest, match="both"):
        Client(["127.0.0.1:1"], user="u")
