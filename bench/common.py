"""Shared pieces of the benchmark scripts (``bench_branch.py``, ``bench_supervisor.py``,
``bench_url_tasks.py``).

A branch wrapper that makes sure nothing it started survives, bare ``celery worker``
processes started exactly as cyme starts an instance's worker (``WorkerSpec`` and
``spawn`` from ``cyme.workers.process``), a Celery ping client, the report table, the
usual pre-flight checks and the command-line / main() plumbing. Conventions: log lines on
stderr, odd things collected as notes, every process stopped by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from celery import Celery

from cyme.config import BranchConfig
from cyme.workers import process
from cyme.workers.process import WorkerSpec
from tests.brokers import group_members
from tests.helpers import BranchProcess, pid_alive

APP = "bench"
BARE_HOST = "bare"


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolated percentile (0-100) of *values*."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def short_id() -> str:
    return uuid.uuid4().hex[:6]


def proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time), to tell a pid from a recycled one."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(root_pid: int, marker: str) -> dict[int, str | None]:
    """Live descendants of *root_pid* and of processes whose command line has *marker*.

    Thespian's admin daemonizes (its parent becomes pid 1), so the branch's actors are found
    by the branch root directory on their command line, then their children by ppid links.
    Returns pid -> start time.
    """
    children: dict[int, list[int]] = {}
    marked: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            if int(entry.name) != root_pid and marker in cmdline(int(entry.name)):
                marked.append(int(entry.name))
    found: dict[int, str | None] = {}
    todo = list(children.get(root_pid, [])) + marked
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = proc_start_time(pid)
            todo.extend(children.get(pid, []))
    return found


def kill_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by *pid* (a process started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def logged_ready(logfile: Path, node: str, after: float) -> float | None:
    """Wall-clock time of the first "<node> ready." line in a worker log at or after *after*.

    Celery logs local time with millisecond resolution; compared with ``time.time()``.
    """
    try:
        text = logfile.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("[") and line.rstrip().endswith(f"{node} ready."):
            try:
                stamp = datetime.datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:
                continue
            if stamp >= after - 0.001:
                return stamp
    return None


@dataclass
class Notes:
    """Odd things seen during the run, printed after the tables and kept in the JSON."""

    items: list[str] = field(default_factory=list)

    def add(self, msg: str) -> None:
        if msg not in self.items:
            log("NOTE: " + msg)
            self.items.append(msg)


NOTES = Notes()


# --------------------------------------------------------------------------
# Processes: a branch, bare workers, and the safety net around them
# --------------------------------------------------------------------------


class Branch:
    """A BranchProcess plus the bookkeeping needed to be sure nothing it started survives."""

    def __init__(self, root: Path, broker: str | None = None, branch_id: str = "bench") -> None:
        self.bp = BranchProcess(root, branch_id=branch_id, broker=broker)
        self.worker_pids: dict[int, str | None] = {}
        self.stopped = False

    def __enter__(self) -> Branch:
        t0 = time.perf_counter()
        try:
            self.bp.start(timeout=90)
        except BaseException:
            self.stop()
            raise
        log(f"branch up in {time.perf_counter() - t0:.2f}s at {self.bp.url} (log {self.bp.logfile})")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def track_worker(self, pid: int | None) -> None:
        """Remember a worker pid the branch reported, to check it is gone after the branch stops."""
        if pid and pid not in self.worker_pids:
            self.worker_pids[pid] = proc_start_time(pid)

    def create(self, path: str = f"/{APP}/") -> None:
        """``POST`` *path* (an app, a queue); raises unless it was created (201)."""
        created = self.bp.post(path)
        if created.status_code != 201:
            raise RuntimeError(f"POST {path}: HTTP {created.status_code}: {created.text[:300]}")

    def create_instance(self, name: str, **params: Any) -> dict[str, Any]:
        """``POST /<app>/instances/<name>/`` (returns once the worker answers ping), raising
        unless 201; tracks the worker's pid and returns the reply's body."""
        reply = self.bp.post(f"/{APP}/instances/{name}/", params=params or None, timeout=120)
        if reply.status_code != 201:
            raise RuntimeError(f"creating instance {name}: HTTP {reply.status_code}: {reply.text[:300]}")
        body: dict[str, Any] = reply.json()
        self.track_worker(body.get("pid"))
        return body

    def delete_instance(self, name: str) -> float:
        """``DELETE /<app>/instances/<name>/`` (sync); a failure becomes a note. Returns its seconds."""
        t0 = time.perf_counter()
        gone = self.bp.delete(f"/{APP}/instances/{name}/", timeout=120)
        took = time.perf_counter() - t0
        if gone.status_code != 200:
            NOTES.add(f"delete {name}: HTTP {gone.status_code}: {gone.text[:200]}")
        return took

    def stop(self) -> None:
        if self.stopped or self.bp.proc is None:
            return
        self.stopped = True
        tree = descendants(self.bp.proc.pid, f" {self.bp.root} ")
        tree.update(self.worker_pids)  # workers run in their own sessions
        t0 = time.perf_counter()
        try:
            code = self.bp.stop(timeout=60)
            log(
                f"branch stopped in {time.perf_counter() - t0:.2f}s (exit code {code}, {len(tree)} processes)"
            )
            if code != 0:
                NOTES.add(f"cyme-branch exited with code {code} on SIGTERM")
        except subprocess.TimeoutExpired:
            NOTES.add("cyme-branch did not exit within 60 s of SIGTERM; killed")
            self.bp.proc.kill()
            self.bp.proc.wait(10)
        # Anything the branch started that outlived it: report it, then kill it by PID.
        deadline = time.monotonic() + 5
        while True:
            left = {p: st for p, st in tree.items() if pid_alive(p) and proc_start_time(p) == st}
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for pid in left:
            NOTES.add(f"process left running after cyme-branch stopped: {pid} {cmdline(pid)[:120]}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        errors = self.log_problems()
        if errors:
            NOTES.add(f"branch log {self.bp.logfile.name}: {errors}")

    def log_problems(self) -> str:
        try:
            text = self.bp.logfile.read_text(errors="replace")
        except OSError:
            return ""
        counts = {
            "tracebacks": text.count("Traceback (most recent call last)"),
            "ERROR lines": sum(1 for line in text.splitlines() if ": ERROR/" in line or " ERROR " in line),
        }
        worker_tb = 0
        for path in list(self.bp.root.glob("*/worker.log")) + list(self.bp.root.glob("*/stderr.log")):
            with contextlib.suppress(OSError):
                worker_tb += path.read_text(errors="replace").count("Traceback (most recent call last)")
        counts["tracebacks in worker logs"] = worker_tb
        return ", ".join(f"{v} {k}" for k, v in counts.items() if v)


def bare_spec(
    workdir: Path,
    broker: str,
    name: str,
    *,
    queues: tuple[dict[str, Any], ...] = (),
    concurrency: int = 1,
    backend: str = "",
) -> WorkerSpec:
    """The spec cyme's supervisor would build for an instance *name* (see Supervisor.desired)."""
    config = BranchConfig(branch_id=BARE_HOST)  # the defaults a branch passes its workers
    settings = {**config.url_policy.as_env(), "CYME_RESULT_EXPIRES": str(config.result_expires)}
    return WorkerSpec(
        name=name,
        nodename=f"{name}@{BARE_HOST}",
        broker=broker,
        direct_queue=f"dq.{name}",
        queues=queues,
        max_concurrency=concurrency,
        min_concurrency=concurrency,
        root=workdir,
        loglevel="INFO",
        backend=backend,
        settings=tuple(sorted(settings.items())),
    )


