"""Remote control of running workers through their broker (Celery broadcasts).

One ``Controller`` per broker URL keeps a Celery app (and its connection pool) for the
lifetime of the process that controls workers.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from cyme.workers.app import declared_queue


class Controller:
    """Sends broadcasts to worker nodes on one broker and collects their replies."""

    def __init__(self, broker: str) -> None:
        self.broker = broker
        self.app = Celery("cyme-control", broker=broker, set_as_current=False)
        self.app.conf.broker_connection_retry = False
        self.app.conf.broker_connection_timeout = 2.0

    @property
    def safe_url(self) -> str:
        """The broker URL with its password masked, for logs."""
        return str(self.app.connection_for_write().as_uri(mask="****"))

    def _call(self, command: str, nodes: list[str], timeout: float, **arguments: Any) -> dict[str, Any]:
        replies = self.app.control.broadcast(
            command,
            arguments=arguments,
            destination=nodes,
            reply=True,
            timeout=timeout,
            limit=len(nodes),
        )
        merged: dict[str, Any] = {}
        for reply in replies or []:
            merged.update(reply)
        return merged

    def ping(self, nodes: list[str], timeout: float = 1.0) -> set[str]:
        """The subset of *nodes* that answered a ping within *timeout*."""
        return set(self._call("ping", nodes, timeout))

    def active_queues(self, node: str, timeout: float = 1.0) -> list[str] | None:
        """Names of the queues *node* consumes from, or None if it did not answer."""
        reply = self._call("active_queues", [node], timeout)
        if node not in reply:
            return None
        return sorted(q["name"] for q in reply[node])

    def add_consumer(self, node: str, decl: dict[str, Any], timeout: float = 1.0) -> bool:
        """Make *node* consume from the declared queue *decl*; True if it acknowledged."""
        queue = declared_queue(decl)
        reply = self._call(
            "add_consumer",
            [node],
            timeout,
            queue=queue.name,
            exchange=queue.exchange.name,
            exchange_type=queue.exchange.type,
            routing_key=queue.routing_key,
            **(decl.get("options") or {}),
        )
        return node in reply and "ok" in reply[node]

    def cancel_consumer(self, node: str, queue: str, timeout: float = 1.0) -> bool:
        """Make *node* stop consuming from *queue*; True if it acknowledged."""
        reply = self._call("cancel_consumer", [node], timeout, queue=queue)
        return node in reply and "ok" in reply[node]

    def autoscale(self, node: str, max_concurrency: int, min_concurrency: int, timeout: float = 1.0) -> bool:
        """Set *node*'s autoscaler bounds; True if it acknowledged."""
        reply = self._call("autoscale", [node], timeout, max=max_concurrency, min=min_concurrency)
        return node in reply and "ok" in reply[node]

    def stats(self, node: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """The worker's ``stats`` reply, or None if it did not answer."""
        reply = self._call("stats", [node], timeout)
        return reply.get(node)

    def close(self) -> None:
        self.app.close()
