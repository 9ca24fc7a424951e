"""The public message API of a branch: typed requests, their replies, and the value types.

Any Python service can talk to a branch with these messages (see ``cyme.actors.system``):
send a request to the Branch actor and receive a ``Reply`` whose ``value`` has the type
named in the request's docstring, or an ``ErrorReply`` (turned into a ``CymeError`` by
``ask``). Every request carries a ``request_id`` that its reply repeats, so a late reply
to a timed-out request is never taken for the answer to the next one.

All messages are frozen dataclasses and are pickled by Thespian; keep them small.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any


def new_request_id() -> str:
    return uuid.uuid4().hex


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class AppInfo:
    """An app: its name and broker (password masked)."""

    name: str
    broker: dict[str, Any]
    instances: tuple[str, ...] = ()
    backend: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "broker": self.broker,
            "backend": self.backend,
            "instances": list(self.instances),
        }


@dataclass(frozen=True)
class QueueInfo:
    """A queue declaration."""

    name: str
    exchange: str
    exchange_type: str
    routing_key: str
    options: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InstanceInfo:
    """An instance: its desired configuration and the supervisor's view of its worker."""

    name: str
    app: str
    branch: str
    is_enabled: bool
    queues: tuple[str, ...]
    broker: dict[str, Any]
    max_concurrency: int
    min_concurrency: int
    status: str
    pid: int | None = None
    restarts: int = 0
    last_error: str | None = None
    next_attempt: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["queues"] = list(self.queues)
        return data


@dataclass(frozen=True)
class BranchInfo:
    """A branch of the cluster."""

    id: str
    http: str
    admin_port: int
    root: str
    broker: dict[str, Any]
    instances: int
    online: int
    started: float
    version: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Listing:
    """A cluster-wide listing; ``missing`` names branches that did not answer in time."""

    items: tuple[Any, ...]
    missing: tuple[str, ...] = ()

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def to_json(self) -> list[Any]:
        return [item.to_json() if hasattr(item, "to_json") else item for item in self.items]


@dataclass(frozen=True)
class Deleted:
    """Reply value of a delete: what was deleted."""

    kind: str
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"ok": "ok", "deleted": self.kind, "name": self.name}


@dataclass(frozen=True)
class Pong:
    """Reply value of Ping."""

    branch: str
    time: float

    def to_json(self) -> dict[str, Any]:
        return {"ok": "pong", "branch": self.branch, "time": self.time}


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reply:
    """A successful answer to the request with the same ``request_id``."""

    request_id: str
    value: Any


@dataclass(frozen=True)
class ErrorReply:
    """A failed answer: ``code`` is a ``CymeError.code``, ``message`` is safe to show."""

    request_id: str
    code: str
    message: str


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, kw_only=True)
class Request:
    """Base of every request; ``request_id`` is repeated in the reply."""

    request_id: str = field(default_factory=new_request_id)


@dataclass(frozen=True, kw_only=True)
class Ping(Request):
    """Is the branch alive? -> Pong"""


@dataclass(frozen=True, kw_only=True)
class ListBranches(Request):
    """Describe the live branches of the cluster. -> Listing[BranchInfo]"""


@dataclass(frozen=True, kw_only=True)
class GetBranch(Request):
    """Describe one branch. -> BranchInfo"""

    branch: str


@dataclass(frozen=True, kw_only=True)
class CreateApp(Request):
    """Create or update an app; ``broker``/``backend`` None mean the branch defaults. -> AppInfo"""

    name: str
    broker: str | None = None
    backend: str | None = None


@dataclass(frozen=True, kw_only=True)
class GetApp(Request):
    """-> AppInfo"""

    name: str


@dataclass(frozen=True, kw_only=True)
class ListApps(Request):
    """Apps known to any branch of the cluster. -> Listing[AppInfo]"""


@dataclass(frozen=True, kw_only=True)
class DeleteApp(Request):
    """Delete an app and its queue declarations (refused while it has instances). -> Deleted"""

    name: str


