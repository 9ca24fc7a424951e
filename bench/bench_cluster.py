#!/usr/bin/env python
"""Benchmark cyme's cluster-wide requests on clusters of 1, 2 and 4 branches, side by side.

All branches run on this machine (loopback only) and share one private ``redis-server``
(``tests.brokers.start_redis``) as ``--broker``; the first branch of a cluster leads, the
others ``--join`` it.

1. Listing latency: N instances (100; quick 20) are created in app ``bench`` with
   ``POST /bench/instances/?nowait=1`` through the first branch (placement spreads them),
   a few at a time, until ``GET /bench/instances/`` shows every one ``online``. Then
   ``GET /bench/instances/`` (gathered from every branch with a deadline) is timed G times
   (200) sequentially against each branch of the cluster, interleaved with ``GET /ping/``
   on the same branch (the floor: asks the branch actor, no DB, no cluster). Peer: the same
   listing on the 1-branch cluster (ratio = N-branch / 1-branch).
2. Placement throughput: on the 4-branch (quick: 2-branch) cluster and on the 1-branch
   cluster, M (40) ``POST /bench/instances/?nowait=1`` fired from 4 client threads through
   one branch; creates/s from the first request to the last reply, and how the replies'
   ``branch`` fields spread.

Everything is deleted (``DELETE ...?nowait=1``, then until the listing is empty and the
worker processes are gone) between phases.

Run from the repository root::

    .venv/bin/python bench/bench_cluster.py [--quick] [--json out.json]

Every process this script starts is stopped by its PID, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from bench.common import (
    APP,
    NOTES,
    Branch,
    Pinger,
    cmdline,
    descendants,
    log,
    machine,
    median,
    on_sigterm,
    percentile,
    preflight,
    proc_start_time,
    ratio,
    short_id,
    table,
)
from tests.brokers import BrokerServer, group_members, start_redis
from tests.brokers import free_port as below_ephemeral_port
from tests.helpers import pid_alive

MISSING = "X-Cyme-Missing-Branches"

#: Partial listings seen while polling (populating, waiting for online/empty), and how long they took.
POLL_PARTIAL: collections.Counter[str] = collections.Counter()
POLL_PARTIAL_S: list[float] = []


class CpuMeter:
    """Fraction of all CPUs busy between start() and stop() (whole machine, from /proc/stat)."""

    def __init__(self) -> None:
        self.start_sample = self.sample()

    @staticmethod
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)

    def busy(self) -> float:
        total1, idle1 = self.sample()
        total0, idle0 = self.start_sample
        return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def git(*args: str) -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        run = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return run.stdout.strip()


def cyme_revision() -> str:
    """The commit the branches run (they import cyme/ from this work tree), '+dirty' if cyme/ is edited."""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--", "cyme") else "")


def cyme_tree() -> str:
    """What cyme/ holds right now: its tree in HEAD plus any uncommitted edits."""
    return git("rev-parse", "HEAD:cyme") + git("diff", "HEAD", "--", "cyme")


def proc_ticks() -> dict[int, tuple[int, int]]:
    """pid -> (process group, utime + stime in clock ticks) of every process, from /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                out[int(entry.name)] = (int(fields[2]), int(fields[11]) + int(fields[12]))
    return out


