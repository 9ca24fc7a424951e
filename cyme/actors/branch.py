"""The Branch actor: the one entry point of a machine, and its link to the cluster.

Every request, from the HTTP front or another Python service, is sent here. The branch
decides where it is answered:

- by the local actor that owns the data (App, Queue, Instance, Supervisor, Tasks), which
  replies to the caller directly;
- by the branch that owns an instance (found by asking the live branches), the answer
  relayed back;
- by every live branch (listings), gathered with a deadline; a branch that does not
  answer in time is named in the reply rather than silently left out;
- configuration changes (apps, queue declarations) are applied here, then replicated to
  every live branch; a branch that joins later catches up from a snapshot.

Everything cross-branch is built on one primitive, ``gather``: send a ``Local`` request
to some branches, collect their replies until all are in (or the first success, or the
deadline), then continue with what came back. Nothing here blocks.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from thespian.actors import WakeupMessage

from cyme.actors.app import AppActor
from cyme.actors.base import DEFERRED
from cyme.actors.cluster import Cluster
from cyme.actors.instance import InstanceActor
from cyme.actors.internal import (
    Boot,
    Configure,
    Heartbeat,
    Local,
    Routed,
    StopBranch,
)
from cyme.actors.membership import Membership
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
    ErrorReply,
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
    Listing,
    ListInstances,
    ListQueues,
    Ping,
    Pong,
    QueueUrl,
    Reply,
    Request,
    SetAutoscale,
)
from cyme.actors.queue import QueueActor
from cyme.actors.supervisor import Supervisor
from cyme.actors.tasks import TaskActor
from cyme.errors import AlreadyExists, Conflict, CymeError, NotFound, Unavailable, error_from_code
from cyme.models import Instance

log = logging.getLogger("cyme.branch")

#: Which local actor answers each request type.
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
    StopBranch: "supervisor",
    QueueUrl: "tasks",
    GetTask: "tasks",
}

CHILDREN = {
    "app": AppActor,
    "queue": QueueActor,
    "instance": InstanceActor,
    "supervisor": Supervisor,
    "tasks": TaskActor,
}

#: Requests about one instance: answered by the branch that owns it.
INSTANCE_REQUESTS = (
    GetInstance,
    DeleteInstance,
    AddConsumer,
    CancelConsumer,
    ListConsumers,
    GetAutoscale,
    SetAutoscale,
    GetStats,
)
#: Configuration every branch holds: applied here, then replicated.
CONFIG_WRITES = (CreateApp, DeclareQueue, DeleteQueue, DeleteApp)
#: Listings gathered from every branch.
LISTINGS = (ListApps, ListQueues, ListInstances)

Results = dict[str, Reply | ErrorReply]
#: Seconds past a gather's deadline that this branch's own answer is still waited for.
LOCAL_GRACE = 30.0
Continuation = Callable[[Results, list[str]], None]


def new_id() -> str:
    return uuid.uuid4().hex


def instance_of(request: Request) -> str:
    name = getattr(request, "instance", None) or getattr(request, "name", None)
    return str(name)


def merge(request: Request, values: list[Any]) -> tuple[Any, ...]:
    """One listing from several branches' listings (apps and queues are deduplicated)."""
    items = [item for value in values for item in value]
    if isinstance(request, ListInstances):
        return tuple(sorted(items, key=lambda i: i.name))
    unique = {item.name: item for item in reversed(items)}  # the first answer wins
    return tuple(unique[name] for name in sorted(unique))


@dataclass
class Gathering:
    """Replies awaited from some branches, and what to do with them."""

    then: Continuation
    waiting: set[str]
    deadline: float
    first_success: bool = False
    results: Results = field(default_factory=dict)


