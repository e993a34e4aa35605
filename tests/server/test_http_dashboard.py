"""The dashboard's routes against a fake KvService: ``GET /v1/slots`` (its limit is
capped), ``GET /v1/activity``, and a page that loads nothing from elsewhere."""

from __future__ import annotations

import re
from typing import Any

from tests.server.test_http import Client, FakeKv, expect_error, serve

from paxon.protocol import RECENT_SLOTS_MAX
from paxon.server.dashboard import dashboard_page

SAMPLES = {"node_id": 1, "interval_s": 1.0, "samples_max": 300, "samples": [{"t": 1.0}]}


class DashboardKv(FakeKv):
    def __init__(self, samples: dict[str, Any] | None = SAMPLES) -> None:
        super().__init__()
        self.samples = samples
        self.counts: list[int] = []

    def activity(self) -> dict[str, Any] | None:
        return self.samples

    def recent_slots(self, count: int) -> dict[str, Any]:
        self.counts.append(count)
        return {"node_id": 1, "slots": [{"slot": s} for s in range(count)]}


def test_slots_are_capped_at_recent_slots_max() -> None:
    service = DashboardKv()

    async def scenario(client: Client) -> None:
        for query, count in (("", RECENT_SLOTS_MAX), ("?limit=5", 5), ("?limit=100000", 64)):
            response = await client.get("/v1/slots" + query)
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
            assert len((await response.json())["slots"]) == count
        await expect_error(await client.get("/v1/slots?limit=0"), 400, "bad_request")
        await expect_error(await client.get("/v1/slots?limit=x"), 400, "bad_request")
        await expect_error(await client.get("/v1/slots?n=3"), 400, "bad_request")

    serve(service, scenario)
    assert service.counts == [RECENT_SLOTS_MAX, 5, RECENT_SLOTS_MAX]


def test_activity_answers_the_samples_or_says_none_are_kept() -> None:
    async def scenario(client: Client) -> None:
        response = await client.get("/v1/activity")
        assert response.status == 200 and await response.json() == SAMPLES
        await expect_error(await client.get("/v1/activity?x=1"), 400, "bad_request")

    serve(DashboardKv(), scenario)

    async def without(client: Client) -> None:
        await expect_error(await client.get("/v1/activity"), 400, "not_supported")

    serve(DashboardKv(samples=None), without)


def test_the_page_loads_nothing_from_another_origin() -> None:
    async def scenario(client: Client) -> None:
        response = await client.get("/")
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
        # Offline: no script, style, image or fetch from an absolute or protocol-relative URL.
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
        assert not re.search(r"""(fetch|import)\s*\(\s*["'`](https?:)?//""", page)
        assert "@import" not in page
        for route in ("v1/cluster", "v1/activity", "v1/slots"):
            assert f'"{route}' in page  # relative, so dev's proxy serves the same page

    serve(DashboardKv(), scenario)


def test_the_config_cannot_close_its_script_element() -> None:
    hostile = "</script><script>alert(1)</script>"
    page = dashboard_page({"chaos": True, "token": hostile})
    assert hostile not in page and "\\u003c/script\\u003e" in page
    assert page.count("</script>") == dashboard_page().count("</script>")
