"""Every process and temp dir the peer benchmark makes, and how each is ended.

Rules:
- Every server is started through ``Processes.start``, which records its PID;
  ``Processes.close`` ends each one by that PID (SIGTERM, then SIGKILL after
  ``STOP_GRACE_S``), reaps it and removes every temp dir made through
  ``Processes.temp_dir``. ``run.py`` calls it in a ``finally`` and turns
  SIGTERM and SIGHUP into an exception, so Ctrl-C, an error or a kill of the
  runner all end there.
- Each child asks the kernel for SIGKILL when the runner dies
  (``PR_SET_PDEATHSIG``), so not even a SIGKILLed runner leaves a server behind.
- Children run in a session of their own, so a Ctrl-C in the terminal reaches
  the runner only, and the runner stops them in order.
- CPU time of a running process comes from ``/proc/PID/stat`` (user + system
  ticks); a load generator that the runner waits for is measured exactly by
  ``wait4``'s resource usage instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
STOP_GRACE_S = 10.0
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports on 127.0.0.1 that were free a moment ago."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def parse_proc_stat(text: str, ticks_per_s: int = CLOCK_TICKS_PER_S) -> float:
    """CPU seconds (user + system) from the text of ``/proc/PID/stat``.

    The second field, the command name in parentheses, may hold spaces and
    parentheses itself, so fields are counted from the last ``)``: utime and
    stime are fields 14 and 15 of the whole line.
    """
    after_name = text[text.rindex(")") + 2 :].split()
    utime, stime = int(after_name[11]), int(after_name[12])
    return (utime + stime) / ticks_per_s


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        return parse_proc_stat(stat.read())


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL this process when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    cpu_s: float  # user + system of the child, from wait4
    wall_s: float


@dataclass
class Processes:
    """The runner's processes and temp dirs; ``close`` ends them all."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    temp_dirs: list[Path] = field(default_factory=list)

    def temp_dir(self, prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"paxon-peers-{prefix}-"))
        self.temp_dirs.append(path)
        return path

    def start(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        pipes: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start a server; its stderr (and stdout unless ``pipes``) go to ``log_path``."""
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else log,
                stderr=log,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.started.append(process)
        return process

    def run(self, argv: Sequence[str], *, timeout_s: float) -> Finished:
        """Run a load generator to its end; its CPU time is exact (``wait4``)."""
        began = time.perf_counter()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            self.started.append(process)
            deadline = began + timeout_s
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid == process.pid:
                    break
                if time.perf_counter() > deadline:
                    process.kill()
                    pid, status, usage = os.wait4(process.pid, 0)
                    break
                time.sleep(0.05)
            process.returncode = os.waitstatus_to_exitcode(status)
            self.started.remove(process)
            out.seek(0)
            err.seek(0)
            return Finished(
                returncode=process.returncode,
                stdout=out.read().decode(errors="replace"),
                stderr=err.read().decode(errors="replace"),
                cpu_s=usage.ru_utime + usage.ru_stime,
                wall_s=time.perf_counter() - began,
            )

    def stop(self, processes: Sequence[subprocess.Popen[bytes]]) -> None:
        """End each of ``processes`` by its PID: SIGTERM, then SIGKILL; reap."""
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            if process in self.started:
                self.started.remove(process)

    def remove(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        if path in self.temp_dirs:
            self.temp_dirs.remove(path)

    def close(self) -> None:
        """Stop everything still running and remove every temp dir."""
        self.stop(list(self.started))
        for path in list(self.temp_dirs):
            self.remove(path)
