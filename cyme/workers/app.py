"""The Celery app every worker instance runs (``celery -A cyme.workers.app worker``).

The branch passes the instance's broker and queue declarations in the environment, so a
worker started by hand with the same environment behaves exactly like a supervised one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu import Queue


def declared_queue(decl: Mapping[str, Any]) -> Queue:
    """Build the kombu Queue for a cyme queue declaration (name, exchange, ... options)."""
    return Queue.from_dict(
        decl["name"],
        exchange=decl.get("exchange") or decl["name"],
        exchange_type=decl.get("exchange_type") or "direct",
        routing_key=decl.get("routing_key") or decl["name"],
        **(decl.get("options") or {}),
    )


def make_app(env: Mapping[str, str]) -> Celery:
    """Create the worker's Celery app from ``CYME_BROKER_URL`` and ``CYME_QUEUES``."""
    broker = env.get("CYME_BROKER_URL", "memory://")
    app = Celery("cyme", broker=broker, set_as_current=True)
    app.conf.update(
        task_queues=[declared_queue(d) for d in json.loads(env.get("CYME_QUEUES", "[]"))],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=True,
        worker_send_task_events=False,
        task_default_queue=env.get("CYME_DIRECT_QUEUE", "celery"),
    )
    return app


app = make_app(os.environ)
