"""Run every golden interaction script in testdata/ (see interaction.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.protocol.interaction import REWRITE_VARIABLE, check_script

TESTDATA = Path(__file__).parent / "testdata"
SCRIPTS = sorted(TESTDATA.glob("*.txt"))


def test_scripts_exist() -> None:
    assert SCRIPTS, f"no scripts in {TESTDATA}"


@pytest.mark.parametrize("path", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_interaction(path: Path) -> None:
    check_script(path)


# ------------------------------------------------------------ the runner itself

WRONG = """\
# A comment survives a rewrite.
cluster 1
----
1: FOLLOWER promised=0.0 leader=- chosen=0 applied=0 next=0 log_start=0 now=0.000

propose 1 1 1 x
----
wrong
"""


def test_a_wrong_expectation_fails_with_a_diff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REWRITE_VARIABLE, raising=False)
    script = tmp_path / "wrong.txt"
    script.write_text(WRONG)
    with pytest.raises(AssertionError, match=r"\+error: NotLeader: not the leader"):
        check_script(script)
    assert script.read_text() == WRONG


def test_rewrite_puts_the_actual_output_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REWRITE_VARIABLE, "1")
    script = tmp_path / "wrong.txt"
    script.write_text(WRONG)
    check_script(script)
    assert script.read_text() == WRONG.replace("wrong", "error: NotLeader: not the leader")
    monkeypatch.delenv(REWRITE_VARIABLE)
    check_script(script)
