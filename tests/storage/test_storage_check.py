"""``paxon check``: read-only verification of a real data directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from storage_helpers import accept, numbered

from paxon.storage import Storage, StorageConfig
from paxon.storage.check import main

CONFIG = StorageConfig(segment_max_bytes=4096, record_max_bytes=1024, snapshot_chunk_bytes=256)


def make_dir(path: Path, records: int = 120, snapshot: bool = True) -> str:
    directory = str(path / "node1")
    storage = Storage.open(directory, node_id=1, cluster_id="prod", config=CONFIG)
    storage.append([numbered(lsn) for lsn in range(1, records + 1)])
    storage.sync()
    if snapshot:
        storage.save_snapshot(40, b"state" * 100)
    storage.append([accept(500)])
    storage.close()
    return directory


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_a_clean_directory_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = make_dir(tmp_path)
    code, out = run(capsys, "--data-dir", directory)
    assert code == 0
    assert "result     OK" in out
    assert "node 1, cluster 'prod'" in out
    assert "records    121" in out
    code, out = run(capsys, "--data-dir", directory, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["first_bad"] is None
    assert report["records_total"] == 121
    assert report["snapshots"][0]["slot"] == 40 and report["snapshots"][0]["used"]
    assert report["slots"]["log_start"] == 40


def test_a_torn_tail_is_reported_but_is_not_damage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = make_dir(tmp_path, snapshot=False)
    last = sorted(name for name in os.listdir(directory) if name.startswith("wal-"))[-1]
    path = os.path.join(directory, last)
    size = os.path.getsize(path)
    os.truncate(path, size - 5)
    code, out = run(capsys, "--data-dir", directory, "--json")
    report = json.loads(out)
    assert code == 0
    assert report["torn_tail"]["file"] == path
    assert report["repairs_at_start"]
    assert os.path.getsize(path) == size - 5  # check changes nothing


def test_a_flipped_bit_is_damage_with_file_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = make_dir(tmp_path)
    first = sorted(name for name in os.listdir(directory) if name.startswith("wal-"))[0]
    path = os.path.join(directory, first)
    data = bytearray(Path(path).read_bytes())
    data[200] ^= 0x10
    Path(path).write_bytes(bytes(data))
    code, out = run(capsys, "--data-dir", directory)
    assert code == 1
    assert "DAMAGED: CorruptRecord" in out and first in out
    code, out = run(capsys, "--data-dir", directory, "--json")
    bad = json.loads(out)["first_bad"]
    assert code == 1
    assert bad["file"] == path and 0 < bad["offset"] <= 200


def test_a_missing_segment_is_damage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = make_dir(tmp_path, snapshot=False)
    segments = sorted(name for name in os.listdir(directory) if name.startswith("wal-"))
    os.unlink(os.path.join(directory, segments[1]))
    code, out = run(capsys, "--data-dir", directory)
    assert code == 1 and "MissingSegment" in out and segments[1] in out


def test_bad_usage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["--data-dir", str(tmp_path / "nope")]) == 2
    assert main(["--data-dir", str(tmp_path)]) == 2  # exists, but holds no paxon data
    assert main(["--data-dir", str(tmp_path), "--bogus"]) == 2
    capsys.readouterr()