@dataclass(frozen=True, kw_only=True)
class DeclareQueue(Request):
    """Create or update a queue declaration; exchange and routing key default to the name.

    -> QueueInfo
    """

    app: str
    name: str
    exchange: str | None = None
    exchange_type: str | None = None
    routing_key: str | None = None
    options: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class GetQueue(Request):
    """-> QueueInfo"""

    app: str
    name: str


@dataclass(frozen=True, kw_only=True)
class ListQueues(Request):
    """Queue declarations of an app, from every branch. -> Listing[QueueInfo]"""

    app: str


@dataclass(frozen=True, kw_only=True)
class DeleteQueue(Request):
    """Delete a queue declaration (refused while an instance consumes from it). -> Deleted"""

    app: str
    name: str


@dataclass(frozen=True, kw_only=True)
class CreateInstance(Request):
    """Create and start an instance (``name`` None: a UUID). -> InstanceInfo

    It is placed on the live branch with the fewest instances, or on ``branch`` if given.
    Unless ``nowait``, the reply comes once the worker answers a ping.
    """

    app: str
    name: str | None = None
    branch: str | None = None
    max_concurrency: int = 1
    min_concurrency: int = 1
    broker: str | None = None
    queues: tuple[str, ...] = ()
    nowait: bool = False


@dataclass(frozen=True, kw_only=True)
class GetInstance(Request):
    """-> InstanceInfo (``app`` None: any app)"""

    app: str | None
    name: str


@dataclass(frozen=True, kw_only=True)
class ListInstances(Request):
    """Instances on every branch (``app`` None: every app). -> Listing[InstanceInfo]"""

    app: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeleteInstance(Request):
    """Delete an instance; unless ``nowait`` the reply comes once its worker is gone. -> Deleted"""

    app: str | None
    name: str
    nowait: bool = False


@dataclass(frozen=True, kw_only=True)
class AddConsumer(Request):
    """Make an instance consume from a declared queue. -> InstanceInfo"""

    app: str
    instance: str
    queue: str
    nowait: bool = False


@dataclass(frozen=True, kw_only=True)
class CancelConsumer(Request):
    """Make an instance stop consuming from a queue. -> InstanceInfo"""

    app: str
    instance: str
    queue: str
    nowait: bool = False


@dataclass(frozen=True, kw_only=True)
class ListConsumers(Request):
    """The declared queues an instance consumes from. -> InstanceInfo"""

    app: str
    instance: str


@dataclass(frozen=True, kw_only=True)
class GetAutoscale(Request):
    """An instance's max/min concurrency. -> InstanceInfo"""

    app: str
    instance: str


@dataclass(frozen=True, kw_only=True)
class SetAutoscale(Request):
    """Set an instance's max and/or min concurrency. -> InstanceInfo"""

    app: str
    instance: str
    max_concurrency: int | None = None
    min_concurrency: int | None = None
    nowait: bool = False


@dataclass(frozen=True, kw_only=True)
class GetStats(Request):
    """The worker's live ``stats`` plus the instance's configuration. -> dict"""

    app: str
    instance: str


# --------------------------------------------------------------------------- URL tasks


@dataclass(frozen=True)
class TaskInfo:
    """A URL task: where it was queued, its state and, once ready, its result or error."""

    uuid: str
    app: str
    queue: str
    method: str
    url: str
    state: str
    ready: bool = False
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class QueueUrl(Request):
    """Queue an HTTP request for a worker consuming from ``queue`` to perform. -> TaskInfo

    ``query`` is the raw query string to forward, ``body`` the raw body; ``headers`` are
    the request headers to forward. Timeouts are in seconds; connection errors and
    429/502/503/504 answers are retried ``retries`` times with exponential backoff.
    """

    app: str
    queue: str
    method: str
    url: str
    query: str = ""
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 3
    retry_delay: float = 1.0


@dataclass(frozen=True, kw_only=True)
class GetTask(Request):
    """The state (and result, once ready) of a URL task. -> TaskInfo"""

    app: str
    uuid: str
