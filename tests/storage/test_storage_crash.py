"""A real crash test: SIGKILL a process that appends and syncs, then check the disk.

The child (``crash_child.py``) reports each batch on a pipe once its sync has
returned. The parent kills it at a random point (after a random number of
reports, so the kill lands while batches are in flight, segments roll over
and snapshots are written), then recovers the directory read-only and checks
that every reported record is there, exactly, and that the log holds nothing
that was not appended. The next child starts from the same directory, so
each round also exercises start-up after a crash (torn tail, leftovers).
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from crash_child import CONFIG, record_for, snapshot_data, snapshot_slot
from storage_helpers import expected_state

from paxon.storage import OsFileSystem, SnapshotReader, inspect_data_dir
from paxon.storage.codec import StorageRecord
from paxon.storage.layout import parse_segment_name
from paxon.storage.segments import scan_segment

KILLS = 50
LINE_TIMEOUT_S = 60.0
"""A line from the zygote takes milliseconds; this long means it is stuck: fail, never hang."""
_RECORDS: list[StorageRecord] = []  # record_for(1), record_for(2), ... as far as needed
CHILD = str(Path(__file__).with_name("crash_child.py"))


@pytest.mark.crash
def test_sigkill_never_loses_a_reported_record(tmp_path: Path) -> None:
    directory = str(tmp_path / "data")
    rng = random.Random(20240611)
    reported = 0
    zygote = subprocess.Popen(
        [sys.executable, CHILD, "--zygote"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    read_line = _line_reader(zygote.stdout)
    try:
        for round_ in range(KILLS):
            zygote.stdin.write(f"go {directory} {round_}\n")
            zygote.stdin.flush()
            first, second = read_line(), read_line()
            # The zygote prints the pid, the worker "ready": either may come first.
            pid_line, ready = (first, second) if first.startswith("pid ") else (second, first)
            assert pid_line.startswith("pid "), (first, second)
            assert ready.startswith("ready "), (first, second)
            assert int(ready.split()[1]) >= reported
            lines: list[str] = []
            dead = None
            for _ in range(rng.randint(0, 40)):
                line = read_line()
                if line.startswith("dead "):  # the worker died before the kill
                    dead = line
                    break
                lines.append(line)
            assert dead is None, f"the worker died on its own ({dead.strip()}): {lines[-5:]}"
            os.kill(int(pid_line.split()[1]), signal.SIGKILL)
            while not (line := read_line()).startswith("dead "):
                assert line, "the zygote died"
                lines.append(line)  # reported before the kill landed: claims too
            assert int(line.split()[1]) == -signal.SIGKILL, f"the worker died on its own: {lines}"
            reported = max([reported, *(int(line) for line in lines if line.strip())])
            _check(directory, reported)
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=10)
        zygote.stdout.close()
    assert reported > 1000  # the workers got real work done between kills


def _line_reader(stream: IO[str]) -> Callable[[], str]:
    """``readline`` with a deadline, from a thread that reads ``stream`` to its end."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()

    def read_line() -> str:
        try:
            return lines.get(timeout=LINE_TIMEOUT_S)
        except queue.Empty:
            raise AssertionError(f"no line from the zygote in {LINE_TIMEOUT_S} s") from None

    return read_line


def _check(directory: str, reported: int) -> None:
    fs = OsFileSystem()
    found = inspect_data_dir(
        fs, directory, record_max=CONFIG.record_max_bytes, expected=(1, "crash")
    )
    assert found.damage is None, found.damage
    lsn_last = found.lsn_last
    assert lsn_last >= reported
    snapshot = found.snapshot_used
    cut = (snapshot.lsn, snapshot.slot) if snapshot is not None else None
    if snapshot is not None:
        assert snapshot.slot == snapshot_slot(snapshot.lsn)
        assert found.identity is not None
        with SnapshotReader(
            fs, directory, snapshot.name, found.identity.incarnation, CONFIG.record_max_bytes
        ) as reader:
            assert reader.read_all() == snapshot_data(snapshot.slot)
    while len(_RECORDS) < lsn_last:
        _RECORDS.append(record_for(len(_RECORDS) + 1))
    assert found.state == expected_state(_RECORDS, lsn_last, cut)
    assert found.identity is not None
    for name in os.listdir(directory):
        first = parse_segment_name(name)
        if first is None:
            continue
        path = os.path.join(directory, name)
        seen: list[int] = []

        def visit(lsn: int, record: object, seen: list[int] = seen) -> None:
            assert record == record_for(lsn), lsn
            seen.append(lsn)

        scan_segment(
            fs.read(path), path, first, found.identity.incarnation, CONFIG.record_max_bytes, visit
        )
        assert seen == list(range(first, first + len(seen)))
