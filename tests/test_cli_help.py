"""Every ``paxon`` command's ``--help`` ends with an example of that command, and
every flag it shows is in the contract, docs/api.md."""

from __future__ import annotations

from pathlib import Path

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


API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_every_flag_of_every_command_is_in_the_contract() -> None:
    """docs/api.md names each long option ``--help`` shows (a new flag is documented)."""
    contract = API_DOC.read_text()
    undocumented = {
        f"paxon {command} {option}"
        for command, parser in commands_of(_build_parser())
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help" and option not in contract
    }
    assert undocumented == set()
