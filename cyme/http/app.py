"""The falcon application: the route table, and the factory gunicorn calls.

``create_app(branch, settings)`` takes its dependencies, so tests can hand it any branch
client; ``get_app()`` reads the environment and is what gunicorn runs::

    gunicorn 'cyme.http.app:get_app()'
"""

from __future__ import annotations

import logging

import falcon

from cyme.actors.system import BranchClient
from cyme.config import HttpSettings
from cyme.errors import InvalidRequest
from cyme.http import errors
from cyme.http.apps import AppCollection, AppItem
from cyme.http.instances import (
    AutoscaleResource,
    ConsumerCollection,
    ConsumerItem,
    InstanceCollection,
    InstanceItem,
    StatsResource,
)
from cyme.http.misc import BranchCollection, BranchItem, PingResource
from cyme.http.queues import QueueCollection, QueueItem
from cyme.http.resource import Asker
from cyme.http.tasks import TaskResult, TaskState, TaskWait, UrlQueueResource


class RefuseEncodedSlashes:
    """Refuse ``%2F`` in a path: the server decodes it, so ``/..%2Fx/`` would look like ``/../x/``."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        raw = (req.env.get("RAW_URI") or req.env.get("REQUEST_URI") or "").partition("?")[0]
        if "/queue/" in raw and raw.split("/")[2:3] == ["queue"]:
            return  # a URL task: the target URL may be percent-encoded as a whole
        if "%2f" in raw.lower():
            raise InvalidRequest("names may not contain '/' (found an encoded slash in the path)")


def create_app(branch: Asker, settings: HttpSettings) -> falcon.App:
    """The WSGI app serving the cyme API by asking *branch*."""
    app = falcon.App(middleware=[RefuseEncodedSlashes()], cors_enable=False)
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)

    def make(cls: type) -> object:
        return cls(branch, settings.max_body)

    app.add_route("/ping", make(PingResource))
    app.add_route("/branches", make(BranchCollection))
    app.add_route("/branches/{branch}", make(BranchItem))
    app.add_route("/", make(AppCollection))
    app.add_route("/{app}", make(AppItem))
    app.add_route("/{app}/queues", make(QueueCollection))
    app.add_route("/{app}/queues/{name}", make(QueueItem))
    app.add_route("/{app}/instances", make(InstanceCollection))
    instance = make(InstanceItem)
    app.add_route("/instances/{name}", instance)
    for spelling in ("instances", "instance"):
        base = "/{app}/" + spelling + "/{name}"
        app.add_route(base, instance)
        app.add_route(base + "/queues", make(ConsumerCollection))
        app.add_route(base + "/queues/{queue}", make(ConsumerItem))
        app.add_route(base + "/stats", make(StatsResource))
        app.add_route(base + "/autoscale", make(AutoscaleResource))
    app.add_route(
        "/{app}/queue/{queue}/{url:path}", UrlQueueResource(branch, settings.max_body, settings.url_max_body)
    )
    app.add_route("/{app}/query/{uuid}/state", make(TaskState))
    app.add_route("/{app}/query/{uuid}/result", make(TaskResult))
    app.add_route("/{app}/query/{uuid}/wait", make(TaskWait))
    return app


def get_app() -> falcon.App:
    """The app for gunicorn: branch address and limits from ``CYME_*`` variables."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/%(name)s] %(message)s")
    settings = HttpSettings.from_env()
    client = BranchClient(settings.admin_port, settings.ask_timeout, settings.admin_addr)
    return create_app(client, settings)