class CpuSplit:
    """Share of all CPUs used by the workers, by the branches and by the rest, over an interval."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.before = proc_ticks()
        self.meter = CpuMeter()
        self.t0 = time.monotonic()

    def result(self) -> dict[str, float]:
        after = proc_ticks()
        elapsed = time.monotonic() - self.t0
        capacity = elapsed * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
        workers = {pid for b in self.cluster.branches for pid in b.worker_pids}
        branches: set[int] = set()
        for b in self.cluster.branches:
            if b.bp.proc is not None:
                branches |= {b.bp.proc.pid, *descendants(b.bp.proc.pid, f" {b.bp.root} ")}
        used = {"workers": 0, "branches": 0}
        for pid, (group, ticks) in after.items():
            delta = ticks - self.before.get(pid, (group, 0))[1]
            if group in workers:
                used["workers"] += delta
            elif pid in branches:
                used["branches"] += delta
        busy = self.meter.busy()
        return {
            "busy": busy,
            "workers": used["workers"] / capacity,
            "branches": used["branches"] / capacity,
            "rest": max(busy - (used["workers"] + used["branches"]) / capacity, 0.0),
        }


# --------------------------------------------------------------------------
# A cluster of branches on this machine
# --------------------------------------------------------------------------


class Cluster:
    """*size* branches sharing one broker; the first leads, the others join it."""

    def __init__(self, workdir: Path, broker: str, size: int, sup_interval: float) -> None:
        tag = short_id()[:4]
        self.size = size
        self.branches = [
            Branch(workdir / f"n{size}b{i}", broker=broker, branch_id=f"n{size}b{i}{tag}")
            for i in range(size)
        ]
        self.by_id = {b.bp.branch_id: b for b in self.branches}
        self.sup_interval = sup_interval
        # BranchProcess picks ports in the ephemeral range, where the actor sockets of branches
        # started earlier can take them first ("admin port ... is already in use"): use ports
        # below that range instead, as the broker servers do.
        ports: set[int] = set()
        while len(ports) < 2 * size:
            ports.add(below_ephemeral_port())
        free = sorted(ports)
        for i, branch in enumerate(self.branches):
            branch.bp.port, branch.bp.admin_port = free[2 * i], free[2 * i + 1]

    @property
    def entry(self) -> Branch:
        return self.branches[0]

    def __enter__(self) -> Cluster:
        t0 = time.perf_counter()
        try:
            leader = self.branches[0]
            for index, branch in enumerate(self.branches):
                branch.bp.extra = ["--sup-interval", f"{self.sup_interval:g}"]
                if index:
                    branch.bp.extra += ["--join", f"127.0.0.1:{leader.bp.admin_port}"]
                try:
                    branch.__enter__()
                except AssertionError as exc:  # BranchProcess: exited during start, or no answer
                    raise RuntimeError(f"branch {branch.bp.branch_id} did not start: {exc}") from exc
            for branch in self.branches:
                wait(
                    lambda b=branch: len(b.bp.get("/branches/", timeout=10).json()) == self.size,
                    60,
                    f"branch {branch.bp.branch_id} to list all {self.size} branches",
                )
        except BaseException:
            self.stop()
            raise
        log(f"cluster of {self.size} formed in {time.perf_counter() - t0:.1f}s")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop every branch by PID (members first, the leader last), in parallel."""
        t0 = time.perf_counter()
        took: dict[str, float] = {}
        for branch in self.branches:  # every worker process of the branch, listed or not
            for pid in processes_under(branch.bp.root, "celery"):
                branch.track_worker(pid)

        def stop_one(branch: Branch) -> None:
            t1 = time.perf_counter()
            branch.stop()
            took[branch.bp.branch_id] = time.perf_counter() - t1

        threads = [threading.Thread(target=stop_one, args=(b,), daemon=True) for b in self.branches[1:]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        stop_one(self.branches[0])
        for b in self.branches:  # anything a thread did not get to (it timed out)
            b.stop()
        for branch in self.branches:
            log_errors(branch)
            sweep(branch.bp.root, f"after {branch.bp.branch_id} stopped")
        slow = {k: round(v, 1) for k, v in took.items() if v > 5}
        if slow:
            NOTES.add(f"cyme-branch took over 5 s to stop after SIGTERM: {slow} s")
        log(f"cluster of {self.size} stopped in {time.perf_counter() - t0:.1f}s")


def processes_under(directory: Path, word: str = "") -> list[int]:
    """Live processes (not this one) whose command line names a path under *directory*."""
    marker = f"{directory}/"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            args = cmdline(int(entry.name))
            if marker in args and word in args and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def sweep(directory: Path, when: str) -> None:
    """SIGKILL, by PID, any process still running from *directory* (a branch root, the workdir).

    Branch.stop already kills what it knew of; this catches workers a supervisor started
    while it was being stopped, which nobody had seen yet.
    """
    for _ in range(5):
        left = processes_under(directory)
        if not left:
            return
        for pid in left:
            NOTES.add(f"process still running {when}, killed: {pid} {cmdline(pid)[:110]}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(1.0)


def log_errors(branch: Branch) -> None:
    """Note the distinct exception and ERROR lines of a branch log (Branch.stop only counts them)."""
    try:
        lines = branch.bp.logfile.read_text(errors="replace").splitlines()
    except OSError:
        return
    seen: collections.Counter[str] = collections.Counter()
    for line in lines:
        if re.match(r"^[A-Za-z_.]*(Error|Exception): ", line):
            seen[line.strip()[:160]] += 1
        elif ": ERROR/" in line:
            text = re.sub(r"^\[[^\]]*: ERROR/", "ERROR/", line.strip())
            seen[re.sub(r"\(T\|:\d+\)", "(T|:port)", text)[:160]] += 1
    for text, count in seen.most_common(3):
        NOTES.add(f"{branch.bp.logfile.name}: {count}x {text}")


def wait(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (requests.RequestException, ValueError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def live_groups() -> set[int]:
    """Process group ids of every live (non-zombie) process, from one scan of /proc."""
    groups = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                if fields[0] != "Z":
                    groups.add(int(fields[2]))
    return groups


def listing(branch: Branch, timeout: float = 30) -> tuple[list[dict[str, Any]], str]:
    """``GET /bench/instances/``: the items and the missing-branches header ('' if none)."""
    t0 = time.perf_counter()
    reply = branch.bp.get(f"/{APP}/instances/", timeout=timeout)
    elapsed = time.perf_counter() - t0
    if reply.status_code != 200:
        raise RuntimeError(f"listing on {branch.bp.branch_id}: HTTP {reply.status_code}: {reply.text[:200]}")
    missing = reply.headers.get(MISSING, "")
    if missing:
        POLL_PARTIAL[f"{branch.bp.branch_id} (missing {missing})"] += 1
        POLL_PARTIAL_S.append(elapsed)
    return reply.json(), missing


def track(cluster: Cluster, items: list[dict[str, Any]]) -> None:
    for item in items:
        owner = cluster.by_id.get(item.get("branch", ""))
        if owner is not None:
            owner.track_worker(item.get("pid"))


class Readiness:
    """Whether instances' workers are up, as cyme says (status) and as the workers say (log)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.logged: set[str] = set()
        self.owner: dict[str, str] = {}

    def worker_logged_ready(self, name: str) -> bool:
        """True once the worker wrote "<name>@<branch> ready." in its log (independent of cyme)."""
        if name in self.logged:
            return True
        branch = self.cluster.by_id.get(self.owner.get(name, ""))
        if branch is None:
            return False
        try:
            text = (branch.bp.root / name / "worker.log").read_text(errors="replace")
        except OSError:
            return False
        if f"{name}@{branch.bp.branch_id} ready." in text:
            self.logged.add(name)
            return True
        return False

    def poll(self, names: set[str]) -> tuple[dict[str, str], set[str]]:
        """Status of each of *names* from the listing, and those whose worker is up either way."""
        items, _ = listing(self.cluster.entry)
        track(self.cluster, items)
        status = {}
        for item in items:
            status[item["name"]] = item["status"]
            self.owner[item["name"]] = item["branch"]
        up = {n for n in names if status.get(n) == "online" or self.worker_logged_ready(n)}
        return status, up


def wait_online(
    cluster: Cluster, ready: Readiness, names: set[str], timeout: float, what: str, stall: float
) -> tuple[float, list[str]]:
    """Poll the listing until every instance in *names* is online.

    Returns the seconds it took and the instances still not online when it gave up: after
    *timeout*, or after *stall* seconds without progress while every worker has logged
    "ready." (cyme's status is stuck, the workers are not).
    """
    t0 = time.perf_counter()
    deadline = t0 + timeout
    best, progress = -1, t0
    while True:
        status, up = ready.poll(names)
        online = {n for n in names if status.get(n) == "online"}
        now = time.perf_counter()
        if len(online) == len(names):
            return now - t0, []
        if len(online) > best:
            best, progress = len(online), now
        stuck = now - progress > stall and len(up) == len(names)
        if stuck or now > deadline:
            left = sorted(names - online)
            odd = collections.Counter(status.get(n, "absent") for n in left)
            NOTES.add(
                f"{what}: {len(left)} of {len(names)} instances never shown online "
                f"(status {dict(odd)}; {sum(n in ready.logged for n in left)} of them had logged "
                f"'ready.'); gave up after {now - t0:.0f} s, "
                + (f"{stall:g} s without progress" if stuck else "time limit")
            )
            return now - t0, left
        time.sleep(1.0)


def ping_nodes(pinger: Pinger, nodes: list[str]) -> int:
    """How many of *nodes* answer one Celery ping broadcast on the shared broker (3 s)."""
    replies = pinger.app.control.ping(destination=nodes, timeout=3.0) or []
    return len({node for reply in replies for node in reply} & set(nodes))


# --------------------------------------------------------------------------
# Creating and deleting instances
# --------------------------------------------------------------------------


def create(
    session: requests.Session, url: str, timeout: float = 60
) -> tuple[int, float, dict[str, Any] | str]:
    """One ``POST /bench/instances/?nowait=1``: (status, seconds, body)."""
    t0 = time.perf_counter()
    try:
        reply = session.post(f"{url}/{APP}/instances/", params={"nowait": 1}, timeout=timeout)
    except requests.RequestException as exc:
        return -1, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - t0
    try:
        body: dict[str, Any] | str = reply.json()
    except ValueError:
        body = reply.text[:300]
    return reply.status_code, elapsed, body


def populate(cluster: Cluster, n: int, window: int, timeout: float, stall: float) -> dict[str, Any]:
    """Create *n* instances through the first branch, at most *window* of them starting at a time.

    "Started" is the worker's own "ready." log line; then every instance must show ``online``.
    """
    bp = cluster.entry.bp
    ready = Readiness(cluster)
    names: set[str] = set()
    spread: collections.Counter[str] = collections.Counter()
    t0 = time.perf_counter()
    deadline = t0 + timeout
    failures = 0
    while len(names) < n:
        # The workers' own logs pace the creates: a listing of many instances costs the
        # branches far more CPU than reading a few log files, and would slow the starts.
        up = {name for name in names if ready.worker_logged_ready(name)}
        for _ in range(min(window - (len(names) - len(up)), n - len(names))):
            status, _, body = create(bp.http, bp.url, timeout=30)
            if status != 202 or not isinstance(body, dict):
                failures += 1
                NOTES.add(f"populate: POST nowait gave HTTP {status}: {str(body)[:160]}")
                if failures > 30 or status not in (-1, 503):
                    raise RuntimeError(f"populate: {failures} failed creates, the last HTTP {status}")
                time.sleep(1.0)  # a relayed create that timed out: the cluster is overloaded
                break
            names.add(body["name"])
            ready.owner[body["name"]] = body["branch"]
            spread[body["branch"]] += 1
        if time.perf_counter() > deadline:
            raise RuntimeError(f"populate: {len(names)}/{n} created after {timeout:g}s")
        time.sleep(0.3)
    created_s = time.perf_counter() - t0
    _, stuck = wait_online(
        cluster, ready, names, max(deadline - time.perf_counter(), 30), f"populate {cluster.size}", stall
    )
    total = time.perf_counter() - t0
    status, _ = ready.poll(names)
    extra = sorted(set(status) - names)
    if extra:  # created by a request that was answered 503 (the relay timed out, the owner did not)
        NOTES.add(
            f"populate {cluster.size}: {len(extra)} instance(s) exist although their POST was answered "
            f"503 ({failures} failed creates); they are listed and measured too"
        )
        names |= set(extra)
        for name in extra:
            spread[ready.owner[name]] += 1
    log(
        f"cluster of {cluster.size}: {n - len(stuck)}/{n} instances online in {total:.1f}s "
        f"(all created after {created_s:.1f}s); spread {dict(sorted(spread.items()))}"
    )
    return {
        "names": sorted(names),
        "owner": dict(ready.owner),
        "spread": dict(spread),
        "online_s": total,
        "stuck": stuck,
    }


def clear(cluster: Cluster, names: list[str], threads: int, timeout: float = 180) -> float:
    """DELETE ...?nowait=1 every instance (from *threads* clients through the first branch),
    then wait until the listing is empty and every worker (and its pool children) is gone."""
    t0 = time.perf_counter()
    bp = cluster.entry.bp
    deadline = t0 + timeout
    lock = threading.Lock()
    bad: list[str] = []
    todo = list(names)
    for attempt in range(1, 5):  # a failed DELETE is retried while its instance is still listed

        def run(todo: list[str] = todo) -> None:
            with requests.Session() as session:
                while True:
                    with lock:
                        if not todo:
                            return
                        name = todo.pop()
                    try:
                        reply = session.delete(
                            f"{bp.url}/{APP}/instances/{name}/", params={"nowait": 1}, timeout=60
                        )
                        if reply.status_code != 202:
                            bad.append(f"{name}: HTTP {reply.status_code} {reply.text[:240]}")
                    except requests.RequestException as exc:
                        bad.append(f"{name}: {type(exc).__name__}")

        workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(120)
        left: list[str] = []
        settle = time.perf_counter() + 20
        while time.perf_counter() < min(settle, deadline):
            with contextlib.suppress(requests.RequestException, RuntimeError):
                left = [i["name"] for i in listing(cluster.entry)[0]]
                if not left:
                    break
            time.sleep(0.5)
        if not left or time.perf_counter() > deadline:
            break
        todo = left  # also any the app got from a create that was answered 503
        log(f"{len(left)} instance(s) still listed after DELETE round {attempt}: deleting them again")
    if bad:
        NOTES.add(f"DELETE nowait failed {len(bad)} time(s) (retried while listed), e.g. {bad[0]}")
    wait(lambda: listing(cluster.entry)[0] == [], max(deadline - time.perf_counter(), 5), "an empty listing")
    empty_s = time.perf_counter() - t0
    pids = {pid: st for b in cluster.branches for pid, st in b.worker_pids.items()}

    def gone() -> bool:
        groups = live_groups()
        return not any(p in groups or (pid_alive(p) and proc_start_time(p) == st) for p, st in pids.items())

    try:
        wait(gone, 60, "deleted instances' workers to exit", 0.2)
    except RuntimeError:
        left = [p for p in pids if group_members(p)]
        NOTES.add(f"{len(left)} worker process group(s) still alive 60 s after the listing was empty")
    groups = live_groups()
    for b in cluster.branches:  # forget the ones that are gone: Branch.stop checks the rest
        for pid, st in list(b.worker_pids.items()):
            if pid not in groups and not (pid_alive(pid) and proc_start_time(pid) == st):
                del b.worker_pids[pid]
    log(
        f"cluster of {cluster.size}: {len(names)} deleted; listing empty after {empty_s:.1f}s, "
        f"workers gone after {time.perf_counter() - t0:.1f}s"
    )
    return time.perf_counter() - t0


# --------------------------------------------------------------------------
# 1. Listing latency
# --------------------------------------------------------------------------


def measure_listing(cluster: Cluster, n: int, gets: int) -> dict[str, Any]:
    """*gets* sequential listings, spread round-robin over the branches, each next to a ping."""
    sessions = {b.bp.branch_id: requests.Session() for b in cluster.branches}
    samples: dict[str, dict[str, list[float]]] = {
        b.bp.branch_id: {"list": [], "ping": []} for b in cluster.branches
    }
    bad: collections.Counter[str] = collections.Counter()
    per = -(-gets // cluster.size)  # per branch, rounded up

    def one(branch: Branch, kind: str) -> None:
        path = f"/{APP}/instances/" if kind == "list" else "/ping/"
        t0 = time.perf_counter()
        try:
            reply = sessions[branch.bp.branch_id].get(branch.bp.url + path, timeout=30)
        except requests.RequestException as exc:
            bad[f"{kind} {type(exc).__name__}"] += 1
            return
        elapsed = time.perf_counter() - t0
        if reply.status_code != 200:
            bad[f"{kind} HTTP {reply.status_code}"] += 1
            return
        if kind == "list":
            if reply.headers.get(MISSING):
                bad[f"partial listing (missing {reply.headers[MISSING]})"] += 1
            elif len(reply.json()) != n:
                bad[f"listing of {len(reply.json())} != {n}"] += 1
        samples[branch.bp.branch_id][kind].append(elapsed)

    try:
        for branch in cluster.branches:  # warm-up: connections, caches
            for kind in ("list", "ping") * 3:
                one(branch, kind)
        for s in samples.values():
            s["list"].clear()
            s["ping"].clear()
        split = CpuSplit(cluster)
        t0 = time.perf_counter()
        for i in range(per):
            for branch in cluster.branches:
                for kind in ("list", "ping") if i % 2 == 0 else ("ping", "list"):
                    one(branch, kind)
        elapsed = time.perf_counter() - t0
        cpu = split.result()
        busy = cpu["busy"]
    finally:
        for s in sessions.values():
            s.close()
    if bad:
        NOTES.add(f"listing on {cluster.size} branch(es): bad replies {dict(bad)}")
    per_branch = []
    for branch in cluster.branches:
        s = samples[branch.bp.branch_id]
        per_branch.append({
            "branch": branch.bp.branch_id,
            "list_median_ms": median(s["list"]) * 1000,
            "list_p95_ms": percentile(s["list"], 95) * 1000,
            "ping_median_ms": median(s["ping"]) * 1000,
            "ping_p95_ms": percentile(s["ping"], 95) * 1000,
            "list_ms": [x * 1000 for x in s["list"]],
            "ping_ms": [x * 1000 for x in s["ping"]],
        })  # fmt: skip
    lists = [x for b in per_branch for x in b["list_ms"]]
    pings = [x for b in per_branch for x in b["ping_ms"]]
    result = {
        "branches": cluster.size,
        "instances": n,
        "gets_per_branch": per,
        "list_median_ms": median(lists),
        "list_p95_ms": percentile(lists, 95),
        "ping_median_ms": median(pings),
        "ping_p95_ms": percentile(pings, 95),
        "branch_medians_ms": [b["list_median_ms"] for b in per_branch],
        "bad_replies": dict(bad),
        "elapsed_s": elapsed,
        "cpu_busy": busy,
        "cpu_split": cpu,
        "per_branch": per_branch,
    }
    log(
        f"cluster of {cluster.size}: listing median {result['list_median_ms']:.1f} ms "
        f"p95 {result['list_p95_ms']:.1f} ms, ping median {result['ping_median_ms']:.1f} ms "
        f"({per} of each per branch in {elapsed:.1f}s, CPU {busy:.0%} busy)"
    )
    return result


# --------------------------------------------------------------------------
# 2. Placement throughput
# --------------------------------------------------------------------------


def measure_placement(
    cluster: Cluster, pinger: Pinger, m: int, threads: int, timeout: float, stall: float
) -> dict[str, Any]:
    """M anonymous creates (nowait) from *threads* clients through the first branch."""
    bp = cluster.entry.bp
    replies: list[tuple[int, float, dict[str, Any] | str]] = []
    lock = threading.Lock()
    shares = [m // threads + (1 if i < m % threads else 0) for i in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def run(share: int) -> None:
        with requests.Session() as session:
            barrier.wait()
            for _ in range(share):
                out = create(session, bp.url)
                with lock:
                    replies.append(out)

    workers = [threading.Thread(target=run, args=(s,), daemon=True) for s in shares]
    for t in workers:
        t.start()
    meter = CpuMeter()
    t0 = time.perf_counter()
    barrier.wait()
    for t in workers:
        t.join(180)
    elapsed = time.perf_counter() - t0
    busy = meter.busy()
    ok = [b for s, _, b in replies if s == 202 and isinstance(b, dict)]
    failed = [(s, b) for s, _, b in replies if s != 202 or not isinstance(b, dict)]
    if failed:
        NOTES.add(
            f"placement on {cluster.size} branch(es): {len(failed)}/{m} creates failed, "
            f"e.g. HTTP {failed[0][0]}: {str(failed[0][1])[:160]}"
        )
    spread = collections.Counter(b["branch"] for b in ok)
    names = {b["name"] for b in ok}
    ready = Readiness(cluster)
    ready.owner.update({b["name"]: b["branch"] for b in ok})
    online_s, stuck = wait_online(cluster, ready, names, timeout, f"placement on {cluster.size}", stall)
    nodes = sorted(f"{b['name']}@{b['branch']}" for b in ok)
    pinged = ping_nodes(pinger, nodes) if nodes else 0
    if pinged != len(nodes):
        NOTES.add(
            f"placement on {cluster.size}: only {pinged} of {len(nodes)} workers answered a Celery ping"
        )
    latencies = [t for s, t, _ in replies if s == 202]
    slow = [t for t in latencies if t > 5]
    if slow:
        NOTES.add(
            f"placement on {cluster.size} branch(es): {len(slow)} of {m} nowait creates took over 5 s "
            f"(max {max(slow):.1f} s)"
        )
    result = {
        "branches": cluster.size,
        "creates": m,
        "threads": threads,
        "ok": len(ok),
        "elapsed_s": elapsed,
        "creates_per_s": len(ok) / elapsed if elapsed else float("nan"),
        "request_median_ms": median(latencies) * 1000,
        "request_p95_ms": percentile(latencies, 95) * 1000,
        "request_max_ms": max(latencies, default=float("nan")) * 1000,
        "spread": {bid: spread.get(bid, 0) for bid in cluster.by_id},
        "all_online_after_s": float("nan") if stuck else online_s,
        "stuck": stuck,
        "answered_ping": pinged,
        "cpu_busy": busy,
        "names": sorted(names),
        "request_ms": [t * 1000 for t in latencies],
    }
    log(
        f"cluster of {cluster.size}: {len(ok)}/{m} creates in {elapsed:.2f}s "
        f"({result['creates_per_s']:.1f}/s), spread {list(result['spread'].values())}, "
        f"{len(ok) - len(stuck)} online {online_s:.1f}s after the last reply, {pinged} answer ping"
    )
    return result


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    out = []
    cfg = results["config"]
    lists = results.get("listing", [])
    if lists:
        base = next((x for x in lists if x["branches"] == 1), None)
        out.append(
            f"Cluster-wide GET /{APP}/instances/ with {cfg['instances']} online instances "
            f"({cfg['gets']} sequential GETs per cluster size, round-robin over its branches, each "
            "next to a GET /ping/ on the same branch; ms, over all branches' samples)"
        )
        rows = [[
            "branches", "instances per branch", "list median", "list p95", "ping median", "ping p95",
            "list/ping", "list vs 1 branch", "branch medians", "bad", "online API/ping",
            "CPU busy (workers/branches/rest)",
        ]]  # fmt: skip
        for x in lists:
            rows.append([
                str(x["branches"]),
                "/".join(str(v) for v in x["spread"].values()),
                f"{x['list_median_ms']:.1f}",
                f"{x['list_p95_ms']:.1f}",
                f"{x['ping_median_ms']:.2f}",
                f"{x['ping_p95_ms']:.2f}",
                f"{ratio(x['list_median_ms'], x['ping_median_ms']):.1f}x",
                f"{ratio(x['list_median_ms'], base['list_median_ms']):.2f}x" if base else "",
                f"{min(x['branch_medians_ms']):.0f}-{max(x['branch_medians_ms']):.0f}",
                str(sum(x["bad_replies"].values())),
                f"{x['online']}/{x['answered_ping']}",
                f"{x['cpu_busy']:.0%} ({x['cpu_split']['workers']:.0%}/{x['cpu_split']['branches']:.0%}/"
                f"{x['cpu_split']['rest']:.0%})",
            ])  # fmt: skip
        out.append(table(rows))
        out.append("")
        rows = [["per branch (ms)", "owns", "GETs", "list median", "list p95", "ping median", "ping p95"]]
        for x in lists:
            for b in x["per_branch"]:
                rows.append([
                    f"{x['branches']}: {b['branch']}",
                    str(x["spread"].get(b["branch"], 0)),
                    str(len(b["list_ms"])),
                    f"{b['list_median_ms']:.1f}",
                    f"{b['list_p95_ms']:.1f}",
                    f"{b['ping_median_ms']:.2f}",
                    f"{b['ping_p95_ms']:.2f}",
                ])  # fmt: skip
        out.append(table(rows))
        out.append(
            "time to bring all instances online (s), per cluster size: "
            + ", ".join(f"{x['branches']}: {x['populate_s']:.0f}" for x in lists)
        )
    places = results.get("placement", [])
    if places:
        base = next((x for x in places if x["branches"] == 1), None)
        out.append("")
        out.append(
            f"Placement: POST /{APP}/instances/?nowait=1 x {cfg['creates']} from {cfg['threads']} client "
            "threads through one branch"
        )
        rows = [[
            "branches", "created", "seconds", "creates/s", "vs 1 branch", "request median ms",
            "request p95 ms", "max ms", "spread over branches", "all online after s", "answer ping",
            "CPU busy",
        ]]  # fmt: skip
        for x in places:
            rows.append([
                str(x["branches"]),
                f"{x['ok']}/{x['creates']}",
                f"{x['elapsed_s']:.2f}",
                f"{x['creates_per_s']:.1f}",
                f"{ratio(x['creates_per_s'], base['creates_per_s']):.2f}x" if base else "",
                f"{x['request_median_ms']:.1f}",
                f"{x['request_p95_ms']:.1f}",
                f"{x['request_max_ms']:.0f}",
                "/".join(str(v) for v in x["spread"].values()),
                f"{x['all_online_after_s']:.1f}" if not x["stuck"] else f"{len(x['stuck'])} stuck",
                str(x["answered_ping"]),
                f"{x['cpu_busy']:.0%}",
            ])  # fmt: skip
        out.append(table(rows))
    if results.get("notes"):
        out.append("")
        out.append("Notes:")
        out.extend(f"- {n}" for n in results["notes"])
    return "\n".join(out)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parse = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parse.add_argument("--instances", type=int, default=None, help="instances for the listings (100)")
    parse.add_argument("--sizes", default=None, help="comma-separated cluster sizes (1,2,4)")
    parse.add_argument(
        "--gets", type=int, default=None, help="sequential listings per cluster size, over its branches (100)"
    )
    parse.add_argument("--creates", type=int, default=None, help="creates timed for placement (40)")
    parse.add_argument("--threads", type=int, default=4, help="client threads for placement (4)")
    parse.add_argument(
        "--placement-size", type=int, default=None, help="cluster size for placement (the largest)"
    )
    parse.add_argument(
        "--window", type=int, default=20, help="instances starting at once while populating (20)"
    )
    parse.add_argument(
        "--sup-interval", type=float, default=5.0, help="branches' --sup-interval (5, cyme's default)"
    )
    parse.add_argument(
        "--stall",
        type=float,
        default=6.0,
        help="give up waiting for 'online' after this many seconds without progress (6)",
    )
    parse.add_argument("--skip-listing", action="store_true", help="skip the listing benchmark")
    parse.add_argument("--skip-placement", action="store_true", help="skip the placement benchmark")
    parse.add_argument(
        "--quick",
        action="store_true",
        help="20 instances, 1 and 2 branches, 20 creates (~2 minutes)",
    )
    parse.add_argument("--json", type=Path, help="also write all figures and raw samples here")
    parse.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parse.parse_args(argv)
    quick = {"instances": 20, "sizes": "1,2", "gets": 100, "creates": 20}
    full = {"instances": 100, "sizes": "1,2,4", "gets": 100, "creates": 40}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if args.placement_size is None:
        args.placement_size = max(args.sizes)
    if min(args.sizes) < 1 or min(args.instances, args.gets, args.creates, args.threads, args.window) < 1:
        parse.error("sizes, instances, gets, creates, threads and window must be positive")
    return args


def run_cluster(
    size: int,
    broker: BrokerServer,
    pinger: Pinger,
    args: argparse.Namespace,
    workdir: Path,
    results: dict[str, Any],
) -> None:
    log(f"--- cluster of {size} branch(es)")
    with Cluster(workdir, broker.url, size, args.sup_interval) as cluster:
        created = cluster.entry.bp.post(f"/{APP}/", timeout=60)
        if created.status_code != 201:
            raise RuntimeError(f"creating app {APP}: HTTP {created.status_code}: {created.text[:300]}")
        for branch in cluster.branches:  # replicated to every branch before the answer; check
            wait(lambda b=branch: b.bp.get(f"/{APP}/", timeout=10).status_code == 200, 30, "the app")
        budget = 120 + 3 * args.instances
        if not args.skip_listing:
            pop = populate(cluster, args.instances, args.window, budget, args.stall)
            nodes = sorted(f"{name}@{owner}" for name, owner in pop["owner"].items() if name in pop["names"])
            pinged = ping_nodes(pinger, nodes)
            if pinged != len(nodes):
                NOTES.add(f"listing on {size}: only {pinged} of {len(nodes)} workers answered a Celery ping")
            lst = measure_listing(cluster, len(pop["names"]), args.gets)
            lst["spread"] = {bid: pop["spread"].get(bid, 0) for bid in cluster.by_id}
            lst["populate_s"] = pop["online_s"]
            lst["online"] = len(pop["names"]) - len(pop["stuck"])
            lst["answered_ping"] = pinged
            lst["stuck"] = pop["stuck"]
            lst["delete_s"] = clear(cluster, pop["names"], args.threads)
            results.setdefault("listing", []).append(lst)
        if not args.skip_placement and size in (1, args.placement_size):
            plc = measure_placement(cluster, pinger, args.creates, args.threads, budget, args.stall)
            plc["delete_s"] = clear(cluster, plc["names"], args.threads)
            results.setdefault("placement", []).append(plc)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    results: dict[str, Any] = {
        "machine": machine(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "loadavg_before": os.getloadavg(),
        "cyme_revision": cyme_revision(),
    }
    tree = cyme_tree()
    t_begin = time.perf_counter()
    preflight(results)
    meter = CpuMeter()
    workdir = Path(tempfile.mkdtemp(prefix="cyme-bench-cluster-"))
    ok = False
    try:
        with contextlib.ExitStack() as stack:
            redis = start_redis(workdir / "redis")
            stack.callback(redis.stop)
            log(f"redis-server pid {redis.pid} at {redis.url}")
            pinger = Pinger(redis.url)
            stack.callback(pinger.close)
            sizes = [s for s in args.sizes if not args.skip_listing or s in (1, args.placement_size)]
            for size in sizes:
                try:
                    run_cluster(size, redis, pinger, args, workdir, results)
                except RuntimeError as exc:  # a phase cyme could not complete: say so, go on
                    NOTES.add(f"cluster of {size}: gave up: {exc}")
                    results["failed"] = True
        ok = not results.get("failed")
    finally:
        sweep(workdir, "at the end of the run")
        if args.keep or not ok:
            log(f"kept work directory {workdir} (branch and worker logs)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["cpu_busy_during"] = meter.busy()
    results["loadavg_after"] = os.getloadavg()
    if cyme_tree() != tree:
        NOTES.add(
            f"cyme/ changed during the run (at start {results['cyme_revision']}, now {cyme_revision()}): "
            "branches started later ran other code"
        )
    if POLL_PARTIAL:
        NOTES.add(
            f"partial listings while polling (populate / wait for online / empty): {dict(POLL_PARTIAL)}; "
            f"they took {min(POLL_PARTIAL_S):.1f}-{max(POLL_PARTIAL_S):.1f} s"
        )
    results["poll_partial_listings"] = dict(POLL_PARTIAL)
    results["notes"] = NOTES.items
    results["elapsed_s"] = time.perf_counter() - t_begin
    print(report(results))
    print(
        f"\n(total {results['elapsed_s']:.0f}s; {results['machine']['cpus']} CPUs, "
        f"{results['cpu_busy_before']:.0%} busy before the run, {results['cpu_busy_during']:.0%} during it; "
        f"Python {results['machine']['python']}, celery {results['machine']['celery']}; "
        f"cyme {results['cyme_revision']})"
    )
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
