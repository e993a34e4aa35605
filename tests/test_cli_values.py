"""``put``'s value from stdin or a file; ``get --prefix``'s escaped text (``cli_values``)."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from paxon.cli import main
from paxon.cli_values import VALUE_READ_MAX_BYTES, escaped, read_value
from paxon.errors import BadRequest, ValueTooLarge


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"plain text", "plain text"),
        ("caf\u00e9 \u65e5\u672c".encode(), "caf\u00e9 \u65e5\u672c"),  # printable UTF-8 stays
        (b"a\tb\nc\rd", "a\\tb\\nc\\rd"),  # no value can fake a line or a column
        (b"back\\slash", "back\\\\slash"),  # so an escape is never ambiguous
        (b"\x1b[2J\x07\x00", "\\x1b[2J\\x07\\x00"),  # terminal escapes and NUL are inert
        (b"\xff\xfe ok \xc3", "\\xff\\xfe ok \\xc3"),  # bytes that are not UTF-8
        ("\u202e\u200b".encode(), "\\u202e\\u200b"),  # bidi override, zero-width space
        (b"\x7f\xc2\x85", "\\x7f\\x85"),  # DEL and a C1 control
    ],
)
def test_escaped_keeps_text_and_escapes_everything_a_terminal_would_act_on(
    raw: bytes, shown: str
) -> None:
    assert escaped(raw) == shown
    assert "\n" not in escaped(raw) and "\t" not in escaped(raw)


def test_read_value_takes_stdin_up_to_the_limit_and_refuses_one_byte_more() -> None:
    exact = b"x" * VALUE_READ_MAX_BYTES
    assert read_value("-", None, io.BytesIO(exact)) == exact
    with pytest.raises(ValueTooLarge, match=f"over {VALUE_READ_MAX_BYTES} bytes"):
        read_value("-", None, io.BytesIO(exact + b"x"))


def test_read_value_from_a_file_keeps_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "value.bin"
    path.write_bytes(b"\x00\xff binary\n")
    assert read_value(None, str(path)) == b"\x00\xff binary\n"
    path.write_bytes(b"y" * (VALUE_READ_MAX_BYTES + 1))
    with pytest.raises(ValueTooLarge, match=str(path)):
        read_value(None, str(path))
    with pytest.raises(BadRequest, match="cannot read"):
        read_value(None, str(tmp_path / "missing"))
    with pytest.raises(BadRequest, match="not both"):
        read_value("v", str(path))


def test_read_value_text_is_utf8_and_a_dash_is_stdin_not_text() -> None:
    assert read_value("h\u00e9", None) == "h\u00e9".encode()
    assert read_value("-", None, io.BytesIO(b"from stdin")) == b"from stdin"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_put_dash_over_the_limit_exits_2_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], closed_port: int
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"z" * (VALUE_READ_MAX_BYTES + 1)))
    monkeypatch.setattr("sys.stdin", stdin)
    # An unreachable cluster would be exit 3: exit 2 means nothing connected.
    assert main(["put", "k", "-", "--endpoints", f"127.0.0.1:{closed_port}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"paxon put: the value from stdin is over {VALUE_READ_MAX_BYTES} bytes "
        "(the value limit of paxon serve's default --value-max-bytes)"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["put", "k"], "paxon put: the following arguments are required: VALUE"),
        (["put", "k", "v", "--from-file", "f"], "paxon put: give VALUE or --from-file, not both"),
        (["get", "k", "--limit", "2"], "paxon get: --limit needs --prefix"),
        (
            ["get", "k", "--prefix", "--limit", "0"],
            "paxon get: argument --limit: must be >= 1, got 0",
        ),
        (
            ["get", "k", "--keys-only", "--count-only"],
            "paxon get: argument --count-only: not allowed with argument --keys-only",
        ),
    ],
)
def test_new_flags_refuse_bad_usage_with_exit_2(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], closed_port: int
) -> None:
    assert main([*argv, "--endpoints", f"127.0.0.1:{closed_port}"]) == 2
    assert capsys.readouterr().err.strip() == expected
