#!/usr/bin/env python
"""Benchmark URL tasks through cyme's HTTP API against plain Celery, side by side, on this machine.

cyme: ``POST /<app>/queue/<queue>/<endpoint>/x`` for M tasks from a few client threads, then
``GET /<app>/query/<uuid>/wait/`` for every one, against a branch (embedded broker) with one
instance consuming the queue at concurrency C (``max=C&min=C``).

Peer: the same task (``cyme.url`` of ``cyme.workers.app``, same kwargs, same time limits) sent
with ``send_task`` by a plain Celery client to a bare ``celery worker`` started by hand with
cyme's own command line and environment (``WorkerSpec``), consuming its own queue with the
same declaration, at the same concurrency, on the branch's embedded broker as broker and
result backend; results collected with ``AsyncResult.get``.

Both sides request the same local endpoint (``tests.recorder``'s recording server by
default, or ``--endpoint minimal``) running in a child process. Rounds alternate which side
goes first.

Run from the repository root::

    .venv/bin/python bench/bench_url_tasks.py [--quick] [--json out.json]

Every process this script starts is stopped by its PID, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from celery import Celery

from bench.common import (
    APP,
    NOTES,
    BareWorker,
    Branch,
    Pinger,
    bare_spec,
    log,
    median,
    parse_with_presets,
    preflight,
    ratio,
    run_bench,
    run_script,
    short_id,
    table,
    temp_workdir,
)
from bench.endpoint import Endpoint
from cyme.actors.tasks import TIME_LIMIT_MARGIN
from cyme.workers.url_task import TASK_NAME

QUEUE = "web"
BARE_QUEUE = "webbare"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
WAIT_TIMEOUT = 120


def split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


def run_threads(target: Callable[[int], None], count: int, timeout: float) -> None:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if any(t.is_alive() for t in threads):
        raise RuntimeError(f"client threads still busy after {timeout:.0f}s")


# --------------------------------------------------------------------------
# The endpoint's own capacity (is it the bottleneck?)
# --------------------------------------------------------------------------


def endpoint_capacity(url: str, threads: int, seconds: float) -> dict[str, Any]:
    """Requests/s the endpoint serves to *threads* clients, a new connection per request as a worker does."""
    counts = [0] * threads
    errors = [0] * threads
    stop_at = time.perf_counter() + seconds

    def client(slot: int) -> None:
        while time.perf_counter() < stop_at:
            try:
                reply = requests.post(url + "/x", timeout=10)
                counts[slot] += reply.status_code == 200
                errors[slot] += reply.status_code != 200
            except requests.RequestException:
                errors[slot] += 1

    t0 = time.perf_counter()
    run_threads(client, threads, seconds + 30)
    elapsed = time.perf_counter() - t0
    return {"threads": threads, "req_s": sum(counts) / elapsed, "errors": sum(errors)}


# --------------------------------------------------------------------------
# The two sides
# --------------------------------------------------------------------------


def url_request(target: str) -> dict[str, Any]:
    """The ``request`` kwarg cyme's Task actor builds for ``POST <target>`` without body."""
    return {
        "method": "POST",
        "url": target,
        "query": "",
        "body_b64": "",
        "headers": [],
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
    }


def check_result(side: str, value: dict[str, Any] | None, problems: list[str]) -> None:
    if not isinstance(value, dict) or value.get("status") != 200:
        problems.append(f"{side}: unexpected result {str(value)[:160]}")


def cyme_round(bp_url: str, target: str, m: int, clients: int) -> dict[str, Any]:
    """Queue *m* URL tasks through the API from *clients* threads, then wait for all of them."""
    slots = split(list(range(m)), clients)
    ids: list[list[str]] = [[] for _ in range(clients)]
    post_ms: list[list[float]] = [[] for _ in range(clients)]
    problems: list[str] = []
    elapsed_http: list[float] = []
    queued_at = [0.0] * clients
    done_at = [0.0] * clients
    queue_url = f"{bp_url}/{APP}/queue/{QUEUE}/{target}"
    headers = {"X-Cyme-Retries": "0", "X-Cyme-Retry-Delay": "1"}
    barrier = threading.Barrier(clients)

    def client(slot: int) -> None:
        with requests.Session() as http:
            for _ in slots[slot]:
                t = time.perf_counter()
                reply = http.post(queue_url, headers=headers, timeout=60)
                post_ms[slot].append((time.perf_counter() - t) * 1000)
                if reply.status_code != 202:
                    problems.append(f"cyme queue: HTTP {reply.status_code}: {reply.text[:160]}")
                    continue
                ids[slot].append(reply.json()["uuid"])
            queued_at[slot] = time.perf_counter()
            barrier.wait()  # queue everything first, then wait
            for task_id in ids[slot]:
                wait = f"{bp_url}/{APP}/query/{task_id}/wait/"
                reply = http.get(wait, params={"timeout": WAIT_TIMEOUT}, timeout=WAIT_TIMEOUT + 30)
                if reply.status_code != 200:
                    problems.append(f"cyme wait: HTTP {reply.status_code}: {reply.text[:160]}")
                    continue
                body = reply.json()
                if body.get("state") != "SUCCESS":
                    problems.append(f"cyme: task {task_id} {body.get('state')}: {body.get('error')}")
                    continue
                check_result("cyme", body.get("result"), problems)
                elapsed_http.append(float((body.get("result") or {}).get("elapsed") or 0))
            done_at[slot] = time.perf_counter()

    t0 = time.perf_counter()
    run_threads(client, clients, WAIT_TIMEOUT * 3 + 60)
    total = max(done_at) - t0
    return summary(m, total, max(queued_at) - t0, [x for s in post_ms for x in s], elapsed_http, problems)


