"""Storage benchmark: the disk's raw fsync rate against paxon's log, in one run.

    python benchmarks/storage_bench.py [--dir DIR] [--seconds S] [--rounds R] [--json]

Measures, on the file system holding DIR (default: the system temp dir):
- raw: append 4 KiB and fdatasync, in a loop (the disk's own limit);
- paxon: ``Storage`` + ``GroupCommitter`` at batch sizes 1, 16 and 256, each
  batch of accept records with a 100-byte command payload (161 bytes on
  disk), appended and made durable before the next batch: every batch costs
  one fdatasync, so records/s = batch size x syncs/s, and what the log adds
  (encoding, checksums, hand-offs) shows directly. Two ways:
  - blocking: ``committer.append_blocking(batch)`` (the caller leads its own
    group commit); this is the figure in the JSON line;
  - asyncio: ``await committer.append(batch)`` (the sync thread fdatasyncs and
    wakes the loop), printed beside it.
Phases are interleaved over ``--rounds`` rounds and each figure is the median
of its rounds, so a burst of load elsewhere hits every phase alike.

Goals (ratios within one run): batch 1 >= 0.8 x raw fsync/s; batch 256 >= 40 x
raw fsync/s in records/s. With ``--json`` the last line is one object:
``{"raw_fsync_per_s": F, "records_per_s": {"1": R1, "16": R16, "256": R256}}``.
Benchmarks are measured, never asserted on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable

from paxon.protocol.records import AcceptRecord
from paxon.protocol.types import Ballot, Command, Entry, Value
from paxon.storage import GroupCommitter, Storage

BATCH_SIZES = (1, 16, 256)
PAYLOAD_BYTES = 100
RAW_WRITE_BYTES = 4096
POOL_RECORDS = 4096
GOALS = {1: 0.8, 256: 40.0}

Batches = list[list[AcceptRecord]]


def raw_fsync_per_s(directory: str, seconds: float) -> float:
    path = os.path.join(directory, "raw.bin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    block = b"r" * RAW_WRITE_BYTES
    count = 0
    try:
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            os.write(fd, block)
            os.fdatasync(fd)
            count += 1
            if count % 16 == 0 and time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
        os.unlink(path)
    return count / elapsed


def make_batches(size: int) -> Batches:
    ballot = Ballot(1, 1)
    pool = [
        AcceptRecord(Entry(slot, ballot, Value((Command(7, slot, bytes([slot % 256]) * 100),))))
        for slot in range(POOL_RECORDS)
    ]
    return [pool[start : start + size] for start in range(0, POOL_RECORDS, size)]


def blocking_records_per_s(committer: GroupCommitter, batches: Batches, seconds: float) -> float:
    records = index = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        batch = batches[index % len(batches)]
        committer.append_blocking(batch)
        records += len(batch)
        index += 1
        if index % 8 == 0 and time.perf_counter() >= deadline:
            return records / (time.perf_counter() - start)


def asyncio_records_per_s(committer: GroupCommitter, batches: Batches, seconds: float) -> float:
    async def drive() -> float:
        records = index = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            batch = batches[index % len(batches)]
            await committer.append(batch)
            records += len(batch)
            index += 1
            if index % 8 == 0 and time.perf_counter() >= deadline:
                return records / (time.perf_counter() - start)

    return asyncio.run(drive())


Measure = Callable[[GroupCommitter, Batches, float], float]


def run(directory: str, seconds: float, rounds: int) -> dict[str, list[float]]:
    """Every round: raw, then each batch size both ways. Rates per round, by phase."""
    batches = {size: make_batches(size) for size in BATCH_SIZES}
    ways: dict[str, Measure] = {
        "blocking": blocking_records_per_s,
        "asyncio": asyncio_records_per_s,
    }
    storage = Storage.open(os.path.join(directory, "log"), node_id=1, cluster_id="bench")
    committer = GroupCommitter(storage)
    rates: dict[str, list[float]] = {"raw": []}
    try:
        blocking_records_per_s(committer, batches[16], 0.2)  # warm up
        for _ in range(rounds):
            rates["raw"].append(raw_fsync_per_s(directory, seconds))
            for size in BATCH_SIZES:
                for way, measure in ways.items():
                    rate = measure(committer, batches[size], seconds)
                    rates.setdefault(f"{way} {size}", []).append(rate)
    finally:
        committer.close()
        storage.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help="where to write (default: temp dir)")
    parser.add_argument("--seconds", type=float, default=1.0, help="per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="paxon-bench-", dir=args.dir)
    try:
        rates = run(directory, args.seconds, args.rounds)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    median = {phase: statistics.median(values) for phase, values in rates.items()}
    raw = median["raw"]
    print(f"raw 4 KiB append + fdatasync: {raw:,.0f}/s (median of {args.rounds} rounds)")
    for size in BATCH_SIZES:
        for way in ("blocking", "asyncio"):
            rate = median[f"{way} {size}"]
            line = f"batch {size:>3} {way:<8}: {rate:>10,.0f} records/s = {rate / raw:6.2f}x raw"
            if size in GOALS and way == "blocking":
                met = rate / raw >= GOALS[size]
                line += f"   goal >= {GOALS[size]}x: {'met' if met else 'MISSED'}"
            print(line)
    if args.json:
        records_per_s = {str(size): round(median[f"blocking {size}"], 1) for size in BATCH_SIZES}
        print(json.dumps({"raw_fsync_per_s": round(raw, 1), "records_per_s": records_per_s}))


if __name__ == "__main__":
    main()
