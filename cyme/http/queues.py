"""``/<app>/queues/[<name>/]``: queue declarations."""

from __future__ import annotations

import falcon

from cyme.actors.messages import DeclareQueue, DeleteQueue, GetQueue, ListQueues
from cyme.http import params as p
from cyme.http.resource import Resource


class QueueCollection(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, app: str) -> None:
        self.respond(resp, self.ask(ListQueues(app=app)))


class QueueItem(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, app: str, name: str) -> None:
        self.respond(resp, self.ask(GetQueue(app=app, name=name)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, app: str, name: str) -> None:
        values = self.params(req)
        request = DeclareQueue(
            app=app,
            name=name,
            exchange=p.text(values, "exchange"),
            exchange_type=p.text(values, "exchange_type"),
            routing_key=p.text(values, "routing_key"),
            options=p.json_object(values, "options"),
        )
        self.respond(resp, self.ask(request), falcon.HTTP_201)

    on_post = on_put

    def on_delete(self, req: falcon.Request, resp: falcon.Response, app: str, name: str) -> None:
        self.respond(resp, self.ask(DeleteQueue(app=app, name=name)))
