"""The shared Python HTTP load generator: the same load for paxon's HTTP API and etcd's gateway.

A process of its own (so its CPU time is measured apart from the runner's), run
as ``python benchmarks/peers/load.py --api paxon|etcd --url http://HOST:PORT ...``;
prints one JSON line with every latency sample, so the runner computes the
percentiles of every system with the same code (``stats.py``).

How it loads, like ``paxon bench`` (``src/paxon/bench.py``):
- ``--concurrency`` asyncio tasks share one aiohttp session whose connection
  pool holds that many keep-alive connections to the one URL (the leader's).
- An op is a put of a ``--value-size``-byte value (64) to a key drawn among
  ``--keys`` (1,000), or with ``--reads`` a linearizable read of such a key.
- Closed loop (no ``--rate``): a task starts its next op when the last one is
  answered, until ``--seconds`` have passed since the start.
- Open loop (``--rate``): op ``i`` is due ``i / rate`` seconds after the start
  (for ops due within ``--seconds``) and its latency runs from that due time,
  so a stall shows as latency, not as ops never sent.
- An op that fails (connection error, timeout, an unexpected status) counts as
  an error and adds no sample; throughput is ok ops over the time from the
  start to the last answer.

The APIs:
- ``paxon``: ``PUT /v1/kv/KEY`` with the raw value as body; ``GET /v1/kv/KEY``
  (linearizable unless ``?serializable=1``; a missing key is a 404, still a read).
- ``etcd``: the v3 gRPC gateway, ``POST /v3/kv/put`` with
  ``{"key": base64, "value": base64}``; ``POST /v3/kv/range`` with
  ``{"key": base64}`` (``serializable`` false: linearizable).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

KEY_PREFIX = "bench/"
REQUEST_TIMEOUT_S = 30.0


class BadAnswer(Exception):
    """An HTTP status the op does not expect."""


def bench_key(number: int) -> str:
    return f"{KEY_PREFIX}{number:06d}"


def etcd_put_body(key: str, value: bytes) -> dict[str, str]:
    return {
        "key": base64.b64encode(key.encode()).decode(),
        "value": base64.b64encode(value).decode(),
    }


def etcd_range_body(key: str) -> dict[str, str]:
    return {"key": base64.b64encode(key.encode()).decode()}


Op = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


def make_op(api: str, reads: bool, value: bytes) -> Op:
    async def check(response: aiohttp.ClientResponse, ok: tuple[int, ...]) -> None:
        await response.read()
        if response.status not in ok:
            raise BadAnswer(f"HTTP {response.status}")

    async def paxon_put(session: aiohttp.ClientSession, key: str) -> None:
        async with session.put(f"/v1/kv/{key}", data=value) as response:
            await check(response, (200,))

    async def paxon_get(session: aiohttp.ClientSession, key: str) -> None:
        async with session.get(f"/v1/kv/{key}") as response:
            await check(response, (200, 404))

    async def etcd_put(session: aiohttp.ClientSession, key: str) -> None:
        async with session.post("/v3/kv/put", json=etcd_put_body(key, value)) as response:
            await check(response, (200,))

    async def etcd_range(session: aiohttp.ClientSession, key: str) -> None:
        async with session.post("/v3/kv/range", json=etcd_range_body(key)) as response:
            await check(response, (200,))

    ops = {
        ("paxon", False): paxon_put,
        ("paxon", True): paxon_get,
        ("etcd", False): etcd_put,
        ("etcd", True): etcd_range,
    }
    return ops[(api, reads)]


async def run_load(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    value = rng.randbytes(args.value_size)
    op = make_op(args.api, args.reads, value)
    put = make_op(args.api, False, value)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    latencies_s: list[float] = []
    errors = 0
    error_first: str | None = None
    async with aiohttp.ClientSession(args.url, connector=connector, timeout=timeout) as session:
        await put(session, bench_key(0))  # fail at once if the cluster does not answer
        clock = time.perf_counter
        start = clock()
        deadline = start + args.seconds
        taken = 0
        last_answer = start

        async def worker() -> None:
            nonlocal taken, errors, error_first, last_answer
            while True:
                index = taken
                taken += 1
                if args.rate is None:
                    due = clock()
                else:
                    due = start + index / args.rate
                    delay = due - clock()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if due >= deadline:
                    return
                key = bench_key(rng.randrange(args.keys))
                try:
                    await op(session, key)
                except (TimeoutError, aiohttp.ClientError, BadAnswer) as error:
                    errors += 1
                    if error_first is None:
                        error_first = f"{type(error).__name__}: {error}"
                else:
                    last_answer = clock()
                    latencies_s.append(last_answer - due)

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return {
        "ops": len(latencies_s),
        "errors": errors,
        "error_first": error_first,
        "seconds": round(last_answer - start, 6),
        "latencies_s": [round(latency, 7) for latency in latencies_s],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", choices=("paxon", "etcd"), required=True)
    parser.add_argument("--url", required=True, help="http://HOST:PORT of the node to load")
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, help="open loop at this many ops/s")
    parser.add_argument("--reads", action="store_true", help="linearizable reads, not puts")
    parser.add_argument("--value-size", type=int, default=64)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run_load(args))
    else:
        result = uvloop.run(run_load(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
