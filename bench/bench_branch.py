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
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from bench.common import (
    APP,
    NOTES,
    BareWorker,
    Branch,
    Pinger,
    bare_spec,
    cmdline,
    descendants,
    log,
    machine,
    median,
    note_cpu_busy,
    parse_with_presets,
    percentile,
    proc_start_time,
    ratio,
    run_bench,
    run_script,
    short_id,
    table,
    temp_workdir,
)
from tests.brokers import redis_available, start_redis
from tests.helpers import pid_alive

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
    deleted = branch.delete_instance(name)
    pid = body.get("pid")
    if pid and pid_alive(pid) and proc_start_time(pid) == branch.worker_pids.get(pid):
        NOTES.add(f"worker pid {pid} of {name} still alive right after the sync DELETE returned")
    return {"name": name, "start_s": started, "delete_s": deleted, "status": reply.status_code}


def time_bare_start(
    workdir: Path, broker: str, pinger: Pinger, round_no: int, stack: contextlib.ExitStack
) -> dict[str, Any]:
    worker = BareWorker(bare_spec(workdir, broker, f"b{round_no}-{short_id()}"))
    stack.callback(worker.stop)  # safety net; a no-op once stopped below
    t0 = time.perf_counter()
    worker.start()
    pings = worker.wait_pong(pinger)
    started = time.perf_counter() - t0
    stopped = worker.stop()
    return {"name": worker.spec.name, "start_s": started, "stop_s": stopped, "pings": pings}


def run_start_rounds(
    kind: str, branch: Branch, workdir: Path, rounds: int, stack: contextlib.ExitStack
) -> dict[str, Any]:
    broker = branch.bp.broker_url()
    pinger = stack.enter_context(Pinger(broker))
    branch.create(f"/{APP}/")
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


def gunicorn_setup(branch_pid: int) -> str:
    """How the branch runs gunicorn, from the master's command line (e.g. ``2 sync workers``)."""
    for pid in descendants(branch_pid, "\0never\0"):
        args = cmdline(pid).split()
        if "gunicorn" in args and pid_alive(pid):

            def opt(name: str, default: str, args: list[str] = args) -> str:
                return args[args.index(name) + 1] if name in args[:-1] else default

            workers, kind = opt("--workers", "1"), opt("--worker-class", "sync")
            threads = opt("--threads", "1")
            return f"{workers} {kind} workers" + (f" x {threads} threads" if threads != "1" else "")
    return "unknown setup"


def bench_get(branch: Branch, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    bp = branch.bp
    assert bp.proc is not None
    server = gunicorn_setup(bp.proc.pid)
    name = f"get-{short_id()}"
    branch.create_instance(name)
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
        branch.delete_instance(name)
    ping, inst = "GET /ping/", "GET /<app>/instances/<name>/"
    return {
        "http_server": server,
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
            f"GET on the embedded-broker branch (gunicorn: {get.get('http_server', '?')}); sequential: "
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
    return "\n".join(out)


def foreign_processes(exclude: str) -> set[tuple[int, str | None]]:
    """Processes of someone else that compete for the CPUs or the ports: celery workers, cyme
    branches, pytest runs, RabbitMQ, other benchmarks (cmdline without *exclude*)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), os.getppid()):
            continue
        args = cmdline(int(entry.name))
        if not args or (exclude and exclude in args) or "bench_branch.py" in args:
            continue
        if (
            ("celery" in args and " worker" in args)
            or "cyme.cli.branch" in args
            or "pytest" in args
            or "beam.smp" in args
            or "bench/bench_" in args
        ):
            found.add((int(entry.name), proc_start_time(int(entry.name))))
    return found


class Watcher(threading.Thread):
    """Samples foreign processes once a second while the benchmark runs."""

    def __init__(self, exclude: str) -> None:
        super().__init__(name="watcher", daemon=True)
        self.exclude = exclude
        self.before = foreign_processes(exclude)
        self.seen: set[tuple[int, str | None]] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.seen |= foreign_processes(self.exclude)

    def stop(self) -> set[tuple[int, str | None]]:
        """Foreign processes that appeared after the start."""
        self.done.set()
        self.join(5)
        return self.seen - self.before


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parse = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parse.add_argument("--rounds", type=int, default=None, help="instance starts per side and broker (5)")
    parse.add_argument("--seq-requests", type=int, default=None, help="sequential GETs per endpoint (500)")
    parse.add_argument("--duration", type=float, default=None, help="seconds of load per endpoint (5)")
    parse.add_argument("--concurrency", type=int, default=8, help="concurrent connections under load (8)")
    parse.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                       help="load generator: wrk if installed (auto), or Python threads")  # fmt: skip
    parse.add_argument("--brokers", default="embedded,redis", help="comma-separated: embedded,redis")
    parse.add_argument("--skip-start", action="store_true", help="skip the instance start benchmark")
    parse.add_argument("--skip-get", action="store_true", help="skip the GET benchmark")
    args = parse_with_presets(
        parse,
        argv,
        "fewer rounds and shorter load (~1 minute)",
        quick={"rounds": 2, "seq_requests": 200, "duration": 2.0},
        full={"rounds": 5, "seq_requests": 500, "duration": 5.0},
    )
    args.brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    unknown = set(args.brokers) - {"embedded", "redis"}
    if unknown:
        parse.error(f"unknown broker(s): {', '.join(sorted(unknown))}")
    return args


def measure(args: argparse.Namespace, results: dict[str, Any]) -> None:
    note_cpu_busy(results)
    with temp_workdir(args.keep, "cyme-bench-") as workdir:
        watcher = Watcher(str(workdir))
        results["foreign_processes_before"] = len(watcher.before)
        if watcher.before:
            NOTES.add(
                f"{len(watcher.before)} processes of someone else (celery workers, branches, pytest, "
                "RabbitMQ, benchmarks) were running at start: figures may be disturbed"
            )
        watcher.start()
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
        appeared = watcher.stop()
        results["foreign_processes_during"] = len(appeared)
        if appeared:
            NOTES.add(
                f"{len(appeared)} processes of someone else (celery workers, branches, pytest, "
                "RabbitMQ, benchmarks) started during the run: figures disturbed"
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine("falcon", "gunicorn", wrk=shutil.which("wrk"))
    return run_bench(args, measure, report, info, start=[])


if __name__ == "__main__":
    run_script(main)
