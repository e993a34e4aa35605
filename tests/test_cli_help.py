"""Every ``paxon`` command's ``--help`` ends with an example of that command."""

from __future__ import annotations

import pytest

from paxon.cli import _build_parser, main
from paxon.cli_examples import EXAMPLES, commands_of

COMMANDS = [command for command, _ in commands_of(_build_parser())]


def test_every_command_has_an_example_and_every_example_a_command() -> None:
    assert len(COMMANDS) > 40
    assert set(COMMANDS) == set(EXAMPLES)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_ends_with_an_example_of_the_command(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*command.split(), "--help"]
    if command == "check":
        assert main(argv) == 0  # its own parser, in paxon.storage.check
    else:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    head, _, example = help_text.partition("\nexample:\n")
    assert example, help_text
    assert f"paxon {command}" in example
    lines = example.rstrip("\n").splitlines()
    assert all(line.startswith("  ") for line in lines), lines  # kept as written, not refilled
    assert head.startswith(f"usage: paxon {command}")
