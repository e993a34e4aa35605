"""What every part of the ``paxon`` command shares: argument types, the usage
error (exit 2), and a paxon error reported as one line with its exit code.

Each type reads one flag's text or raises ``argparse.ArgumentTypeError`` with
what was wrong; the parser turns that into ``UsageError``, which ``cli.main``
prints as one line before exiting 2 (docs/api.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from paxon.errors import PaxonError


class UsageError(Exception):
    """Bad usage: the message is printed as is and the command exits 2."""


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def share(text: str) -> float:
    """A share or odds, from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def reporting_errors(name: str, body: Callable[[], int]) -> int:
    """``body()``, with a paxon error as one line on stderr and its exit code."""
    try:
        return body()
    except PaxonError as error:
        print(f"paxon {name}: {one_line(error)}", file=sys.stderr)
        return error.exit_code


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False))
