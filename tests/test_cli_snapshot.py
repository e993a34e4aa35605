"""``paxon snapshot save`` picks its member: the first endpoint that serves HTTP
and sends a backup; one that cannot is passed over, a refusal is final."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from paxon import cli_snapshot
from paxon.errors import PermissionDenied, Unavailable
from paxon.storage.backup import BackupMeta, encode_chunks, read_backup

DATA = b"store bytes"
META = BackupMeta(9, 2, 30, 0, 2, "paxon", "2026-01-01T00:00:00Z", len(DATA))


class FakeClient:
    """What ``snapshot save`` asks of a client: endpoints, their views, options."""

    def __init__(self, views: list[dict[str, Any] | None]) -> None:
        self.endpoints = [f"127.0.0.1:{7001 + i}" for i in range(len(views))]
        self.views = views
        self.user = None
        self.status_problem = "127.0.0.1:7001: no answer in time"

    async def node_views(self) -> list[dict[str, Any] | None]:
        return self.views


def save(
    tmp_path: Path,
    views: list[dict[str, Any] | None],
    answers: dict[str, Exception | None],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, list[str]]:
    asked: list[str] = []

    async def download(url: str, *args: Any) -> AsyncIterator[bytes]:
        asked.append(url)
        error = answers[url]
        if error is not None:
            raise error
        for chunk in encode_chunks(META, DATA):
            yield chunk

    monkeypatch.setattr(cli_snapshot, "_download", download)
    args = argparse.Namespace(file=str(tmp_path / "b.paxon"), json=False)
    operation = cli_snapshot.snapshot_operation(args)
    code = asyncio.run(operation(FakeClient(views)))  # type: ignore[arg-type]
    return code, asked


def test_a_member_that_cannot_send_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    views = [None, {"http": "http://127.0.0.1:8002"}, {}, {"http": "http://0.0.0.0:8004"}]
    answers: dict[str, Exception | None] = {
        "http://127.0.0.1:8002/v1/snapshot": Unavailable("HTTP 503: busy"),
        "http://127.0.0.1:8004/v1/snapshot": None,  # a wildcard listener: dialed as reached
    }
    code, asked = save(tmp_path, views, answers, monkeypatch)
    assert code == 0 and asked == list(answers)
    assert read_backup(str(tmp_path / "b.paxon")).data == DATA


def test_a_refusal_is_final_and_no_member_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    views = [{"http": "http://127.0.0.1:8001"}, {"http": "http://127.0.0.1:8002"}]
    refused: dict[str, Exception | None] = {
        "http://127.0.0.1:8001/v1/snapshot": PermissionDenied("needs role root"),
        "http://127.0.0.1:8002/v1/snapshot": None,
    }
    with pytest.raises(PermissionDenied):
        save(tmp_path, views, refused, monkeypatch)
    busy: dict[str, Exception | None] = {url: Unavailable("HTTP 503: busy") for url in refused}
    with pytest.raises(Unavailable, match="no member sent a backup"):
        save(tmp_path, views, busy, monkeypatch)
    with pytest.raises(Unavailable, match="no answer in time"):
        save(tmp_path, [None, None], {}, monkeypatch)
    assert list(tmp_path.iterdir()) == []
