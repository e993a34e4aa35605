"""The dashboard page (``GET /`` of every node, and ``paxon dev --chaos``'s own page).

``dashboard.html`` is a template: the vendored uPlot (``vendor/``, MIT, see its
README) is inlined into it, and so is a JSON config, so the page loads nothing
from another origin and works offline. The page polls, relative to where it was
served, ``v1/cluster``, ``v1/activity`` and ``v1/slots`` once a second (docs/api.md);
with ``{"chaos": true, "token": ...}`` (only ``paxon dev --chaos`` serves that) it
shows kill/pause/resume/restart buttons that ``POST dev/nodes/{id}/{action}``
with the token (``paxon.server.dev_dashboard``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

_CONFIG: Final = "/*PAXON:CONFIG*/"
_UPLOT_JS: Final = "/*PAXON:UPLOT_JS*/"
_UPLOT_CSS: Final = "/*PAXON:UPLOT_CSS*/"


@cache
def _parts() -> tuple[str, str, str]:
    package = resources.files("paxon.server")
    page = package.joinpath("dashboard.html").read_text("utf-8")
    script = package.joinpath("vendor", "uPlot.iife.min.js").read_text("utf-8")
    style = package.joinpath("vendor", "uPlot.min.css").read_text("utf-8")
    if "</script" in script.lower() or "</style" in style.lower():
        raise ValueError("a vendored file would close its inline tag")  # a bad update of vendor/
    return page, script, style


def dashboard_page(config: dict[str, Any] | None = None) -> str:
    """The page, with ``config`` (default ``{"chaos": false}``) for its script."""
    page, script, style = _parts()
    # Escaped so no value can close the <script> element it sits in.
    data = json.dumps(config or {"chaos": False}).replace("<", "\\u003c").replace(">", "\\u003e")
    page = page.replace(_UPLOT_CSS, style, 1).replace(_UPLOT_JS, script, 1)
    return page.replace(_CONFIG, data, 1)  # last: the config's text is never searched
