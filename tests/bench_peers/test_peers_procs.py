"""The peer benchmark leaves nothing behind (benchmarks/peers/procs.py), with tiny
Python children standing in for servers: no etcd, no cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.peers.procs import Processes

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
# Ignores SIGTERM, so only the SIGKILL that follows the grace period ends it.
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)",
]


def _gone(pid: int, timeout_s: float = 20.0) -> bool:
    """Polls until ``pid`` no longer runs (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


def test_close_ends_every_process_by_pid_and_removes_every_temp_dir(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("benchmarks.peers.procs.STOP_GRACE_S", 0.5)
    procs = Processes()
    root = procs.temp_dir("test")
    sleeper = procs.start(SLEEPER, root / "sleeper.log")
    stubborn = procs.start(STUBBORN, root / "stubborn.log", pipes=True)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    procs.close()
    assert sleeper.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
    assert not root.exists()
    assert procs.started == [] and procs.temp_dirs == []


def test_run_measures_the_childs_cpu_time() -> None:
    burn = "import time\nwhile time.process_time() < 0.3: pass\nprint('done')"
    done = Processes().run([sys.executable, "-c", burn], timeout_s=60)
    assert done.returncode == 0 and done.stdout == "done\n"
    assert done.cpu_s >= 0.3


def test_servers_die_with_a_killed_runner(tmp_path: Path) -> None:
    runner = (
        "import sys, time\n"
        "from pathlib import Path\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from benchmarks.peers.procs import Processes\n"
        "procs = Processes()\n"
        "child = procs.start([sys.executable, '-c', 'import time; time.sleep(120)'],\n"
        f"                    Path({str(tmp_path / 'child.log')!r}))\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    with subprocess.Popen([sys.executable, "-c", runner], stdout=subprocess.PIPE) as parent:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        try:
            assert not _gone(child_pid, timeout_s=0.0)
            parent.kill()  # SIGKILL: no finally runs in the runner
            parent.wait()
            assert _gone(child_pid)
        finally:
            if parent.poll() is None:
                parent.kill()
            if not _gone(child_pid, timeout_s=0.0):
                os.kill(child_pid, signal.SIGKILL)
