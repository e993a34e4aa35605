"""Replays every seed and every input a fuzzer ever broke a contract with.

``tests/fuzz/seeds/<target>/`` holds valid encodings (``make_seeds.py``);
``tests/fuzz/regressions/<target>/`` holds each crashing input the fuzzers found,
kept after the fix. Both go through the same ``check_<target>`` the fuzzer runs,
so this is deterministic and needs no atheris.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fuzz import targets
from tests.fuzz.targets import TARGETS, ContractBroken

from paxon.protocol.records import ChosenRecord

HERE = Path(__file__).resolve().parent
CASES = sorted(
    (kind, target, path)
    for kind in ("seeds", "regressions")
    for target in TARGETS
    for path in (HERE / kind / target).glob("*")
    if path.is_file()
)


@pytest.mark.parametrize(
    ("kind", "target", "path"), CASES, ids=[f"{k}/{t}/{p.name}" for k, t, p in CASES]
)
def test_replay(kind: str, target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_target_has_seeds(target: str) -> None:
    assert list((HERE / "seeds" / target).glob("*")), f"no seeds for {target}"


def test_a_stray_exception_from_a_decoder_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def leaky(body: bytes, expected: object = None) -> object:
        raise KeyError("not a DecodeError")

    monkeypatch.setattr(targets, "decode_body", leaky)
    with pytest.raises(KeyError):
        targets.check_net((HERE / "seeds" / "net" / "hello_12").read_bytes())


def test_an_unreadable_answer_from_the_store_fails_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(targets.KvStore, "apply", lambda self, command: b"\xc1")
    with pytest.raises(ContractBroken, match="unreadable"):
        targets.check_kv_command((HERE / "seeds" / "kv_command" / "put").read_bytes())


def test_a_decoder_that_does_not_round_trip_fails_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = targets.decode_record
    calls = iter(range(1_000))

    def drifting(frame_type: int, payload: memoryview) -> object:
        record = real(frame_type, payload)
        # The second decode (of the re-encoded record) comes back different.
        return record if next(calls) % 2 == 0 else ChosenRecord(99)

    monkeypatch.setattr(targets, "decode_record", drifting)
    with pytest.raises(ContractBroken, match="re-encodes"):
        targets.check_wal((HERE / "seeds" / "wal" / "chosen").read_bytes())