def bare_round(client_app: Celery, target: str, m: int, clients: int) -> dict[str, Any]:
    """send_task *m* times from *clients* threads, then AsyncResult.get each, in order."""
    slots = split(list(range(m)), clients)
    sent: list[list[Any]] = [[] for _ in range(clients)]
    send_ms: list[list[float]] = [[] for _ in range(clients)]
    problems: list[str] = []
    kwargs = {"request": url_request(target), "retries": 0, "retry_delay": 1}
    soft = CONNECT_TIMEOUT + READ_TIMEOUT + TIME_LIMIT_MARGIN

    def client(slot: int) -> None:
        for _ in slots[slot]:
            t = time.perf_counter()
            result = client_app.send_task(
                TASK_NAME,
                kwargs=kwargs,
                queue=BARE_QUEUE,
                soft_time_limit=soft,
                time_limit=soft + TIME_LIMIT_MARGIN,
            )
            send_ms[slot].append((time.perf_counter() - t) * 1000)
            sent[slot].append(result)

    t0 = time.perf_counter()
    run_threads(client, clients, 120)
    queued = time.perf_counter() - t0
    elapsed_http: list[float] = []
    for result in (r for s in sent for r in s):
        try:
            value = result.get(timeout=WAIT_TIMEOUT, propagate=False)
        except Exception as exc:  # celery TimeoutError and backend errors
            problems.append(f"bare: {type(exc).__name__}: {exc}")
            continue
        if result.state != "SUCCESS":
            problems.append(f"bare: task {result.id} {result.state}: {value}")
            continue
        check_result("bare", value, problems)
        elapsed_http.append(float(value.get("elapsed") or 0))
    total = time.perf_counter() - t0
    return summary(m, total, queued, [x for s in send_ms for x in s], elapsed_http, problems)


def summary(
    m: int, total: float, queued: float, send_ms: list[float], elapsed_http: list[float], problems: list[str]
) -> dict[str, Any]:
    for p in problems[:3]:
        NOTES.add(p)
    if len(problems) > 3:
        NOTES.add(f"... and {len(problems) - 3} more task problems")
    return {
        "tasks": m,
        "total_s": total,
        "tasks_s": m / total if total else float("nan"),
        "queue_phase_s": queued,
        "queue_rate_s": m / queued if queued else float("nan"),
        "send_median_ms": median(send_ms),
        "endpoint_elapsed_median_ms": median(elapsed_http) * 1000,
        "problems": len(problems),
    }


# --------------------------------------------------------------------------
# One concurrency level
# --------------------------------------------------------------------------


