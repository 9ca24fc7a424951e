"""Shared fixtures: real branches (cyme-branch processes) on each kind of broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import BranchProcess, Inspector

BROKERS = ["embedded", "redis", "rabbitmq"]


def start_branch(request: pytest.FixtureRequest, kind: str, name: str) -> BranchProcess:
    factory = request.getfixturevalue("tmp_path_factory")
    broker = None
    if kind == "redis":
        broker = request.getfixturevalue("redis_server").url
    elif kind == "rabbitmq":
        broker = request.getfixturevalue("rabbitmq_server").url
    return BranchProcess(factory.mktemp(name) / "root", branch_id=name, broker=broker).start()


@pytest.fixture(scope="session", params=BROKERS)
def branch(request: pytest.FixtureRequest) -> Iterator[BranchProcess]:
    """A running branch whose default broker is the embedded one, Redis or RabbitMQ."""
    running = start_branch(request, request.param, f"b-{request.param}")
    yield running
    assert running.stop() == 0, running.log_tail()


@pytest.fixture(scope="session")
def embedded_branch(request: pytest.FixtureRequest) -> Iterator[BranchProcess]:
    """A running branch on the embedded default broker (for tests of the API's edges)."""
    running = start_branch(request, "embedded", "b-edges")
    yield running
    assert running.stop() == 0, running.log_tail()


@pytest.fixture
def inspector(branch: BranchProcess) -> Iterator[Inspector]:
    """Celery remote control on the branch's broker, independent of cyme."""
    inspect = Inspector(branch.broker_url())
    yield inspect
    inspect.close()
