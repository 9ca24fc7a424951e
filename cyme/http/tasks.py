"""URL tasks: ``[verb] /<app>/queue/<queue>/<url>`` and ``/<app>/query/<uuid>/...``.

The verb, query string and body of the request are what the worker will send to
``<url>``. cyme's own options travel in ``X-Cyme-*`` headers so that the forwarded query
and body stay exactly as given:

- ``X-Cyme-Timeout``: read timeout in seconds (default 30);
- ``X-Cyme-Connect-Timeout``: connect timeout (default 5);
- ``X-Cyme-Retries`` / ``X-Cyme-Retry-Delay``: retries of connection errors and
  429/502/503/504 answers (default 3, first after 1 s, then doubling);
- ``X-Cyme-Forward-Headers``: comma-separated request headers to forward besides
  ``Content-Type``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

import falcon

from cyme.actors.messages import GetTask, QueueUrl
from cyme.errors import InvalidRequest
from cyme.http import params as p
from cyme.http.resource import Asker, Resource

#: Longest a ``wait`` may block, in seconds (kept below the HTTP server's worker timeout).
MAX_WAIT = 300.0
DEFAULT_WAIT = 30.0


def header_number(req: falcon.Request, name: str, default: float, kind: type = float) -> Any:
    value = req.get_header(name)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        raise InvalidRequest(f"header {name} must be a number") from None


def target_url(req: falcon.Request, app: str, queue: str, url: str) -> str:
    """The URL to request, exactly as the client wrote it (slashes and all)."""
    raw = (req.env.get("RAW_URI") or req.env.get("REQUEST_URI") or "").partition("?")[0]
    prefix = f"/{app}/queue/{queue}/"
    target = raw[len(prefix) :] if raw.startswith(prefix) else url
    if target.lower().startswith(("http%3a", "https%3a")):
        target = unquote(target)  # the whole URL was percent-encoded into one segment
    return target


class UrlQueueResource(Resource):
    """Queue the request a client makes (any verb) for a worker to perform."""

    def __init__(self, branch: Asker, max_body: int, url_max_body: int) -> None:
        super().__init__(branch, max_body)
        self.url_max_body = url_max_body

    def handle(self, req: falcon.Request, resp: falcon.Response, app: str, queue: str, url: str) -> None:
        body = p.read_body(req, self.url_max_body)
        headers: list[tuple[str, str]] = []
        if body and req.content_type:
            headers.append(("Content-Type", req.content_type))
        for name in (req.get_header("X-Cyme-Forward-Headers") or "").split(","):
            name = name.strip()
            value = req.get_header(name) if name else None
            if value is not None and name.lower() != "content-type":
                headers.append((name, value))
        request = QueueUrl(
            app=app,
            queue=queue,
            method=req.method,
            url=target_url(req, app, queue, url),
            query=req.query_string or "",
            body=body,
            headers=tuple(headers),
            connect_timeout=header_number(req, "X-Cyme-Connect-Timeout", 5.0),
            read_timeout=header_number(req, "X-Cyme-Timeout", 30.0),
            retries=header_number(req, "X-Cyme-Retries", 3, int),
            retry_delay=header_number(req, "X-Cyme-Retry-Delay", 1.0),
        )
        task = self.ask(request)
        resp.set_header("Location", f"/{task.app}/query/{task.uuid}/state/")
        resp.set_header("X-Cyme-Task-Id", task.uuid)
        self.respond(resp, task, falcon.HTTP_202)

    on_get = on_head = on_post = on_put = on_patch = on_delete = handle
    on_options = on_trace = on_connect = handle


class TaskState(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, app: str, uuid: str) -> None:
        task = self.ask(GetTask(app=app, uuid=uuid))
        self.respond(resp, {"uuid": task.uuid, "state": task.state})


class TaskResult(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, app: str, uuid: str) -> None:
        self.respond(resp, self.ask(GetTask(app=app, uuid=uuid)))


class TaskWait(Resource):
    """Block until the task is done (200) or ``?timeout=`` seconds pass (202, with its state)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, app: str, uuid: str) -> None:
        timeout = p.integer(self.params(req), "timeout")
        limit = DEFAULT_WAIT if timeout is None else float(timeout)
        if not 0 <= limit <= MAX_WAIT:
            raise InvalidRequest(f"timeout must be between 0 and {MAX_WAIT:.0f} seconds")
        deadline = time.monotonic() + limit
        pause = 0.02
        while True:
            task = self.ask(GetTask(app=app, uuid=uuid))
            if task.ready or time.monotonic() >= deadline:
                break
            time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
            pause = min(pause * 1.5, 0.25)
        self.respond(resp, task, falcon.HTTP_200 if task.ready else falcon.HTTP_202)
