"""Backup and disaster recovery on real processes: write keys, save a backup from
a follower, lose the whole cluster (SIGKILL, data directories deleted), restore
three new data directories from the backup, start them, and read every key
back with its revisions; a damaged backup and a used data directory are
refused; under auth only root may save one. A lease (with its keys) and the
users, roles and permissions of an auth-enabled cluster come back too.

Cost: one 3-node cluster started twice per restore test, about 10 s each on 2
busy cores.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tests.cluster.harness import CLIENT_TIMEOUT_S, Cluster, paxon_cli

from paxon import Client, PermissionDenied, SyncClient, Unauthenticated
from paxon.kv.model import Compare, PutOp, Txn

pytestmark = pytest.mark.cluster

ROOT_PASSWORD = "backup-root-password"
ALICE_PASSWORD = "backup-alice-password"
LEASE_TTL_S = 600  # far beyond the test: the lease must come back, not lapse


def paxon(cluster: Cluster, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return paxon_cli(*args, endpoints=",".join(cluster.endpoints), **env)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def lose_and_restore(cluster: Cluster, backup: Path, revision: int) -> float:
    """The whole cluster is lost (SIGKILL, data directories deleted); each member is
    restored from ``backup`` (at ``revision``) into a fresh data directory and started.
    The monotonic time just before the new cluster's members were started."""
    cluster.close()
    for node in cluster.nodes:
        shutil.rmtree(node.data_dir)
    for node in cluster.nodes:
        restored = ok(
            paxon(
                cluster,
                "snapshot",
                "restore",
                str(backup),
                "--data-dir",
                str(node.data_dir),
                "--id",
                str(node.node_id),
                "--peers",
                node.peers,
            )
        )
        assert f"as node {node.node_id} of 3: revision {revision}" in restored
    started = time.monotonic()
    cluster.restart_all()
    cluster.wait_for_leader()
    return started


