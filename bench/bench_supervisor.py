#!/usr/bin/env python
"""Benchmark cyme's supervisor against bare Celery workers, side by side, on this machine.

1. Recovery: a branch (embedded broker, ``--sup-interval 1``) with one instance; each round
   ``kill -9`` its worker (pid from ``GET /<app>/instances/<name>/``) and time until a *new*
   worker process answers a Celery ``control.ping`` (polled with 0.2 s timeouts on the
   branch's broker). Peer: a cold start of a bare ``celery worker`` with the command line and
   environment cyme uses (``WorkerSpec.command()`` / ``environment()``), Popen to first pong.
   Consecutive kills of one instance run into the supervisor's crash-loop backoff (1, 2, 4 ...
   s from the second failure until the worker has been online 30 s): the table shows the raw
   times and the times less the backoff the branch logged.
2. Bring-up: ``POST /<app>/instances/<name>/`` for N instances (N = 1, 5, 10), fired
   concurrently from N threads until all returned 201 (each returns once its worker answers
   ping), then one after another; instances are deleted between runs. Peer: N bare workers
   started at once by hand, until all answer ping.

Run from the repository root::

    .venv/bin/python bench/bench_supervisor.py [--quick] [--json out.json]

Every process this script starts is stopped by its PID, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
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
    log,
    logged_ready,
    median,
    parse_with_presets,
    preflight,
    proc_start_time,
    ratio,
    run_bench,
    run_script,
    short_id,
    table,
    temp_workdir,
)
from tests.brokers import group_members
from tests.helpers import pid_alive, worker_pids

# --------------------------------------------------------------------------
# 1. Recovery after kill -9
# --------------------------------------------------------------------------


def backoff_logged(branch: Branch, name: str, offset: int) -> float:
    """Seconds of backoff the supervisor announced for *name* in the branch log after *offset*."""
    with open(branch.bp.logfile, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode(errors="replace")
    pattern = re.compile(rf"\b{re.escape(name)} backoff: next start in (\d+(?:\.\d+)?)s")
    return sum(float(m.group(1)) for m in pattern.finditer(text))


def instance_info(branch: Branch, name: str) -> dict[str, Any]:
    """``GET /<app>/instances/<name>/``; an error reply is noted and read as "not online"."""
    try:
        reply = branch.bp.get(f"/{APP}/instances/{name}/", timeout=30)
    except requests.RequestException as exc:
        NOTES.add(f"GET instance {name}: {type(exc).__name__}")
        return {}
    if reply.status_code != 200:
        NOTES.add(f"GET instance {name}: HTTP {reply.status_code}: {reply.text[:160]}")
        return {}
    return reply.json()  # type: ignore[no-any-return]


def kill_round(branch: Branch, pinger: Pinger, name: str, timeout: float = 180) -> dict[str, Any]:
    """kill -9 the instance's worker; time until a new worker pongs (and until the API says so)."""
    bp = branch.bp
    node = f"{name}@{bp.branch_id}"
    info = instance_info(branch, name)
    old = info.get("pid")
    if info.get("status") != "online" or not old:
        raise RuntimeError(f"instance {name} is not online before the kill: {info}")
    offset = bp.logfile.stat().st_size
    wall = time.time()
    t0 = time.perf_counter()
    os.kill(int(old), signal.SIGKILL)
    api_online: float | None = None
    pings = 0
    deadline = t0 + timeout
    while True:
        if api_online is None:
            now = instance_info(branch, name)
            if now.get("status") == "online" and now.get("pid") not in (None, old):
                api_online = time.perf_counter() - t0
        pings += 1
        if pinger.ping(node, timeout=0.2):
            pong = time.perf_counter() - t0
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{node} did not answer ping within {timeout}s of kill -9")
    while api_online is None:  # the pong came first: keep watching the API, it should follow
        now = instance_info(branch, name)
        if now.get("status") == "online" and now.get("pid") not in (None, old):
            api_online = time.perf_counter() - t0
        elif time.perf_counter() > deadline:
            NOTES.add(f"{name}: GET never showed a new online pid after kill -9")
            api_online = float("nan")
        else:
            time.sleep(0.02)
    pids = worker_pids(node)
    if pid_alive(int(old)) or old in pids:
        NOTES.add(f"{name}: old worker pid {old} still alive after recovery")
    if len(pids) != 1:
        NOTES.add(f"{name}: {len(pids)} worker processes named {node} after recovery: {pids}")
    after = instance_info(branch, name)
    branch.track_worker(after.get("pid"))
    if pids and after.get("pid") != pids[0]:
        NOTES.add(f"{name}: API pid {after.get('pid')} differs from the running worker {pids}")
    orphans = group_members(int(old))
    if orphans:
        NOTES.add(f"{name}: pool children of the killed worker left running: {orphans}")
    backoff = backoff_logged(branch, name, offset)
    ready = logged_ready(bp.root / name / "worker.log", node, wall)
    return {
        "old_pid": old,
        "new_pid": after.get("pid"),
        "recovery_s": pong,
        "api_online_s": api_online,
        "backoff_s": backoff,
        "net_s": pong - backoff,
        "ready_s": (ready - wall) if ready else float("nan"),
        "ready_net_s": (ready - wall - backoff) if ready else float("nan"),
        "restarts": after.get("restarts"),
        "pings": pings,
    }


