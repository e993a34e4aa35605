"""docs/grafana-dashboard.json is a Grafana dashboard that imports anywhere, and the
PromQL in it is read as Prometheus reads it.

Grafana itself is not in this machine's package sources (``apt-cache policy
grafana`` finds none), so the dashboard is not loaded into a running Grafana;
its structure is checked here and ``tests/cluster/test_metrics_scrape.py``
checks every series and label its queries name against a real ``/metrics``
scrape. ``query_names`` is the PromQL reading both use: it takes out strings,
label matchers, ranges, groupings and variables, then every identifier left is
a function (it must be a PromQL one), a keyword or a metric name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json"
SCHEMA_VERSION_MIN = 36  # Grafana 9.4; Grafana 10 writes 37-39 (docs/metrics.md: needs 10)
GRID_COLUMNS = 24
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__all"}
PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "bargauge", "heatmap", "text"}

AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta",
    "deriv", "exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum",
    "holt_winters", "double_exponential_smoothing", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "ln", "log2", "log10", "minute", "month",
    "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc",
    "sort_by_label", "sort_by_label_desc", "sqrt", "time", "timestamp", "vector", "year",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
    "present_over_time", "mad_over_time", "acos", "acosh", "asin", "asinh", "atan",
    "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad", "pi",
}  # fmt: skip
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_VARIABLE = re.compile(r"\$(?:\{(\w+)[^}]*\}|([A-Za-z_]\w*))")
_NUMBER = re.compile(  # numbers and durations (``offset 1h30m``)
    r"(?<![\w:])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])\d*)*)(?![\w:])"
)
_IDENTIFIER = re.compile(r"[A-Za-z_:][\w:]*")
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)\s*\)")
_LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass
class QueryNames:
    """What one PromQL query names."""

    metrics: set[str] = field(default_factory=set)
    matched_labels: set[str] = field(default_factory=set)  # in {label=...}
    grouping_labels: set[str] = field(default_factory=set)  # in by (...), on (...), ...
    variables: set[str] = field(default_factory=set)  # $name, ${name}


def query_names(expr: str) -> QueryNames:
    """The metrics, labels and variables ``expr`` names; ``ValueError`` for a call of
    something that is not a PromQL function or aggregation."""
    names = QueryNames()
    names.variables = {a or b for a, b in _VARIABLE.findall(expr)}
    text = _STRING.sub('""', expr)
    assert "__name__" not in text, "a metric named in a matcher: read it as a name"
    for matchers in _MATCHERS.findall(text):
        names.matched_labels |= set(_MATCHER_LABEL.findall(matchers))
    text = _RANGE.sub(" ", _MATCHERS.sub(" ", text))
    for grouping in _GROUPING.findall(text):
        names.grouping_labels |= {label.strip() for label in grouping.split(",") if label.strip()}
    text = _NUMBER.sub(" ", _VARIABLE.sub(" ", _GROUPING.sub(" ", text)))
    for found in _IDENTIFIER.finditer(text):
        name = found.group(0)
        called = text[found.end() :].lstrip().startswith("(")
        if called:
            if name not in FUNCTIONS | AGGREGATIONS:
                raise ValueError(f"{name}() is not a PromQL function or aggregation: {expr}")
        elif name not in KEYWORDS | AGGREGATIONS:
            names.metrics.add(name)
    return names


@dataclass(frozen=True)
class Query:
    where: str  # the panel's title and refId, or the variable's name
    expr: str
    legend_labels: frozenset[str]


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def all_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside a (collapsed) row too."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in board["templating"]["list"]}


def queries(board: dict[str, Any]) -> list[Query]:
    """Every panel target's ``expr`` and every query variable's PromQL."""
    found = []
    for panel in all_panels(board):
        for target in panel.get("targets", []):
            legend = frozenset(_LEGEND_LABEL.findall(target.get("legendFormat", "")))
            found.append(Query(f"{panel['title']!r} {target['refId']}", target["expr"], legend))
    for name, variable in variables(board).items():
        if variable["type"] == "query":
            definition = variable["definition"]
            assert variable["query"]["query"] == definition, f"variable {name}"
            found.append(Query(f"variable {name}", definition, frozenset()))
    return found


def label_values_calls(board: dict[str, Any]) -> list[tuple[str, str]]:
    """``(metric, label)`` of each ``label_values(metric, label)`` variable query."""
    return [
        pair
        for variable in variables(board).values()
        if variable["type"] == "query"
        for pair in _LABEL_VALUES.findall(variable["definition"])
    ]


def query_reading(query: Query) -> QueryNames:
    """``query_names`` of a query, a ``label_values(metric, label)`` call read as
    ``metric`` with ``label`` grouped."""
    values = _LABEL_VALUES.fullmatch(query.expr.strip())
    if values is not None:
        return QueryNames({values.group(1)}, set(), {values.group(2)}, set())
    return query_names(query.expr)


# ----------------------------------------------------------------------- tests


def test_promql_is_read_as_prometheus_reads_it() -> None:
    quantile = query_names(
        'histogram_quantile(0.99, sum by (le, op) (rate(paxon_request_seconds_bucket{instance=~"$instance", op!="get"}[$__rate_interval])))'  # noqa: E501
    )
    assert quantile.metrics == {"paxon_request_seconds_bucket"}
    assert quantile.grouping_labels == {"le", "op"}
    assert quantile.matched_labels == {"instance", "op"}
    assert quantile.variables == {"instance", "__rate_interval"}
    joined = query_names(
        "sum without (code) (up) / on(instance) group_left(version) paxon_build_info "
        "> bool 1e3 and node_load1 offset 5m or vector(0)"
    )
    assert joined.metrics == {"up", "paxon_build_info", "node_load1"}
    assert joined.grouping_labels == {"code", "instance", "version"}
    assert query_names('max(foo:bar_total{a="}{[x]"}) by (job)').metrics == {"foo:bar_total"}
    relabelled = query_names('label_replace(up{job="a{b}"}, "dst", "$1", "src", "(.*)")')
    assert (relabelled.metrics, relabelled.variables) == ({"up"}, set())
    with pytest.raises(ValueError, match="histogram_quantil"):
        query_names("histogram_quantil(0.5, x_bucket)")


def test_the_dashboard_is_a_grafana_dashboard_with_a_datasource_variable() -> None:
    board = load_dashboard()
    assert isinstance(board["schemaVersion"], int)
    assert board["schemaVersion"] >= SCHEMA_VERSION_MIN
    assert board["uid"] and board["title"] and isinstance(board["panels"], list)
    defined = variables(board)
    source = defined.get("datasource")
    assert source is not None, "no datasource variable: the dashboard would need editing"
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    for name, variable in defined.items():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, f"variable {name}"

    ids = [panel["id"] for panel in all_panels(board)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    charts = [panel for panel in all_panels(board) if panel["type"] != "row"]
    assert len(charts) >= 15
    for panel in all_panels(board):
        grid = panel["gridPos"]
        assert grid["w"] >= 1 and grid["h"] >= 1 and grid["x"] >= 0 and grid["y"] >= 0
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, f"{panel['title']!r} runs off the grid"
    for panel in charts:
        title = panel["title"]
        assert panel["type"] in PANEL_TYPES, title
        assert panel["datasource"] == DATASOURCE, f"{title!r} does not use $datasource"
        targets = panel["targets"]
        assert targets, f"{title!r} has no query"
        refs = [target["refId"] for target in targets]
        assert len(refs) == len(set(refs)), f"{title!r} repeats a refId"
        for target in targets:
            assert target["datasource"] == DATASOURCE, f"{title!r} {target['refId']}"
            assert target["expr"].strip(), f"{title!r} {target['refId']} is empty"
    # No data source of one Grafana baked in anywhere (docs/metrics.md: provisioning).
    baked = [uid for uid in re.findall(r'"uid":\s*"([^"]*)"', DASHBOARD.read_text())]
    assert set(baked) == {"${datasource}", board["uid"]}

    for query in queries(board):
        reading = query_reading(query)
        assert reading.metrics, f"{query.where} names no metric: {query.expr}"
        unknown = reading.variables - set(defined) - GRAFANA_BUILTINS
        assert not unknown, f"{query.where} uses undefined variables {unknown}"
