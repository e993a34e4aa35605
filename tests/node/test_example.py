"""``examples/counter.py`` runs as a new user would run it, twice (recovery)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "counter.py"


def free_base_port() -> int:
    """A base port with base+1..base+3 free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1] - 1
        if base + 3 < 65536 and all(_free(base + i) for i in (1, 2, 3)):
            return base
    raise AssertionError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_example(data: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(data), str(free_base_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_counter_example_replicates_and_recovers(tmp_path: Path) -> None:
    first = run_example(tmp_path)
    assert "hits: 30" in first
    assert first.count("applied: {'hits': 30}") == 3
    second = run_example(tmp_path)
    assert "hits: 60" in second
    assert second.count("applied: {'hits': 60}") == 3
