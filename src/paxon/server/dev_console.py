"""The commands ``paxon dev`` reads from its terminal while the cluster runs.

One command a line: ``help``, ``status``, ``kill N``, ``stop N``, ``pause N``,
``resume N``, ``restart N``, ``add``, ``remove N``, ``quit`` (``COMMANDS``
lists them with what they do; ``execute`` runs one against a ``DevTarget``).

Rules:
- Input is read only from a terminal this process has in the foreground, or
  from a pipe or socket (tests drive dev that way); anything else (``/dev/null``,
  a file, a terminal of a job in the background) is ignored. End of input only
  stops the reading, never the cluster.
- A line is at most ``LINE_BYTES_MAX`` bytes; a longer one is dropped with an error.
- A bad command, or one that cannot be done, is a one-line error; it never
  stops the cluster. Only ``quit`` (and Ctrl-C, handled by ``dev``) does.
- Reading never blocks the caller longer than the timeout it gives, so the
  same loop also watches the nodes (``LineReader.read_lines``).
"""

from __future__ import annotations

import os
import select
import stat
import sys
import time
from dataclasses import dataclass
from typing import Protocol

from paxon.server.dev_nodes import DevCommandError

LINE_BYTES_MAX = 1024
READ_BYTES = 4096


@dataclass(frozen=True, slots=True)
class CommandSpec:
    takes_node: bool
    help: str


COMMANDS: dict[str, CommandSpec] = {
    "help": CommandSpec(False, "list these commands"),
    "status": CommandSpec(False, "each node: state, pid, ports, role, ready"),
    "kill": CommandSpec(True, "kill node N (SIGKILL)"),
    "stop": CommandSpec(True, "stop node N (SIGTERM: a leader hands over first)"),
    "pause": CommandSpec(True, "pause node N (SIGSTOP)"),
    "resume": CommandSpec(True, "resume a paused node N (SIGCONT)"),
    "restart": CommandSpec(True, "start an exited node N again on its data dir"),
    "add": CommandSpec(False, "add a node: a learner the leader promotes once caught up"),
    "remove": CommandSpec(True, "remove node N from the cluster, then stop it"),
    "quit": CommandSpec(False, "stop every node and exit (as Ctrl-C)"),
}


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    node_id: int | None = None


class CommandError(ValueError):
    """A line that is no command; the message is one line."""


class DevTarget(Protocol):
    """What the console drives (``dev_nodes.DevNodes``; a fake in tests)."""

    def status(self) -> list[str]: ...
    def send(self, command: str, node_id: int) -> str: ...
    def restart(self, node_id: int) -> str: ...
    def add(self) -> str: ...
    def remove(self, node_id: int) -> str: ...


def parse_command(line: str) -> Command | None:
    """The command on ``line``; None for a blank line; ``CommandError`` if it is none."""
    if len(line.encode()) > LINE_BYTES_MAX:
        raise CommandError(f"line longer than {LINE_BYTES_MAX} bytes; ignored")
    words = line.split()
    if not words:
        return None
    name, arguments = words[0].lower(), words[1:]
    spec = COMMANDS.get(name)
    if spec is None:
        raise CommandError(f"unknown command {words[0]!r}; `help` lists them")
    if not spec.takes_node:
        if arguments:
            raise CommandError(f"`{name}` takes no argument")
        return Command(name)
    if len(arguments) != 1:
        raise CommandError(f"`{name}` takes one node id: `{name} N`")
    if not arguments[0].isdigit() or int(arguments[0]) < 1:
        raise CommandError(f"`{name}`: node id must be a positive number, got {arguments[0]!r}")
    return Command(name, int(arguments[0]))


def help_lines() -> list[str]:
    width = max(len(_usage(name)) for name in COMMANDS)
    return [f"  {_usage(name).ljust(width)}  {spec.help}" for name, spec in COMMANDS.items()]


def execute(command: Command, target: DevTarget) -> list[str]:
    """Run ``command`` (not ``quit``: the caller stops); the lines that say what it did.
    ``DevCommandError`` if it could not be done."""
    node_id = command.node_id
    match command.name:
        case "help":
            return help_lines()
        case "status":
            return target.status()
        case "kill" | "stop" | "pause" | "resume":
            assert node_id is not None
            return [target.send(command.name, node_id)]
        case "restart":
            assert node_id is not None
            return [target.restart(node_id)]
        case "add":
            return [target.add()]
        case "remove":
            assert node_id is not None
            return [target.remove(node_id)]
        case _:
            raise AssertionError(f"no handler for {command.name}")


def run_line(line: str, target: DevTarget) -> tuple[list[str], list[str], bool]:
    """Parse and run one line: (lines for stdout, error lines, quit requested)."""
    try:
        command = parse_command(line)
    except CommandError as error:
        return [], [str(error)], False
    if command is None:
        return [], [], False
    if command.name == "quit":
        return [], [], True
    try:
        return execute(command, target), [], False
    except DevCommandError as error:
        return [], [f"{command.name}: {error}"], False


class LineReader:
    """Lines from a file descriptor, without blocking longer than asked."""

    def __init__(self, fd: int, *, is_terminal: bool = False) -> None:
        self.fd = fd
        self.is_terminal = is_terminal  # a person types here (dev may ask for a password)
        self.closed = False
        self._pending = b""
        self._skipping = False  # dropping an overlong line up to its newline

    def read_lines(self, timeout_s: float) -> list[str]:
        """The complete lines that arrive within ``timeout_s`` (waits the whole
        timeout only when none does; after end of input it just waits)."""
        if self.closed:
            time.sleep(timeout_s)
            return []
        readable, _, _ = select.select([self.fd], [], [], timeout_s)
        if not readable:
            return []
        try:
            data = os.read(self.fd, READ_BYTES)
        except OSError:  # EIO: a terminal we lost (a job sent to the background)
            data = b""
        if not data:
            self.closed = True
            return self._take(final=True)
        self._pending += data
        return self._take(final=False)

    def _take(self, *, final: bool) -> list[str]:
        *complete, self._pending = self._pending.split(b"\n")
        if final and self._pending:
            complete.append(self._pending)
            self._pending = b""
        lines = []
        for raw in complete:
            if self._skipping:  # the rest of an overlong line, already reported
                self._skipping = False
                continue
            lines.append(_decode(raw))
        if self._skipping:
            self._pending = b""
        elif len(self._pending) > LINE_BYTES_MAX:  # no newline in sight: report it now
            lines.append(_decode(self._pending))
            self._pending, self._skipping = b"", True
        return lines


def stdin_reader() -> LineReader | None:
    """A reader of this process's stdin if commands should be read from it (see
    the rules), else None."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return None
    if os.isatty(fd):
        try:
            in_foreground = os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            return None
        return LineReader(fd, is_terminal=True) if in_foreground else None
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return LineReader(fd)
    return None


def _decode(raw: bytes) -> str:
    """A line as text; an overlong one cut just past the limit (``parse_command`` refuses it)."""
    return raw[: LINE_BYTES_MAX + 1].decode(errors="replace")


def _usage(name: str) -> str:
    return f"{name} N" if COMMANDS[name].takes_node else name
