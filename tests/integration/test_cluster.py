"""Many branches, one cluster: placement, cluster-wide listings, routing to the owner, failures."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import BrokerServer
from tests.helpers import BranchProcess, Inspector, pid_alive, wait_for


def start_cluster(root: Path, broker: str, count: int = 3, leaders: int = 1) -> list[BranchProcess]:
    """*count* branches on loopback sharing *broker*; the first *leaders* lead the convention."""
    tag = uuid.uuid4().hex[:4]
    branches = [BranchProcess(root / f"b{i}", branch_id=f"c{tag}b{i}", broker=broker) for i in range(count)]
    join = ",".join(f"127.0.0.1:{b.admin_port}" for b in branches[:leaders])
    try:
        for index, branch in enumerate(branches):
            if index > 0 or leaders > 1:
                branch.extra = ["--join", join]
            branch.start()
        for branch in branches:
            wait_for(
                lambda b=branch: len(b.get("/branches/").json()) == count, 30, 0.2, "the cluster to form"
            )
    except BaseException:
        stop_all(branches)
        raise
    return branches


def stop_all(branches: list[BranchProcess]) -> None:
    for branch in branches:
        if branch.proc is not None and branch.proc.poll() is None:
            branch.stop()
    for branch in branches:
        branch.kill_leftover_workers()  # e.g. of a branch a failed test left killed


@pytest.fixture(scope="module")
def cluster(
    redis_server: BrokerServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[BranchProcess]]:
    branches = start_cluster(tmp_path_factory.mktemp("cluster"), redis_server.url)
    yield branches
    stop_all(branches)


@pytest.fixture
def inspector(redis_server: BrokerServer) -> Iterator[Inspector]:
    inspect = Inspector(redis_server.url)
    yield inspect
    inspect.close()


def ids(branches: list[BranchProcess]) -> list[str]:
    return [b.branch_id for b in branches]


def test_every_branch_lists_every_live_branch(cluster: list[BranchProcess]) -> None:
    for branch in cluster:
        listed = branch.get("/branches/").json()
        assert sorted(b["id"] for b in listed) == sorted(ids(cluster))
        assert listed[0]["id"] == branch.branch_id
        assert all({"http", "admin_port", "instances", "online"} <= set(b) for b in listed)
        other = cluster[(cluster.index(branch) + 1) % 3]
        assert branch.get(f"/branches/{other.branch_id}/").json()["admin_port"] == other.admin_port


def test_apps_and_queues_are_visible_from_every_branch(cluster: list[BranchProcess]) -> None:
    one, two, three = cluster
    assert two.post("/shared/").status_code == 201
    assert (
        two.post("/shared/queues/jobs/", data={"routing_key": "jobs.#", "exchange_type": "topic"}).status_code
        == 201
    )
    for branch in (one, three):
        assert branch.get("/shared/").status_code == 200
        assert branch.get("/shared/queues/jobs/").json()["routing_key"] == "jobs.#"
        assert [q["name"] for q in branch.get("/shared/queues/").json()] == ["jobs"]
        assert "shared" in [a["name"] for a in branch.get("/").json()]


def test_instances_spread_over_branches_and_are_listed_everywhere(cluster: list[BranchProcess]) -> None:
    one, two, three = cluster
    one.post("/spread/")
    created = [one.post("/spread/instances/", params={"nowait": 1}).json() for _ in range(6)]
    assert sorted({c["branch"] for c in created}) == sorted(ids(cluster))
    for branch in cluster:
        listing = branch.get("/spread/instances/")
        assert "X-Cyme-Missing-Branches" not in listing.headers
        assert sorted(i["name"] for i in listing.json()) == sorted(c["name"] for c in created)
    for instance in created:
        wait_for(
            lambda i=instance: three.get(f"/spread/instances/{i['name']}/").json()["status"] == "online",
            60,
            0.2,
            "instances to come online",
        )
    for instance in created:
        assert two.delete(f"/spread/instances/{instance['name']}/").status_code == 200
    assert one.get("/spread/instances/").json() == []


def test_any_branch_operates_on_an_instance_it_does_not_own(
    cluster: list[BranchProcess], inspector: Inspector
) -> None:
    one, two, three = cluster
    one.post("/remote/")
    two.post("/remote/queues/work/")  # declared through another branch than the owner
    created = one.post("/remote/instances/far/", params={"branch": three.branch_id})
    assert created.status_code == 201, created.text
    assert created.json()["branch"] == three.branch_id
    node = f"far@{three.branch_id}"
    assert one.get("/remote/instances/far/").json()["pid"] == created.json()["pid"]
    assert one.put("/remote/instances/far/queues/work/").json()["queues"] == ["work"]
    assert inspector.active_queues(node) == ["dq.far", "work"]
    assert two.post("/remote/instance/far/autoscale/", params={"max": 3}).json()["max"] == 3
    assert one.get("/remote/instance/far/stats/").json()["stats"]["autoscaler"]["max"] == 3
    assert two.delete("/remote/instances/far/queues/work/").status_code == 200
    assert inspector.active_queues(node) == ["dq.far"]
    # A named instance is unique across the cluster.
    duplicate = two.post("/remote/instances/far/")
    assert duplicate.status_code == 409, duplicate.text
    assert one.post("/remote/instances/x/", params={"branch": "nowhere"}).status_code == 404
    assert one.delete("/remote/").status_code == 409  # it still has an instance, on another branch
    assert one.delete("/remote/instances/far/").status_code == 200
    assert not pid_alive(created.json()["pid"])
    assert two.get("/remote/instances/far/").status_code == 404
    assert three.delete("/remote/").status_code == 200
    assert one.get("/remote/").status_code == 404


def test_a_killed_branch_makes_listings_partial_then_rejoins(
    redis_server: BrokerServer, tmp_path: Path
) -> None:
    branches = start_cluster(tmp_path, redis_server.url)
    one, two, three = branches
    try:
        one.post("/fail/")
        doomed = one.post("/fail/instances/doomed/", params={"branch": three.branch_id}).json()
        three.kill()

        def partial() -> bool:
            started = time.monotonic()
            listing = one.get("/fail/instances/")
            assert time.monotonic() - started < 10  # never a hang
            assert listing.status_code == 200
            return listing.headers.get("X-Cyme-Missing-Branches") == three.branch_id and listing.json() == []

        wait_for(partial, 20, 0.2, "a partial listing naming the dead branch")
        for survivor in (one, two):
            wait_for(
                lambda s=survivor: three.branch_id not in [b["id"] for b in s.get("/branches/").json()],
                20,
                0.5,
                "the dead branch to be left out",
            )
        placed = [two.post("/fail/instances/", params={"nowait": 1}) for _ in range(4)]
        assert [p.status_code for p in placed] == [202] * 4, placed[-1].text
        assert three.branch_id not in [p.json()["branch"] for p in placed]
        assert pid_alive(doomed["pid"])  # the worker outlives its branch

        three.restart()
        wait_for(lambda: len(one.get("/branches/").json()) == 3, 30, 0.3, "the branch to rejoin")
        back = wait_for(
            lambda: (r := one.get("/fail/instances/doomed/")).status_code == 200 and r.json(),
            30,
            0.3,
            "its instance to be found again",
        )
        assert back["branch"] == three.branch_id and back["pid"] == doomed["pid"]
        assert "X-Cyme-Missing-Branches" not in one.get("/fail/instances/").headers
    finally:
        stop_all(branches)


def test_losing_the_leader_leaves_the_others_working(redis_server: BrokerServer, tmp_path: Path) -> None:
    branches = start_cluster(tmp_path, redis_server.url, count=3, leaders=2)
    leader, backup, member = branches
    try:
        leader.post("/ha/")
        kept = backup.post("/ha/instances/kept/", params={"branch": member.branch_id})
        assert kept.status_code == 201, kept.text
        leader.kill()
        wait_for(  # a busy machine may make a listing partial for a moment; it must recover
            lambda: [i["name"] for i in backup.get("/ha/instances/").json()] == ["kept"],
            30,
            0.5,
            "the surviving branches to list their instances",
        )
        wait_for(
            lambda: (
                sorted(b["id"] for b in member.get("/branches/").json())
                == sorted([backup.branch_id, member.branch_id])
            ),
            20,
            0.5,
            "the dead leader to be left out",
        )
        for branch in (backup, member):
            placed = branch.post("/ha/instances/", params={"nowait": 1})
            assert placed.status_code == 202, placed.text
            assert placed.json()["branch"] in (backup.branch_id, member.branch_id)
        assert member.get("/ha/instances/kept/").json()["status"] == "online"
        # A branch joining now finds the cluster through the second leader.
        late = BranchProcess(tmp_path / "late", branch_id=f"{member.branch_id}late", broker=redis_server.url)
        late.extra = ["--join", f"127.0.0.1:{leader.admin_port},127.0.0.1:{backup.admin_port}"]
        branches.append(late.start())
        wait_for(lambda: len(late.get("/branches/").json()) == 3, 40, 0.5, "the late branch to join")
        assert late.get("/ha/").status_code == 200  # it caught up with the configuration
    finally:
        stop_all(branches)


def test_url_tasks_run_anywhere_and_are_followed_from_any_branch(cluster: list[BranchProcess]) -> None:
    from tests.recorder import start_recorder

    one, two, three = cluster
    recorder = start_recorder()
    try:
        assert one.post("/clurl/").status_code == 201
        assert one.post("/clurl/queues/hooks/").status_code == 201
        runner = two.post("/clurl/instances/hooker/", params={"queues": "hooks", "branch": three.branch_id})
        assert runner.status_code == 201, runner.text
        queued = two.post(f"/clurl/queue/hooks/{recorder.url}/cluster?x=1", data={"a": "b"})
        assert queued.status_code == 202, queued.text
        task_id = queued.json()["uuid"]
        done = one.get(f"/clurl/query/{task_id}/wait/", params={"timeout": 30})
        assert done.status_code == 200, done.text
        assert done.json()["result"]["worker"] == f"hooker@{three.branch_id}"
        assert recorder.requests_to("/cluster")[0].body == b"a=b"
        assert three.get(f"/clurl/query/{task_id}/state/").json()["state"] == "SUCCESS"
        assert one.get(f"/clurl/query/{uuid.uuid4()}/state/").status_code == 404
        assert one.delete("/clurl/instances/hooker/").status_code == 200
    finally:
        recorder.close()
