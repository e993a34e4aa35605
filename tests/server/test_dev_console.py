"""``paxon dev``'s terminal commands: parsing, dispatch and the line reader, without
processes (a fake target records what it was asked; pipes stand in for the terminal)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from paxon.server.dev_console import (
    COMMANDS,
    LINE_BYTES_MAX,
    Command,
    CommandError,
    LineReader,
    help_lines,
    parse_command,
    run_line,
)
from paxon.server.dev_nodes import DevCommandError


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("help", Command("help")),
        ("  status  ", Command("status")),
        ("kill 2", Command("kill", 2)),
        ("STOP 3", Command("stop", 3)),
        ("pause 1\r", Command("pause", 1)),
        ("resume\t1", Command("resume", 1)),
        ("restart 9", Command("restart", 9)),
        ("add", Command("add")),
        ("remove 4", Command("remove", 4)),
        ("quit", Command("quit")),
    ],
)
def test_parse_command(line: str, command: Command) -> None:
    assert parse_command(line) == command


def test_a_blank_line_is_no_command() -> None:
    assert parse_command("") is None
    assert parse_command("   \t") is None


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("bogus", "unknown command 'bogus'; `help` lists them"),
        ("kill", "`kill` takes one node id: `kill N`"),
        ("kill 1 2", "`kill` takes one node id: `kill N`"),
        ("kill two", "`kill`: node id must be a positive number, got 'two'"),
        ("kill 0", "`kill`: node id must be a positive number, got '0'"),
        ("kill -1", "`kill`: node id must be a positive number, got '-1'"),
        ("add 5", "`add` takes no argument"),
        ("x" * (LINE_BYTES_MAX + 1), f"line longer than {LINE_BYTES_MAX} bytes; ignored"),
    ],
)
def test_parse_command_refuses_with_one_line(line: str, error: str) -> None:
    with pytest.raises(CommandError) as refused:
        parse_command(line)
    assert str(refused.value) == error


def test_help_lists_every_command() -> None:
    lines = help_lines()
    assert len(lines) == len(COMMANDS)
    assert lines[2].split()[:2] == ["kill", "N"]
    assert all(line.startswith("  ") for line in lines)


class FakeTarget:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def status(self) -> list[str]:
        self.calls.append(("status",))
        return ["  node  state"]

    def send(self, command: str, node_id: int) -> str:
        self.calls.append((command, str(node_id)))
        if node_id == 7:
            raise DevCommandError("no node 7 in this dev cluster (nodes: 1, 2, 3)")
        return f"node {node_id}: {command}"

    def restart(self, node_id: int) -> str:
        self.calls.append(("restart", str(node_id)))
        return "restarted"

    def add(self) -> str:
        self.calls.append(("add",))
        return "added"

    def remove(self, node_id: int) -> str:
        self.calls.append(("remove", str(node_id)))
        return "removed"


def test_run_line_dispatches_each_command() -> None:
    target = FakeTarget()
    for line in ["status", "kill 1", "stop 2", "pause 3", "resume 3", "restart 1", "add"]:
        done, errors, quit_requested = run_line(line, target)
        assert done and not errors and not quit_requested
    assert run_line("remove 4", target) == (["removed"], [], False)
    assert target.calls == [
        ("status",),
        ("kill", "1"),
        ("stop", "2"),
        ("pause", "3"),
        ("resume", "3"),
        ("restart", "1"),
        ("add",),
        ("remove", "4"),
    ]


def test_run_line_turns_failures_into_one_error_line() -> None:
    target = FakeTarget()
    assert run_line("kill 7", target) == (
        [],
        ["kill: no node 7 in this dev cluster (nodes: 1, 2, 3)"],
        False,
    )
    unknown = run_line("frobnicate 1", target)[1]
    assert unknown == ["unknown command 'frobnicate'; `help` lists them"]
    assert run_line("", target) == ([], [], False)
    assert run_line("quit", target) == ([], [], True)
    assert run_line("help", target)[0] == help_lines()
    assert target.calls == [("kill", "7")]


@pytest.fixture
def pipe() -> Iterator[tuple[LineReader, int]]:
    read_fd, write_fd = os.pipe()
    try:
        yield LineReader(read_fd), write_fd
    finally:
        os.close(read_fd)
        with contextlib.suppress(OSError):  # a test closed it already
            os.close(write_fd)


def test_line_reader_gives_complete_lines(pipe: tuple[LineReader, int]) -> None:
    reader, write_fd = pipe
    assert reader.read_lines(0.0) == []
    os.write(write_fd, b"kill 2\nsta")
    assert reader.read_lines(1.0) == ["kill 2"]
    os.write(write_fd, b"tus\n\n")
    assert reader.read_lines(1.0) == ["status", ""]


def test_line_reader_survives_end_of_input(pipe: tuple[LineReader, int]) -> None:
    reader, write_fd = pipe
    os.write(write_fd, b"add")
    os.close(write_fd)
    # One read gets the bytes, the next the end: the last line, without its newline.
    assert reader.read_lines(1.0) + reader.read_lines(1.0) == ["add"]
    assert reader.closed
    assert reader.read_lines(0.01) == []  # and then nothing, without an error


def test_line_reader_cuts_an_overlong_line_once(pipe: tuple[LineReader, int]) -> None:
    reader, write_fd = pipe
    os.write(write_fd, b"y" * (LINE_BYTES_MAX + 10))
    [overlong] = reader.read_lines(1.0)
    assert len(overlong) == LINE_BYTES_MAX + 1
    with pytest.raises(CommandError):
        parse_command(overlong)
    os.write(write_fd, b"yyy rest of it\nstatus\n")
    assert reader.read_lines(1.0) == ["status"]
