"""Time and peak memory of ``decode_body`` on hostile bodies near the 64 MiB frame limit.

Run: ``PYTHONPATH=src python tests/fuzz/measure_decode_bomb.py [flat|nested|dicts]``.
Each shape runs in a fresh child process so that ``ru_maxrss`` is its own peak.

- flat:   ``[[0], [0], ...]``, 63 MiB of 2-byte one-element arrays (the attack of issue 8).
- nested: a Learn-shaped body whose entries field is a 512-wide tree of ``[0]``.
- dicts:  a Submit-shaped body whose payload field is an 8-wide tree of empty maps.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

BODY_BYTES = 63 * 1024 * 1024


def build(shape: str) -> bytes:
    import msgpack  # type: ignore[import-untyped]

    if shape == "flat":
        return bytes(msgpack.packb([[0]] * (BODY_BYTES // 2)))
    if shape == "nested":  # a 512-wide tree of [0], three levels under the message's array
        leaf, width = b"\x91\x00", 512
    else:  # an 8-wide tree of {}: a Submit holds only 8-item arrays
        leaf, width = b"\x80", 8
    level = leaf
    while len(level) * width < BODY_BYTES:
        level = _array_header(width) + level * width
    count = BODY_BYTES // len(level)
    field = _array_header(count) + level * count
    if shape == "nested":
        return b"\x94\x0b\x01\x02" + field  # Learn: [11, src, dst, entries]
    return b"\x95\x40\x01\x02\x03" + field  # Submit: [64, request_id, client_id, seq, payload]


def _array_header(length: int) -> bytes:
    return bytes([0x90 + length]) if length < 16 else b"\xdd" + length.to_bytes(4, "big")


def child(shape: str) -> None:
    from paxon.net.codec import DecodeError, decode_body

    body = build(shape)
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        decode_body(body)
        outcome = "decoded"
    except DecodeError as exc:
        outcome = f"DecodeError: {str(exc)[:70]}"
    elapsed_s = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"{shape:7} body {len(body) / 2**20:.1f} MiB: {elapsed_s:.3f} s, "
        f"peak RSS {peak_kib / 1024:.0f} MiB (+{(peak_kib - before_kib) / 1024:.0f} MiB "
        f"over the built body), {outcome}"
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    for shape in sys.argv[1:] or ["flat", "nested", "dicts"]:
        subprocess.run([sys.executable, __file__, "--child", shape], check=True)


if __name__ == "__main__":
    main()
