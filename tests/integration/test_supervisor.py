"""The supervisor keeps workers true to the model through crashes, stalls and outages."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import start_redis
from tests.helpers import BranchProcess, Inspector, pid_alive, wait_for, worker_pids


@pytest.fixture
def branch(tmp_path: Path) -> Iterator[BranchProcess]:
    """A private branch (embedded broker) that a test may break."""
    running = BranchProcess(tmp_path / "root", branch_id=f"sup{uuid.uuid4().hex[:6]}").start()
    yield running
    if running.proc is not None and running.proc.poll() is None:
        assert running.stop() == 0, running.log_tail()
    running.kill_leftover_workers()


def create(branch: BranchProcess, app: str, name: str, **params: object) -> dict[str, object]:
    branch.post(f"/{app}/")
    reply = branch.post(f"/{app}/instances/{name}/", params=params)
    assert reply.status_code == 201, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_a_killed_worker_is_replaced_at_once(branch: BranchProcess) -> None:
    first = create(branch, "app", "w1")
    started = time.monotonic()
    os.kill(int(first["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    info = wait_for(
        lambda: (i := branch.instance("app", "w1"))["status"] == "online" and i["pid"] != first["pid"] and i,
        30,
        0.05,
        "the worker to be replaced",
    )
    assert time.monotonic() - started < 15  # ~1.2 s on a quiet machine: a worker's cold start
    assert info["restarts"] == 1
    assert worker_pids(f"w1@{branch.branch_id}") == [info["pid"]]
    assert branch.logged("w1 worker exited unexpectedly")


def test_a_stalled_worker_is_restarted(branch: BranchProcess) -> None:
    first = create(branch, "app", "stalled")
    os.kill(int(first["pid"]), signal.SIGSTOP)  # type: ignore[call-overload]
    info = wait_for(
        lambda: (
            (i := branch.instance("app", "stalled"))["status"] == "online" and i["pid"] != first["pid"] and i
        ),
        40,
        0.2,
        "the unresponsive worker to be restarted",
    )
    assert not pid_alive(int(first["pid"]))  # type: ignore[call-overload]
    assert worker_pids(f"stalled@{branch.branch_id}") == [info["pid"]]
    assert branch.logged("missed ping")


def test_a_crash_loop_backs_off_visibly(branch: BranchProcess) -> None:
    pid = create(branch, "app", "flaky")["pid"]
    seen_backoff = None
    for _ in range(4):
        os.kill(int(pid), signal.SIGKILL)  # type: ignore[call-overload]
        info = wait_for(
            lambda old=pid: (
                ((i := branch.instance("app", "flaky"))["pid"] not in (old, None) and i)
                or (i["status"] == "backoff" and i)
            ),
            30,
            0.02,
            "a restart or a backoff",
        )
        if info["status"] == "backoff":
            seen_backoff = info
            break
        pid = info["pid"]
    assert seen_backoff is not None, "no backoff after repeated crashes"
    assert seen_backoff["next_attempt"] and seen_backoff["restarts"] >= 2
    # It is not disabled for good: it comes back.
    wait_for(lambda: branch.instance("app", "flaky")["status"] == "online", 30, 0.2, "recovery after backoff")


def test_a_killed_branch_adopts_its_workers_and_stops_deleted_ones(branch: BranchProcess) -> None:
    keep = create(branch, "app", "keep")
    gone = create(branch, "app", "gone")
    branch.kill()
    # The branch's actors and HTTP server die with it; the workers do not.
    wait_for(
        lambda: not _port_open(branch.admin_port) and not _port_open(branch.port), 20, 0.1, "ports to close"
    )
    assert pid_alive(int(keep["pid"])) and pid_alive(int(gone["pid"]))  # type: ignore[call-overload]
    with sqlite3.connect(branch.root / "cyme.db") as db:  # deleted while the branch was down
        db.execute("DELETE FROM instance WHERE name = 'gone'")

    branch.restart()
    info = wait_for(
        lambda: (i := branch.instance("app", "keep"))["status"] == "online" and i, 30, 0.1, "adoption"
    )
    assert info["pid"] == keep["pid"] and info["restarts"] == 0
    assert worker_pids(f"keep@{branch.branch_id}") == [keep["pid"]]
    wait_for(lambda: not pid_alive(int(gone["pid"])), 30, 0.1, "the deleted instance's worker to stop")  # type: ignore[call-overload]
    assert worker_pids(f"gone@{branch.branch_id}") == []
    assert branch.logged("adopted running worker")


def test_keep_workers_leaves_them_running_for_the_next_run(tmp_path: Path) -> None:
    branch = BranchProcess(tmp_path / "root", branch_id="keeper", extra=["--keep-workers"]).start()
    pid = create(branch, "app", "kept")["pid"]
    assert branch.stop() == 0
    assert pid_alive(int(pid))  # type: ignore[call-overload]
    branch.extra = []
    branch.restart()
    try:
        wait_for(lambda: branch.instance("app", "kept")["status"] == "online", 30, 0.1, "adoption")
        assert branch.instance("app", "kept")["pid"] == pid
    finally:
        assert branch.stop() == 0
    assert not pid_alive(int(pid))  # type: ignore[call-overload]


def test_drift_behind_the_supervisors_back_is_repaired(branch: BranchProcess) -> None:
    create(branch, "app", "drifty")
    assert branch.put("/app/queues/extra/").status_code == 201
    inspector = Inspector(branch.broker_url())
    try:
        with sqlite3.connect(branch.root / "cyme.db") as db:
            db.execute(
                "UPDATE instance SET queues_json = ?, max_concurrency = 3 WHERE name = 'drifty'",
                (json.dumps(["extra"]),),
            )
        wait_for(
            lambda: inspector.active_queues(f"drifty@{branch.branch_id}") == ["dq.drifty", "extra"],
            20,
            0.2,
            "add_consumer",
        )
        wait_for(
            lambda: (
                (inspector.stats(f"drifty@{branch.branch_id}") or {}).get("autoscaler", {}).get("max") == 3
            ),
            20,
            0.2,
            "autoscale to be corrected",
        )
        # A consumer nobody asked for is cancelled; the direct queue is kept.
        inspector.app.control.add_consumer("rogue", destination=[f"drifty@{branch.branch_id}"], reply=True)
        wait_for(
            lambda: (
                inspector.active_queues(f"drifty@{branch.branch_id}") == ["dq.drifty", "extra"]
                and "rogue" in branch.log_text()
            ),
            20,
            0.2,
            "the rogue consumer to be cancelled",
        )
    finally:
        inspector.close()


def test_a_broker_outage_causes_no_restarts_and_loses_nothing(tmp_path: Path) -> None:
    redis = start_redis(tmp_path / "redis")
    branch = BranchProcess(
        tmp_path / "root", branch_id="outage", broker=redis.url, extra=["--wait-after-broker-revived", "3"]
    ).start()
    inspector = Inspector(redis.url)
    try:
        assert branch.put("/app/").status_code == 201
        assert branch.put("/app/queues/jobs/").status_code == 201
        before = {n: create(branch, "app", n, queues="jobs") for n in ("o1", "o2")}
        redis.stop()
        time.sleep(8)  # several supervisor intervals and ping timeouts
        during = {n: branch.instance("app", n) for n in before}
        assert all(i["restarts"] == 0 and i["pid"] == before[n]["pid"] for n, i in during.items())
        redis.start()
        for name, info in before.items():
            node = f"{name}@outage"
            wait_for(
                lambda node=node: inspector.active_queues(node) == [f"dq.{node[:2]}", "jobs"], 60, 0.5, node
            )
            after = branch.instance("app", name)
            assert after["pid"] == info["pid"] and after["restarts"] == 0 and after["status"] == "online"
        assert [i["name"] for i in branch.get("/app/instances/").json()] == ["o1", "o2"]
        assert branch.logged("unreachable", "revived")
    finally:
        inspector.close()
        if branch.proc is not None and branch.proc.poll() is None:
            assert branch.stop() == 0, branch.log_tail()
        redis.stop()


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0
