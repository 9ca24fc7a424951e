"""The Celery app every worker instance runs (``celery -A cyme.workers.app worker``).

The branch passes the instance's broker, result backend and queue declarations in the
environment, so a worker started by hand with the same environment behaves exactly like
a supervised one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu import Queue

from cyme.workers import url_task


def declared_queue(decl: Mapping[str, Any]) -> Queue:
    """Build the kombu Queue for a cyme queue declaration (name, exchange, ... options)."""
    return Queue.from_dict(
        decl["name"],
        exchange=decl.get("exchange") or decl["name"],
        exchange_type=decl.get("exchange_type") or "direct",
        routing_key=decl.get("routing_key") or decl["name"],
        **(decl.get("options") or {}),
    )


def configure(app: Celery, env: Mapping[str, str]) -> Celery:
    """Apply cyme's settings (from ``CYME_*`` variables) to a Celery app."""
    app.conf.update(
        broker_url=env.get("CYME_BROKER_URL", "memory://"),
        result_backend=env.get("CYME_RESULT_BACKEND") or None,
        result_expires=int(env.get("CYME_RESULT_EXPIRES", "86400")),
        task_queues=[declared_queue(d) for d in json.loads(env.get("CYME_QUEUES", "[]"))],
        task_default_queue=env.get("CYME_DIRECT_QUEUE", "celery"),
        task_track_started=True,
        result_extended=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=True,
        worker_send_task_events=False,
    )
    return app


def make_app(env: Mapping[str, str]) -> Celery:
    """Create the worker's Celery app with the URL task registered."""
    app = configure(Celery("cyme", set_as_current=True), env)
    app.task(name=url_task.TASK_NAME, bind=True)(url_task.url_task)
    return app


app = make_app(os.environ)