def cold_start(workdir: Path, broker: str, pinger: Pinger, label: str) -> dict[str, Any]:
    worker = BareWorker(bare_spec(workdir, broker, f"{label}-{short_id()}", backend=broker))
    try:
        wall = time.time()
        t0 = time.perf_counter()
        worker.start()
        pings = worker.wait_pong(pinger)
        started = time.perf_counter() - t0
    finally:
        stopped = worker.stop()
    ready = logged_ready(worker.spec.logfile, worker.node, wall)
    return {
        "name": worker.spec.name,
        "start_s": started,
        "ready_s": (ready - wall) if ready else float("nan"),
        "stop_s": stopped,
        "pings": pings,
    }


def bench_recovery(branch: Branch, pinger: Pinger, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    bp = branch.bp
    broker = bp.broker_url()
    name = f"rec-{short_id()}"
    branch.create_instance(name)
    kills: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    try:
        for i in range(args.rounds):
            steps: list[Callable[[], None]] = [
                lambda: kills.append(kill_round(branch, pinger, name)),
                lambda i=i: bare.append(cold_start(workdir / "bare", broker, pinger, f"cold{i}")),
            ]
            for step in steps if i % 2 == 0 else reversed(steps):
                step()
            k = kills[-1]
            log(
                f"recovery round {i + 1}/{args.rounds}: cyme {k['recovery_s']:.3f}s "
                f"(backoff {k['backoff_s']:g}s, API online {k['api_online_s']:.3f}s, "
                f"pid {k['old_pid']} -> {k['new_pid']}), bare cold start {bare[-1]['start_s']:.3f}s"
            )
            if args.settle and i < args.rounds - 1:
                time.sleep(args.settle)
    finally:
        branch.delete_instance(name)
    if any(k["backoff_s"] for k in kills):
        NOTES.add(
            "consecutive kills of one instance hit the supervisor's crash-loop backoff "
            f"({', '.join(format(k['backoff_s'], 'g') for k in kills)} s per round); "
            "'less backoff' subtracts it"
        )
    raw = median([k["recovery_s"] for k in kills])
    net = median([k["net_s"] for k in kills])
    cold = median([b["start_s"] for b in bare])
    cold_ready = median([b["ready_s"] for b in bare])
    return {
        "instance": name,
        "rounds": args.rounds,
        "settle_s": args.settle,
        "recovery_median_s": raw,
        "recovery_net_median_s": net,
        "api_online_median_s": median([k["api_online_s"] for k in kills]),
        "first_recovery_s": kills[0]["recovery_s"] if kills else float("nan"),
        "bare_cold_start_median_s": cold,
        "bare_stop_median_s": median([b["stop_s"] for b in bare]),
        "ratio_recovery_over_bare": ratio(raw, cold),
        "ratio_net_over_bare": ratio(net, cold),
        "ready_net_median_s": median([k["ready_net_s"] for k in kills]),
        "bare_ready_median_s": cold_ready,
        "ratio_ready_net_over_bare": ratio(median([k["ready_net_s"] for k in kills]), cold_ready),
        "kills": kills,
        "bare": bare,
    }


# --------------------------------------------------------------------------
# 2. Bring-up of N instances
# --------------------------------------------------------------------------


def http_all(
    bp_url: str, method: str, paths: list[str], concurrent: bool, timeout: float = 180
) -> tuple[float, list[tuple[int, float, dict[str, Any] | str]]]:
    """Make one request per path, all at once from threads or one after another.

    Returns the seconds until the last reply and (status, seconds, body) per path.
    """
    replies: list[tuple[int, float, dict[str, Any] | str]] = [(0, 0.0, "")] * len(paths)

    def one(slot: int, t_start: float) -> None:
        try:
            reply = requests.request(method, bp_url + paths[slot], timeout=timeout)
            try:
                body: dict[str, Any] | str = reply.json()
            except ValueError:
                body = reply.text[:300]
            replies[slot] = (reply.status_code, time.perf_counter() - t_start, body)
        except requests.RequestException as exc:
            replies[slot] = (-1, time.perf_counter() - t_start, f"{type(exc).__name__}: {exc}")

    if concurrent:
        barrier = threading.Barrier(len(paths) + 1)
        t0 = 0.0

        def run(slot: int) -> None:
            barrier.wait()
            one(slot, t0)

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(paths))]
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        barrier.wait()
        for t in threads:
            t.join(timeout + 30)
    else:
        t0 = time.perf_counter()
        for i in range(len(paths)):
            one(i, time.perf_counter())
    return time.perf_counter() - t0, replies


