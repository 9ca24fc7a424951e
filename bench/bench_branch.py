#!/usr/bin/env python
"""Benchmark a real ``cyme-branch`` against its peers, side by side, on this machine.

1. Instance start: ``POST /<app>/instances/<name>/`` (sync: returns once the worker answers
   ping) against a bare ``celery worker`` started by hand the way cyme starts it and polled
   with ``control.ping`` until it answers; on the embedded broker and on a private redis-server.
2. GET latency and throughput of ``GET /<app>/instances/<name>/`` under gunicorn against
   ``GET /ping/`` on the same server (asks the branch actor, touches no DB).

Run from the repository root::

    PYTHONPATH=. .venv/bin/python bench/bench_branch.py [--quick] [--json out.json]

Every process this script starts is stopped by its PID, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``tests`` importable without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from celery import Celery

from tests.brokers import group_members, redis_available, start_redis
from tests.helpers import BranchProcess, pid_alive

APP = "bench"
BARE_HOST = "bench"


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
    return uuid.uuid4().hex[:8]


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


def descendants(root_pid: int) -> dict[int, str | None]:
    """Live descendants of *root_pid* (pid -> start time), found through /proc ppid links."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, str | None] = {}
    todo = list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = proc_start_time(pid)
            todo.extend(children.get(pid, []))
    return found


