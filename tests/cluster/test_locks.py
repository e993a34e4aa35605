"""Locks on three ``paxon serve`` processes, with real lock holders (processes)
killed and paused: the issue's real-process cases.

- A holder SIGKILLed loses the lock after its TTL plus its lock-delay, and not
  before (bounds below, from docs/coordination.md).
- A holder SIGSTOPped past its TTL gets its fenced write refused after SIGCONT,
  while the next holder's goes in.
- ``paxon lock`` around a shell command keeps the lock across a leader kill.
Costs about 25 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster.harness import Cluster

pytestmark = pytest.mark.cluster

TTL_S = 2.0
DELAY_S = 3.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "cluster", size=3)
    try:
        cluster.start()
        cluster.wait_for_leader()
        yield cluster
    finally:
        cluster.close()


def environment(cluster: Cluster) -> dict[str, str]:
    return dict(os.environ, PAXON_ENDPOINTS=",".join(cluster.endpoints))


def paxon_lock(cluster: Cluster, *args: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "paxon", "lock", *args],
        env=environment(cluster),
        text=True,
        start_new_session=True,  # its COMMAND is killed with it (the process group)
        **popen,
    )


def wait_for_file(path: Path, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written in {timeout_s} s")


def test_a_killed_holder_loses_the_lock_after_ttl_plus_lock_delay_not_before(
    cluster: Cluster, tmp_path: Path
) -> None:
    held = tmp_path / "held"
    holder = paxon_lock(
        cluster,
        "jobs",
        "--ttl",
        str(TTL_S),
        "--delay",
        str(DELAY_S),
        "--",
        "sh",
        "-c",
        f'echo "$PAXON_FENCE" > {held}; sleep 600',
    )
    first_fence = int(wait_for_file(held, 30))
    time.sleep(1.0)  # a keep-alive or two have gone out
    os.killpg(holder.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    holder.wait(timeout=10)
    taken = tmp_path / "taken"
    successor = paxon_lock(
        cluster, "jobs", "--timeout", "30", "--", "sh", "-c", f'echo "$PAXON_FENCE" > {taken}'
    )
    second_fence = int(wait_for_file(taken, 40))
    waited = time.monotonic() - killed_at
    assert successor.wait(timeout=10) == 0
    # Not before: the last keep-alive went out at most TTL/3 before the kill, the
    # lease lasts TTL after it (less the 0.1 s stamp interval), then the delay.
    earliest = TTL_S * 2 / 3 - 0.1 + DELAY_S
    # Not much after: TTL from the kill, the delay, the waiter's poll and start.
    latest = TTL_S + DELAY_S + 4.0
    assert earliest <= waited <= latest, (earliest, waited, latest)
    assert second_fence > first_fence


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    import paxon
    from paxon.kv.model import PutOp, Txn

    async def main(fence_file: Path, go_file: Path) -> None:
        async with paxon.Client() as kv:
            async with kv.lock("db", ttl=TTL) as fence:
                fence_file.write_text(f"{int(fence)} {fence.key}")
                while not go_file.exists():
                    await asyncio.sleep(0.02)
                done = await kv.txn(Txn((fence.guard(),), (PutOp("db/row", b"stale"),)))
                print("written" if done.succeeded else "refused", flush=True)

    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
    """
).replace("TTL", str(TTL_S))


def test_a_paused_holder_gets_its_fenced_write_refused_after_it_resumes(
    cluster: Cluster, tmp_path: Path
) -> None:
    fence_file, go_file = tmp_path / "fence", tmp_path / "go"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(fence_file), str(go_file)],
        env=environment(cluster),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        stale_fence = int(wait_for_file(fence_file, 30).split()[0])
        holder.send_signal(signal.SIGSTOP)
        with cluster.client() as kv, kv.lock("db", ttl=30, timeout=30) as fence:
            assert fence > stale_fence  # taken once the paused holder's lease expired
            assert kv.txn(_guarded(fence, b"fresh")).succeeded
            go_file.write_text("go")
            holder.send_signal(signal.SIGCONT)
            out, _ = holder.communicate(timeout=30)
            assert out.strip() == "refused"
            assert kv.get("db/row").value == b"fresh"  # type: ignore[union-attr]
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGCONT)
            holder.kill()
            holder.wait()


def _guarded(fence: object, value: bytes) -> object:
    from paxon.kv.model import PutOp, Txn

    return Txn((fence.guard(),), (PutOp("db/row", value),))  # type: ignore[attr-defined]


def test_paxon_lock_keeps_the_lock_across_a_leader_kill(cluster: Cluster, tmp_path: Path) -> None:
    started, finished = tmp_path / "started", tmp_path / "finished"
    script = f'echo "$PAXON_FENCE" > {started}; sleep 4; echo done > {finished}'
    holder = paxon_lock(
        cluster, "jobs", "--ttl", "3", "--", "sh", "-c", script, stderr=subprocess.PIPE
    )
    wait_for_file(started, 30)
    leader = cluster.wait_for_leader()
    cluster.node(leader).kill()
    cluster.wait_for_leader(not_in=[leader])
    _, errors = holder.communicate(timeout=60)
    assert holder.returncode == 0, errors
    assert wait_for_file(finished, 1) == "done"
    with cluster.client() as kv, kv.lock("jobs", ttl=5, timeout=20) as fence:
        assert fence > int(started.read_text())
