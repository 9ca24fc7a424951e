"""The Cyme guide's API, tried with real workers on the embedded broker, Redis and RabbitMQ."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.helpers import BranchProcess, Inspector, pid_alive, wait_for


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_guide_walkthrough_runs_real_workers(branch: BranchProcess, inspector: Inspector) -> None:
    app = new_name("foo")
    created = branch.post(f"/{app}/")
    assert created.status_code == 201, created.text
    assert created.json()["name"] == app
    assert set(created.json()["broker"]) >= {"hostname", "port", "userid", "password", "virtual_host"}

    reply = branch.put(f"/{app}/instances/")
    assert reply.status_code == 201, reply.text
    instance = reply.json()
    name = instance["name"]
    assert uuid.UUID(name)
    assert instance["queues"] == [] and instance["is_enabled"] is True
    assert (instance["max_concurrency"], instance["min_concurrency"]) == (1, 1)
    assert instance["status"] == "online"
    node = f"{name}@{branch.branch_id}"

    # A real worker process, with its pid and log files under the branch root.
    pidfile = branch.root / name / "worker.pid"
    assert int(pidfile.read_text()) == instance["pid"]
    assert pid_alive(instance["pid"])
    assert "celery" in Path(f"/proc/{instance['pid']}/cmdline").read_text()
    assert (branch.root / name / "worker.log").exists()
    assert inspector.active_queues(node) == [f"dq.{name}"]

    listed = branch.get(f"/{app}/instances/").json()
    assert [i["name"] for i in listed] == [name]
    assert branch.get(f"/{app}/").json()["instances"] == [name]

    queue = branch.post(f"/{app}/queues/tasks/", data={"exchange": "tasks", "routing_key": "tasks"})
    assert queue.status_code == 201, queue.text
    assert queue.json() == {
        "name": "tasks",
        "exchange": "tasks",
        "exchange_type": "direct",
        "routing_key": "tasks",
        "options": None,
    }
    assert [q["name"] for q in branch.get(f"/{app}/queues/").json()] == ["tasks"]

    consume = branch.put(f"/{app}/instances/{name}/queues/tasks/")
    assert consume.status_code == 200, consume.text
    assert consume.json()["ok"] == "ok"
    assert inspector.active_queues(node) == sorted([f"dq.{name}", "tasks"])
    assert branch.get(f"/{app}/instances/{name}/queues/").json() == ["tasks"]

    cancel = branch.delete(f"/{app}/instances/{name}/queues/tasks/")
    assert cancel.status_code == 200, cancel.text
    assert inspector.active_queues(node) == [f"dq.{name}"]

    assert branch.delete(f"/{app}/queues/tasks/").status_code == 200
    assert branch.get(f"/{app}/queues/").json() == []

    deleted = branch.delete(f"/{app}/instances/{name}/")
    assert deleted.status_code == 200, deleted.text
    assert not pid_alive(instance["pid"])
    assert branch.get(f"/{app}/instances/").json() == []
    assert branch.delete(f"/{app}/").status_code == 200


def test_autoscale_changes_the_running_pool(branch: BranchProcess, inspector: Inspector) -> None:
    app = new_name("scale")
    branch.post(f"/{app}/")
    name = new_name("worker")
    created = branch.post(f"/{app}/instances/{name}/", params={"max": 2, "min": 1})
    assert created.status_code == 201, created.text
    assert (created.json()["max_concurrency"], created.json()["min_concurrency"]) == (2, 1)
    node = f"{name}@{branch.branch_id}"

    changed = branch.post(f"/{app}/instance/{name}/autoscale/", params={"max": 4, "min": 3})
    assert changed.status_code == 200, changed.text
    assert changed.json()["max"] == 4 and changed.json()["min"] == 3
    assert branch.get(f"/{app}/instance/{name}/autoscale/").json()["max"] == 4

    scaler = wait_for(lambda: (inspector.stats(node) or {}).get("autoscaler"), 20, 0.2, "worker stats")
    assert (scaler["max"], scaler["min"]) == (4, 3)
    processes = wait_for(
        lambda: len((inspector.stats(node) or {}).get("pool", {}).get("processes", [])) >= 3,
        10,
        what="the pool to grow to min=3",
    )
    assert processes

    stats = branch.get(f"/{app}/instance/{name}/stats/")
    assert stats.status_code == 200
    assert stats.json()["stats"]["autoscaler"]["max"] == 4
    assert stats.json()["instance"]["name"] == name
    # The plural spelling and a missing trailing slash answer the same.
    assert branch.get(f"/{app}/instances/{name}/stats").json()["stats"]["pid"] == created.json()["pid"]

    assert branch.delete(f"/{app}/instances/{name}").status_code == 200


def test_nowait_create_returns_at_once_and_comes_online(branch: BranchProcess) -> None:
    app = new_name("async")
    branch.post(f"/{app}/")
    reply = branch.post(f"/{app}/instances/", params={"nowait": 1}, timeout=1.0)
    assert reply.status_code == 202, reply.text
    assert reply.json()["status"] in ("starting", "stopped")
    name = reply.json()["name"]
    wait_for(
        lambda: branch.get(f"/{app}/instances/{name}/").json()["status"] == "online",
        30,
        what="the instance to come online",
    )
    gone = branch.delete(f"/{app}/instances/{name}/", params={"nowait": "1"})
    assert gone.status_code == 202
    wait_for(lambda: branch.get(f"/{app}/instances/").json() == [], 30, what="the instance list to empty")


def test_queue_declaration_defaults_and_options(branch: BranchProcess, inspector: Inspector) -> None:
    app = new_name("queues")
    branch.put(f"/{app}/")
    plain = branch.put(f"/{app}/queues/images/").json()
    assert plain == {
        "name": "images",
        "exchange": "images",
        "exchange_type": "direct",
        "routing_key": "images",
        "options": None,
    }
    options = {"durable": True, "queue_arguments": {"x-max-priority": 5}}
    custom = branch.post(
        f"/{app}/queues/video/",
        json={"exchange": "media", "exchange_type": "topic", "routing_key": "video.#", "options": options},
    )
    assert custom.status_code == 201, custom.text
    assert custom.json()["options"] == options
    assert branch.get(f"/{app}/queues/video/").json()["exchange_type"] == "topic"

    name = new_name("consumer")
    created = branch.post(f"/{app}/instances/{name}/", data={"queues": "images,video"})
    assert created.status_code == 201, created.text
    assert created.json()["queues"] == ["images", "video"]
    node = f"{name}@{branch.branch_id}"
    assert inspector.active_queues(node) == sorted([f"dq.{name}", "images", "video"])
    assert branch.delete(f"/{app}/instances/{name}/").status_code == 200


def test_app_with_broker_parameters_masks_the_password(branch: BranchProcess) -> None:
    app = new_name("remote")
    reply = branch.post(
        f"/{app}/",
        data={
            "hostname": "rabbit.example",
            "port": "5673",
            "userid": "u",
            "password": "s3cr3t",
            "virtual_host": "v",
        },
    )
    assert reply.status_code == 201, reply.text
    broker = reply.json()["broker"]
    assert (broker["hostname"], broker["port"], broker["userid"], broker["virtual_host"]) == (
        "rabbit.example",
        5673,
        "u",
        "v",
    )
    assert "s3cr3t" not in reply.text
    assert "s3cr3t" not in branch.get("/").text
    assert "s3cr3t" not in branch.get(f"/{app}/").text
    assert branch.delete(f"/{app}/").status_code == 200
