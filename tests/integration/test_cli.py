"""cyme-branch as an operator runs it: options, environment, side by side, Procfile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from cyme.actors.messages import CreateApp, CreateInstance, DeleteInstance, GetInstance, ListApps
from cyme.errors import NotFound
from tests.helpers import BranchProcess, free_port, pid_alive, wait_for

REPO = Path(__file__).resolve().parents[2]


def test_help_explains_every_option() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cyme.cli.branch", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in ("--id", "--root", "--broker", "--db", "--without-http", "--loglevel", "--logfile"):
        assert option in out
    assert "CYME_ROOT" in out and "[addr]:port" in out


def test_bad_option_exits_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cyme.cli.branch", "127.0.0.1:notaport", "-D", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 78
    assert "port must be a number" in result.stderr
    assert "Traceback" not in result.stderr


def test_two_branches_run_side_by_side_with_their_own_roots(tmp_path: Path) -> None:
    one = BranchProcess(tmp_path / "branch1", branch_id="branch1")
    two = BranchProcess(tmp_path / "branch2", branch_id="branch2")
    try:
        one.start()
        two.start()
        pids = {}
        for branch in (one, two):
            assert branch.get("/branches/").json()[0]["id"] == branch.branch_id
            assert branch.post("/foo/").status_code == 201
            reply = branch.post(f"/foo/instances/w-{branch.branch_id}/")
            assert reply.status_code == 201, reply.text
            pids[branch.branch_id] = reply.json()["pid"]
            assert (branch.root / f"w-{branch.branch_id}" / "worker.pid").exists()
            assert (branch.root / f"w-{branch.branch_id}" / "worker.log").exists()
            assert (branch.root / "cyme.db").exists()
        assert one.get("/foo/instances/").json()[0]["name"] == "w-branch1"
        assert two.get("/foo/instances/").json()[0]["name"] == "w-branch2"
    finally:
        codes = [b.stop() for b in (one, two) if b.proc is not None]
    assert codes == [0, 0]
    # A normal stop stops the branch's workers too.
    assert not any(pid_alive(pid) for pid in pids.values())


def test_every_option_can_come_from_the_environment(tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    root = tmp_path / "envroot"
    env = {
        **os.environ,
        "CYME_LISTEN": f"127.0.0.1:{port}",
        "CYME_ID": "fromenv",
        "CYME_ROOT": str(root),
        "CYME_ADMIN_PORT": str(admin),
        "CYME_LOGFILE": str(tmp_path / "branch.log"),
        "CYME_DB": f"sqlite:///{tmp_path / 'elsewhere.db'}",
    }
    proc = subprocess.Popen([sys.executable, "-m", "cyme.cli.branch"], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url), 60, 0.1, "the branch to answer")
        info = requests.get(f"{url}/branches/fromenv/", timeout=10).json()
        assert info["id"] == "fromenv" and info["root"] == str(root) and info["admin_port"] == admin
        assert (tmp_path / "elsewhere.db").exists() and not (root / "cyme.db").exists()
        assert "fromenv ready" in (tmp_path / "branch.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def test_python_services_can_use_the_message_api(embedded_branch: BranchProcess) -> None:
    with embedded_branch.client() as branch:
        app = branch.ask(CreateApp(name="msgapi"))
        assert app.name == "msgapi"
        assert "msgapi" in [a.name for a in branch.ask(ListApps())]
        instance = branch.ask(CreateInstance(app="msgapi", name="msg-worker", max_concurrency=2))
        assert instance.status == "online" and instance.max_concurrency == 2
        assert pid_alive(instance.pid)
        assert branch.ask(DeleteInstance(app="msgapi", name="msg-worker")).name == "msg-worker"
        try:
            branch.ask(GetInstance(app="msgapi", name="msg-worker"))
        except NotFound as exc:
            assert "msg-worker" in exc.message
        else:
            raise AssertionError("a deleted instance was still found")
    assert not pid_alive(instance.pid)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/ping/", timeout=5).status_code == 200
    except requests.RequestException:  # not up yet, or slow on a busy machine
        return False


def test_procfile_runs_branch_and_web_as_separate_processes(tmp_path: Path) -> None:
    base, admin = free_port(), free_port()
    web = base + 100  # honcho gives the second Procfile entry PORT=base+100
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # as in an activated venv
        "CYME_ADMIN_PORT": str(admin),
        "CYME_ROOT": str(tmp_path / "root"),
    }
    honcho = [sys.executable, "-m", "honcho", "-f", str(REPO / "Procfile"), "start", "-p", str(base)]
    proc = subprocess.Popen(honcho, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{web}"
        wait_for(lambda: _answers(url), 60, 0.2, "the Procfile web process to reach the branch")
        assert requests.post(f"{url}/proc/", timeout=30).status_code == 201
        reply = requests.post(f"{url}/proc/instances/p1/", timeout=60)
        assert reply.status_code == 201, reply.text
        pid = reply.json()["pid"]
        assert pid_alive(pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert not pid_alive(pid), output


def cyme(branch: BranchProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cyme.cli.client", "--url", branch.url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cyme_command_line_client_drives_the_api(embedded_branch: BranchProcess) -> None:
    import json

    assert cyme(embedded_branch, "apps", "add", "clientapp").returncode == 0
    assert cyme(embedded_branch, "queues", "clientapp", "add", "jobs").returncode == 0
    added = cyme(embedded_branch, "instances", "clientapp", "add", "cli-worker", "--max", "2")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["status"] == "online"
    assert json.loads(cyme(embedded_branch, "consume", "clientapp", "cli-worker", "jobs").stdout)[
        "queues"
    ] == ["jobs"]
    scaled = json.loads(cyme(embedded_branch, "autoscale", "clientapp", "cli-worker", "--max", "3").stdout)
    assert scaled["max"] == 3
    stats = json.loads(cyme(embedded_branch, "stats", "clientapp", "cli-worker").stdout)
    assert stats["stats"]["autoscaler"]["max"] == 3
    missing = cyme(embedded_branch, "instances", "clientapp", "show", "nobody")
    assert missing.returncode == 66 and "nobody" in missing.stderr and "Traceback" not in missing.stderr
    assert cyme(embedded_branch, "cancel", "clientapp", "cli-worker", "jobs").returncode == 0
    assert cyme(embedded_branch, "instances", "clientapp", "delete", "cli-worker").returncode == 0
    assert json.loads(cyme(embedded_branch, "instances", "clientapp").stdout) == []
