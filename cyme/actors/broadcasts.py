"""Talking to running workers through their brokers, without ever stalling on a dead one.

``Broadcasts`` keeps one ``Controller`` and one ``BrokerHealth`` per broker. A broker that
cannot be reached is only retried with backoff, and its workers are not to be blamed for
silence until ``wait_after_revival`` seconds after it answers again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cyme.actors.worker_state import BrokerHealth, Tracked
from cyme.workers.control import Controller

log = logging.getLogger("cyme.supervisor")

PING_TIMEOUT = 0.5


class Broadcasts:
    """Pings, consumer and autoscale commands for the supervisor, per broker."""

    def __init__(self, wait_after_revival: float) -> None:
        self.wait_after_revival = wait_after_revival
        self.controllers: dict[str, Controller] = {}
        self.brokers: dict[str, BrokerHealth] = {}

    def controller(self, broker: str) -> Controller:
        if broker not in self.controllers:
            self.controllers[broker] = Controller(broker)
        return self.controllers[broker]

    def health(self, broker: str) -> BrokerHealth:
        return self.brokers.setdefault(broker, BrokerHealth())

    def call(self, broker: str, method: str, *args: Any) -> Any:
        """A broadcast on *broker*; None if the broker is (or just went) unreachable.

        While a broker is down it is only retried with backoff, so the supervisor never
        stalls on it and never blames its workers for not answering.
        """
        health = self.health(broker)
        now = time.monotonic()
        if health.down_since is not None and now < health.next_probe:
            return None
        try:
            result = getattr(self.controller(broker), method)(*args)
        except Exception as exc:  # kombu, redis and amqp each raise their own connection errors
            health.failed(now)
            log.warning(
                "{Supervisor} broker %s unreachable (%s); pausing checks of its workers, retry in %.0fs",
                self.controller(broker).safe_url, type(exc).__name__, health.next_probe - now,
            )  # fmt: skip
            return None
        if health.down_since is not None:
            health.revived(now)
            log.warning(
                "{Supervisor} broker %s revived; judging its workers again in %.0fs",
                self.controller(broker).safe_url, self.wait_after_revival,
            )  # fmt: skip
        return result

    def judgeable(self, broker: str) -> bool:
        """May workers on *broker* be blamed for not answering? (not while it is down or reviving)"""
        return self.health(broker).judgeable(time.monotonic(), self.wait_after_revival)

    def ping(self, workers: list[Tracked]) -> set[str]:
        """Nodes of *workers* that answered a ping (one broadcast per broker)."""
        answered: set[str] = set()
        by_broker: dict[str, list[Tracked]] = {}
        for tracked in workers:
            by_broker.setdefault(tracked.spec.broker, []).append(tracked)
        for broker, group in by_broker.items():
            answered |= self.call(broker, "ping", [t.spec.nodename for t in group], PING_TIMEOUT) or set()
        return answered

    def sync(self, tracked: Tracked) -> None:
        """Send add/cancel_consumer and autoscale until the worker matches its spec."""
        spec, node = tracked.spec, tracked.spec.nodename
        want = {spec.direct_queue} | {q["name"] for q in spec.queues}
        declared = {q["name"]: q for q in spec.queues}
        declared[spec.direct_queue] = {"name": spec.direct_queue}
        deadline = time.monotonic() + 2.0
        while True:
            have = self.call(spec.broker, "active_queues", node, PING_TIMEOUT)
            stats = self.call(spec.broker, "stats", node, PING_TIMEOUT) if have is not None else None
            if have is None or stats is None:
                tracked.in_sync = False
                return
            scaler = stats.get("autoscaler") or {}
            bounds = (spec.max_concurrency, spec.min_concurrency)
            scale_ok = (scaler.get("max"), scaler.get("min")) == bounds
            if set(have) == want and scale_ok:
                tracked.in_sync = True
                return
            if time.monotonic() > deadline:
                tracked.in_sync = False
                return
            for queue in sorted(want - set(have)):
                log.warning("{Supervisor} %s: instance.consume_from: %s", tracked.name, queue)
                self.call(spec.broker, "add_consumer", node, declared[queue])
            for queue in sorted(set(have) - want):
                log.warning("{Supervisor} %s: instance.cancel_consume: %s", tracked.name, queue)
                self.call(spec.broker, "cancel_consumer", node, queue)
            if not scale_ok:
                log.warning("{Supervisor} %s: instance.autoscale: max=%d min=%d", tracked.name, *bounds)
                self.call(spec.broker, "autoscale", node, *bounds)
            time.sleep(0.05)

    def close(self) -> None:
        for controller in self.controllers.values():
            controller.close()
