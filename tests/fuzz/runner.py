"""Runs one target of ``targets.py`` under atheris (libFuzzer), with safe defaults.

``python tests/fuzz/fuzz_<target>.py [libFuzzer flags] CORPUS_DIR [SEED_DIR...]``.
Flags not given on the command line default to the target's: ``-rss_limit_mb``
(an input that makes the process grow past it is a crash), ``-timeout`` (an
input that takes longer, in seconds, is a crash) and ``-max_len``. paxon's
modules are instrumented for coverage; msgpack's C code is not, so the fuzzer
steers by the Python decoders around it.
"""

from __future__ import annotations

import sys
from typing import Final

_DEFAULT_FLAGS: Final = {
    "net": {"-rss_limit_mb": "1024", "-timeout": "5", "-max_len": "16384"},
    "wal": {"-rss_limit_mb": "1024", "-timeout": "5", "-max_len": "16384"},
    "snapshot": {"-rss_limit_mb": "1024", "-timeout": "5", "-max_len": "16384"},
    "kv_command": {"-rss_limit_mb": "1024", "-timeout": "5", "-max_len": "4096"},
}


def main(target: str) -> None:
    import atheris  # a missing atheris is an ImportError here: the run fails, loudly

    with atheris.instrument_imports(include=["paxon", "tests.fuzz.targets"]):
        from tests.fuzz.targets import TARGETS

    check = TARGETS[target]
    given = {arg.split("=", 1)[0] for arg in sys.argv[1:] if arg.startswith("-")}
    defaults = [f"{flag}={value}" for flag, value in _DEFAULT_FLAGS[target].items()]
    argv = [sys.argv[0], *(flag for flag in defaults if flag.split("=")[0] not in given)]
    argv += sys.argv[1:]
    atheris.Setup(argv, check)
    atheris.Fuzz()
