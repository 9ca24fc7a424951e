"""Typed settings of a branch and of its HTTP front, with their defaults.

Every setting can come from a command-line flag or a ``CYME_*`` environment variable
(the flag wins). Nothing here is read at import time: ``BranchConfig.from_env()`` and the
CLI build a config when a process starts, and the config is handed on explicitly.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cyme import names
from cyme.errors import ConfigError
from cyme.urls import UrlPolicy

DEFAULT_HTTP_PORT = 8000
#: The admin (actor system) port defaults to the HTTP port plus this offset, so that
#: several branches on one machine need only distinct HTTP ports.
ADMIN_PORT_OFFSET = 10000
DEFAULT_ROOT = "instances/"
DEFAULT_MAX_BODY = 1024 * 1024


def parse_listen(value: str) -> tuple[str, int]:
    """Parse ``[addr]:port`` (or a bare port) into (host, port); host defaults to 127.0.0.1."""
    host, _, port = value.rpartition(":") if ":" in value else ("", "", value)
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"invalid listen address {value!r}: port must be a number") from None
    if not 0 < number < 65536:
        raise ConfigError(f"invalid listen address {value!r}: port out of range")
    return host, number


def default_branch_id(port: int) -> str:
    """A branch id unique per machine and HTTP port, e.g. ``myhost-8000``."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"{host.strip('-') or 'branch'}-{port}"


@dataclass(frozen=True)
class BranchConfig:
    """Everything a branch needs to run; picklable, so actors receive it in a message."""

    branch_id: str
    http_host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    root: Path = field(default_factory=lambda: Path(DEFAULT_ROOT).resolve())
    broker: str | None = None
    db: str | None = None
    without_http: bool = False
    loglevel: str = "INFO"
    logfile: str | None = None
    admin_port: int = DEFAULT_HTTP_PORT + ADMIN_PORT_OFFSET
    http_workers: int = 2
    sup_interval: float = 5.0
    start_timeout: float = 30.0
    stop_timeout: float = 10.0
    wait_after_broker_revived: float = 30.0
    keep_workers: bool = False
    max_body: int = DEFAULT_MAX_BODY
    #: Address the actor system binds to and advertises (its admin and every actor).
    admin_addr: str = "127.0.0.1"
    #: Convention leaders (host:port of their admin ports) to join; empty: lead a new cluster.
    join: tuple[str, ...] = ()
    heartbeat: float = 2.0
    gather_timeout: float = 3.0
    result_backend: str | None = None
    result_expires: int = 86400
    url_allow: str | None = None
    url_deny: str | None = None
    url_max_body: int = 256 * 1024
    #: Pid of the ``cyme-branch`` process; its actors stop when it is gone (0: not watched).
    main_pid: int = 0

    @property
    def db_url(self) -> str:
        """The peewee database URL: ``--db`` or SQLite under the root."""
        return self.db or f"sqlite:///{self.root / 'cyme.db'}"

    @property
    def url_policy(self) -> UrlPolicy:
        """Which hosts URL tasks may request."""
        return UrlPolicy.from_strings(self.url_allow, self.url_deny)

    @property
    def leads(self) -> bool:
        """True if this branch is a convention leader (no --join, or listed in it)."""
        me = {f"{self.admin_addr}:{self.admin_port}", f"localhost:{self.admin_port}"}
        return not self.join or bool(me & set(self.join))

    def with_broker(self, broker: str) -> BranchConfig:
        """A copy whose default broker is *broker* (set once the embedded broker runs)."""
        return replace(self, broker=broker)

    def validate(self) -> BranchConfig:
        """Return self if consistent, else raise ConfigError."""
        try:
            names.branch_id(self.branch_id)
        except Exception as exc:
            raise ConfigError(f"invalid branch id: {exc}") from None
        if self.admin_port == self.http_port:
            raise ConfigError("the admin port must differ from the HTTP port")
        if self.sup_interval <= 0 or self.start_timeout <= 0:
            raise ConfigError("intervals and timeouts must be positive")
        for leader in self.join:
            host, _, port = leader.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"--join takes HOST:PORT[,HOST:PORT], not {leader!r}")
        return self


@dataclass(frozen=True)
class HttpSettings:
    """What the HTTP front (a gunicorn worker) needs to reach its branch."""

    admin_port: int = DEFAULT_HTTP_PORT + ADMIN_PORT_OFFSET
    admin_addr: str = "127.0.0.1"
    ask_timeout: float = 90.0
    max_body: int = DEFAULT_MAX_BODY
    url_max_body: int = 256 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpSettings:
        """Read ``CYME_ADMIN_PORT``, ``CYME_ASK_TIMEOUT`` and ``CYME_MAX_BODY``."""
        env = os.environ if env is None else env
        try:
            return cls(
                admin_port=int(env.get("CYME_ADMIN_PORT", cls.admin_port)),
                admin_addr=env.get("CYME_ADMIN_ADDR", cls.admin_addr),
                ask_timeout=float(env.get("CYME_ASK_TIMEOUT", cls.ask_timeout)),
                max_body=int(env.get("CYME_MAX_BODY", cls.max_body)),
                url_max_body=int(env.get("CYME_URL_MAX_BODY", cls.url_max_body)),
            )
        except ValueError as exc:
            raise ConfigError(f"invalid CYME_* setting: {exc}") from None