def kill_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group led by *pid* (a process we started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@dataclass
class Notes:
    """Odd things seen during the run, printed after the table and kept in the JSON."""

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

    def __init__(self, root: Path, broker: str | None) -> None:
        self.bp = BranchProcess(root, branch_id="bench", broker=broker)
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
        if pid:
            self.worker_pids[pid] = proc_start_time(pid)

    def stop(self) -> None:
        if self.stopped or self.bp.proc is None:
            return
        self.stopped = True
        tree = descendants(self.bp.proc.pid)
        tree.update(self.worker_pids)  # workers run in their own sessions but are still children
        t0 = time.perf_counter()
        try:
            code = self.bp.stop(timeout=60)
            log(f"branch stopped in {time.perf_counter() - t0:.2f}s (exit code {code})")
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
        worker_logs = list(self.bp.root.glob("*/worker.log")) + list(self.bp.root.glob("*/stderr.log"))
        worker_tb = 0
        for path in worker_logs:
            with contextlib.suppress(OSError):
                worker_tb += path.read_text(errors="replace").count("Traceback (most recent call last)")
        counts["tracebacks in worker logs"] = worker_tb
        return ", ".join(f"{v} {k}" for k, v in counts.items() if v)


class BareWorker:
    """A ``celery worker`` started by hand exactly as cyme starts an instance's worker."""

    def __init__(self, workdir: Path, broker: str, name: str) -> None:
        self.name = name
        self.node = f"{name}@{BARE_HOST}"
        self.dir = workdir / name
        self.broker = broker
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "cyme.workers.app", "worker",
            "-n", self.node, "-Q", f"dq.{self.name}", "--autoscale=1,1",
            "--without-mingle", "--without-gossip", "--loglevel", "INFO",
            "--pidfile", str(self.dir / "worker.pid"), "--logfile", str(self.dir / "worker.log"),
        ]  # fmt: skip

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        env = dict(
            os.environ,
            CYME_BROKER_URL=self.broker,
            CYME_QUEUES="[]",
            CYME_DIRECT_QUEUE=f"dq.{self.name}",
        )
        with open(self.dir / "stderr.log", "ab") as out:
            self.proc = subprocess.Popen(
                self.command(),
                env=env,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM the worker by PID and wait; returns seconds to exit. SIGKILLs its group on timeout."""
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

    def ping(self, node: str, timeout: float = 0.2) -> bool:
        return bool(self.app.control.ping(destination=[node], timeout=timeout))

    def close(self) -> None:
        self.app.close()


# --------------------------------------------------------------------------
# 1. Instance start
# --------------------------------------------------------------------------


def time_cyme_start(branch: Branch, pinger: Pinger, round_no: int) -> dict[str, Any]:
    name = f"c{round_no}-{short_id()}"
    bp = branch.bp
    t0 = time.perf_counter()
    reply = bp.post(f"/{APP}/instances/{name}/", timeout=120)
    started = time.perf_counter() - t0
    body = reply.json() if reply.headers.get("content-type", "").startswith("application/json") else {}
    branch.track_worker(body.get("pid"))
    if reply.status_code != 201 or body.get("status") != "online":
        NOTES.add(
            f"create {name}: HTTP {reply.status_code}, status {body.get('status')!r}: {reply.text[:200]}"
        )
    node = f"{name}@{bp.branch_id}"
    answers = pinger.ping(node, timeout=2.0)
    if not answers:
        NOTES.add(f"instance {name} reported created but its worker did not answer ping within 2 s")
    t1 = time.perf_counter()
    gone = bp.delete(f"/{APP}/instances/{name}/", timeout=120)
    deleted = time.perf_counter() - t1
    if gone.status_code != 200:
        NOTES.add(f"delete {name}: HTTP {gone.status_code}: {gone.text[:200]}")
    pid = body.get("pid")
    if pid and pid_alive(pid) and proc_start_time(pid) == branch.worker_pids.get(pid):
        NOTES.add(f"worker pid {pid} of {name} still alive right after the sync DELETE returned")
    return {"name": name, "start_s": started, "delete_s": deleted, "status": reply.status_code}


def time_bare_start(
    workdir: Path, broker: str, pinger: Pinger, round_no: int, stack: contextlib.ExitStack
) -> dict[str, Any]:
    worker = BareWorker(workdir, broker, f"b{round_no}-{short_id()}")
    stack.callback(worker.stop)  # safety net; a no-op once stopped below
    t0 = time.perf_counter()
    worker.start()
    assert worker.proc is not None
    deadline = t0 + 90
    pings = 0
    while True:
        if worker.proc.poll() is not None:
            raise RuntimeError(f"bare worker exited with {worker.proc.returncode}; see {worker.dir}")
        pings += 1
        if pinger.ping(worker.node, timeout=0.2):
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"bare worker {worker.node} did not answer ping in 90 s; see {worker.dir}")
    started = time.perf_counter() - t0
    stopped = worker.stop()
    return {"name": worker.name, "start_s": started, "stop_s": stopped, "pings": pings}


def run_start_rounds(
    kind: str, branch: Branch, workdir: Path, rounds: int, stack: contextlib.ExitStack
) -> dict[str, Any]:
    broker = branch.bp.broker_url()
    pinger = Pinger(broker)
    stack.callback(pinger.close)
    created = branch.bp.post(f"/{APP}/")
    if created.status_code != 201:
        raise RuntimeError(f"creating app {APP}: HTTP {created.status_code}: {created.text[:300]}")
    cyme: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    for i in range(rounds):
        # Alternate the order so drift (caches, CPU frequency) does not favour one side.
        steps: list[Callable[[], None]] = [
            lambda i=i: cyme.append(time_cyme_start(branch, pinger, i)),
            lambda i=i: bare.append(time_bare_start(workdir / "bare", broker, pinger, i, stack)),
        ]
        for step in steps if i % 2 == 0 else reversed(steps):
            step()
        log(
            f"{kind} round {i + 1}/{rounds}: cyme {cyme[-1]['start_s']:.3f}s "
            f"(delete {cyme[-1]['delete_s']:.3f}s), bare {bare[-1]['start_s']:.3f}s "
            f"(stop {bare[-1]['stop_s']:.3f}s)"
        )
    c_med = median([r["start_s"] for r in cyme])
    b_med = median([r["start_s"] for r in bare])
    return {
        "broker": kind,
        "broker_url": broker if kind != "embedded" else "redis+socket://<root>/broker.sock",
        "cyme_start_median_s": c_med,
        "bare_start_median_s": b_med,
        "ratio_cyme_over_bare": ratio(c_med, b_med),
        "cyme_delete_median_s": median([r["delete_s"] for r in cyme]),
        "bare_stop_median_s": median([r["stop_s"] for r in bare]),
        "cyme_rounds": cyme,
        "bare_rounds": bare,
    }


# --------------------------------------------------------------------------
# 2. GET latency and throughput
# --------------------------------------------------------------------------


def sequential(url_by_label: dict[str, str], n: int) -> dict[str, dict[str, Any]]:
    """Interleaved sequential GETs with one requests.Session; latencies in ms."""
    lat: dict[str, list[float]] = {k: [] for k in url_by_label}
    bad: dict[str, int] = dict.fromkeys(url_by_label, 0)
    with requests.Session() as session:
        for url in url_by_label.values():  # warm-up
            for _ in range(20):
                session.get(url, timeout=30)
        for _ in range(n):
            for label, url in url_by_label.items():
                t0 = time.perf_counter()
                reply = session.get(url, timeout=30)
                lat[label].append((time.perf_counter() - t0) * 1000)
                if reply.status_code != 200:
                    bad[label] += 1
    return {
        label: {
            "requests": n,
            "non_200": bad[label],
            "median_ms": median(lat[label]),
            "p95_ms": percentile(lat[label], 95),
            "seq_req_s": n / (sum(lat[label]) / 1000),
        }
        for label in url_by_label
    }


WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def load_wrk(url: str, concurrency: int, duration: float, workdir: Path) -> dict[str, Any]:
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    threads = max(1, min(concurrency, os.cpu_count() or 1))
    cmd = ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{duration:g}s", "-s", str(script), url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=duration + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    line = next((ln for ln in out.decode().splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary: {out.decode()[-500:]}")
    reqs, dur_us, p50, p95, errors = (int(x) for x in line.split()[1:])
    return {
        "client": "wrk",
        "requests": reqs,
        "errors": errors,
        "req_s": reqs / (dur_us / 1e6),
        "median_ms": p50 / 1000,
        "p95_ms": p95 / 1000,
    }


def load_python(url: str, concurrency: int, duration: float) -> dict[str, Any]:
    """*concurrency* threads, one http.client connection each, for *duration* seconds."""
    parsed = requests.utils.urlparse(url)
    host, port, path = parsed.hostname or "127.0.0.1", parsed.port or 80, parsed.path or "/"
    stop_at = 0.0
    lat: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    barrier = threading.Barrier(concurrency + 1)

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine = lat[slot]
        barrier.wait()
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    break
                try:
                    conn.request("GET", path)
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status != 200:
                        errors[slot] += 1
                except (OSError, http.client.HTTPException):
                    errors[slot] += 1
                    conn.close()
                    continue
                mine.append((time.perf_counter() - t0) * 1000)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    stop_at = start + duration
    barrier.wait()
    for t in threads:
        t.join(duration + 60)
    elapsed = time.perf_counter() - start
    every = [x for slot in lat for x in slot]
    return {
        "client": "python-threads",
        "requests": len(every),
        "errors": sum(errors),
        "req_s": len(every) / elapsed,
        "median_ms": median(every),
        "p95_ms": percentile(every, 95),
    }


def bench_get(branch: Branch, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    bp = branch.bp
    name = f"get-{short_id()}"
    reply = bp.post(f"/{APP}/instances/{name}/", timeout=120)
    if reply.status_code != 201:
        raise RuntimeError(f"creating instance {name}: HTTP {reply.status_code}: {reply.text[:300]}")
    branch.track_worker(reply.json().get("pid"))
    try:
        probe = bp.get(f"/{APP}/instances/{name}/")
        if probe.json().get("status") != "online":
            NOTES.add(f"GET /{APP}/instances/{name}/ says status {probe.json().get('status')!r}, not online")
        urls = {
            "GET /ping/": f"{bp.url}/ping/",
            "GET /<app>/instances/<name>/": f"{bp.url}/{APP}/instances/{name}/",
        }
        log(f"sequential GETs: {args.seq_requests} of each, interleaved")
        seq = sequential(urls, args.seq_requests)
        use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
        load: dict[str, dict[str, Any]] = {}
        for label, url in urls.items():
            client = "wrk" if use_wrk else "python"
            log(f"load: {label}, concurrency {args.concurrency}, {args.duration:g}s ({client})")
            if use_wrk:
                load[label] = load_wrk(url, args.concurrency, args.duration, workdir)
            else:
                load[label] = load_python(url, args.concurrency, args.duration)
            if load[label]["errors"]:
                NOTES.add(f"{label} under load: {load[label]['errors']} errors / non-2xx replies")
        for label, figures in seq.items():
            if figures["non_200"]:
                NOTES.add(f"{label} sequential: {figures['non_200']} non-200 replies")
    finally:
        gone = bp.delete(f"/{APP}/instances/{name}/", timeout=120)
        if gone.status_code != 200:
            NOTES.add(f"delete {name}: HTTP {gone.status_code}: {gone.text[:200]}")
    ping, inst = "GET /ping/", "GET /<app>/instances/<name>/"
    return {
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "load_client": load[ping]["client"],
        "sequential": seq,
        "load": load,
        "ratio_instance_over_ping": {
            "seq_median": ratio(seq[inst]["median_ms"], seq[ping]["median_ms"]),
            "seq_p95": ratio(seq[inst]["p95_ms"], seq[ping]["p95_ms"]),
            "load_req_s": ratio(load[inst]["req_s"], load[ping]["req_s"]),
            "load_median": ratio(load[inst]["median_ms"], load[ping]["median_ms"]),
            "load_p95": ratio(load[inst]["p95_ms"], load[ping]["p95_ms"]),
        },
    }


# --------------------------------------------------------------------------
# Report
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


def report(results: dict[str, Any]) -> str:
    out = []
    starts = results.get("start", [])
    if starts:
        rounds = results["config"]["rounds"]
        out.append(f"Instance start, create -> answers ping (median of {rounds} rounds, seconds)")
        rows = [["broker", "cyme POST", "bare celery", "cyme/bare", "cyme DELETE", "bare SIGTERM"]]
        for s in starts:
            rows.append([
                s["broker"],
                f"{s['cyme_start_median_s']:.3f}",
                f"{s['bare_start_median_s']:.3f}",
                f"{s['ratio_cyme_over_bare']:.2f}x",
                f"{s['cyme_delete_median_s']:.3f}",
                f"{s['bare_stop_median_s']:.3f}",
            ])  # fmt: skip
        out.append(table(rows))
    get = results.get("get")
    if get:
        out.append("")
        out.append(
            f"GET on the embedded-broker branch (gunicorn, 2 sync workers); sequential: "
            f"{results['config']['seq_requests']} requests/endpoint; load: c={get['concurrency']}, "
            f"{get['duration_s']:g}s, client {get['load_client']}"
        )
        rows = [["endpoint", "seq med ms", "seq p95 ms", "load req/s", "load med ms", "load p95 ms"]]
        for label in get["sequential"]:
            s, ld = get["sequential"][label], get["load"][label]
            rows.append([
                label,
                f"{s['median_ms']:.2f}",
                f"{s['p95_ms']:.2f}",
                f"{ld['req_s']:.0f}",
                f"{ld['median_ms']:.2f}",
                f"{ld['p95_ms']:.2f}",
            ])  # fmt: skip
        r = get["ratio_instance_over_ping"]
        rows.append([
            "ratio instance/ping",
            f"{r['seq_median']:.2f}x",
            f"{r['seq_p95']:.2f}x",
            f"{r['load_req_s']:.2f}x",
            f"{r['load_median']:.2f}x",
            f"{r['load_p95']:.2f}x",
        ])  # fmt: skip
        out.append(table(rows))
    if results.get("notes"):
        out.append("")
        out.append("Notes:")
        out.extend(f"- {n}" for n in results["notes"])
    return "\n".join(out)


def loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine() -> dict[str, Any]:
    import celery
    import falcon
    import gunicorn
    import kombu

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "falcon": falcon.__version__,
        "gunicorn": gunicorn.__version__,
        "wrk": shutil.which("wrk"),
    }


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parse = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parse.add_argument("--rounds", type=int, default=None, help="instance starts per side and broker (5)")
    parse.add_argument("--seq-requests", type=int, default=None, help="sequential GETs per endpoint (500)")
    parse.add_argument("--duration", type=float, default=None, help="seconds of load per endpoint (5)")
    parse.add_argument("--concurrency", type=int, default=8, help="concurrent connections under load (8)")
    parse.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                       help="load generator: wrk if installed (auto), or Python threads")  # fmt: skip
    parse.add_argument("--brokers", default="embedded,redis", help="comma-separated: embedded,redis")
    parse.add_argument("--skip-start", action="store_true", help="skip the instance start benchmark")
    parse.add_argument("--skip-get", action="store_true", help="skip the GET benchmark")
    parse.add_argument("--quick", action="store_true", help="fewer rounds and shorter load (~1 minute)")
    parse.add_argument("--json", type=Path, help="also write all figures and raw samples here")
    parse.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parse.parse_args(argv)
    quick = {"rounds": 2, "seq_requests": 200, "duration": 2.0}
    full = {"rounds": 5, "seq_requests": 500, "duration": 5.0}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    unknown = set(args.brokers) - {"embedded", "redis"}
    if unknown:
        parse.error(f"unknown broker(s): {', '.join(sorted(unknown))}")
    return args


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def temp_workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cyme-bench-"))
    ok = False
    try:
        yield path
        ok = True
    finally:
        if keep or not ok:
            log(f"kept work directory {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    results: dict[str, Any] = {
        "machine": machine(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "start": [],
    }
    t_begin = time.perf_counter()
    results["loadavg_before"] = load = loadavg()
    if load is not None and load > 0.5 * (os.cpu_count() or 1):
        NOTES.add(f"machine busy at start (1-min load average {load:.2f}): figures will be noisy")
    with temp_workdir(args.keep) as workdir:
        for kind in args.brokers:
            if args.skip_start and (kind != "embedded" or args.skip_get):
                continue
            with contextlib.ExitStack() as stack:
                broker = None
                if kind == "redis":
                    if not redis_available():
                        NOTES.add("redis-server is not installed: redis rows skipped")
                        continue
                    server = start_redis(workdir / "redis")
                    stack.callback(server.stop)
                    broker = server.url
                    log(f"redis-server pid {server.pid} at {server.url}")
                branch = stack.enter_context(Branch(workdir / kind / "root", broker))
                if not args.skip_start:
                    results["start"].append(
                        run_start_rounds(kind, branch, workdir / kind, args.rounds, stack)
                    )
                elif kind == "embedded":
                    branch.bp.post(f"/{APP}/")
                if kind == "embedded" and not args.skip_get:
                    results["get"] = bench_get(branch, args, workdir)
        if "embedded" not in args.brokers and not args.skip_get:
            NOTES.add("GET benchmark needs the embedded broker; skipped")
    results["loadavg_after"] = loadavg()
    results["notes"] = NOTES.items
    results["elapsed_s"] = time.perf_counter() - t_begin
    print(report(results))
    print(f"\n(total {results['elapsed_s']:.0f}s; {results['machine']['cpus']} CPUs, "
          f"Python {results['machine']['python']}, celery {results['machine']['celery']})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        sys.exit(130)
