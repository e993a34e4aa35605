"""One PySyncObj node for the peer benchmark, run with the benchmark's own venv's Python.

PySyncObj has no client protocol: the state lives in the process, so the load
runs in the leader's process, in a thread of its own, as an application built
on PySyncObj would run it. Only the standard library and pysyncobj are imported
here (this file is not imported by the runner).

The replicated state is pysyncobj's ``ReplDict`` with PySyncObj's *default*
``SyncObjConf``, which the benchmark keeps on purpose: ``journalFile=None``
(the log is kept in memory only) and ``fullDumpFile=None`` (no snapshot on
disk), so nothing is written to disk, let alone fsynced. A write is
"acknowledged" once a majority holds it in memory: NOT durable.

A linearizable read needs the log (PySyncObj has no read index or lease
read), so ``BenchDict.read`` is a ``@replicated`` method: a command that goes
through the log and answers with the value when applied.

The runner speaks JSON lines on stdin/stdout:
- ``{"cmd": "status"}`` -> ``{"self": ADDR, "leader": ADDR or null}``
- ``{"cmd": "load", "seconds": S, "rate": R or null, "reads": bool,
  "window": W, "value_size": B, "keys": K, "seed": N}`` -> ``{"ops", "errors",
  "seconds", "latencies_s", "load_thread_cpu_s"}``: closed loop (no rate) keeps
  ``window`` commands in flight; open loop submits op ``i`` at ``i / rate``
  and times it from then (like ``paxon bench``); each op's latency runs to its
  callback (applied on this node, the leader).
- end of stdin: the node stops.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated  # type: ignore[import-not-found]
from pysyncobj.batteries import ReplDict  # type: ignore[import-not-found]


class BenchDict(ReplDict):  # type: ignore[misc]
    @replicated  # type: ignore[untyped-decorator]
    def read(self, key: str) -> Any:
        """A linearizable read: applied in log order, answered through the callback."""
        return self.get(key)


def bench_key(number: int) -> str:
    return f"bench/{number:06d}"


def run_load(store: BenchDict, command: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(command["seed"])
    value = rng.randbytes(command["value_size"])
    window = threading.BoundedSemaphore(command["window"])
    latencies_s: list[float] = []
    errors = [0]
    clock = time.perf_counter
    last_answer = [0.0]

    def submit(due: float) -> None:
        def done(result: Any, error: int) -> None:
            now = clock()
            if error == FAIL_REASON.SUCCESS:
                latencies_s.append(now - due)
                last_answer[0] = now
            else:
                errors[0] += 1
            window.release()

        window.acquire()
        key = bench_key(rng.randrange(command["keys"]))
        if command["reads"]:
            store.read(key, callback=done)
        else:
            store.set(key, value, callback=done)

    rate = command["rate"]
    cpu_start = time.thread_time()
    start = clock()
    last_answer[0] = start
    deadline = start + command["seconds"]
    index = 0
    while True:
        if rate is None:
            due = clock()
        else:
            due = start + index / rate
            delay = due - clock()
            if delay > 0:
                time.sleep(delay)
        if due >= deadline:
            break
        submit(due)
        index += 1
    for _ in range(command["window"]):  # every op in flight answered
        window.acquire()
    return {
        "ops": len(latencies_s),
        "errors": errors[0],
        "seconds": round(last_answer[0] - start, 6),
        "latencies_s": [round(latency, 7) for latency in latencies_s],
        "load_thread_cpu_s": time.thread_time() - cpu_start,
    }


def main() -> int:
    self_address, partners = sys.argv[1], sys.argv[2:]
    store = BenchDict()
    node = SyncObj(self_address, partners, SyncObjConf(), consumers=[store])
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "status":
            leader = node._getLeader()
            answer = {"self": self_address, "leader": None if leader is None else str(leader)}
        elif command["cmd"] == "load":
            answer = run_load(store, command)
        else:
            answer = {"error": f"unknown command {command['cmd']!r}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    node.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
