"""How a branch finds and keeps track of the other branches of its cluster.

``Membership`` is the part of the Branch actor that speaks to other branches about
themselves: convention updates (a newcomer gets a Liaison and a ``Hello``), gossip of
addresses in ``Hello``, heartbeats carrying each branch's description, ``Left`` when
the convention loses a branch, and the configuration snapshot a newcomer catches up from.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from thespian.actors import ActorSystemConventionUpdate

from cyme import __version__
from cyme.actors.base import DEFERRED, CymeActor
from cyme.actors.cluster import Cluster
from cyme.actors.internal import ConfigSnapshot, Heartbeat, Hello, Introduce, Left
from cyme.actors.liaison import Liaison
from cyme.actors.messages import BranchInfo
from cyme.broker import url as broker_url
from cyme.models import App, Instance, Queue, WorkerState, writing

log = logging.getLogger("cyme.branch")


class Membership(CymeActor):
    """Cluster membership for the Branch actor (which adds request routing on top)."""

    cluster: Cluster
    synced: bool
    early: list[tuple[Any, Any]]

    def setup_membership(self) -> None:
        self.started = time.time()
        self.cluster = Cluster(me="")
        self.synced = True
        self.early = []  # cluster messages that came before Boot
        self.handlers.update(
            {
                Hello: self.on_hello,
                Heartbeat: self.on_heartbeat,
                Left: self.on_left,
                ActorSystemConventionUpdate: self.on_convention_update,
            }
        )

    @property
    def me(self) -> str:
        assert self.config is not None
        return self.config.branch_id

    def booted(self, message: Any, sender: Any) -> bool:
        """False (and the message kept for later) if Boot has not come yet."""
        if self.config is None:
            self.early.append((message, sender))
            return False
        return True

    def info(self) -> BranchInfo:
        assert self.config is not None and self.config.broker is not None
        config = self.config
        mine = Instance.select().where(Instance.branch == config.branch_id)
        online = WorkerState.select().where(
            (WorkerState.status == "online") & WorkerState.name.in_(mine.select(Instance.name))
        )
        return BranchInfo(
            id=config.branch_id,
            http="" if config.without_http else f"http://{config.http_host}:{config.http_port}",
            admin_port=config.admin_port,
            root=str(config.root),
            broker=broker_url.describe(config.broker or ""),
            instances=mine.count(),
            online=online.count(),
            started=self.started,
            version=__version__,
        )

    def on_convention_update(self, msg: ActorSystemConventionUpdate, sender: Any) -> Any:
        if not self.booted(msg, sender):
            return DEFERRED
        branch = (msg.remoteCapabilities or {}).get("cyme.branch")
        if not branch or branch == self.me:
            return DEFERRED
        if msg.remoteAdded:
            log.warning("{Branch} branch %s joined the convention; introducing ourselves", branch)
            liaison = self.createActor(Liaison, targetActorRequirements={"cyme.branch": branch})
            self.send(liaison, Introduce(branch, self.me, self.myAddress, self.known()))
        else:
            log.warning("{Branch} branch %s left the convention", branch)
            self.cluster.forget(branch)
            for member in self.cluster.live():
                self.send(member.address, Left(branch))
        return DEFERRED

    def on_left(self, msg: Left, sender: Any) -> Any:
        if self.booted(msg, sender) and self.cluster.address_of(msg.branch_id) is not None:
            log.warning("{Branch} branch %s left the cluster", msg.branch_id)
            self.cluster.forget(msg.branch_id)
        return DEFERRED

    def known(self) -> dict[str, Any]:
        return {self.me: self.myAddress, **self.cluster.addresses()}

    def hello(self, address: Any) -> None:
        self.send(
            address, Hello(self.me, self.myAddress, self.known(), self.snapshot() if self.synced else None)
        )

    def on_hello(self, msg: Hello, sender: Any) -> Any:
        if not self.booted(msg, sender):
            return DEFERRED
        if self.cluster.learn(msg.branch_id, msg.address):
            log.warning("{Branch} branch %s is a member now", msg.branch_id)
            self.hello(msg.address)
        for branch, address in msg.members.items():
            if branch != self.me and self.cluster.learn(branch, address):
                self.hello(address)
        if not self.synced and msg.snapshot is not None:
            self.catch_up(msg.snapshot)
        return DEFERRED

    def on_heartbeat(self, msg: Heartbeat, sender: Any) -> Any:
        if not self.booted(msg, sender):
            return DEFERRED
        if self.cluster.learn(msg.branch_id, sender, msg.info):
            self.hello(sender)
        if msg.reply:
            self.send(sender, Heartbeat(self.me, self.info(), reply=False))
        return DEFERRED

    def snapshot(self) -> ConfigSnapshot:
        apps = tuple((a.name, a.broker, a.backend) for a in App.select().order_by(App.name))
        queues = tuple(
            (q.app_id, q.name, q.exchange, q.exchange_type, q.routing_key, q.options_json)
            for q in Queue.select().order_by(Queue.app, Queue.name)
        )
        return ConfigSnapshot(apps, queues)

    def catch_up(self, snapshot: ConfigSnapshot) -> None:
        """Take the cluster's apps and queue declarations (ours may be stale or missing)."""
        with writing():
            for name, broker, backend in snapshot.apps:
                App.insert(name=name, broker=broker, backend=backend).on_conflict(
                    conflict_target=[App.name], update={App.broker: broker, App.backend: backend}
                ).execute()
            for app, name, exchange, exchange_type, routing_key, options in snapshot.queues:
                fields = {
                    "exchange": exchange,
                    "exchange_type": exchange_type,
                    "routing_key": routing_key,
                    "options_json": options,
                }
                updated = Queue.update(**fields).where((Queue.app == app) & (Queue.name == name)).execute()
                if not updated:
                    Queue.create(app=app, name=name, **fields)
        self.synced = True
        log.warning(
            "{Branch} caught up with the cluster: %d app(s), %d queue declaration(s)",
            len(snapshot.apps), len(snapshot.queues),
        )  # fmt: skip
