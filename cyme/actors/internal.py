"""Messages the actors of one branch exchange among themselves (not a public API)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cyme.actors.messages import Request
from cyme.config import BranchConfig


@dataclass(frozen=True)
class Routed:
    """A request passed on by the Branch actor; the handler answers ``reply_to`` directly."""

    request: Request
    reply_to: Any


@dataclass(frozen=True)
class Boot:
    """Sent once by ``cyme-branch`` to its Branch actor: create and configure the others."""

    config: BranchConfig
    request_id: str = "boot"


@dataclass(frozen=True)
class Configure:
    """Sent by the Branch actor to each child: the config and the addresses of its peers."""

    config: BranchConfig
    peers: dict[str, Any]


@dataclass(frozen=True)
class Waiter:
    """Someone waiting for an instance change to become real: reply to them when it is."""

    reply_to: Any
    request_id: str


@dataclass(frozen=True)
class Apply:
    """Ask the supervisor to make instance *name*'s worker match the model now."""

    name: str
    waiter: Waiter | None = None


@dataclass(frozen=True, kw_only=True)
class StopBranch(Request):
    """Stop supervising; stop every worker unless ``keep_workers``. -> Deleted"""

    keep_workers: bool = False


# ------------------------------------------------------------------ cluster membership


@dataclass(frozen=True)
class Introduce:
    """To a Liaison on branch *target*: introduce branch *branch_id* at *address* to it."""

    target: str
    branch_id: str
    address: Any
    members: dict[str, Any]


@dataclass(frozen=True)
class Hello:
    """Branch *branch_id* is at *address*; it knows *members* (id -> address)."""

    branch_id: str
    address: Any
    members: dict[str, Any]
    snapshot: Any = None


@dataclass(frozen=True)
class Left:
    """The convention lost branch *branch_id*: stop waiting for it and placing work there."""

    branch_id: str


@dataclass(frozen=True)
class Heartbeat:
    """Periodic liveness probe between branches, carrying the sender's description."""

    branch_id: str
    info: Any
    reply: bool = True


@dataclass(frozen=True)
class Local:
    """A request from a peer branch, to be answered by this branch alone (never forwarded)."""

    request: Request


@dataclass(frozen=True)
class ConfigSnapshot:
    """Every app and queue declaration of a branch, for a newcomer to catch up from."""

    apps: tuple[tuple[str, str | None, str | None], ...]
    queues: tuple[tuple[str, str, str, str, str, Any], ...]
