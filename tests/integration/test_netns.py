"""Two branches as two hosts: network namespaces joined by a veth pair (root only).

Each branch, its workers and its HTTP server live in their own namespace and talk to the
other one over 10.213.x.0/24 only, as two machines would; Redis runs in the first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
CLIENT = """
import json, sys, requests
method, url = sys.argv[1], sys.argv[2]
try:
    reply = requests.request(method, url, params=json.loads(sys.argv[3]), timeout=60)
    print(json.dumps({"status": reply.status_code, "body": reply.json()}))
except requests.RequestException as exc:
    print(json.dumps({"status": 0, "body": str(exc)}))
"""


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def can_make_namespaces() -> bool:
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    name = f"cymeprobe{uuid.uuid4().hex[:6]}"
    try:
        run("ip", "netns", "add", name)
    except (subprocess.CalledProcessError, OSError):
        return False
    run("ip", "netns", "del", name)
    return True


pytestmark = pytest.mark.skipif(not can_make_namespaces(), reason="needs root and ip netns")


@dataclass
class Host:
    """A network namespace with one address on the shared link."""

    netns: str
    address: str

    def popen(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(["ip", "netns", "exec", self.netns, *args], stdout=out, stderr=out)

    def http(self, method: str, url: str, **params: Any) -> tuple[int, Any]:
        result = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.netns,
                sys.executable,
                "-c",
                CLIENT,
                method,
                url,
                json.dumps(params),
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
        reply = json.loads(result.stdout)
        return reply["status"], reply["body"]


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    tag = uuid.uuid4().hex[:5]
    subnet = f"10.213.{int(tag, 16) % 250 + 1}"
    a, b = Host(f"cyme-a-{tag}", f"{subnet}.1"), Host(f"cyme-b-{tag}", f"{subnet}.2")
    veth_a, veth_b = f"cva{tag}", f"cvb{tag}"
    try:
        for host in (a, b):
            run("ip", "netns", "add", host.netns)
            run("ip", "-n", host.netns, "link", "set", "lo", "up")
        run("ip", "link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        for host, veth in ((a, veth_a), (b, veth_b)):
            run("ip", "link", "set", veth, "netns", host.netns)
            run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", veth)
            run("ip", "-n", host.netns, "link", "set", veth, "up")
        yield a, b
    finally:
        for host in (a, b):
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, timeout=30)


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_branches_on_two_hosts_form_one_cluster(hosts: tuple[Host, Host], tmp_path: Path) -> None:
    a, b = hosts
    broker = f"redis://{a.address}:6390/0"
    procs = [
        a.popen(
            [REDIS, "--port", "6390", "--bind", a.address, "--save", "", "--protected-mode", "no"],
            tmp_path / "redis.log",
        )
    ]
    try:
        for host, name, extra in ((a, "hosta", []), (b, "hostb", ["--join", f"{a.address}:18000"])):
            procs.append(
                host.popen(
                    [sys.executable, "-m", "cyme.cli.branch", f"{host.address}:8000", "-i", name,
                     "-D", str(tmp_path / name), "--admin-addr", host.address, "--admin-port", "18000",
                     "--broker", broker, "--sup-interval", "1", *extra],
                    tmp_path / f"{name}.log",
                )
            )  # fmt: skip
        url_a, url_b = f"http://{a.address}:8000", f"http://{b.address}:8000"
        wait_for(
            lambda: len(b.http("GET", f"{url_b}/branches/")[1]) == 2, 60, "the two hosts to form a cluster"
        )
        assert a.http("POST", f"{url_a}/netapp/")[0] == 201
        status, created = a.http("POST", f"{url_a}/netapp/instances/across/", branch="hostb")
        assert status == 201, created
        assert created["branch"] == "hostb" and created["status"] == "online"
        status, listed = b.http("GET", f"{url_b}/netapp/instances/")
        assert [i["name"] for i in listed] == ["across"]
        assert b.http("GET", f"{url_b}/netapp/")[0] == 200  # the app reached the other host
        assert a.http("GET", f"{url_a}/netapp/instances/across/")[1]["pid"] == created["pid"]
        # Servers listen on the address they were given only (here: not on loopback).
        assert a.http("GET", "http://127.0.0.1:8000/ping/")[0] == 0
        assert a.http("DELETE", f"{url_a}/netapp/instances/across/")[0] == 200
    finally:
        for proc in reversed(procs):
            stop(proc)
