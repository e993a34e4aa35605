"""Fixtures of the cluster tests: a started 3-node cluster, always torn down.

``cluster`` yields a running cluster with a settled leader and SIGKILLs every
process it started when the test ends, however it ends. When a test fails, the
tail of each node's log is added to the report (section "paxon node logs").
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from tests.cluster.harness import Cluster

_CLUSTERS = pytest.StashKey[list[Cluster]]()


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster(tmp_path / "cluster")
    request.node.stash.setdefault(_CLUSTERS, []).append(started)
    try:
        started.start()
        started.wait_for_leader()
        yield started
    finally:
        started.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for cluster in item.stash.get(_CLUSTERS, []):
            report.sections.append(("paxon node logs", cluster.describe()))
    return report
