"""The Queue actor: owns the queue declarations of this branch."""

from __future__ import annotations

import json
from typing import Any

from cyme import names
from cyme.actors import views
from cyme.actors.app import get_app
from cyme.actors.base import CymeActor
from cyme.actors.messages import (
    DeclareQueue,
    Deleted,
    DeleteQueue,
    GetQueue,
    ListQueues,
    QueueInfo,
)
from cyme.errors import Conflict, InvalidRequest, NotFound
from cyme.models import Instance, Queue, writing

EXCHANGE_TYPES = ("direct", "topic", "fanout", "headers")


def get_queue(app: str, name: str) -> Queue:
    """The declaration of queue *name* in *app*, or NotFound."""
    queue = Queue.get_or_none((Queue.app == app) & (Queue.name == name))
    if queue is None:
        raise NotFound(f"no queue {name!r} declared in app {app!r}")
    return queue


class QueueActor(CymeActor):
    """Declares, describes and deletes queue declarations."""

    label = "Queue"

    def setup_handlers(self) -> None:
        self.handlers.update(
            {
                DeclareQueue: self.declare,
                GetQueue: self.get,
                ListQueues: self.list,
                DeleteQueue: self.delete,
            }
        )

    def declare(self, msg: DeclareQueue, sender: Any) -> QueueInfo:
        app = get_app(names.app_name(msg.app))
        name = names.queue_name(msg.name)
        exchange_type = msg.exchange_type or "direct"
        if exchange_type not in EXCHANGE_TYPES:
            raise InvalidRequest(f"exchange_type must be one of {', '.join(EXCHANGE_TYPES)}")
        if msg.options is not None and not isinstance(msg.options, dict):
            raise InvalidRequest("options must be a JSON object")
        fields = {
            "exchange": msg.exchange or name,
            "exchange_type": exchange_type,
            "routing_key": msg.routing_key or name,
            "options_json": json.dumps(msg.options) if msg.options else None,
        }
        with writing():
            queue, created = Queue.get_or_create(app=app.name, name=name, defaults=fields)
            if not created:
                Queue.update(**fields).where(Queue.id == queue.id).execute()
                queue = Queue.get_by_id(queue.id)
        return views.queue_info(queue)

    def get(self, msg: GetQueue, sender: Any) -> QueueInfo:
        app = get_app(names.app_name(msg.app))
        return views.queue_info(get_queue(app.name, names.queue_name(msg.name)))

    def list(self, msg: ListQueues, sender: Any) -> list[QueueInfo]:
        app = get_app(names.app_name(msg.app))
        queues = Queue.select().where(Queue.app == app.name).order_by(Queue.name)
        return [views.queue_info(q) for q in queues]

    def delete(self, msg: DeleteQueue, sender: Any) -> Deleted:
        app = get_app(names.app_name(msg.app))
        queue = get_queue(app.name, names.queue_name(msg.name))
        with writing():
            users = [
                i.name for i in Instance.select().where(Instance.app == app.name) if queue.name in i.queues
            ]
            if users:
                raise Conflict(
                    f"queue {queue.name!r} is consumed by {', '.join(sorted(users))}; cancel those first"
                )
            queue.delete_instance()
        return Deleted("queue", queue.name)
