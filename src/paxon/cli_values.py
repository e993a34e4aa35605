"""Values in and out of the ``paxon`` command: ``put``'s value source and ``get``'s text.

In: ``put KEY VALUE`` takes VALUE as UTF-8 text; ``put KEY -`` reads the value
from stdin and ``put KEY --from-file PATH`` from a file, as raw bytes (any
bytes, not only text). Reading stops past ``VALUE_READ_MAX_BYTES`` (the
default ``--value-max-bytes`` of ``paxon serve``, 1 MiB): a longer value is
refused before anything connects (``ValueTooLarge``, exit 2), so a wrong file
or an endless pipe costs neither memory nor a round trip.

Out: ``get --prefix`` prints ``KEY<TAB>VALUE`` lines that a terminal shows as
they are and a script can split on tab and newline: a backslash, a tab, a
newline, every other control character and every byte that is not UTF-8 are
escaped as Python writes them in a string (``\\\\``, ``\\t``, ``\\n``, ``\\x1b``,
``\\xff``), so no value can move the cursor, fake another line or run a
terminal escape. ``--json`` gives each key-value as one JSON line instead, with
``value_b64`` for a value that is not UTF-8 (no loss). ``get KEY`` (one key,
no ``--prefix``) still writes the value's raw bytes, so ``paxon get KEY > FILE``
gives the bytes back.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO, Final

from paxon.errors import BadRequest, ValueTooLarge
from paxon.kv.model import KvLimits

VALUE_READ_MAX_BYTES: Final = KvLimits().value_max_bytes
"""The most ``put KEY -`` / ``--from-file`` read (1,048,576, the server's default)."""

STDIN_VALUE: Final = "-"


def read_value(value: str | None, from_file: str | None, stdin: BinaryIO | None = None) -> bytes:
    """The bytes ``put`` stores: VALUE as UTF-8, or read from stdin (``-``) or a file."""
    if from_file is not None:
        if value is not None:
            raise BadRequest("give VALUE or --from-file, not both")
        try:
            with Path(from_file).open("rb") as source:
                return _bounded(source, from_file)
        except OSError as error:
            raise BadRequest(f"--from-file: cannot read {from_file}: {error.strerror}") from None
    if value is None:
        raise BadRequest("give VALUE, - (read stdin) or --from-file PATH")
    if value == STDIN_VALUE:
        return _bounded(stdin if stdin is not None else sys.stdin.buffer, "stdin")
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise BadRequest("VALUE is not valid UTF-8 text") from None


def escaped(data: bytes) -> str:
    """``data`` as one line of safe text: UTF-8 kept, everything else escaped."""
    text = data.decode("utf-8", errors="surrogateescape")  # a bad byte B: U+DC00 + B
    return "".join(_escape_char(char) for char in text)


def _bounded(source: BinaryIO, name: str) -> bytes:
    data = source.read(VALUE_READ_MAX_BYTES + 1)
    if len(data) > VALUE_READ_MAX_BYTES:
        raise ValueTooLarge(
            f"the value from {name} is over {VALUE_READ_MAX_BYTES} bytes "
            "(the value limit of paxon serve's default --value-max-bytes)"
        )
    return data


_NAMED: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_char(char: str) -> str:
    if char == "\\":
        return "\\\\"  # so an escape in the output is never ambiguous with a value's text
    if char.isprintable() or char == " ":
        return char
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # a byte that is not UTF-8
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
