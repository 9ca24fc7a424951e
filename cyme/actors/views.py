"""Building the public value types (``*Info``) from the stored models."""

from __future__ import annotations

from cyme.actors.messages import AppInfo, InstanceInfo, QueueInfo
from cyme.broker import url as broker_url
from cyme.config import BranchConfig
from cyme.models import App, Instance, Queue, WorkerState


def effective_broker(broker: str | None, app: App, default: str) -> str:
    """The broker an instance uses: its own, else its app's, else the branch default."""
    return broker or app.broker or default


def effective_backend(app: App, config: BranchConfig) -> str:
    """Where an app's task results live: its own backend, the branch's, or a sensible default.

    A Redis broker doubles as the result backend; otherwise results are files under the root.
    """
    if app.backend or config.result_backend:
        return str(app.backend or config.result_backend)
    broker = app.broker or config.broker or ""
    if broker.startswith(("redis://", "rediss://", "redis+socket://")):
        return broker
    return f"file://{config.root / 'results'}"


def app_info(app: App, config: BranchConfig) -> AppInfo:
    names = tuple(i.name for i in Instance.select(Instance.name).where(Instance.app == app.name))
    broker = broker_url.describe(app.broker or config.broker or "")
    return AppInfo(app.name, broker, names, broker_url.mask(effective_backend(app, config)))


def queue_info(queue: Queue) -> QueueInfo:
    return QueueInfo(queue.name, queue.exchange, queue.exchange_type, queue.routing_key, queue.options)


def instance_info(
    instance: Instance,
    default_broker: str,
    state: WorkerState | None = None,
    app: App | None = None,
) -> InstanceInfo:
    """An instance's description; pass *state* and *app* when already loaded (listings)."""
    if state is None:
        state = WorkerState.get_or_none(WorkerState.name == instance.name)
    if app is None:
        app = App.get_by_id(instance.app_id)
    return InstanceInfo(
        name=instance.name,
        app=instance.app_id,
        branch=instance.branch,
        is_enabled=instance.is_enabled,
        queues=tuple(instance.queues),
        broker=broker_url.describe(effective_broker(instance.broker, app, default_broker)),
        max_concurrency=instance.max_concurrency,
        min_concurrency=instance.min_concurrency,
        status=state.status if state else "starting",
        pid=state.pid if state else None,
        restarts=state.restarts if state else 0,
        last_error=state.last_error if state else None,
        next_attempt=state.next_attempt.isoformat() + "Z" if state and state.next_attempt else None,
    )


def instance_infos(instances: list[Instance], default_broker: str) -> list[InstanceInfo]:
    """Descriptions of many instances with two more queries in all, not two per instance."""
    names = [i.name for i in instances]
    states = {s.name: s for s in WorkerState.select().where(WorkerState.name.in_(names))} if names else {}
    apps = (
        {a.name: a for a in App.select().where(App.name.in_({i.app_id for i in instances}))} if names else {}
    )
    return [instance_info(i, default_broker, states.get(i.name), apps[i.app_id]) for i in instances]
