"""``cyme-branch``: run a branch (actor system, supervisor, embedded broker, HTTP server).

    cyme-branch :8001 -i branch1 -D cyme/branch1/

Every option can also be given as a ``CYME_*`` environment variable (the flag wins).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from cyme import lifeline
from cyme.actors.internal import StopBranch
from cyme.actors.system import BranchClient, port_in_use, start_system
from cyme.broker.embedded import EmbeddedBroker
from cyme.cli import exitcodes
from cyme.config import ADMIN_PORT_OFFSET, DEFAULT_HTTP_PORT, BranchConfig, default_branch_id, parse_listen
from cyme.errors import ConfigError, CymeError, Unavailable

log = logging.getLogger("cyme.branch")


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"CYME_{name}", default)


def env_flag(name: str) -> bool:
    return (env(name) or "").strip().lower() in ("1", "true", "yes", "on")


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="cyme-branch",
        description="Run a cyme branch: supervise Celery worker instances on this machine and "
        "serve the cyme REST API. Every option can also be set by the CYME_* variable named "
        "in its help.",
    )
    parse.add_argument(
        "listen",
        nargs="?",
        default=env("LISTEN", f":{DEFAULT_HTTP_PORT}"),
        help="[addr]:port of the HTTP API (default :8000, i.e. 127.0.0.1:8000) [CYME_LISTEN]",
    )
    parse.add_argument(
        "-i", "--id", default=env("ID"), help="branch id (default <hostname>-<port>) [CYME_ID]"
    )
    parse.add_argument(
        "-D",
        "--root",
        default=env("ROOT", "instances/"),
        help="root directory for the database, logs and pid files of worker instances "
        "(default instances/) [CYME_ROOT]",
    )
    parse.add_argument(
        "--broker",
        default=env("BROKER"),
        help="default broker URL of apps created without one (default: a private embedded "
        "Redis on a unix socket under the root) [CYME_BROKER]",
    )
    parse.add_argument(
        "--db",
        default=env("DB"),
        help="peewee database URL, e.g. postgresql://u:p@host/db (default sqlite under the root) [CYME_DB]",
    )
    parse.add_argument(
        "--without-http",
        action="store_true",
        default=env_flag("WITHOUT_HTTP"),
        help="do not serve HTTP (run the web front separately with gunicorn) [CYME_WITHOUT_HTTP]",
    )
    parse.add_argument(
        "-l",
        "--loglevel",
        default=env("LOGLEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        type=str.upper,
        help="log level of the branch and its workers (default INFO) [CYME_LOGLEVEL]",
    )
    parse.add_argument("--logfile", default=env("LOGFILE"), help="log file (default stderr) [CYME_LOGFILE]")
    parse.add_argument(
        "--admin-port",
        type=int,
        default=env("ADMIN_PORT"),
        help=f"actor system admin port (default HTTP port + {ADMIN_PORT_OFFSET}) [CYME_ADMIN_PORT]",
    )
    parse.add_argument(
        "--admin-addr",
        default=env("ADMIN_ADDR", "127.0.0.1"),
        help="address the actor system binds to and advertises to other branches; it speaks "
        "unauthenticated pickles, so only a trusted network (default 127.0.0.1) [CYME_ADMIN_ADDR]",
    )
    parse.add_argument(
        "--join",
        default=env("JOIN"),
        help="HOST:PORT[,HOST:PORT] admin address(es) of the cluster's leader(s); without it this "
        "branch leads its own cluster [CYME_JOIN]",
    )
    parse.add_argument(
        "--http-workers",
        type=int,
        default=int(env("HTTP_WORKERS", "2") or 2),
        help="gunicorn worker processes (default 2) [CYME_HTTP_WORKERS]",
    )
    parse.add_argument(
        "--sup-interval",
        type=float,
        default=float(env("SUP_INTERVAL", "5") or 5),
        help="seconds between full supervisor checks (default 5) [CYME_SUP_INTERVAL]",
    )
    parse.add_argument(
        "--start-timeout",
        type=float,
        default=float(env("START_TIMEOUT", "30") or 30),
        help="seconds a sync request waits for a worker to answer (default 30) [CYME_START_TIMEOUT]",
    )
    parse.add_argument(
        "--wait-after-broker-revived",
        type=float,
        default=float(env("WAIT_AFTER_BROKER_REVIVED", "30") or 30),
        help="seconds to give workers to reconnect after their broker returns before judging "
        "them (default 30) [CYME_WAIT_AFTER_BROKER_REVIVED]",
    )
    parse.add_argument(
        "--result-backend",
        default=env("RESULT_BACKEND"),
        help="result backend URL of URL tasks (default: the broker if it is Redis, else files "
        "under the root) [CYME_RESULT_BACKEND]",
    )
    parse.add_argument(
        "--result-expires",
        type=int,
        default=int(env("RESULT_EXPIRES", "86400") or 86400),
        help="seconds URL task results are kept (default 86400) [CYME_RESULT_EXPIRES]",
    )
    parse.add_argument(
        "--url-allow",
        default=env("URL_ALLOW"),
        help="comma-separated hosts (.domain for subdomains) and CIDR networks URL tasks may "
        "request; empty: any not denied [CYME_URL_ALLOW]",
    )
    parse.add_argument(
        "--url-deny",
        default=env("URL_DENY"),
        help="comma-separated hosts and CIDR networks URL tasks may never request (default: "
        "link-local and cloud metadata addresses) [CYME_URL_DENY]",
    )
    parse.add_argument(
        "--keep-workers",
        action="store_true",
        default=env_flag("KEEP_WORKERS"),
        help="leave worker processes running when the branch stops [CYME_KEEP_WORKERS]",
    )
    return parse


def config_from_args(args: argparse.Namespace) -> BranchConfig:
    host, port = parse_listen(args.listen)
    return BranchConfig(
        branch_id=args.id or default_branch_id(port),
        http_host=host,
        http_port=port,
        root=Path(args.root).resolve(),
        broker=args.broker,
        db=args.db,
        without_http=args.without_http,
        loglevel=args.loglevel,
        logfile=args.logfile,
        admin_port=int(args.admin_port) if args.admin_port else port + ADMIN_PORT_OFFSET,
        http_workers=args.http_workers,
        sup_interval=args.sup_interval,
        start_timeout=args.start_timeout,
        keep_workers=args.keep_workers,
        wait_after_broker_revived=args.wait_after_broker_revived,
        main_pid=os.getpid(),
        admin_addr=args.admin_addr,
        join=tuple(j.strip() for j in (args.join or "").split(",") if j.strip()),
        result_backend=args.result_backend,
        result_expires=args.result_expires,
        url_allow=args.url_allow,
        url_deny=args.url_deny,
    ).validate()


def setup_logging(config: BranchConfig) -> None:
    handler: logging.Handler = (
        logging.FileHandler(config.logfile) if config.logfile else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("[%(asctime)s: %(levelname)s/%(name)s] %(message)s"))
    logging.basicConfig(level=config.loglevel, handlers=[handler], force=True)


def start_http(config: BranchConfig) -> subprocess.Popen[bytes]:
    """Run the REST API under gunicorn, asking this branch's actor system."""
    deadline = time.monotonic() + 5  # a crashed predecessor's server may still be closing
    while port_in_use(config.http_port, config.http_host) and time.monotonic() < deadline:
        time.sleep(0.1)
    if port_in_use(config.http_port, config.http_host):
        raise ConfigError(f"HTTP port {config.http_host}:{config.http_port} is already in use")
    cmd = [
        sys.executable, "-m", "gunicorn", "cyme.http.app:get_app()",
        "--bind", f"{config.http_host}:{config.http_port}",
        "--workers", str(config.http_workers),
        "--worker-class", "gthread", "--threads", "4",
        "--timeout", str(int(config.start_timeout * 3) + 30),
        "--log-level", config.loglevel.lower(),
        "--error-logfile", config.logfile or "-",
        "--no-control-socket",
    ]  # fmt: skip
    environment = dict(
        os.environ,
        CYME_ADMIN_PORT=str(config.admin_port),
        CYME_ADMIN_ADDR=config.admin_addr,
        CYME_MAX_BODY=str(config.max_body),
        CYME_URL_MAX_BODY=str(config.url_max_body),
    )
    proc = subprocess.Popen(
        cmd, env=environment, stdin=subprocess.DEVNULL, preexec_fn=lifeline.preexec_die_with_parent_term
    )
    deadline = time.monotonic() + 30
    while not port_in_use(config.http_port, config.http_host):
        if proc.poll() is not None:
            raise ConfigError(f"the HTTP server exited at start (code {proc.returncode})")
        if time.monotonic() > deadline:
            proc.terminate()
            raise Unavailable("the HTTP server did not start within 30s")
        time.sleep(0.05)
    return proc


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def claim_root(config: BranchConfig) -> Path:
    """Record this process as the branch of its root; refuse if another one runs there."""
    pidfile = config.root / "branch.pid"
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        pid, cmdline = 0, b""
    if pid and pid != os.getpid() and b"cyme" in cmdline:
        raise ConfigError(f"a branch (pid {pid}) is already running with root {config.root}")
    pidfile.write_text(str(os.getpid()))
    return pidfile


