"""Pytest plugin: session-scoped real brokers (redis-server and RabbitMQ).

Load it from the root ``conftest.py`` with::

    pytest_plugins = ["tests.plugins.brokers"]

or on the command line with ``-p tests.plugins.brokers``.

Each pytest-xdist worker starts its own servers under its own
``tmp_path_factory`` directory, so workers never share a broker.

When a broker binary is not installed the tests that need it are skipped,
except under CI (``CI=true``), where a missing broker is a failure: CI must
run ``scripts/install-system-deps`` first.

Tests that stop a session broker must start it again before they finish
(``with redis_server.outage(): ...`` does that), since later tests share it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.brokers import (
    BrokerServer,
    rabbitmq_available,
    redis_available,
    start_rabbitmq,
    start_redis,
)

__all__ = ["missing_server", "rabbitmq_server", "redis_server"]

INSTALL_HINT = "run scripts/install-system-deps"


def running_in_ci() -> bool:
    """True when the CI environment variable says this is a CI run."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing_server(name: str) -> NoReturn:
    """Skip the test because ``name`` is not installed, or fail under CI."""
    message = f"{name} is not installed ({INSTALL_HINT})"
    if running_in_ci():
        pytest.fail(f"{message}; CI must have every broker", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerServer]:
    """A private redis-server for this session (per xdist worker)."""
    if not redis_available():
        missing_server("redis-server")
    server = start_redis(tmp_path_factory.mktemp("redis-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerServer]:
    """A private RabbitMQ node for this session (per xdist worker)."""
    if not rabbitmq_available():
        missing_server("rabbitmq-server")
    server = start_rabbitmq(tmp_path_factory.mktemp("rabbitmq-server"))
    try:
        yield server
    finally:
        server.stop()
