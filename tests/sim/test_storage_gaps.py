"""Mutants of the storage code that only the aimed storage faults of the
simulator show (``sim/storage_faults.py``, ``strike_rare``): numbers of
``docs/mutation/sample-200-judgements.md`` (and of
``sample-200-s13-judgements.md``, marked s13), each applied to the source as the
mutation tool would, on the first swarm seed that kills it (seeds 0-299 were
run in order; before these faults every one of them survived that seed).
"""

from __future__ import annotations

import inspect
import textwrap

import pytest
from tests.sim.mutants import NO_COORDINATION

from paxon.sim import SimConfig, run_seed
from paxon.storage import codec, segments, snapshot, wal

# The seeds here were aimed before lease holders joined the workload: without
# them (nor the lock contenders and watchers) each replays as it was found.
SWARM = SimConfig(nodes=0, swarm=True, **NO_COORDINATION)


def _mutate_scan_frame(monkeypatch: pytest.MonkeyPatch, right: str, wrong: str) -> None:
    source = inspect.getsource(codec.scan_frame)
    assert source.count(right) == 1, right
    namespace = dict(vars(codec))
    exec(source.replace(right, wrong), namespace)
    for module in (codec, segments, snapshot):
        monkeypatch.setattr(module, "scan_frame", namespace["scan_frame"])


@pytest.mark.sim
@pytest.mark.mutation
@pytest.mark.parametrize(
    ("number", "right", "wrong", "seed", "named"),
    [
        # A tear kept 7 bytes of a frame's length header, zero-filled: "bad".
        # (Seed 2 until session 10, whose cut at the first segment header moved
        # that seed; 23 is the first of 0-299 to kill it now.)
        (58, "zeros_from < offset + 8", "zeros_from < offset // 8", 23, "CorruptRecord"),
        # s13 #57: a bit set in a frame's length read as a torn tail and cut.
        (
            57,
            "size ^ _MASK != check or size > record_max",
            "size ^ _MASK > check or size > record_max",
            0,
            "a frame length grown past the end",
        ),
        # A snapshot file that ends inside a frame: an untyped ZeroDivisionError.
        (63, "{end - offset} bytes cut", "{end / offset} bytes cut", 109, "ZeroDivisionError"),
        # A snapshot frame zero from inside it to its end: the same.
        (65, "{end - offset} bytes zero", "{end % offset} bytes zero", 86, "ZeroDivisionError"),
    ],
)
def test_a_scan_frame_mutant_is_caught_by_an_aimed_storage_fault(
    monkeypatch: pytest.MonkeyPatch, number: int, right: str, wrong: str, seed: int, named: str
) -> None:
    _mutate_scan_frame(monkeypatch, right, wrong)
    violations = run_seed(seed, SWARM).violations
    assert any("recovery" in v and named in v for v in violations), (number, violations[:3])


def test_a_new_logs_first_segment_misnamed_fails_snapshots_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """s18 sample (``wal.py:94``): a new log keeps its first segment under the
    name of lsn + 2. Once that segment is sealed, every snapshot fails to delete
    it; the node logs that and goes on, and before ``snapshot-written`` no rule
    saw it. It names the mutant on swarm seed 1."""
    source = textwrap.dedent(inspect.getsource(wal.Wal.__init__))
    right = "_Segment(segment_name(lsn_last + 1), lsn_last + 1, False)"
    assert source.count(right) == 1, right
    namespace = dict(vars(wal))
    exec(source.replace(right, right.replace("lsn_last + 1)", "lsn_last + 2)", 1)), namespace)
    monkeypatch.setattr(wal.Wal, "__init__", namespace["__init__"])
    result = run_seed(1, SimConfig(nodes=0, swarm=True))
    assert any("snapshot-written" in v for v in result.violations), result.violations[:3]


@pytest.mark.sim
@pytest.mark.mutation
def test_a_header_check_that_passes_a_changed_checksum_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """s18 sample (``segments.py:164``): a segment header is taken as whole when
    its checksum compares above, not unequal to, the stored one. Only a flip in
    the header's reserved bytes or its checksum gets past the later checks, and
    half of those pass; before the header flips of ``strike_rare`` no budget
    seed struck a header. Lease seed 5 (5 nodes) flips a checksum bit."""
    source = inspect.getsource(segments._check_header)
    right = "if crc32c(data[: _HEADER.size]) != _CRC"
    assert source.count(right) == 1, right
    namespace = dict(vars(segments))
    exec(source.replace(right, right.replace("!=", ">")), namespace)
    monkeypatch.setattr(segments, "_check_header", namespace["_check_header"])
    result = run_seed(5, SimConfig(nodes=5, lease_reads=True))
    assert any("recovery" in v and "the segment header" in v for v in result.violations), (
        result.violations[:3]
    )