class BareWorker:
    """A ``celery worker`` started by hand with cyme's own WorkerSpec command line and environment."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.node = spec.nodename
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = process.spawn(self.spec)  # own session, cwd and logs under the spec's directory

    def wait_pong(self, pinger: Pinger, timeout: float = 90) -> int:
        """Ping (0.2 s timeouts) until the worker answers; returns the number of pings sent."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        pings = 0
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"bare worker exited with {self.proc.returncode}; see {self.spec.directory}"
                )
            pings += 1
            if pinger.ping(self.node, timeout=0.2):
                return pings
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"bare worker {self.node} silent for {timeout}s; see {self.spec.directory}"
                )

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM by PID and wait; returns seconds to exit. SIGKILLs its group on timeout."""
        if self.proc is None:
            return 0.0
        pid = self.proc.pid
        t0 = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            NOTES.add(f"bare worker {self.node} ignored SIGTERM for {timeout}s; killed")
            kill_group(pid, signal.SIGKILL)
            self.proc.wait(10)
        elapsed = time.perf_counter() - t0
        # Pool children share the worker's process group: make sure none outlived it.
        deadline = time.monotonic() + 5
        while group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if group_members(pid):
            kill_group(pid, signal.SIGKILL)
        self.proc = None
        return elapsed


class Pinger:
    """Celery remote-control client on one broker, independent of cyme."""

    def __init__(self, broker: str) -> None:
        self.app = Celery("cyme-bench", broker=broker, set_as_current=False)

    def __enter__(self) -> Pinger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self, node: str, timeout: float = 0.2) -> bool:
        return bool(self.app.control.ping(destination=[node], timeout=timeout))

    def close(self) -> None:
        self.app.close()


# --------------------------------------------------------------------------
# Report, machine, main-loop plumbing
# --------------------------------------------------------------------------


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cpu_busy(interval: float = 1.0) -> float | None:
    """Fraction of all CPUs busy over *interval* seconds (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def foreign_workers() -> int:
    """Celery workers and cyme branches already running (not ours: we have started none yet)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            args = cmdline(int(entry.name))
            count += ("celery" in args and " worker" in args) or "cyme.cli.branch" in args
    return count


def machine(*packages: str, **extra: Any) -> dict[str, Any]:
    """Python, platform, CPUs, the versions of celery, kombu and *packages*, then *extra*."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    for name in ("celery", "kombu", *packages):
        info[name] = importlib.import_module(name).__version__
    return {**info, **extra}


def note_cpu_busy(results: dict[str, Any]) -> None:
    """Record how busy the machine is (a note if over 20% of all CPUs)."""
    results["cpu_busy_before"] = busy = cpu_busy()
    if busy is not None and busy > 0.2:
        NOTES.add(f"machine busy at start ({busy:.0%} of all CPUs over 1 s): figures will be noisy")


def preflight(results: dict[str, Any]) -> None:
    """Record how busy the machine is and whether someone else's workers run."""
    note_cpu_busy(results)
    others = results["foreign_processes_before"] = foreign_workers()
    if others:
        NOTES.add(f"{others} celery worker / cyme-branch processes not started by this run were running")


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def temp_workdir(keep: bool, prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    ok = False
    try:
        yield path
        ok = True
    finally:
        if keep or not ok:
            log(f"kept work directory {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------
# Command line and main()
# --------------------------------------------------------------------------


def parse_with_presets(
    parse: argparse.ArgumentParser,
    argv: list[str] | None,
    quick_help: str,
    quick: dict[str, Any],
    full: dict[str, Any],
) -> argparse.Namespace:
    """Add ``--quick``, ``--json`` and ``--keep`` to *parse* and parse *argv*; options left
    unset (None) take their value from the *quick* or the *full* preset."""
    parse.add_argument("--quick", action="store_true", help=quick_help)
    parse.add_argument("--json", type=Path, help="also write all figures and raw samples here")
    parse.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parse.parse_args(argv)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def run_bench(
    args: argparse.Namespace,
    measure: Callable[[argparse.Namespace, dict[str, Any]], None],
    report: Callable[[dict[str, Any]], str],
    machine_info: dict[str, Any] | None = None,
    **fields: Any,
) -> int:
    """The body of a script's main(): *measure* into the results (machine, config, *fields*),
    then print the *report* with the notes and the total time, and write the JSON if asked."""
    signal.signal(signal.SIGTERM, on_sigterm)
    results: dict[str, Any] = {
        "machine": machine() if machine_info is None else machine_info,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        **fields,
    }
    t_begin = time.perf_counter()
    measure(args, results)
    results["notes"] = NOTES.items
    results["elapsed_s"] = time.perf_counter() - t_begin
    out = [text] if (text := report(results)) else []
    if results["notes"]:
        out += ["", "Notes:", *(f"- {n}" for n in results["notes"])]
    print("\n".join(out))
    print(f"\n(total {results['elapsed_s']:.0f}s; {results['machine']['cpus']} CPUs, "
          f"Python {results['machine']['python']}, celery {results['machine']['celery']})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")
    return 0


def run_script(main: Callable[[], int]) -> NoReturn:
    """``sys.exit(main())``; on Ctrl-C or SIGTERM (once everything is stopped) exit 130."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        sys.exit(130)
