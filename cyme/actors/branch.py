"""The Branch actor: the one entry point of a machine.

Every request, from the HTTP front or another Python service, is sent here. The branch
decides where it is answered: by itself (ping, branch descriptions) or by the actor that
owns the data (App, Queue, Instance, Supervisor), which replies to the caller directly.
This routing table is where requests for other machines will be forwarded or scattered.
"""

from __future__ import annotations

import time
from typing import Any

from cyme import __version__
from cyme.actors.app import AppActor
from cyme.actors.base import DEFERRED, CymeActor
from cyme.actors.instance import InstanceActor
from cyme.actors.internal import Boot, Configure, Routed, StopBranch
from cyme.actors.messages import (
    AddConsumer,
    BranchInfo,
    CancelConsumer,
    CreateApp,
    CreateInstance,
    DeclareQueue,
    DeleteApp,
    DeleteInstance,
    DeleteQueue,
    GetApp,
    GetAutoscale,
    GetBranch,
    GetInstance,
    GetQueue,
    GetStats,
    GetTask,
    ListApps,
    ListBranches,
    ListConsumers,
    ListInstances,
    ListQueues,
    Ping,
    Pong,
    QueueUrl,
    Request,
    SetAutoscale,
)
from cyme.actors.queue import QueueActor
from cyme.actors.supervisor import Supervisor
from cyme.actors.tasks import TaskActor
from cyme.broker import url as broker_url
from cyme.errors import NotFound
from cyme.models import Instance, WorkerState

#: Global name of the Branch actor in its actor system.
BRANCH_GLOBAL_NAME = "cyme-branch"

#: Which child actor answers each request type.
ROUTES: dict[type[Request], str] = {
    CreateApp: "app",
    GetApp: "app",
    ListApps: "app",
    DeleteApp: "app",
    DeclareQueue: "queue",
    GetQueue: "queue",
    ListQueues: "queue",
    DeleteQueue: "queue",
    CreateInstance: "instance",
    GetInstance: "instance",
    ListInstances: "instance",
    DeleteInstance: "instance",
    AddConsumer: "instance",
    CancelConsumer: "instance",
    ListConsumers: "instance",
    GetAutoscale: "instance",
    SetAutoscale: "instance",
    GetStats: "supervisor",
    QueueUrl: "tasks",
    GetTask: "tasks",
    StopBranch: "supervisor",
}

CHILDREN = {
    "app": AppActor,
    "queue": QueueActor,
    "instance": InstanceActor,
    "supervisor": Supervisor,
    "tasks": TaskActor,
}


class Branch(CymeActor):
    """Routes requests to the actor that answers them."""

    label = "Branch"

    def setup_handlers(self) -> None:
        self.started = time.time()
        self.handlers.update(
            {
                Boot: self.on_boot,
                Ping: self.on_ping,
                ListBranches: self.on_list_branches,
                GetBranch: self.on_get_branch,
            }
        )
        for request_type in ROUTES:
            self.handlers[request_type] = self.route

    def on_boot(self, msg: Boot, sender: Any) -> str:
        if not self.peers:
            self.peers = {role: self.createActor(cls) for role, cls in CHILDREN.items()}
            self.on_configure(Configure(msg.config, self.peers), sender)
            for address in self.peers.values():
                self.send(address, Configure(msg.config, self.peers))
        return "booted"

    def route(self, request: Request, reply_to: Any) -> Any:
        self.send(self.peers[ROUTES[type(request)]], Routed(request, reply_to))
        return DEFERRED

    def on_ping(self, msg: Ping, sender: Any) -> Pong:
        assert self.config is not None
        return Pong(self.config.branch_id, time.time())

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

    def on_list_branches(self, msg: ListBranches, sender: Any) -> list[BranchInfo]:
        return [self.info()]

    def on_get_branch(self, msg: GetBranch, sender: Any) -> BranchInfo:
        info = self.info()
        if msg.branch != info.id:
            raise NotFound(f"no branch {msg.branch!r} in this cluster")
        return info
