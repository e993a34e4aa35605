"""Fixtures of the cluster tests: a started 3-node cluster, always torn down.

``cluster`` yields a running cluster with a settled leader and SIGKILLs every
process it started when the test ends, however it ends; ``start_cluster`` does
the same for clusters of another size or with other flags. When a test fails, the
tail of each node's log is added to the report (section "paxon node logs").
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
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


@pytest.fixture
def start_cluster(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Cluster]]:
    """``start_cluster(size, extra_args)``: a started cluster with a settled leader,
    torn down and reported like ``cluster``'s."""
    started: list[Cluster] = []

    def start(size: int = 3, extra_args: Sequence[str] = ()) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(started)}", size, extra_args)
        started.append(cluster)
        request.node.stash.setdefault(_CLUSTERS, []).append(cluster)
        cluster.start()
        cluster.wait_for_leader()
        return cluster

    try:
        yield start
    finally:
        for cluster in started:
            cluster.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for cluster in item.stash.get(_CLUSTERS, []):
            report.sections.append(("paxon node logs", cluster.describe()))
    return report
