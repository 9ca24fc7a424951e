"""A Python client of the cyme REST API (what the ``cyme`` command uses).

    from cyme.client import Client

    cyme = Client("http://127.0.0.1:8000")
    cyme.create_app("foo")
    worker = cyme.create_instance("foo", max_concurrency=4)
    cyme.declare_queue("foo", "tasks")
    cyme.consume("foo", worker["name"], "tasks")

Errors come back as the ``cyme.errors`` classes the branch reported.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from cyme.errors import CymeError, InternalError, Unavailable, error_from_code

DEFAULT_URL = "http://127.0.0.1:8000"


class Client:
    """Talks to one branch over HTTP; any branch answers for the whole cluster."""

    def __init__(self, url: str = DEFAULT_URL, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def request(self, method: str, *segments: str, **params: Any) -> Any:
        path = "/".join(quote(s, safe="") for s in segments)
        query = {k: v for k, v in params.items() if v is not None}
        return self._send(method, f"{self.url}/{path}/", params=query)

    def _send(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            reply = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise Unavailable(f"cannot reach {self.url}: {exc.__class__.__name__}") from None
        try:
            body = reply.json()
        except ValueError:
            raise InternalError(f"{method} {reply.url} answered {reply.status_code} without JSON") from None
        if reply.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise error_from_code(error.get("code", "error"), error.get("message", reply.reason))
        return body

    # apps
    def apps(self) -> list[dict[str, Any]]:
        return self.request("GET")  # type: ignore[no-any-return]

    def app(self, name: str) -> dict[str, Any]:
        return self.request("GET", name)  # type: ignore[no-any-return]

    def create_app(self, name: str, broker: str | None = None) -> dict[str, Any]:
        return self.request("POST", name, broker=broker)  # type: ignore[no-any-return]

    def delete_app(self, name: str) -> dict[str, Any]:
        return self.request("DELETE", name)  # type: ignore[no-any-return]

    # instances
    def instances(self, app: str) -> list[dict[str, Any]]:
        return self.request("GET", app, "instances")  # type: ignore[no-any-return]

    def instance(self, app: str, name: str) -> dict[str, Any]:
        return self.request("GET", app, "instances", name)  # type: ignore[no-any-return]

    def create_instance(
        self,
        app: str,
        name: str | None = None,
        max_concurrency: int | None = None,
        min_concurrency: int | None = None,
        queues: list[str] | None = None,
        nowait: bool = False,
    ) -> dict[str, Any]:
        segments = [app, "instances"] + ([name] if name else [])
        return self.request(  # type: ignore[no-any-return]
            "POST",
            *segments,
            max=max_concurrency,
            min=min_concurrency,
            queues=",".join(queues) if queues else None,
            nowait=1 if nowait else None,
        )

    def delete_instance(self, app: str, name: str, nowait: bool = False) -> dict[str, Any]:
        return self.request("DELETE", app, "instances", name, nowait=1 if nowait else None)  # type: ignore[no-any-return]

    def stats(self, app: str, name: str) -> dict[str, Any]:
        return self.request("GET", app, "instances", name, "stats")  # type: ignore[no-any-return]

    def autoscale(
        self, app: str, name: str, max_concurrency: int | None = None, min_concurrency: int | None = None
    ) -> dict[str, Any]:
        if max_concurrency is None and min_concurrency is None:
            return self.request("GET", app, "instances", name, "autoscale")  # type: ignore[no-any-return]
        return self.request(  # type: ignore[no-any-return]
            "POST", app, "instances", name, "autoscale", max=max_concurrency, min=min_concurrency
        )

    # queues and consumers
    def queues(self, app: str) -> list[dict[str, Any]]:
        return self.request("GET", app, "queues")  # type: ignore[no-any-return]

    def declare_queue(
        self,
        app: str,
        name: str,
        exchange: str | None = None,
        exchange_type: str | None = None,
        routing_key: str | None = None,
    ) -> dict[str, Any]:
        return self.request(  # type: ignore[no-any-return]
            "POST",
            app,
            "queues",
            name,
            exchange=exchange,
            exchange_type=exchange_type,
            routing_key=routing_key,
        )

    def delete_queue(self, app: str, name: str) -> dict[str, Any]:
        return self.request("DELETE", app, "queues", name)  # type: ignore[no-any-return]

    def consume(self, app: str, instance: str, queue: str) -> dict[str, Any]:
        return self.request("POST", app, "instances", instance, "queues", queue)  # type: ignore[no-any-return]

    def cancel(self, app: str, instance: str, queue: str) -> dict[str, Any]:
        return self.request("DELETE", app, "instances", instance, "queues", queue)  # type: ignore[no-any-return]

    # URL tasks
    def queue_url(
        self,
        app: str,
        queue: str,
        url: str,
        method: str = "GET",
        data: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> dict[str, Any]:
        """Queue *method* *url* (with *data* as its body) on *queue*; returns the task (uuid...)."""
        options = dict(headers or {})
        if timeout is not None:
            options["X-Cyme-Timeout"] = str(timeout)
        if retries is not None:
            options["X-Cyme-Retries"] = str(retries)
        if headers:
            options["X-Cyme-Forward-Headers"] = ",".join(h for h in headers if h.lower() != "content-type")
        target = f"{self.url}/{quote(app, safe='')}/queue/{quote(queue, safe='')}/{url}"
        return self._send(method.upper(), target, data=data, headers=options)  # type: ignore[no-any-return]

    def task(self, app: str, uuid: str) -> dict[str, Any]:
        """A URL task's state, and its result or error once ready."""
        return self.request("GET", app, "query", uuid, "result")  # type: ignore[no-any-return]

    def wait(self, app: str, uuid: str, timeout: int = 30) -> dict[str, Any]:
        """Wait up to *timeout* seconds for a URL task; returns it, ready or not."""
        return self.request("GET", app, "query", uuid, "wait", timeout=timeout)  # type: ignore[no-any-return]

    # branches
    def branches(self) -> list[dict[str, Any]]:
        return self.request("GET", "branches")  # type: ignore[no-any-return]

    def ping(self) -> dict[str, Any]:
        return self.request("GET", "ping")  # type: ignore[no-any-return]


__all__ = ["DEFAULT_URL", "Client", "CymeError"]
