"""``/`` and ``/<app>/``: list, create (PUT or POST), describe and delete apps."""

from __future__ import annotations

import falcon

from cyme.actors.messages import CreateApp, DeleteApp, GetApp, ListApps
from cyme.broker import url as broker_url
from cyme.errors import InvalidRequest
from cyme.http import params as p
from cyme.http.resource import Resource


class AppCollection(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.respond(resp, self.ask(ListApps()))


class AppItem(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, app: str) -> None:
        self.respond(resp, self.ask(GetApp(name=app)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, app: str) -> None:
        values = self.params(req)
        broker = p.text(values, "broker")
        hostname = p.text(values, "hostname")
        if broker and hostname:
            raise InvalidRequest("give either broker (a URL) or hostname, not both")
        if hostname:
            broker = broker_url.from_params(
                hostname=hostname,
                port=p.integer(values, "port"),
                userid=p.text(values, "userid"),
                password=p.text(values, "password"),
                virtual_host=p.text(values, "virtual_host"),
                transport=p.text(values, "transport") or "amqp",
            )
        request = CreateApp(name=app, broker=broker, backend=p.text(values, "backend"))
        self.respond(resp, self.ask(request), falcon.HTTP_201)

    on_post = on_put

    def on_delete(self, req: falcon.Request, resp: falcon.Response, app: str) -> None:
        self.respond(resp, self.ask(DeleteApp(name=app)))