def test_save_wipe_restore_reads_every_key_back(cluster: Cluster, tmp_path: Path) -> None:
    with cluster.client() as kv:
        for i in range(40):
            kv.put(f"key-{i % 15:02d}", f"value-{i}")
        assert kv.delete("key-14").deleted == 1
        kv.txn(Txn((Compare("key-00", "version", ">", 0),), (PutOp("bin", b"\xff\x00"),), ()))
        before = {item.key: item for item in kv.get_prefix("")}
        revision = kv.put("last", "before the backup")
        before["last"] = kv.get("last")
    follower = next(n for n in cluster.nodes if n.node_id != cluster.wait_for_leader())
    backup = tmp_path / "backup.paxon"
    saved = ok(paxon(cluster, "snapshot", "save", str(backup), "--endpoints", follower.endpoint))
    assert saved.startswith(f"saved {backup}: revision {revision}, {len(before)} keys")
    assert not Path(str(backup) + ".tmp").exists()
    status = json.loads(ok(paxon(cluster, "snapshot", "status", str(backup), "--json")))
    assert status["revision"] == revision and status["keys"] == len(before)
    assert status["checksum_ok"] and status["node_id"] == follower.node_id

    # A damaged copy is refused by status and restore, and nothing is written.
    damaged = tmp_path / "damaged.paxon"
    content = bytearray(backup.read_bytes())
    content[len(content) // 2] ^= 0x01
    damaged.write_bytes(bytes(content))
    refused = paxon(cluster, "snapshot", "status", str(damaged))
    assert refused.returncode == 2 and "checksum mismatch" in refused.stderr
    target = tmp_path / "never"
    node1 = cluster.node(1)
    restore = ["snapshot", "restore", "--id", "1", "--peers", node1.peers]
    refused = paxon(cluster, *restore, str(damaged), "--data-dir", str(target))
    assert refused.returncode == 2 and "checksum mismatch" in refused.stderr
    assert not target.exists() and not Path(str(target) + ".restoring").exists()
    # A data directory in use is refused.
    refused = paxon(cluster, *restore, str(backup), "--data-dir", str(node1.data_dir))
    assert refused.returncode == 2 and "is not empty" in refused.stderr

    lose_and_restore(cluster, backup, revision)
    with cluster.client() as kv:
        after = {item.key: item for item in kv.get_prefix("")}
        assert after == before  # values, versions, create and mod revisions
        assert kv.put("after", "the restore") == revision + 1
    for node in cluster.nodes:  # every member holds it, not only the leader
        with node.client() as kv:
            assert kv.get("key-03", serializable=True) == before["key-03"]


def test_under_auth_only_root_saves_a_backup(cluster: Cluster, tmp_path: Path) -> None:
    ok(paxon(cluster, "user", "add", "root", PAXON_NEW_PASSWORD=ROOT_PASSWORD))
    ok(paxon(cluster, "user", "add", "alice", PAXON_NEW_PASSWORD=ALICE_PASSWORD))
    ok(paxon(cluster, "role", "add", "everything"))
    ok(paxon(cluster, "role", "grant", "everything", "", "readwrite"))
    ok(paxon(cluster, "user", "grant-role", "alice", "everything"))
    ok(paxon(cluster, "auth", "enable"))
    backup = tmp_path / "backup.paxon"
    anonymous = paxon(cluster, "snapshot", "save", str(backup))
    assert anonymous.returncode == 1 and "log in" in anonymous.stderr
    alice = paxon(
        cluster, "snapshot", "save", str(backup), PAXON_USER="alice", PAXON_PASSWORD=ALICE_PASSWORD
    )
    assert alice.returncode == 1 and "needs role root" in alice.stderr, alice.stderr
    assert not backup.exists()
    saved = paxon(
        cluster, "snapshot", "save", str(backup), PAXON_USER="root", PAXON_PASSWORD=ROOT_PASSWORD
    )
    assert ok(saved).startswith(f"saved {backup}: ")


def test_restore_brings_back_leases_and_users(cluster: Cluster, tmp_path: Path) -> None:
    with cluster.client() as kv:
        lease = kv.grant_lease(LEASE_TTL_S).lease
        kv.put("leased/a", "1", lease=lease)
        kv.put("leased/b", "2", lease=lease)
        kv.put("alice/own", "before")
    asyncio.run(add_root_and_alice(cluster.endpoints))
    backup = tmp_path / "backup.paxon"
    root = {"PAXON_USER": "root", "PAXON_PASSWORD": ROOT_PASSWORD}
    ok(paxon(cluster, "snapshot", "save", str(backup), **root))
    status = json.loads(ok(paxon(cluster, "snapshot", "status", str(backup), "--json")))
    started = lose_and_restore(cluster, backup, status["revision"])

    # Auth is still on, and only the users of the old cluster get in, as before.
    with pytest.raises(Unauthenticated), cluster.client() as anonymous:
        anonymous.get("alice/own")
    with pytest.raises(Unauthenticated), user_client(cluster, "alice", "wrong") as kv:
        kv.get("alice/own")
    with user_client(cluster, "alice", ALICE_PASSWORD) as alice:
        own = alice.get("alice/own")
        assert own is not None and own.value == b"before"
        assert alice.put("alice/after", "restore") > status["revision"]
        with pytest.raises(PermissionDenied):
            alice.get("leased/a")  # her role reads and writes alice/ only
        with pytest.raises(PermissionDenied):
            alice.put("elsewhere", "x")

    with user_client(cluster, "root", ROOT_PASSWORD) as kv:
        assert kv.leases() == [lease]
        alive = kv.lease_time_to_live(lease, keys=True)
        since_start_ms = (time.monotonic() - started) * 1000
        assert alive.keys == ("leased/a", "leased/b")
        assert alive.granted_ttl_ms == LEASE_TTL_S * 1000
        # The new cluster's first leader renewed it for a whole TTL (after the start),
        # so the seconds between the grant and the restore did not count against it.
        assert alive.remaining_ms >= LEASE_TTL_S * 1000 - since_start_ms
        assert kv.revoke_lease(lease).deleted == 2  # the restored lease ends with its keys
        assert kv.get_prefix("leased/") == []
        assert kv.leases() == []


async def add_root_and_alice(endpoints: list[str]) -> None:
    """root, and alice with a role that reads and writes ``alice/`` only; auth on."""
    async with Client(endpoints, timeout=CLIENT_TIMEOUT_S) as client:
        await client.user_add("root", ROOT_PASSWORD)
        await client.user_add("alice", ALICE_PASSWORD)
        await client.role_add("own-prefix")
        await client.role_grant("own-prefix", "alice/", "readwrite")
        await client.user_grant_role("alice", "own-prefix")
        await client.auth_enable()


def user_client(cluster: Cluster, user: str, password: str) -> SyncClient:
    return SyncClient(cluster.endpoints, timeout=CLIENT_TIMEOUT_S, user=user, password=password)