def bench_concurrency(
    branch: Branch,
    client_app: Celery,
    pinger: Pinger,
    target: str,
    conc: int,
    args: argparse.Namespace,
    workdir: Path,
    bare_decl: dict[str, Any],
) -> dict[str, Any]:
    bp = branch.bp
    broker = bp.broker_url()
    name = f"url-c{conc}-{short_id()}"
    pid = branch.create_instance(name, queues=QUEUE, max=conc, min=conc).get("pid")
    spec = bare_spec(workdir / "bare", broker, f"bareurl-c{conc}-{short_id()}", queues=(bare_decl,),
                     concurrency=conc, backend=broker)  # fmt: skip
    worker = BareWorker(spec)
    runs: dict[str, list[dict[str, Any]]] = {"cyme": [], "bare": []}
    try:
        worker.start()
        worker.wait_pong(pinger)
        log(f"concurrency {conc}: instance {name} (pid {pid}), bare worker {worker.node}")
        warm = max(2 * conc, 4)
        cyme_round(bp.url, target, warm, args.clients)
        bare_round(client_app, target, warm, args.clients)
        for r in range(args.rounds):
            steps: list[Callable[[], None]] = [
                lambda: runs["cyme"].append(cyme_round(bp.url, target, args.tasks, args.clients)),
                lambda: runs["bare"].append(bare_round(client_app, target, args.tasks, args.clients)),
            ]
            for step in steps if r % 2 == 0 else reversed(steps):
                step()
            c, b = runs["cyme"][-1], runs["bare"][-1]
            log(
                f"concurrency {conc} round {r + 1}/{args.rounds}: cyme {c['tasks_s']:.1f} tasks/s "
                f"(queueing {c['queue_rate_s']:.1f}/s), bare {b['tasks_s']:.1f} tasks/s "
                f"(sending {b['queue_rate_s']:.1f}/s)"
            )
    finally:
        worker.stop()
        branch.delete_instance(name)
    cyme = median([x["tasks_s"] for x in runs["cyme"]])
    bare = median([x["tasks_s"] for x in runs["bare"]])

    def med(side: str, key: str) -> float:
        return median([x[key] for x in runs[side]])

    return {
        "concurrency": conc,
        "cyme_tasks_s": cyme,
        "bare_tasks_s": bare,
        "ratio_cyme_over_bare": ratio(cyme, bare),
        "cyme_queue_rate_s": med("cyme", "queue_rate_s"),
        "bare_send_rate_s": med("bare", "queue_rate_s"),
        "cyme_post_median_ms": med("cyme", "send_median_ms"),
        "bare_send_median_ms": med("bare", "send_median_ms"),
        "cyme_endpoint_ms": med("cyme", "endpoint_elapsed_median_ms"),
        "bare_endpoint_ms": med("bare", "endpoint_elapsed_median_ms"),
        "runs": runs,
    }


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    out = []
    cfg = results["config"]
    ep = results.get("endpoint", {})
    out.append(
        f"URL tasks end to end, {cfg['tasks']} tasks per run, {cfg['clients']} client threads, "
        f"median of {cfg['rounds']} run(s); endpoint: {cfg['endpoint']} "
        f"(alone: {ep.get('req_s', float('nan')):.0f} req/s from {ep.get('threads')} threads)"
    )
    rows = [[
        "concurrency", "cyme tasks/s", "bare tasks/s", "cyme/bare",
        "cyme queue/s", "bare send/s", "POST ms", "send_task ms", "endpoint ms c/b",
    ]]  # fmt: skip
    for c in results.get("levels", []):
        rows.append([
            str(c["concurrency"]),
            f"{c['cyme_tasks_s']:.1f}",
            f"{c['bare_tasks_s']:.1f}",
            f"{c['ratio_cyme_over_bare']:.2f}x",
            f"{c['cyme_queue_rate_s']:.1f}",
            f"{c['bare_send_rate_s']:.1f}",
            f"{c['cyme_post_median_ms']:.1f}",
            f"{c['bare_send_median_ms']:.2f}",
            f"{c['cyme_endpoint_ms']:.1f}/{c['bare_endpoint_ms']:.1f}",
        ])  # fmt: skip
    out.append(table(rows))
    return "\n".join(out)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parse = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parse.add_argument("--tasks", type=int, default=None, help="tasks per run and side (200)")
    parse.add_argument("--rounds", type=int, default=None, help="runs per side and concurrency (3)")
    parse.add_argument("--clients", type=int, default=4, help="client threads queueing and waiting (4)")
    parse.add_argument("--concurrency", default="1,4", help="comma-separated worker concurrencies (1,4)")
    parse.add_argument("--endpoint", choices=["recorder", "minimal"], default="recorder",
                       help="tests.recorder's server or a minimal asyncio responder (recorder)")  # fmt: skip
    args = parse_with_presets(
        parse,
        argv,
        "fewer tasks and rounds (~1 minute)",
        quick={"tasks": 100, "rounds": 1},
        full={"tasks": 200, "rounds": 3},
    )
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.tasks < 1 or args.rounds < 1 or args.clients < 1 or any(c < 1 for c in args.concurrency):
        parse.error("tasks, rounds, clients and concurrency must be positive")
    return args


def measure(args: argparse.Namespace, results: dict[str, Any]) -> None:
    preflight(results)
    with temp_workdir(args.keep, "cyme-bench-url-") as workdir, contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(Endpoint(args.endpoint, workdir / "endpoint.log"))
        log(f"endpoint {args.endpoint} pid {endpoint.proc.pid if endpoint.proc else '?'} at {endpoint.url}")
        results["endpoint"] = endpoint_capacity(endpoint.url, args.clients, 2.0)
        log(f"endpoint alone: {results['endpoint']['req_s']:.0f} req/s from {args.clients} threads")
        branch = stack.enter_context(Branch(workdir / "root"))
        bp = branch.bp
        broker = bp.broker_url()
        pinger = stack.enter_context(Pinger(broker))
        client_app = Celery("cyme-bench-client", broker=broker, backend=broker, set_as_current=False)
        stack.callback(client_app.close)
        for path in (f"/{APP}/", f"/{APP}/queues/{QUEUE}/", f"/{APP}/queues/{BARE_QUEUE}/"):
            branch.create(path)
        # The bare worker consumes a queue declared exactly as cyme declares one (but not
        # consumed by any instance), so it gets the same CYME_QUEUES a supervised worker would.
        bare_decl = bp.get(f"/{APP}/queues/{BARE_QUEUE}/").json()
        target = endpoint.url + "/x"
        for conc in args.concurrency:
            results["levels"].append(
                bench_concurrency(branch, client_app, pinger, target, conc, args, workdir, bare_decl)
            )
        stack.close()  # stop the branch now, so its leftovers make it into the notes


def main(argv: list[str] | None = None) -> int:
    return run_bench(parse_args(argv), measure, report, levels=[])


if __name__ == "__main__":
    run_script(main)
