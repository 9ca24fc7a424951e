"""The Instance actor: owns this branch's instances (the desired state of its workers).

Every change is written to the database first, then handed to the Supervisor with
``Apply``; for a sync request the Supervisor answers the caller once the change is real.
"""

from __future__ import annotations

import uuid
from typing import Any

from cyme import names
from cyme.actors import views
from cyme.actors.app import get_app
from cyme.actors.base import DEFERRED, CymeActor
from cyme.actors.internal import Apply, Waiter
from cyme.actors.messages import (
    AddConsumer,
    CancelConsumer,
    CreateInstance,
    Deleted,
    DeleteInstance,
    GetAutoscale,
    GetInstance,
    InstanceInfo,
    ListConsumers,
    ListInstances,
    Request,
    SetAutoscale,
)
from cyme.actors.queue import get_queue
from cyme.broker import url as broker_url
from cyme.errors import AlreadyExists, InvalidRequest, NotFound
from cyme.models import Instance, writing

#: Upper bound of an instance's pool size accepted through the API.
MAX_CONCURRENCY = 256


def get_instance(app: str | None, name: str) -> Instance:
    """Instance *name* (of *app*, unless None), or NotFound."""
    query = Instance.name == names.instance_name(name)
    if app is not None:
        query &= Instance.app == names.app_name(app)
    instance = Instance.get_or_none(query)
    if instance is None:
        where = f" in app {app!r}" if app is not None else ""
        raise NotFound(f"no instance named {name!r}{where}")
    return instance


def check_concurrency(max_concurrency: int, min_concurrency: int) -> None:
    """Refuse autoscale bounds a worker could not run with."""
    if not 1 <= max_concurrency <= MAX_CONCURRENCY:
        raise InvalidRequest(f"max concurrency must be between 1 and {MAX_CONCURRENCY}")
    if not 0 <= min_concurrency <= max_concurrency:
        raise InvalidRequest("min concurrency must be between 0 and max concurrency")


class InstanceActor(CymeActor):
    """Creates, describes, changes and deletes the instances of this branch."""

    label = "Instance"

    def setup_handlers(self) -> None:
        self.handlers.update(
            {
                CreateInstance: self.create,
                GetInstance: self.get,
                ListInstances: self.list,
                DeleteInstance: self.delete,
                AddConsumer: self.add_consumer,
                CancelConsumer: self.cancel_consumer,
                ListConsumers: self.list_consumers,
                GetAutoscale: self.get_autoscale,
                SetAutoscale: self.set_autoscale,
            }
        )

    @property
    def default_broker(self) -> str:
        assert self.config is not None and self.config.broker is not None
        return self.config.broker

    def info(self, instance: Instance) -> InstanceInfo:
        return views.instance_info(instance, self.default_broker)

    def apply(self, instance: Instance, msg: Request, reply_to: Any, nowait: bool) -> Any:
        """Hand the change to the supervisor; reply now (nowait) or when it is real."""
        waiter = None if nowait else Waiter(reply_to, msg.request_id)
        self.send(self.peers["supervisor"], Apply(instance.name, waiter))
        return self.info(instance) if nowait else DEFERRED

    def create(self, msg: CreateInstance, reply_to: Any) -> Any:
        assert self.config is not None
        app = get_app(names.app_name(msg.app))
        name = names.instance_name(msg.name) if msg.name else str(uuid.uuid4())
        check_concurrency(msg.max_concurrency, msg.min_concurrency)
        broker = broker_url.check(msg.broker) if msg.broker else None
        queues = [names.queue_name(q) for q in msg.queues]
        for queue in queues:
            get_queue(app.name, queue)
        with writing():
            if Instance.get_or_none(Instance.name == name) is not None:
                raise AlreadyExists(f"an instance named {name!r} already exists")
            instance = Instance(
                name=name,
                app=app.name,
                branch=self.config.branch_id,
                broker=broker,
                max_concurrency=msg.max_concurrency,
                min_concurrency=msg.min_concurrency,
            )
            instance.queues = queues
            instance.save(force_insert=True)
        return self.apply(instance, msg, reply_to, msg.nowait)

    def get(self, msg: GetInstance, reply_to: Any) -> InstanceInfo:
        return self.info(get_instance(msg.app, msg.name))

    def list(self, msg: ListInstances, reply_to: Any) -> list[InstanceInfo]:
        query = Instance.select().order_by(Instance.name)
        if msg.app is not None:
            query = query.where(Instance.app == get_app(names.app_name(msg.app)).name)
        return views.instance_infos(list(query), self.default_broker)

    def delete(self, msg: DeleteInstance, reply_to: Any) -> Any:
        instance = get_instance(msg.app, msg.name)
        instance.delete_instance()
        waiter = None if msg.nowait else Waiter(reply_to, msg.request_id)
        self.send(self.peers["supervisor"], Apply(instance.name, waiter))
        return Deleted("instance", instance.name) if msg.nowait else DEFERRED

    def add_consumer(self, msg: AddConsumer, reply_to: Any) -> Any:
        instance = get_instance(msg.app, msg.instance)
        queue = get_queue(instance.app_id, names.queue_name(msg.queue))
        instance.queues = [*instance.queues, queue.name]
        instance.save()
        return self.apply(instance, msg, reply_to, msg.nowait)

    def cancel_consumer(self, msg: CancelConsumer, reply_to: Any) -> Any:
        instance = get_instance(msg.app, msg.instance)
        queue = names.queue_name(msg.queue)
        if queue not in instance.queues:
            raise NotFound(f"instance {instance.name!r} does not consume from {queue!r}")
        instance.queues = [q for q in instance.queues if q != queue]
        instance.save()
        return self.apply(instance, msg, reply_to, msg.nowait)

    def list_consumers(self, msg: ListConsumers, reply_to: Any) -> InstanceInfo:
        return self.info(get_instance(msg.app, msg.instance))

    def get_autoscale(self, msg: GetAutoscale, reply_to: Any) -> InstanceInfo:
        return self.info(get_instance(msg.app, msg.instance))

    def set_autoscale(self, msg: SetAutoscale, reply_to: Any) -> Any:
        instance = get_instance(msg.app, msg.instance)
        max_c = instance.max_concurrency if msg.max_concurrency is None else msg.max_concurrency
        min_c = instance.min_concurrency if msg.min_concurrency is None else msg.min_concurrency
        if msg.max_concurrency is not None and msg.min_concurrency is None:
            min_c = min(min_c, max_c)
        check_concurrency(max_c, min_c)
        instance.max_concurrency, instance.min_concurrency = max_c, min_c
        instance.save()
        return self.apply(instance, msg, reply_to, msg.nowait)
