"""The child of the SIGKILL test: append and sync forever, report each durable lsn.

A worker prints ``ready LSN`` once recovered, then one line per batch whose
sync returned (its last lsn), flushed at once: a line on the pipe is a claim
that the record is on disk. The record at each lsn depends only on the lsn
(``record_for``), so the parent can check every one.

``python crash_child.py DIR SEED`` runs one worker. ``python crash_child.py
--zygote`` imports everything once, then for each ``go DIR SEED`` line on stdin
forks a worker, prints ``pid PID``, and once the worker is dead prints
``dead STATUS`` (after all the worker's lines, which share its stdout). Forking
from a warm, single-threaded process makes each of the many kills cheap; each
worker is still a real process with its own sync thread, killed for real.
"""

from __future__ import annotations

import os
import random
import sys
import traceback
from collections import deque

from paxon.protocol.records import AcceptRecord, ChosenRecord, PromiseRecord
from paxon.protocol.types import Ballot, Command, Entry, Value
from paxon.storage import CommitHandle, GroupCommitter, Storage, StorageConfig
from paxon.storage.codec import StorageRecord

CONFIG = StorageConfig(
    segment_max_bytes=64 * 1024, record_max_bytes=16 * 1024, snapshot_chunk_bytes=4096
)
SNAPSHOT_EVERY = 700


def record_for(lsn: int) -> StorageRecord:
    if lsn % 17 == 0:
        return PromiseRecord(Ballot(1 + lsn // 1000, 1))
    if lsn % 5 == 0:
        return ChosenRecord(lsn // 2)
    payload = bytes([lsn % 256]) * ((lsn * 7919) % 400)
    command = Command(lsn % 7, lsn, payload)
    return AcceptRecord(Entry(lsn, Ballot(1 + lsn // 1000, 1), Value((command,))))


def snapshot_slot(lsn: int) -> int:
    return max(0, lsn - 100)


def snapshot_data(slot: int) -> bytes:
    return slot.to_bytes(8, "little") * (1 + slot % 900)


def main(directory: str, seed: int) -> None:
    storage = Storage.open(directory, node_id=1, cluster_id="crash", config=CONFIG)
    lsn = storage.lsn_appended
    say(f"ready {lsn}")
    committer = GroupCommitter(storage)
    rng = random.Random(seed)
    in_flight: deque[CommitHandle] = deque()
    next_snapshot = lsn + rng.randint(1, SNAPSHOT_EVERY)
    while True:
        count = rng.randint(1, 24)
        in_flight.append(committer.submit([record_for(n) for n in range(lsn + 1, lsn + count + 1)]))
        lsn += count
        while len(in_flight) > 3 or (in_flight and in_flight[0].done()):
            say(str(in_flight.popleft().wait()))
        if lsn >= next_snapshot:
            slot = snapshot_slot(lsn)
            storage.save_snapshot(slot, snapshot_data(slot))
            next_snapshot = lsn + rng.randint(1, SNAPSHOT_EVERY)


def say(line: str) -> None:
    """One line in one ``write`` (atomic on a pipe): ``print`` may split the text and
    its newline, and a SIGKILL between them glued the zygote's next line onto it."""
    os.write(sys.stdout.fileno(), f"{line}\n".encode())


def zygote() -> None:
    for line in sys.stdin:
        command, *args = line.split()
        if command != "go":
            return
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            try:
                main(args[0], int(args[1]))
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(1)
        say(f"pid {pid}")
        _, status = os.waitpid(pid, 0)
        say(f"dead {os.waitstatus_to_exitcode(status)}")


if __name__ == "__main__":
    if sys.argv[1] == "--zygote":
        zygote()
    else:
        main(sys.argv[1], int(sys.argv[2]))
