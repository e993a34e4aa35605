"""Group commit: handles, ordering, batching of syncs, asyncio, failures.

No sleeps: the sync thread is held inside ``fdatasync`` by the in-memory file
system's ``on_sync`` hook, and released by the test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from storage_helpers import accept, fresh_fs, open_storage

from paxon.storage import GroupCommitter, MemFileSystem, Storage, StorageClosed, StorageFailed

WAIT_S = 10.0  # only ever reached if something is broken


class Gate:
    """Holds every file sync at the door until the test opens it."""

    def __init__(self, fs: MemFileSystem) -> None:
        self.entered = threading.Semaphore(0)
        self.open = threading.Event()
        self.open.set()
        fs.on_sync = self._hook

    def _hook(self, path: str) -> None:
        self.entered.release()
        assert self.open.wait(WAIT_S)

    def close(self) -> None:
        self.open.clear()

    def wait_for_sync(self) -> None:
        assert self.entered.acquire(timeout=WAIT_S)


@pytest.fixture
def setup() -> Iterator[tuple[MemFileSystem, Storage, GroupCommitter]]:
    fs = fresh_fs()
    storage = open_storage(fs)
    committer = GroupCommitter(storage)
    yield fs, storage, committer
    committer.close(WAIT_S)
    storage.close()


def test_blocking_append_returns_once_durable(
    setup: tuple[MemFileSystem, Storage, GroupCommitter],
) -> None:
    fs, storage, committer = setup
    assert committer.append_blocking([accept(1), accept(2)]) == 2
    assert storage.lsn_durable == 2
    assert fs.durable_size(fs_path(storage)) == fs.size(fs_path(storage))


def fs_path(storage: Storage) -> str:
    return f"{storage.directory}/{storage.segments()[-1][0]}"


def test_batches_arriving_during_a_sync_share_the_next_one(
    setup: tuple[MemFileSystem, Storage, GroupCommitter],
) -> None:
    fs, storage, committer = setup
    gate = Gate(fs)
    gate.close()
    first = committer.submit([accept(1)])
    gate.wait_for_sync()  # the thread is inside fdatasync for record 1
    assert not first.done()  # nothing is durable before fdatasync returns
    later = [committer.submit([accept(slot)]) for slot in range(2, 12)]
    syncs_before = fs.stats["fdatasync"]
    gate.open.set()
    for handle in [first, *later]:
        handle.wait(WAIT_S)
    assert fs.stats["fdatasync"] - syncs_before == 2  # the first, then one for the ten others
    assert storage.lsn_durable == 11


def test_an_empty_batch_waits_for_every_earlier_record(
    setup: tuple[MemFileSystem, Storage, GroupCommitter],
) -> None:
    fs, _storage, committer = setup
    gate = Gate(fs)
    gate.close()
    committer.submit([accept(1)])
    gate.wait_for_sync()
    empty = committer.submit([])
    assert empty.lsn == 1 and not empty.done()
    gate.open.set()
    assert empty.wait(WAIT_S) == 1


def test_handles_complete_in_lsn_order_and_never_early(
    setup: tuple[MemFileSystem, Storage, GroupCommitter],
) -> None:
    _fs, storage, committer = setup
    handles = [committer.submit([accept(slot)] * (slot % 3)) for slot in range(1, 60)]
    for handle in reversed(handles):
        handle.wait(WAIT_S)
        assert storage.lsn_durable >= handle.lsn
    lsns = [handle.lsn for handle in handles]
    assert lsns == sorted(lsns)


def test_asyncio_waiters_resume_in_order_and_the_loop_never_blocks(
    setup: tuple[MemFileSystem, Storage, GroupCommitter],
) -> None:
    fs, _storage, committer = setup
    gate = Gate(fs)
    finished: list[int] = []

    async def batch(slot: int) -> None:
        lsn = await committer.append([accept(slot)])
        finished.append(lsn)

    async def main() -> None:
        gate.close()
        first = asyncio.create_task(batch(1))
        await asyncio.sleep(0)  # let it submit
        await asyncio.get_running_loop().run_in_executor(None, gate.wait_for_sync)
        # The disk is stuck; the loop still runs and takes more batches.
        tasks = [asyncio.create_task(batch(slot)) for slot in range(2, 30)]
        for _ in range(5):
            await asyncio.sleep(0)
        assert finished == []
        gate.open.set()
        await asyncio.wait_for(asyncio.gather(first, *tasks), WAIT_S)

    asyncio.run(main())
    assert finished == sorted(finished) == list(range(1, 30))


def test_a_failed_sync_fails_every_waiter_and_every_later_batch(
    setup: tuple[MemFileSystem, Storage, GroupCommitter],
) -> None:
    fs, storage, committer = setup
    fs.fail("fdatasync")
    handle = committer.submit([accept(1)])
    with pytest.raises(StorageFailed):
        handle.wait(WAIT_S)
    with pytest.raises(StorageFailed):
        committer.submit([accept(3)])

    async def late() -> None:
        with pytest.raises(StorageFailed):
            await handle

    asyncio.run(late())
    assert storage.lsn_durable == 0


def test_asyncio_waiters_hear_of_a_failure() -> None:
    fs = fresh_fs()
    storage = open_storage(fs)
    committer = GroupCommitter(storage)
    gate = Gate(fs)

    async def main() -> None:
        gate.close()
        fs.fail("fdatasync")
        task = asyncio.create_task(committer.append([accept(1)]))
        await asyncio.sleep(0)
        gate.open.set()
        with pytest.raises(StorageFailed):
            await asyncio.wait_for(task, WAIT_S)

    asyncio.run(main())
    committer.close(WAIT_S)


def test_close_syncs_what_was_submitted(
    setup: tuple[MemFileSystem, Storage, GroupCommitter],
) -> None:
    fs, storage, committer = setup
    gate = Gate(fs)
    gate.close()
    handles = [committer.submit([accept(slot)]) for slot in range(1, 5)]
    gate.open.set()
    committer.close(WAIT_S)
    assert all(handle.done() for handle in handles)
    assert storage.lsn_durable == 4
    with pytest.raises(StorageClosed):
        committer.submit([accept(9)])


def test_a_sync_by_a_snapshot_writer_completes_handles_too(
    setup: tuple[MemFileSystem, Storage, GroupCommitter],
) -> None:
    fs, storage, committer = setup
    gate = Gate(fs)
    gate.close()
    handle = committer.submit([accept(1)])
    gate.wait_for_sync()
    writer = storage.begin_snapshot(1)
    handle2 = committer.submit([accept(2)])
    gate.open.set()
    meta = writer.write(b"x")
    assert meta.lsn == 1
    handle.wait(WAIT_S)
    handle2.wait(WAIT_S)


def test_a_batch_without_sync_rides_along_with_the_next_sync(
    setup: tuple[MemFileSystem, Storage, GroupCommitter],
) -> None:
    _, storage, committer = setup
    lazy = committer.submit([accept(1)], sync=False)
    with pytest.raises(TimeoutError):
        lazy.wait(0.05)  # nobody asked for a sync: it is not durable yet
    assert storage.lsn_durable == 0
    eager = committer.submit([accept(2)])
    assert eager.wait(WAIT_S) == 2
    assert lazy.done() and storage.lsn_durable == 2


def test_close_syncs_batches_submitted_without_sync(
    setup: tuple[MemFileSystem, Storage, GroupCommitter],
) -> None:
    _, storage, committer = setup
    handle = committer.submit([accept(1), accept(2)], sync=False)
    committer.close(WAIT_S)
    assert handle.done() and storage.lsn_durable == 2


# ------------------------------------------------------------ syncing from the caller


def synced_on(fs: MemFileSystem) -> list[str]:
    """The name of the thread of every file sync from now on."""
    threads: list[str] = []
    fs.on_sync = lambda _path: threads.append(threading.current_thread().name)
    return threads


def test_an_idle_quick_disk_is_synced_on_the_callers_thread(
    setup: tuple[MemFileSystem, Storage, GroupCommitter], monkeypatch: pytest.MonkeyPatch
) -> None:
    from paxon.storage import commit

    monkeypatch.setattr(commit, "SYNC_HERE_IDLE_S", 0.0)
    fs, storage, committer = setup
    assert not committer.may_sync_here()  # the disk is not timed yet: the thread first
    committer.submit([accept(1)]).wait(WAIT_S)
    threads = synced_on(fs)
    assert committer.may_sync_here()  # idle, and its one sync was quick
    handle = committer.submit([accept(2), accept(3)], sync=False)
    assert not handle.done()
    committer.sync_here(handle.lsn)
    assert handle.done() and storage.lsn_durable == 3
    assert threads == [threading.current_thread().name]


def test_no_sync_here_while_the_sync_thread_has_work(
    setup: tuple[MemFileSystem, Storage, GroupCommitter], monkeypatch: pytest.MonkeyPatch
) -> None:
    from paxon.storage import commit

    monkeypatch.setattr(commit, "SYNC_HERE_IDLE_S", 0.0)
    fs, _storage, committer = setup
    gate = Gate(fs)
    committer.submit([accept(1)]).wait(WAIT_S)  # quick: the loop may sync next
    gate.wait_for_sync()
    assert committer.may_sync_here()
    gate.close()
    handle = committer.submit([accept(2)])
    gate.wait_for_sync()  # the thread is inside fdatasync
    assert not committer.may_sync_here()
    gate.open.set()
    handle.wait(WAIT_S)
    assert committer.may_sync_here()  # idle again, and the last sync was quick


def test_right_after_a_sync_the_thread_keeps_the_group_commit(
    setup: tuple[MemFileSystem, Storage, GroupCommitter], monkeypatch: pytest.MonkeyPatch
) -> None:
    from paxon.storage import commit

    _fs, _storage, committer = setup
    committer.submit([accept(1)]).wait(WAIT_S)
    monkeypatch.setattr(commit, "SYNC_HERE_IDLE_S", 3600.0)  # "the last sync just ended"
    assert not committer.may_sync_here()
    monkeypatch.setattr(commit, "SYNC_HERE_IDLE_S", 0.0)
    assert committer.may_sync_here()


def test_a_slow_sync_sends_the_next_ones_to_the_thread(
    setup: tuple[MemFileSystem, Storage, GroupCommitter], monkeypatch: pytest.MonkeyPatch
) -> None:
    from paxon.storage import commit

    monkeypatch.setattr(commit, "SYNC_HERE_IDLE_S", 0.0)
    monkeypatch.setattr(commit, "SYNC_HERE_MAX_S", 0.0)  # every sync counts as slow
    _fs, _storage, committer = setup
    committer.sync_here(committer.submit([accept(1)], sync=False).lsn)  # slow, on this thread
    assert not committer.may_sync_here()
    monkeypatch.setattr(commit, "SYNC_HERE_MAX_S", 3600.0)  # the same last sync, now quick
    assert committer.may_sync_here()


def test_a_failed_sync_here_fails_it_and_every_later_batch(
    setup: tuple[MemFileSystem, Storage, GroupCommitter], monkeypatch: pytest.MonkeyPatch
) -> None:
    from paxon.storage import commit

    monkeypatch.setattr(commit, "SYNC_HERE_IDLE_S", 0.0)
    fs, storage, committer = setup
    committer.submit([accept(1)]).wait(WAIT_S)  # a quick sync: the loop may sync next
    assert committer.may_sync_here()
    fs.fail("fdatasync")
    handle = committer.submit([accept(2)], sync=False)
    with pytest.raises(StorageFailed):
        committer.sync_here(handle.lsn)
    assert storage.lsn_durable == 1 and not handle.done()
    assert not committer.may_sync_here()
    with pytest.raises(StorageFailed):
        committer.submit([accept(2)])


def test_a_sync_here_with_nothing_to_sync_leaves_the_slow_disk_guard_alone(
    setup: tuple[MemFileSystem, Storage, GroupCommitter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several Readies of one loop turn each ask; only the first fsyncs. The
    others must not count as quick syncs that lift the guard of a slow one."""
    import time

    from paxon.storage import commit

    monkeypatch.setattr(commit, "SYNC_HERE_IDLE_S", 0.0)
    fs, _storage, committer = setup
    fs.on_sync = lambda _path: time.sleep(2 * commit.SYNC_HERE_MAX_S)  # a slow disk
    lsn = committer.submit([accept(1)], sync=False).lsn
    committer.sync_here(lsn)
    assert not committer.may_sync_here()
    committer.sync_here(lsn)  # already durable: no fsync
    assert not committer.may_sync_here()
