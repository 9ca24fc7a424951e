"""Starting a branch's actor system, and talking to a running branch from any process.

``BranchClient`` is the public way for another Python service (or the HTTP front) to
send the typed requests of ``cyme.actors.messages`` to a branch on this machine::

    from cyme.actors.messages import CreateApp
    from cyme.actors.system import BranchClient

    with BranchClient(admin_port=18000) as branch:
        app = branch.ask(CreateApp(name="foo"))      # -> AppInfo

Each handle is private to the thread that created it (Thespian handles are not
thread-safe); replies are matched to requests by ``request_id`` so a late reply to a
timed-out request is skipped rather than taken for the next answer.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta
from typing import Any

from thespian.actors import ActorSystem, PoisonMessage

from cyme.actors.internal import Boot
from cyme.actors.messages import ErrorReply, Reply, Request
from cyme.config import BranchConfig
from cyme.errors import ConfigError, InternalError, Timeout, Unavailable, error_from_code

log = logging.getLogger(__name__)

SYSTEM_BASE = "multiprocTCPBase"
BRANCH_CLASS = "cyme.actors.branch.Branch"
BRANCH_GLOBAL_NAME = "cyme-branch"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def log_definitions(config: BranchConfig) -> dict[str, Any]:
    """Thespian logDefs: actor log records go to the branch's log file (or stderr)."""
    handler: dict[str, Any] = {"class": "logging.StreamHandler", "formatter": "cyme"}
    if config.logfile:
        handler = {"class": "logging.FileHandler", "filename": config.logfile, "formatter": "cyme"}
    handler["level"] = config.loglevel
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"cyme": {"format": "[%(asctime)s: %(levelname)s/%(name)s] %(message)s"}},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": config.loglevel},
    }


def bind_sockets_to(address: str) -> None:
    """Make Thespian bind its sockets to *address* instead of every interface.

    Thespian listens on all interfaces and has no option for it; the admin port speaks
    unauthenticated pickles, so it must only be reachable where the operator says. The
    patch is applied before the actor system starts and is inherited by the admin and
    every actor, which are forked from this process.
    """
    from thespian.system.transport.IPBase import IPActorAddress

    def bind_args(self: Any) -> tuple[tuple[str, int]]:
        host, port = self.bindname[0], self.bindname[1]
        return ((address if host in ("", "0.0.0.0") else host, port),)

    IPActorAddress.bindArgs = property(bind_args)


def capabilities(config: BranchConfig) -> dict[str, Any]:
    """The actor system's capabilities: its port, its branch id, the leaders it joins."""
    caps: dict[str, Any] = {"Admin Port": config.admin_port, "cyme.branch": config.branch_id}
    if config.join:
        caps["Convention Address.IPv4"] = list(config.join)
    return caps


def start_system(config: BranchConfig) -> ActorSystem:
    """Start this branch's actor system and boot its Branch actor; returns the handle."""
    if port_in_use(config.admin_port, config.admin_addr):
        raise ConfigError(
            f"admin port {config.admin_port} is already in use (another branch?); choose --admin-port"
        )
    os.environ.setdefault("THESPLOG_FILE", str(config.root / "thespian.log"))
    os.environ.setdefault("THESPLOG_THRESHOLD", "WARNING")
    # Read by Thespian when the admin starts: notice a dead member in seconds, not minutes.
    os.environ.setdefault("CONVENTION_REREGISTRATION_PERIOD", "0:04")
    os.environ.setdefault("CONVENTION_RESTART_PERIOD", "0:04")
    os.environ["THESPIAN_BASE_IPADDR"] = config.admin_addr
    bind_sockets_to(config.admin_addr)
    system = ActorSystem(SYSTEM_BASE, capabilities(config), logDefs=log_definitions(config))
    try:
        branch = system.createActor(BRANCH_CLASS, globalName=BRANCH_GLOBAL_NAME)
        reply = system.ask(branch, Boot(config), timedelta(seconds=30))
        if not isinstance(reply, Reply):
            raise Unavailable(f"branch actor did not boot: {reply!r}")
    except BaseException:
        system.shutdown()
        raise
    return system


def reply_id(reply: Any) -> str | None:
    """The request id a reply answers (a PoisonMessage carries the request it failed on)."""
    if isinstance(reply, PoisonMessage):
        reply = reply.poisonMessage
    return getattr(reply, "request_id", None)


def unwrap(reply: Any) -> Any:
    """The value of a reply, or the CymeError an error reply stands for."""
    if isinstance(reply, Reply):
        return reply.value
    if isinstance(reply, ErrorReply):
        raise error_from_code(reply.code, reply.message)
    if isinstance(reply, PoisonMessage):
        raise InternalError("the branch could not process the request; see its log")
    raise InternalError(f"unexpected reply of type {type(reply).__name__}")


class BranchClient:
    """A connection from this process to the Branch actor on *admin_port* of this machine."""

    def __init__(self, admin_port: int, timeout: float = 90.0, admin_addr: str = "127.0.0.1") -> None:
        self.admin_port = admin_port
        self.admin_addr = admin_addr
        self.timeout = timeout
        self._local = threading.local()

    def _handle(self) -> tuple[ActorSystem, Any]:
        handle = getattr(self._local, "handle", None)
        if handle is None:
            # Without this probe, Thespian would silently start a new, empty admin here.
            if not port_in_use(self.admin_port, self.admin_addr):
                raise Unavailable(f"no branch is running (admin port {self.admin_port} is closed)")
            os.environ.setdefault("THESPIAN_BASE_IPADDR", self.admin_addr)
            bind_sockets_to(self.admin_addr)
            system = ActorSystem(SYSTEM_BASE, {"Admin Port": self.admin_port}, transientUnique=True)
            branch = system.createActor(BRANCH_CLASS, globalName=BRANCH_GLOBAL_NAME)
            handle = self._local.handle = (system, branch)
        return handle

    def ask(self, request: Request, timeout: float | None = None) -> Any:
        """Send *request* to the branch and return its reply value, or raise a CymeError."""
        system, branch = self._handle()
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        system.tell(branch, request)
        while True:
            remaining = deadline - time.monotonic()
            reply = system.listen(timedelta(seconds=max(remaining, 0.001))) if remaining > 0 else None
            if reply is None:
                self._drop_if_admin_gone()
                raise Timeout(f"the branch did not answer {type(request).__name__} within {timeout:.0f}s")
            if reply_id(reply) != request.request_id:
                log.debug("skipping stale reply %r", reply)
                continue
            return unwrap(reply)

    def _drop_if_admin_gone(self) -> None:
        if not port_in_use(self.admin_port, self.admin_addr):
            self.close()

    def close(self) -> None:
        handle = getattr(self._local, "handle", None)
        if handle is not None:
            self._local.handle = None
            # Close only this endpoint: shutdown() on any handle stops the whole actor system.
            handle[0]._systemBase.transport.close()

    def __enter__(self) -> BranchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