def cyme_bringup(branch: Branch, pinger: Pinger, n: int, concurrent: bool) -> dict[str, Any]:
    bp = branch.bp
    mode = "conc" if concurrent else "seq"
    names = [f"up{n}{mode[0]}{j}-{short_id()}" for j in range(n)]
    paths = [f"/{APP}/instances/{name}/" for name in names]
    total, replies = http_all(bp.url, "POST", paths, concurrent)
    for name, (status, _, body) in zip(names, replies):
        if isinstance(body, dict):
            branch.track_worker(body.get("pid"))
        if status != 201 or not isinstance(body, dict) or body.get("status") != "online":
            status_of = body.get("status") if isinstance(body, dict) else body
            NOTES.add(f"bring-up N={n} {mode}: create {name}: HTTP {status}, {status_of!r}")
    nodes = [f"{name}@{bp.branch_id}" for name, (status, _, _) in zip(names, replies) if status == 201]
    answered = (pinger.app.control.ping(destination=nodes, timeout=2.0) or []) if nodes else []
    silent = set(nodes) - {node for reply in answered for node in reply}
    if silent:
        NOTES.add(
            f"bring-up N={n} {mode}: {len(silent)} instance(s) created (201) did not answer ping in 2 s"
        )
    pids = [b.get("pid") for _, _, b in replies if isinstance(b, dict)]
    t_del, gone = http_all(bp.url, "DELETE", paths, concurrent=True)
    bad = [(name, s) for name, (s, _, _) in zip(names, gone) if s != 200]
    if bad:
        NOTES.add(f"bring-up N={n}: DELETE failed for {bad[:3]}")
    left = [
        p for p in pids if p and pid_alive(int(p)) and proc_start_time(int(p)) == branch.worker_pids.get(p)
    ]
    if left:
        NOTES.add(f"bring-up N={n}: {len(left)} worker(s) still alive right after sync DELETE returned")
    return {
        "total_s": total,
        "per_request_s": [r[1] for r in replies],
        "statuses": [r[0] for r in replies],
        "delete_all_s": t_del,
    }


