"""The Task actor: queues URL tasks on an app's broker and reads their results.

A URL task is published to the declared queue's exchange and routing key, so only the
instances consuming from that queue run it; it is recorded in the ``task`` table first,
so that an unknown task id is a 404 rather than a task forever "PENDING".
"""

from __future__ import annotations

import base64
import datetime
import logging
import uuid
from typing import Any

from celery import Celery
from celery.result import AsyncResult

from cyme import names
from cyme.actors import views
from cyme.actors.app import get_app
from cyme.actors.base import CymeActor
from cyme.actors.messages import GetTask, QueueUrl, TaskInfo
from cyme.actors.queue import get_queue
from cyme.errors import InvalidRequest, NotFound, Unavailable
from cyme.models import Task, writing
from cyme.workers.app import declared_queue
from cyme.workers.url_task import TASK_NAME

log = logging.getLogger("cyme.tasks")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
MAX_TIMEOUT = 3600.0
MAX_RETRIES = 20
#: Seconds a task's own time limit leaves above its HTTP timeouts.
TIME_LIMIT_MARGIN = 10.0
#: Forget expired task records every this many publishes.
PRUNE_EVERY = 1000


def check_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidRequest("task id must be a UUID") from None


def error_of(result: AsyncResult) -> dict[str, str]:
    exc = result.result
    if isinstance(exc, BaseException):
        return {"type": type(exc).__name__, "message": str(exc)}
    return {"type": "Error", "message": str(exc)}


class TaskActor(CymeActor):
    """Publishes URL tasks and answers for their state and results."""

    label = "Tasks"

    def setup_handlers(self) -> None:
        self.apps: dict[tuple[str, str], Celery] = {}
        self.published = 0
        self.handlers.update({QueueUrl: self.queue_url, GetTask: self.get_task})

    def configured(self) -> None:
        assert self.config is not None
        (self.config.root / "results").mkdir(parents=True, exist_ok=True)

    def celery(self, app_name: str) -> Celery:
        """A Celery client for *app_name*'s broker and result backend (kept per process)."""
        assert self.config is not None
        app = get_app(app_name)
        broker = app.broker or self.config.broker or ""
        backend = views.effective_backend(app, self.config)
        key = (broker, backend)
        if key not in self.apps:
            client = Celery("cyme-tasks", broker=broker, backend=backend, set_as_current=False)
            client.conf.update(
                result_extended=True,
                task_publish_retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.5},
                broker_connection_timeout=3.0,
            )
            self.apps[key] = client
        return self.apps[key]

    def queue_url(self, msg: QueueUrl, sender: Any) -> TaskInfo:
        assert self.config is not None
        app = get_app(names.app_name(msg.app))
        queue = get_queue(app.name, names.queue_name(msg.queue))
        method = msg.method.upper()
        if method not in METHODS:
            raise InvalidRequest(f"unsupported HTTP method {msg.method!r}")
        self.config.url_policy.check_url(msg.url)
        if not (0 < msg.connect_timeout <= MAX_TIMEOUT and 0 < msg.read_timeout <= MAX_TIMEOUT):
            raise InvalidRequest(f"timeouts must be between 0 and {MAX_TIMEOUT:.0f} seconds")
        if not 0 <= msg.retries <= MAX_RETRIES or not 0 <= msg.retry_delay <= MAX_TIMEOUT:
            raise InvalidRequest(f"retries must be between 0 and {MAX_RETRIES}")
        task_id = str(uuid.uuid4())
        Task.create(id=task_id, app=app.name, queue=queue.name, method=method, url=msg.url)
        request = {
            "method": method,
            "url": msg.url,
            "query": msg.query,
            "body_b64": base64.b64encode(msg.body).decode() if msg.body else "",
            "headers": [list(h) for h in msg.headers],
            "connect_timeout": msg.connect_timeout,
            "read_timeout": msg.read_timeout,
        }
        soft_limit = (msg.connect_timeout + msg.read_timeout) + TIME_LIMIT_MARGIN
        decl = views.queue_info(queue).to_json()
        try:
            self.celery(app.name).send_task(
                TASK_NAME,
                kwargs={"request": request, "retries": msg.retries, "retry_delay": msg.retry_delay},
                task_id=task_id,
                queue=declared_queue(decl),
                exchange=queue.exchange,
                routing_key=queue.routing_key,
                soft_time_limit=soft_limit,
                time_limit=soft_limit + TIME_LIMIT_MARGIN,
            )
        except Exception as exc:  # kombu/redis/amqp connection errors
            Task.delete_by_id(task_id)
            log.error("{Tasks} could not publish %s %s to %s: %s", method, msg.url, queue.name, exc)
            raise Unavailable(f"the broker of app {app.name!r} is unreachable; nothing was queued") from None
        log.info("{Tasks} %s queued %s %s on %s", task_id, method, msg.url, queue.name)
        self.prune()
        return TaskInfo(task_id, app.name, queue.name, method, msg.url, "PENDING")

    def get_task(self, msg: GetTask, sender: Any) -> TaskInfo:
        task_id = check_uuid(msg.uuid)
        task = Task.get_or_none((Task.id == task_id) & (Task.app == names.app_name(msg.app)))
        if task is None:
            raise NotFound(f"no task {task_id} in app {msg.app!r}")
        try:
            result = AsyncResult(task_id, app=self.celery(task.app))
            state = result.state
            ready = state in ("SUCCESS", "FAILURE", "REVOKED")
            value = result.result if state == "SUCCESS" else None
            error = error_of(result) if state in ("FAILURE", "REVOKED") else None
        except Exception as exc:  # backend connection errors
            log.error("{Tasks} result backend of %s unreachable: %s", task.app, exc)
            raise Unavailable(f"the result backend of app {task.app!r} is unreachable") from None
        return TaskInfo(task_id, task.app, task.queue, task.method, task.url, state, ready, value, error)

    def prune(self) -> None:
        assert self.config is not None
        self.published += 1
        if self.published % PRUNE_EVERY == 1:
            cutoff = datetime.datetime.utcnow() - datetime.timedelta(seconds=self.config.result_expires)
            with writing():
                Task.delete().where(Task.created < cutoff).execute()
