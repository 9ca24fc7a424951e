"""Running real branches for tests: a ``cyme-branch`` process, its HTTP API, its workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from celery import Celery

from cyme.actors.system import BranchClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll *predicate* until it returns a truthy value; fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def worker_pids(nodename: str) -> list[int]:
    """Pids of the main ``celery worker`` processes running as *nodename* (not pool children)."""
    matches: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if stat[0] != "Z" and nodename.encode() in args and any(b"celery" in a for a in args):
            matches[int(entry.name)] = int(stat[1])
    return sorted(pid for pid, parent in matches.items() if parent not in matches)


class BranchProcess:
    """A ``cyme-branch`` started as a user would start it, on loopback ports."""

    def __init__(
        self,
        root: Path,
        *,
        branch_id: str = "test",
        broker: str | None = None,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.branch_id = branch_id
        self.broker = broker
        self.port = free_port()
        self.admin_port = free_port()
        self.extra = extra or []
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = root.parent / f"{root.name}-branch.log"
        self.http = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "cyme.cli.branch", f"127.0.0.1:{self.port}",
            "-i", self.branch_id, "-D", str(self.root), "--admin-port", str(self.admin_port),
            "--sup-interval", "1", "-l", "INFO",
        ]  # fmt: skip
        if self.broker:
            cmd += ["--broker", self.broker]
        return cmd + self.extra

    def start(self, timeout: float = 60) -> BranchProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.logfile, "ab")  # noqa: SIM115 - kept open for the process's lifetime
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        log.close()
        try:
            wait_for(self.answers, timeout, 0.1, f"branch {self.branch_id} to answer /ping")
        except BaseException:
            if self.proc.poll() is None:  # never leave a branch behind a failed start
                self.stop()
            raise
        return self

    def answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"cyme-branch exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return self.http.get(self.url + "/ping/", timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or slow on a busy machine
            return False

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM the branch (as an operator would) and wait for it to exit."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.http.close()
        return code

    def kill_leftover_workers(self) -> list[int]:
        """After a failed test: kill (by pid) workers this branch's root still records."""
        killed = []
        for pidfile in self.root.glob("*/worker.pid"):
            for pid in worker_pids(f"{pidfile.parent.name}@{self.branch_id}"):
                os.killpg(pid, signal.SIGKILL)
                killed.append(pid)
        return killed

    def kill(self) -> None:
        """kill -9 the cyme-branch process, as a crash would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def restart(self, timeout: float = 60) -> BranchProcess:
        """Start the branch again with the same ports and root."""
        self.http = requests.Session()
        return self.start(timeout)

    def instance(self, app: str, name: str) -> dict[str, Any]:
        reply = self.get(f"/{app}/instances/{name}/")
        assert reply.status_code == 200, reply.text
        return reply.json()  # type: ignore[no-any-return]

    def log_text(self) -> str:
        return self.logfile.read_text(errors="replace")

    def logged(self, *texts: str, timeout: float = 20) -> bool:
        """Wait until the branch log holds every one of *texts* (actor logs arrive late)."""
        return bool(wait_for(lambda: all(t in self.log_text() for t in texts), timeout, 0.2, f"log {texts}"))

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 90)
        return self.http.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def client(self) -> BranchClient:
        return BranchClient(self.admin_port, timeout=60)

    def broker_url(self) -> str:
        """The real (unmasked) default broker URL of this branch."""
        return self.broker or f"redis+socket://{self.root / 'broker.sock'}"


class Inspector:
    """Looks at workers through Celery's own remote control, independently of cyme."""

    def __init__(self, broker: str) -> None:
        self.app = Celery("cyme-tests", broker=broker, set_as_current=False)

    def active_queues(self, node: str) -> list[str] | None:
        reply = self.app.control.inspect(destination=[node], timeout=5.0, limit=1).active_queues()
        if not reply or node not in reply:
            return None
        return sorted(q["name"] for q in reply[node])

    def stats(self, node: str) -> dict[str, Any] | None:
        reply = self.app.control.inspect(destination=[node], timeout=5.0, limit=1).stats()
        return (reply or {}).get(node)

    def ping(self, node: str) -> bool:
        return bool(self.app.control.ping(destination=[node], timeout=1.0))

    def close(self) -> None:
        self.app.close()