class Branch(Membership):
    """Routes requests to where they are answered: here, the owner, or every branch."""

    label = "Branch"

    def setup_handlers(self) -> None:
        self.setup_membership()
        self.gatherings: dict[str, Gathering] = {}
        self.subs: dict[str, tuple[str, str]] = {}  # sub-request id -> (gathering, branch)
        self.next_heartbeat = 0.0
        self.wakeup_due: float | None = None
        self.handlers.update(
            {
                Boot: self.on_boot,
                Ping: self.on_ping,
                ListBranches: self.on_list_branches,
                GetBranch: self.on_get_branch,
                Local: self.on_local,
                Reply: self.on_reply,
                ErrorReply: self.on_reply,
                WakeupMessage: self.on_wakeup,
            }
        )
        for request_type in ROUTES:
            self.handlers.setdefault(request_type, self.on_request)

    # ------------------------------------------------------------------ start-up

    def on_boot(self, msg: Boot, sender: Any) -> str:
        if not self.peers:
            config = msg.config
            self.peers = {role: self.createActor(cls) for role, cls in CHILDREN.items()}
            self.on_configure(Configure(config, self.peers), sender)
            for address in self.peers.values():
                self.send(address, Configure(config, self.peers))
            self.cluster = Cluster(me=config.branch_id, dead_after=config.heartbeat * 4)
            self.synced = config.leads  # a joining branch catches up from its first peer
            self.notifyOnSystemRegistrationChanges(True)
            self.schedule(time.monotonic() + config.heartbeat)
            early, self.early = self.early, []
            for message, origin in early:
                self.receiveMessage(message, origin)
        return "booted"

    # ------------------------------------------------------------------ requests

    def on_request(self, request: Request, reply_to: Any) -> Any:
        """A client's request: decide where it is answered."""
        if self.config is None:
            raise Unavailable("the branch is starting; try again in a moment")
        if isinstance(request, LISTINGS):
            self.gather_listing(request, reply_to)
        elif isinstance(request, CreateInstance):
            self.place(request, reply_to)
        elif isinstance(request, INSTANCE_REQUESTS):
            self.to_owner(request, reply_to)
        elif isinstance(request, (DeleteApp, DeleteQueue)):
            self.delete_config(request, reply_to)
        elif isinstance(request, CONFIG_WRITES):
            self.write_config(request, reply_to)
        elif isinstance(request, GetTask):
            self.find_task(request, reply_to)
        else:
            self.send(self.peers[ROUTES[type(request)]], Routed(request, reply_to))
        return DEFERRED

    def on_local(self, msg: Local, sender: Any) -> Any:
        """A peer's request, answered by this branch alone (the owner replies to the peer)."""
        if not self.booted(msg, sender):
            return DEFERRED
        request = msg.request
        if isinstance(request, (Ping, ListBranches, GetBranch)):
            self.reply(sender, request.request_id, self.handlers[type(request)](request, sender))
            return DEFERRED
        if type(request) not in ROUTES:
            raise NotFound(f"{type(request).__name__} cannot be answered by one branch")
        if isinstance(request, CreateInstance):
            request = replace(request, branch=None)
        self.send(self.peers[ROUTES[type(request)]], Routed(request, sender))
        return DEFERRED

    def on_ping(self, msg: Ping, sender: Any) -> Pong:
        return Pong(self.me, time.time())

    def on_list_branches(self, msg: ListBranches, sender: Any) -> Listing:
        return Listing(tuple(self.cluster.infos(self.info())), tuple(self.cluster.dead()))

    def on_get_branch(self, msg: GetBranch, sender: Any) -> BranchInfo:
        for info in self.cluster.infos(self.info()):
            if info.id == msg.branch:
                return info
        raise NotFound(f"no live branch {msg.branch!r} in this cluster")

    # ------------------------------------------------------------------ gather

    def targets(self) -> list[str]:
        return [self.me, *sorted(m.id for m in self.cluster.live())]

    def gather(
        self,
        request: Request,
        branches: list[str],
        then: Continuation,
        timeout: float | None = None,
        first_success: bool = False,
    ) -> None:
        """Ask *branches* (this one included, if listed) for their own answer to *request*."""
        assert self.config is not None
        key = new_id()
        deadline = time.monotonic() + (timeout or self.config.gather_timeout)
        self.gatherings[key] = Gathering(then, set(branches), deadline, first_success)
        for branch in branches:
            sub = replace(request, request_id=new_id())
            address = self.myAddress if branch == self.me else self.cluster.address_of(branch)
            if address is None:
                continue  # it died a moment ago: it stays in ``waiting``, i.e. missing
            self.subs[sub.request_id] = (key, branch)
            if branch == self.me:
                self.send(self.peers[ROUTES[type(request)]], Routed(sub, self.myAddress))
            else:
                self.send(address, Local(sub))
        if not any(k == key for k, _ in self.subs.values()):
            self.finish(key)
        else:
            self.schedule(deadline)

    def on_reply(self, msg: Reply | ErrorReply, sender: Any) -> Any:
        entry = self.subs.pop(msg.request_id, None)
        if entry is None:
            return DEFERRED  # a late answer, or the ack of a replicated change
        key, branch = entry
        gathering = self.gatherings.get(key)
        if gathering is not None:
            gathering.results[branch] = msg
            gathering.waiting.discard(branch)
            if not gathering.waiting or (gathering.first_success and isinstance(msg, Reply)):
                self.finish(key)
        return DEFERRED

    def finish(self, key: str) -> None:
        gathering = self.gatherings.pop(key)
        for sub in [s for s, (k, _) in self.subs.items() if k == key]:
            del self.subs[sub]
        try:
            gathering.then(gathering.results, sorted(gathering.waiting))
        except Exception:
            log.exception("{Branch} finishing a cluster request failed")

    def answer(self, reply_to: Any, request: Request, outcome: Reply | ErrorReply | CymeError) -> None:
        """Pass an outcome on to the client, under the client's request id."""
        if isinstance(outcome, Reply):
            self.reply(reply_to, request.request_id, outcome.value)
        elif isinstance(outcome, ErrorReply):
            self.reply_error(reply_to, request.request_id, error_from_code(outcome.code, outcome.message))
        else:
            self.reply_error(reply_to, request.request_id, outcome)

    # ------------------------------------------------------------------ cluster requests

    def gather_listing(self, request: Request, reply_to: Any) -> None:
        def then(results: Results, missing: list[str]) -> None:
            values = [r.value for r in results.values() if isinstance(r, Reply)]
            if not values and results:
                self.answer(reply_to, request, next(iter(results.values())))
                return
            gone = tuple(sorted(set(missing) | set(self.cluster.dead())))
            self.reply(reply_to, request.request_id, Listing(merge(request, values), gone))

        self.gather(request, self.targets(), then)

    def relay(self, branch: str, request: Request, reply_to: Any, timeout: float | None = None) -> None:
        """Have *branch* answer *request*; its answer (or a timeout) goes to *reply_to*."""

        def then(results: Results, missing: list[str]) -> None:
            if branch in results:
                self.answer(reply_to, request, results[branch])
            else:
                self.answer(reply_to, request, Unavailable(f"branch {branch!r} did not answer in time"))

        self.gather(request, [branch], then, timeout)

    def find_owner(self, app: str | None, name: str, then: Callable[[str | None, list[str]], None]) -> None:
        """Which live branch has instance *name*? (None if none that answered has it)"""
        if Instance.get_or_none((Instance.name == name) & (Instance.branch == self.me)) is not None:
            then(self.me, [])
            return

        def found(results: Results, missing: list[str]) -> None:
            owner = next((b for b, r in results.items() if isinstance(r, Reply)), None)
            then(owner, missing)

        others = sorted(m.id for m in self.cluster.live())
        self.gather(GetInstance(app=app, name=name), others, found, first_success=True)

    def find_task(self, request: GetTask, reply_to: Any) -> None:
        """A URL task is known to the branch it was queued through: ask them all."""

        def then(results: Results, missing: list[str]) -> None:
            found = next((r for r in results.values() if isinstance(r, Reply)), None)
            if found is not None:
                self.answer(reply_to, request, found)
            elif results.get(self.me) is not None:
                self.answer(reply_to, request, results[self.me])  # e.g. NotFound, bad id
            else:
                self.answer(reply_to, request, Unavailable("this branch did not answer in time"))

        self.gather(request, self.targets(), then, first_success=True)

    def relay_timeout(self, request: Request) -> float:
        """How long the owner may take: a sync change waits for a worker, the rest do not."""
        assert self.config is not None
        if getattr(request, "nowait", True):
            return self.config.gather_timeout * 3
        return self.config.start_timeout + self.config.stop_timeout + 15

    def to_owner(self, request: Request, reply_to: Any) -> None:
        app = getattr(request, "app", None)

        def then(owner: str | None, missing: list[str]) -> None:
            if owner == self.me:
                self.send(self.peers[ROUTES[type(request)]], Routed(request, reply_to))
            elif owner is not None:
                self.relay(owner, request, reply_to, self.relay_timeout(request))
            else:
                where = f" in app {app!r}" if app else ""
                note = f" (branches {', '.join(missing)} did not answer)" if missing else ""
                self.answer(
                    reply_to, request, NotFound(f"no instance named {instance_of(request)!r}{where}{note}")
                )

        self.find_owner(app, instance_of(request), then)

    def place(self, request: CreateInstance, reply_to: Any) -> None:
        """Create an instance on the pinned branch, or on the least loaded live one."""
        if request.branch not in (None, self.me) and self.cluster.address_of(request.branch) is None:
            self.answer(reply_to, request, NotFound(f"no live branch {request.branch!r} in this cluster"))
            return

        def create(owner: str | None, missing: list[str]) -> None:
            if owner is not None:
                self.answer(
                    reply_to, request, AlreadyExists(f"an instance named {request.name!r} already exists")
                )
                return
            target = request.branch or self.cluster.choose(self.info())
            log.info("{Branch} placing instance %s on branch %s", request.name or "(anonymous)", target)
            if target == self.me:
                self.send(self.peers["instance"], Routed(request, reply_to))
            else:
                self.cluster.with_load(target, +1)
                self.relay(target, request, reply_to, self.relay_timeout(request))

        if request.name is None:
            create(None, [])
        else:
            self.find_owner(None, request.name, create)

    def write_config(self, request: Request, reply_to: Any) -> None:
        """Apply a configuration change on every live branch; answer once all have it.

        This branch's outcome is the answer (the same validation runs everywhere); a
        branch that missed the change catches up from a snapshot when it rejoins.
        """

        def then(results: Results, missing: list[str]) -> None:
            outcome = results.get(self.me) or Unavailable("this branch did not answer in time")
            self.answer(reply_to, request, outcome)
            failed = sorted(set(missing) | {b for b, r in results.items() if type(r) is not type(outcome)})
            if failed:
                log.warning("{Branch} %s not applied on %s", type(request).__name__, ", ".join(failed))

        self.gather(request, self.targets(), then)

    def delete_config(self, request: DeleteApp | DeleteQueue, reply_to: Any) -> None:
        """Refuse while an instance on any branch uses the app (or queue); else delete everywhere."""
        app = request.name if isinstance(request, DeleteApp) else request.app
        what = f"app {app!r}" if isinstance(request, DeleteApp) else f"queue {request.name!r}"

        def then(results: Results, missing: list[str]) -> None:
            instances = [i for r in results.values() if isinstance(r, Reply) for i in r.value]
            if isinstance(request, DeleteQueue):
                instances = [i for i in instances if request.name in i.queues]
            errors = [r for r in results.values() if isinstance(r, ErrorReply)]
            if instances:
                users = ", ".join(sorted(i.name for i in instances))
                self.answer(
                    reply_to, request, Conflict(f"{what} is used by instance(s) {users}; delete those first")
                )
            elif errors and not any(isinstance(r, Reply) for r in results.values()):
                self.answer(reply_to, request, errors[0])  # e.g. no such app
            elif missing:
                self.answer(reply_to, request, Unavailable(f"branches {', '.join(missing)} did not answer"))
            else:
                self.write_config(request, reply_to)

        self.gather(ListInstances(app=app), self.targets(), then)

    # ------------------------------------------------------------------ timers

    def schedule(self, due: float) -> None:
        if self.wakeup_due is not None and self.wakeup_due <= due:
            return
        self.wakeup_due = due
        self.wakeupAfter(timedelta(seconds=max(due - time.monotonic(), 0.0)))

    def on_wakeup(self, msg: WakeupMessage, sender: Any) -> Any:
        assert self.config is not None
        self.wakeup_due = None
        now = time.monotonic()
        for key, gathering in list(self.gatherings.items()):
            # The deadline is for other branches; this one's own answer is always awaited
            # (up to LOCAL_GRACE more), or a slow moment here would make a listing partial.
            local_late = self.me in gathering.waiting and now < gathering.deadline + LOCAL_GRACE
            if gathering.deadline <= now and not local_late:
                self.finish(key)
        if now >= self.next_heartbeat:
            self.next_heartbeat = now + self.config.heartbeat
            if self.cluster.members:
                beat = Heartbeat(self.me, self.info())
                for member in self.cluster.members.values():
                    self.send(member.address, beat)
        pending = [g.deadline if g.deadline > now else now + 0.5 for g in self.gatherings.values()]
        self.schedule(min([self.next_heartbeat, *pending]))
        return DEFERRED
