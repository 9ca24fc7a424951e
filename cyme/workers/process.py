"""Starting, finding and stopping the ``celery worker`` process of an instance.

Each worker runs in its own session (process group), writes its pid file and log under
``<root>/<instance>/`` and is found again after a branch restart through that pid file,
checked against ``/proc/<pid>/cmdline`` so a recycled pid is never mistaken for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class WorkerSpec:
    """Everything needed to run one instance's worker."""

    name: str
    nodename: str
    broker: str
    direct_queue: str
    queues: tuple[dict[str, Any], ...] = ()
    max_concurrency: int = 1
    min_concurrency: int = 1
    root: Path = field(default_factory=lambda: Path("instances"))
    loglevel: str = "INFO"
    backend: str = ""
    #: More ``CYME_*`` settings for the worker (URL policy, result expiry).
    settings: tuple[tuple[str, str], ...] = ()

    @property
    def directory(self) -> Path:
        return self.root / self.name

    @property
    def pidfile(self) -> Path:
        return self.directory / "worker.pid"

    @property
    def logfile(self) -> Path:
        return self.directory / "worker.log"

    def command(self) -> list[str]:
        """The ``celery worker`` command line of this instance."""
        queues = [self.direct_queue] + [q["name"] for q in self.queues]
        return [
            sys.executable, "-m", "celery", "-A", "cyme.workers.app", "worker",
            "-n", self.nodename,
            "-Q", ",".join(queues),
            f"--autoscale={self.max_concurrency},{self.min_concurrency}",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile),
            "--loglevel", self.loglevel,
            "--without-mingle", "--without-gossip",
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        """The process environment: the broker and queue declarations for cyme.workers.app."""
        env = dict(os.environ)
        env.update(
            CYME_BROKER_URL=self.broker,
            CYME_QUEUES=json.dumps(list(self.queues)),
            CYME_DIRECT_QUEUE=self.direct_queue,
            CYME_RESULT_BACKEND=self.backend,
        )
        env.update(self.settings)
        return env


def spawn(spec: WorkerSpec) -> subprocess.Popen[bytes]:
    """Start the worker of *spec* in its own session; returns at once."""
    spec.directory.mkdir(parents=True, exist_ok=True)
    with open(spec.directory / "stderr.log", "ab") as stderr:
        return subprocess.Popen(
            spec.command(),
            env=spec.environment(),
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
            cwd=spec.directory,
        )


def find_running(pidfile: Path, nodename: str) -> int | None:
    """The pid of the worker named *nodename* recorded in *pidfile*, if it really runs."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_worker(pid, nodename) else None


def is_worker(pid: int, nodename: str) -> bool:
    """True if *pid* is a live ``celery worker`` process for *nodename* (not a reused pid)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    if state == "Z":
        return False
    joined = b" ".join(args)
    return nodename.encode() in joined and b"celery" in joined


def signal_group(pid: int, sig: signal.Signals) -> bool:
    """Send *sig* to the worker's process group (its pool children too); False if gone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
    return True


def open_pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when *pid* exits (None if it already has)."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
