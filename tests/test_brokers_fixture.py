"""The real-broker fixtures give working brokers that can be taken down and up."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from kombu import Connection, Queue
from kombu.exceptions import OperationalError

from tests.brokers import BrokerServer, RabbitMQServer, group_members

BROKERS = ["redis_server", "rabbitmq_server"]


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> BrokerServer:
    """Each session broker in turn."""
    server = request.getfixturevalue(request.param)
    assert isinstance(server, BrokerServer)
    return server


def roundtrip(url: str) -> None:
    """Publish one message through ``url`` and fetch it back with basic_get."""
    body = {"id": uuid.uuid4().hex}
    name = f"cyme-fixture-{body['id']}"
    with Connection(url, connect_timeout=5) as conn:
        queue = Queue(name, routing_key=name)(conn.default_channel)
        queue.declare()
        try:
            conn.Producer().publish(body, routing_key=name, serializer="json")
            message = None
            deadline = time.monotonic() + 5
            while message is None and time.monotonic() < deadline:
                message = queue.get(no_ack=True)
            assert message is not None, "message published but never delivered"
            assert message.payload == body
        finally:
            queue.delete()


def connect_once(url: str) -> None:
    """Connect to ``url`` once, without kombu's retry back-off."""
    with Connection(url, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0)


def owned_pids(server: BrokerServer) -> set[int]:
    """Every live process the server runs: its process group and epmd."""
    pids = set(group_members(server.pid))
    if isinstance(server, RabbitMQServer) and server.epmd_pid is not None:
        pids.add(server.epmd_pid)
    return pids


def alive(pid: int) -> bool:
    """True when ``pid`` is a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def test_publish_and_get(broker: BrokerServer) -> None:
    roundtrip(broker.url)


@pytest.mark.parametrize("kill", [False, True], ids=["graceful", "killed"])
def test_stop_then_start_on_same_url(broker: BrokerServer, kill: bool) -> None:
    url, port, pids = broker.url, broker.port, owned_pids(broker)
    assert pids

    with broker.outage(kill=kill):
        assert not broker.running
        assert not [pid for pid in pids if alive(pid)]
        with pytest.raises(OperationalError):
            connect_once(url)

    assert broker.running
    assert (broker.url, broker.port) == (url, port)
    assert not owned_pids(broker) & pids
    roundtrip(url)
