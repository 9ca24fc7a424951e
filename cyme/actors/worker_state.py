"""What the supervisor knows of each worker and each broker (plain data, no actor code)."""

from __future__ import annotations

import enum
import subprocess
import time
from dataclasses import dataclass, field

from cyme.actors.internal import Waiter
from cyme.workers.process import WorkerSpec


class Status(enum.StrEnum):
    """The observed state of an instance's worker."""

    STARTING = "starting"
    ONLINE = "online"
    OFFLINE = "offline"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class Tracked:
    """What the supervisor knows of one instance's worker process."""

    name: str
    spec: WorkerSpec
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    pidfd: int | None = None
    status: Status = Status.STOPPED
    since: float = field(default_factory=time.monotonic)
    restarts: int = 0
    failures: int = 0
    next_attempt: float = 0.0
    missed: int = 0
    in_sync: bool = False
    last_error: str | None = None

    @property
    def alive(self) -> bool:
        return self.pid is not None


@dataclass
class BrokerHealth:
    """Whether a broker is reachable, and since when (to pause and resume checks)."""

    down_since: float | None = None
    revived_at: float | None = None
    failures: int = 0
    next_probe: float = 0.0

    def failed(self, now: float) -> None:
        if self.down_since is None:
            self.down_since = now
        self.failures += 1
        self.next_probe = now + min(2.0**self.failures, 30.0)

    def revived(self, now: float) -> None:
        self.down_since, self.failures, self.revived_at = None, 0, now

    def judgeable(self, now: float, wait: float) -> bool:
        return self.down_since is None and (self.revived_at is None or now - self.revived_at >= wait)


@dataclass
class Pending:
    """A caller waiting for instance *name* to be ready (or gone) before *deadline*."""

    name: str
    waiter: Waiter
    deadline: float