def bare_bringup(workdir: Path, broker: str, pinger: Pinger, n: int) -> dict[str, Any]:
    workers = [
        BareWorker(bare_spec(workdir, broker, f"bup{n}b{j}-{short_id()}", backend=broker)) for j in range(n)
    ]
    try:
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        waiting = {w.node: w for w in workers}
        answered_at: dict[str, float] = {}
        deadline = t0 + 180
        while waiting:
            for w in waiting.values():
                assert w.proc is not None
                if w.proc.poll() is not None:
                    raise RuntimeError(f"bare worker {w.node} exited with {w.proc.returncode}")
            replies = pinger.app.control.ping(destination=list(waiting), timeout=0.2) or []
            for reply in replies:
                for node in reply:
                    if node in waiting:
                        del waiting[node]
                        answered_at[node] = time.perf_counter() - t0
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{len(waiting)} bare workers silent after 180 s")
        total = time.perf_counter() - t0
    finally:
        t1 = time.perf_counter()
        for w in workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in workers:
            w.stop()
        stopped = time.perf_counter() - t1
    return {"total_s": total, "per_worker_s": sorted(answered_at.values()), "stop_all_s": stopped}


def bench_bringup(
    branch: Branch, pinger: Pinger, args: argparse.Namespace, workdir: Path
) -> list[dict[str, Any]]:
    broker = branch.bp.broker_url()
    out = []
    for k, n in enumerate(args.sizes):
        runs: dict[str, list[dict[str, Any]]] = {"conc": [], "seq": [], "bare": []}
        for r in range(args.bringup_rounds):
            steps: list[Callable[[], None]] = [
                lambda n=n, runs=runs: runs["conc"].append(cyme_bringup(branch, pinger, n, True)),
                lambda n=n, runs=runs: runs["seq"].append(cyme_bringup(branch, pinger, n, False)),
                lambda n=n, runs=runs: runs["bare"].append(bare_bringup(workdir / "bare", broker, pinger, n)),
            ]
            for step in steps if (k + r) % 2 == 0 else reversed(steps):
                step()
            log(
                f"bring-up N={n} round {r + 1}/{args.bringup_rounds}: cyme concurrent "
                f"{runs['conc'][-1]['total_s']:.2f}s, sequential {runs['seq'][-1]['total_s']:.2f}s, "
                f"bare concurrent {runs['bare'][-1]['total_s']:.2f}s"
            )
        conc = median([x["total_s"] for x in runs["conc"]])
        seq = median([x["total_s"] for x in runs["seq"]])
        bare = median([x["total_s"] for x in runs["bare"]])
        out.append({
            "n": n,
            "cyme_concurrent_s": conc,
            "cyme_sequential_s": seq,
            "bare_concurrent_s": bare,
            "ratio_concurrent_over_bare": ratio(conc, bare),
            "ratio_sequential_over_bare": ratio(seq, bare),
            "cyme_created": {
                mode: f"{sum(st == 201 for x in runs[mode] for st in x['statuses'])}/{n * len(runs[mode])}"
                for mode in ("conc", "seq")
            },
            "cyme_delete_all_s": median([x["delete_all_s"] for x in runs["conc"] + runs["seq"]]),
            "bare_stop_all_s": median([x["stop_all_s"] for x in runs["bare"]]),
            "runs": runs,
        })  # fmt: skip
    return out


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    out = []
    rec = results.get("recovery")
    if rec:
        out.append(
            f"Recovery after kill -9 of the worker (one instance, {rec['rounds']} rounds, "
            f"--sup-interval 1; seconds)"
        )
        rows = [["measure", "median", "min", "max", "ratio vs bare"]]
        kills, bare = rec["kills"], rec["bare"]

        def row(label: str, values: list[float], base: float | None) -> list[str]:
            med = median(values)
            return [
                label,
                f"{med:.3f}",
                f"{min(values):.3f}",
                f"{max(values):.3f}",
                f"{ratio(med, base):.2f}x" if base is not None else "",
            ]

        cold = rec["bare_cold_start_median_s"]
        rows.append(row("cyme: kill -9 -> new pid pongs", [k["recovery_s"] for k in kills], cold))
        rows.append(row("cyme: same, less logged backoff", [k["net_s"] for k in kills], cold))
        rows.append(row("cyme: kill -9 -> GET online, new pid", [k["api_online_s"] for k in kills], cold))
        rows.append(row("bare: cold start, Popen -> pong", [b["start_s"] for b in bare], None))
        out.append(table(rows))
        out.append("")
        cold_ready = rec["bare_ready_median_s"]
        rows = [['same, to the worker\'s "ready." log line', "median", "min", "max", "ratio vs bare"]]
        rows.append(
            row("cyme: kill -9 -> ready, less backoff", [k["ready_net_s"] for k in kills], cold_ready)
        )
        rows.append(row("bare: Popen -> ready", [b["ready_s"] for b in bare], None))
        out.append(table(rows))
        out.append(
            "per round (cyme recovery / backoff): "
            + ", ".join(f"{k['recovery_s']:.2f}/{k['backoff_s']:g}" for k in kills)
        )
    bring = results.get("bringup")
    if bring:
        out.append("")
        rounds = results["config"]["bringup_rounds"]
        out.append(
            f"Bring-up of N instances until all answer ping (median of {rounds} run(s) per N, seconds; "
            "HTTP server: 2 gthread workers x 4 threads)"
        )
        rows = [[
            "N", "cyme concurrent", "cyme sequential", "bare concurrent",
            "conc/bare", "seq/bare", "201s conc/seq", "cyme DELETE all", "bare SIGTERM all",
        ]]  # fmt: skip
        for b in bring:
            rows.append([
                str(b["n"]),
                f"{b['cyme_concurrent_s']:.2f}",
                f"{b['cyme_sequential_s']:.2f}",
                f"{b['bare_concurrent_s']:.2f}",
                f"{b['ratio_concurrent_over_bare']:.2f}x",
                f"{b['ratio_sequential_over_bare']:.2f}x",
                f"{b['cyme_created']['conc']} {b['cyme_created']['seq']}",
                f"{b['cyme_delete_all_s']:.2f}",
                f"{b['bare_stop_all_s']:.2f}",
            ])  # fmt: skip
        out.append(table(rows))
    return "\n".join(out)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parse = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parse.add_argument("--rounds", type=int, default=None, help="kill -9 rounds (and bare cold starts) (7)")
    parse.add_argument(
        "--settle", type=float, default=0.0, help="seconds between kill rounds; 32+ avoids the backoff (0)"
    )
    parse.add_argument("--sizes", default=None, help="comma-separated bring-up sizes N (1,5,10)")
    parse.add_argument("--bringup-rounds", type=int, default=1, help="bring-up runs per N and side (1)")
    parse.add_argument("--skip-recovery", action="store_true", help="skip the kill -9 recovery benchmark")
    parse.add_argument("--skip-bringup", action="store_true", help="skip the bring-up benchmark")
    args = parse_with_presets(
        parse,
        argv,
        "fewer rounds, N up to 5 (~1 minute)",
        quick={"rounds": 3, "sizes": "1,5"},
        full={"rounds": 7, "sizes": "1,5,10"},
    )
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.rounds < 1 or args.bringup_rounds < 1 or any(n < 1 for n in args.sizes):
        parse.error("rounds and sizes must be positive")
    return args


def measure(args: argparse.Namespace, results: dict[str, Any]) -> None:
    preflight(results)
    with temp_workdir(args.keep, "cyme-bench-sup-") as workdir, contextlib.ExitStack() as stack:
        branch = stack.enter_context(Branch(workdir / "root"))
        pinger = stack.enter_context(Pinger(branch.bp.broker_url()))
        branch.create(f"/{APP}/")
        if not args.skip_recovery:
            results["recovery"] = bench_recovery(branch, pinger, args, workdir)
        if not args.skip_bringup:
            results["bringup"] = bench_bringup(branch, pinger, args, workdir)
        stack.close()  # stop the branch now, so its leftovers make it into the notes


def main(argv: list[str] | None = None) -> int:
    return run_bench(parse_args(argv), measure, report)


if __name__ == "__main__":
    run_script(main)
