"""``/<app>/instances/...``: instances, what they consume, their stats and autoscale.

The guide spells some paths ``/<app>/instance/<name>/...`` (singular); both work.
"""

from __future__ import annotations

from typing import Any

import falcon

from cyme.actors.messages import (
    AddConsumer,
    CancelConsumer,
    CreateInstance,
    DeleteInstance,
    GetAutoscale,
    GetInstance,
    GetStats,
    InstanceInfo,
    ListConsumers,
    ListInstances,
    SetAutoscale,
)
from cyme.http import params as p
from cyme.http.resource import Resource


def accepted(nowait: bool, done: str = falcon.HTTP_200) -> str:
    return falcon.HTTP_202 if nowait else done


class InstanceCreator(Resource):
    """Creating an instance, anonymous (collection) or named (item)."""

    def create(self, req: falcon.Request, resp: falcon.Response, app: str, name: str | None) -> None:
        values = self.params(req)
        max_c = p.integer(values, "max_concurrency", "max")
        min_c = p.integer(values, "min_concurrency", "min")
        if max_c is None:
            max_c = max(min_c or 1, 1)
        request = CreateInstance(
            app=app,
            name=name,
            max_concurrency=max_c,
            min_concurrency=min(max_c, 1) if min_c is None else min_c,
            broker=p.text(values, "broker"),
            queues=p.names_list(values, "queues"),
            branch=p.text(values, "branch"),
            nowait=p.flag(values, "nowait"),
        )
        self.respond(resp, self.ask(request), accepted(request.nowait, falcon.HTTP_201))


class InstanceCollection(InstanceCreator):
    def on_get(self, req: falcon.Request, resp: falcon.Response, app: str) -> None:
        self.respond(resp, self.ask(ListInstances(app=app)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, app: str) -> None:
        self.create(req, resp, app, None)

    on_post = on_put


class InstanceItem(InstanceCreator):
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str, app: str | None = None) -> None:
        self.respond(resp, self.ask(GetInstance(app=app, name=name)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str, app: str | None = None) -> None:
        if app is None:
            raise falcon.HTTPMethodNotAllowed(["GET", "DELETE"])
        self.create(req, resp, app, name)

    on_post = on_put

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, name: str, app: str | None = None
    ) -> None:
        nowait = p.flag(self.params(req), "nowait")
        self.respond(resp, self.ask(DeleteInstance(app=app, name=name, nowait=nowait)), accepted(nowait))


def consumers_json(info: InstanceInfo) -> dict[str, Any]:
    return {"ok": "ok", "instance": info.name, "queues": list(info.queues)}


class ConsumerCollection(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, app: str, name: str) -> None:
        info = self.ask(ListConsumers(app=app, instance=name))
        self.respond(resp, list(info.queues))


class ConsumerItem(Resource):
    def on_put(self, req: falcon.Request, resp: falcon.Response, app: str, name: str, queue: str) -> None:
        nowait = p.flag(self.params(req), "nowait")
        info = self.ask(AddConsumer(app=app, instance=name, queue=queue, nowait=nowait))
        self.respond(resp, consumers_json(info), accepted(nowait))

    on_post = on_put

    def on_delete(self, req: falcon.Request, resp: falcon.Response, app: str, name: str, queue: str) -> None:
        nowait = p.flag(self.params(req), "nowait")
        info = self.ask(CancelConsumer(app=app, instance=name, queue=queue, nowait=nowait))
        self.respond(resp, consumers_json(info), accepted(nowait))


class StatsResource(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, app: str, name: str) -> None:
        self.respond(resp, self.ask(GetStats(app=app, instance=name)))


def autoscale_json(info: InstanceInfo) -> dict[str, Any]:
    return {"instance": info.name, "max": info.max_concurrency, "min": info.min_concurrency}


class AutoscaleResource(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, app: str, name: str) -> None:
        self.respond(resp, autoscale_json(self.ask(GetAutoscale(app=app, instance=name))))

    def on_post(self, req: falcon.Request, resp: falcon.Response, app: str, name: str) -> None:
        values = self.params(req)
        request = SetAutoscale(
            app=app,
            instance=name,
            max_concurrency=p.integer(values, "max", "max_concurrency"),
            min_concurrency=p.integer(values, "min", "min_concurrency"),
            nowait=p.flag(values, "nowait"),
        )
        self.respond(resp, autoscale_json(self.ask(request)), accepted(request.nowait))

    on_put = on_post
