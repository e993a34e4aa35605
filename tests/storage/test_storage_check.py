"""``paxon check``: read-only verification of a real data directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from storage_helpers import accept, numbered

from paxon.kv.codec import encode_command
from paxon.kv.model import Put
from paxon.kv.store import KvStore
from paxon.node.machine import ReplicatedMachine
from paxon.storage import Storage, StorageConfig
from paxon.storage.check import main

CONFIG = StorageConfig(segment_max_bytes=4096, record_max_bytes=1024, snapshot_chunk_bytes=256)


def kv_snapshot(slot: int, keys: int = 20) -> bytes:
    """A snapshot as ``paxon serve`` writes it: sessions around a KV store."""
    store = KvStore()
    for i in range(keys):
        store.apply(encode_command(Put(f"key{i}", b"value" * 4, None)))
    return ReplicatedMachine(store, slot_applied=slot).snapshot()


def make_dir(path: Path, records: int = 120, snapshot: bool | bytes = True) -> str:
    directory = str(path / "node1")
    storage = Storage.open(directory, node_id=1, cluster_id="prod", config=CONFIG)
    storage.append([numbered(lsn) for lsn in range(1, records + 1)])
    storage.sync()
    if snapshot is not False:
        storage.save_snapshot(40, kv_snapshot(40) if snapshot is True else snapshot)
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


def test_a_snapshot_whose_body_does_not_decode_is_damage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every checksum holds: only decoding the contents finds it.
    directory = make_dir(tmp_path, snapshot=b"\xc1 not a snapshot" * 20)
    code, out = run(capsys, "--data-dir", directory, "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert report["first_bad"]["error"] == "UnrestorableSnapshot"
    assert report["first_bad"]["file"].endswith(report["snapshots"][0]["name"])
    assert "cannot restore" in report["first_bad"]["reason"]
    # Checksums only: the same directory passes.
    code, out = run(capsys, "--data-dir", directory, "--snapshot-contents", "none")
    assert code == 0 and "result     OK" in out


def test_a_kv_body_that_breaks_the_stores_rules_is_damage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The head decodes; the store's part has a key out of order (key1 after key2).
    good = kv_snapshot(40)
    broken = good.replace(b"key3", b"key1", 1)  # keys out of order in the store's part
    assert broken != good
    directory = make_dir(tmp_path, snapshot=broken)
    code, out = run(capsys, "--data-dir", directory)
    assert code == 1 and "DAMAGED: UnrestorableSnapshot" in out


def test_a_snapshot_whose_body_names_another_slot_is_damage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = make_dir(tmp_path, snapshot=kv_snapshot(41))  # the file says slot 40
    code, out = run(capsys, "--data-dir", directory)
    assert code == 1 and "below slot 41, its header says slot 40" in out


def test_a_directory_other_users_can_write_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = make_dir(tmp_path)
    os.chmod(directory, 0o777)
    code, out = run(capsys, "--data-dir", directory)
    assert code == 1
    assert f"INSECURE   {directory}: writable by other users (mode 0777)" in out
    assert "result     INSECURE" in out
    os.chmod(directory, 0o700)
    identity = os.path.join(directory, "IDENTITY")
    os.chmod(identity, 0o620)
    code, out = run(capsys, "--data-dir", directory, "--json")
    assert code == 1 and json.loads(out)["insecure"][0].startswith(f"{identity}: writable")


def test_a_directory_other_users_can_read_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = make_dir(tmp_path)
    os.chmod(directory, 0o755)
    code, out = run(capsys, "--data-dir", directory)
    assert code == 0 and "result     OK" in out
    assert f"warning    {directory}: readable by other users (mode 0755)" in out