def run(config: BranchConfig) -> int:
    """Run the branch until SIGTERM/SIGINT; returns an exit code."""
    config.root.mkdir(parents=True, exist_ok=True)
    pidfile = claim_root(config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.warning("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    broker = None
    if config.broker is None:
        broker = EmbeddedBroker(config.root)
        broker.start()
        config = config.with_broker(broker.url)
    system = http = None
    try:
        system = start_system(config)
        log.warning(
            "branch %s ready: admin port %d, root %s, broker %s",
            config.branch_id, config.admin_port, config.root, config.broker,
        )  # fmt: skip
        if not config.without_http:
            http = start_http(config)
            log.warning("HTTP API on http://%s:%d/", config.http_host, config.http_port)
        while not stop.wait(1.0):
            if http is not None and http.poll() is not None:
                log.error("HTTP server exited (code %s); restarting it", http.returncode)
                http = start_http(config)
    finally:
        stop_process(http)
        if system is not None:
            client = BranchClient(config.admin_port, admin_addr=config.admin_addr)
            try:
                client.ask(StopBranch(keep_workers=config.keep_workers), timeout=config.stop_timeout + 15)
            except CymeError as exc:
                log.error("workers may not have stopped cleanly: %s", exc.message)
            finally:
                client.close()
            system.shutdown()
        if broker is not None and not config.keep_workers:
            broker.stop()
        pidfile.unlink(missing_ok=True)
    log.warning("branch %s stopped", config.branch_id)
    return exitcodes.EX_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = config_from_args(args)
        setup_logging(config)
        return run(config)
    except CymeError as exc:
        print(f"cyme-branch: {exc.message}", file=sys.stderr)
        return exitcodes.for_error(exc)


if __name__ == "__main__":
    sys.exit(main())
