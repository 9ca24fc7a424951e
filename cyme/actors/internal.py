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
