"""URL tasks end to end: queue any HTTP request, a real worker performs it, read the result."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BranchProcess, wait_for
from tests.recorder import Recorder, start_recorder


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    server = start_recorder()
    yield server
    server.close()


@pytest.fixture(scope="module")
def url_app(branch: BranchProcess) -> Iterator[tuple[BranchProcess, str]]:
    """An app with a declared queue ``web`` and one instance consuming from it."""
    app = f"urls-{uuid.uuid4().hex[:6]}"
    assert branch.post(f"/{app}/").status_code == 201
    assert branch.post(f"/{app}/queues/web/").status_code == 201
    assert branch.post(f"/{app}/queues/idle/").status_code == 201
    runner = branch.post(f"/{app}/instances/{app}-runner/", params={"queues": "web", "max": 4, "min": 2})
    assert runner.status_code == 201, runner.text
    other = branch.post(f"/{app}/instances/{app}-idle/", params={"queues": "idle"})
    assert other.status_code == 201, other.text
    yield branch, app
    branch.delete(f"/{app}/instances/{app}-runner/")
    branch.delete(f"/{app}/instances/{app}-idle/")


def queue(branch: BranchProcess, app: str, method: str, target: str, **kwargs: Any) -> str:
    reply = branch.request(method, f"/{app}/queue/web/{target}", **kwargs)
    assert reply.status_code == 202, reply.text
    task_id = reply.headers["X-Cyme-Task-Id"]
    assert reply.headers["Location"] == f"/{app}/query/{task_id}/state/"
    if method != "HEAD":
        assert reply.json()["uuid"] == task_id and reply.json()["state"] == "PENDING"
    return task_id


def wait(branch: BranchProcess, app: str, task_id: str, timeout: int = 30) -> dict[str, Any]:
    reply = branch.get(f"/{app}/query/{task_id}/wait/", params={"timeout": timeout})
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE"])
def test_every_verb_is_performed_with_the_same_verb(
    url_app: tuple[BranchProcess, str], recorder: Recorder, method: str
) -> None:
    branch, app = url_app
    path = f"/verb-{method.lower()}-{uuid.uuid4().hex[:6]}"
    task = wait(branch, app, queue(branch, app, method, recorder.url + path))
    assert task["state"] == "SUCCESS" and task["ready"]
    assert task["result"]["status"] == 200
    assert task["result"]["worker"] == f"{app}-runner@{branch.branch_id}"
    assert [r.method for r in recorder.requests_to(path)] == [method]


def test_query_form_json_and_raw_bodies_arrive_intact(
    url_app: tuple[BranchProcess, str], recorder: Recorder
) -> None:
    branch, app = url_app
    tag = uuid.uuid4().hex[:6]
    cases = {
        "/form": {"data": {"username": "George Costanza", "company": "Vandelay Industries"}},
        "/json": {"json": {"user": 133, "tags": ["a", "b"], "unicode": "\u00e9\u00e8"}},
        "/raw": {"data": b"\x00\x01binary\xffdata", "headers": {"Content-Type": "application/octet-stream"}},
    }
    ids = {}
    for path, kwargs in cases.items():
        ids[path] = queue(branch, app, "POST", f"{recorder.url}{path}{tag}?user=133&x=a%20b&x=2", **kwargs)
    for task_id in ids.values():
        assert wait(branch, app, task_id)["result"]["status"] == 200
    (form,) = recorder.requests_to("/form" + tag)
    assert form.query == "user=133&x=a%20b&x=2"
    assert form.body == b"username=George+Costanza&company=Vandelay+Industries"
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    (sent,) = recorder.requests_to("/json" + tag)
    assert (
        json.loads(sent.body) == cases["/json"]["json"] and sent.headers["Content-Type"] == "application/json"
    )
    (raw,) = recorder.requests_to("/raw" + tag)
    assert raw.body == b"\x00\x01binary\xffdata"

    # The target URL's own query (GET data) is forwarded too; selected headers travel along.
    task_id = queue(
        branch,
        app,
        "GET",
        f"{recorder.url}/import_contacts{tag}?user=133",
        headers={"Authorization": "Bearer t0k3n", "X-Cyme-Forward-Headers": "Authorization"},
    )
    result = wait(branch, app, task_id)["result"]
    assert json.loads(result["body"])["query"] == "user=133"
    (got,) = recorder.requests_to("/import_contacts" + tag)
    assert got.headers["Authorization"] == "Bearer t0k3n"


def test_results_carry_status_headers_and_body(
    url_app: tuple[BranchProcess, str], recorder: Recorder
) -> None:
    branch, app = url_app
    missing = wait(branch, app, queue(branch, app, "GET", recorder.url + "/missing"))
    assert missing["state"] == "SUCCESS"  # a 404 is a result, not a crash
    assert (missing["result"]["status"], missing["result"]["reason"]) == (404, "Not Found")
    assert missing["result"]["body"] == "no such thing"
    binary = wait(branch, app, queue(branch, app, "GET", recorder.url + "/binary"))["result"]
    assert base64.b64decode(binary["body_base64"]) == bytes(range(256))
    assert binary["headers"]["Content-Type"] == "application/octet-stream"
    assert binary["url"] == recorder.url + "/binary" and binary["elapsed"] >= 0


def test_unavailable_endpoint_is_retried_until_it_answers(
    url_app: tuple[BranchProcess, str], recorder: Recorder
) -> None:
    branch, app = url_app
    path = f"/flaky-{uuid.uuid4().hex[:6]}"
    task = wait(
        branch, app, queue(branch, app, "GET", recorder.url + path, headers={"X-Cyme-Retry-Delay": "0.2"})
    )
    assert task["result"]["status"] == 200 and task["result"]["retries"] == 1
    assert recorder.counts[path] == 2


def test_slow_endpoint_hits_the_timeout_and_says_so(
    url_app: tuple[BranchProcess, str], recorder: Recorder
) -> None:
    branch, app = url_app
    task_id = queue(branch, app, "GET", recorder.url + "/slow?delay=3", headers={"X-Cyme-Timeout": "0.5"})
    task = wait(branch, app, task_id)
    assert task["state"] == "FAILURE"
    assert task["error"]["type"] == "UrlTimeout" and "0.5" in task["error"]["message"]


def test_wait_returns_the_state_when_its_timeout_passes(
    url_app: tuple[BranchProcess, str], recorder: Recorder
) -> None:
    branch, app = url_app
    task_id = queue(branch, app, "GET", recorder.url + "/slow?delay=2")
    early = branch.get(f"/{app}/query/{task_id}/wait/", params={"timeout": 0})
    assert early.status_code == 202 and early.json()["state"] in ("PENDING", "STARTED")
    assert branch.get(f"/{app}/query/{task_id}/state/").json()["state"] in ("PENDING", "STARTED")
    assert wait(branch, app, task_id)["result"]["status"] == 200
    assert branch.get(f"/{app}/query/{task_id}/result/").json()["result"]["status"] == 200


def test_bad_task_requests_are_refused_and_nothing_is_published(
    url_app: tuple[BranchProcess, str], recorder: Recorder
) -> None:
    branch, app = url_app
    before = len(recorder.received)
    assert branch.get(f"/{app}/queue/undeclared/{recorder.url}/x").status_code == 404
    assert branch.get(f"/no-app-{uuid.uuid4().hex[:4]}/queue/web/{recorder.url}/x").status_code == 404
    assert branch.get(f"/{app}/queue/web/http://169.254.169.254/latest/meta-data/").status_code == 403
    assert branch.get(f"/{app}/queue/web/ftp://example.com/file").status_code == 400
    assert (
        branch.get(f"/{app}/queue/web/{recorder.url}/x", headers={"X-Cyme-Timeout": "soon"}).status_code
        == 400
    )
    assert branch.get(f"/{app}/query/{uuid.uuid4()}/state/").status_code == 404
    assert branch.get(f"/{app}/query/not-a-uuid/result/").status_code == 400
    assert branch.get(f"/{app}/query/{uuid.uuid4()}/wait/", params={"timeout": 9999}).status_code == 400
    too_big = branch.post(f"/{app}/queue/web/{recorder.url}/x", data=b"x" * (300 * 1024))
    assert too_big.status_code == 413
    wait_for(lambda: True, 0.5)
    assert len(recorder.received) == before


def test_a_host_that_resolves_to_a_denied_network_is_refused_by_the_worker(tmp_path: Path) -> None:
    recorder = start_recorder()
    branch = BranchProcess(tmp_path / "root", branch_id="deny", extra=["--url-deny", "127.0.0.0/8"]).start()
    try:
        branch.post("/app/")
        branch.post("/app/queues/web/")
        assert branch.post("/app/instances/denier/", params={"queues": "web"}).status_code == 201
        port = recorder.server.server_address[1]
        assert branch.get(f"/app/queue/web/http://127.0.0.1:{port}/x").status_code == 403
        task_id = branch.get(f"/app/queue/web/http://localhost:{port}/x").json()["uuid"]
        task = branch.get(f"/app/query/{task_id}/wait/", params={"timeout": 30}).json()
        assert task["state"] == "FAILURE" and task["error"]["type"] == "UrlDenied"
        assert recorder.received == []
    finally:
        assert branch.stop() == 0
        recorder.close()


def test_the_python_client_and_cli_queue_a_url_and_wait(
    url_app: tuple[BranchProcess, str], recorder: Recorder
) -> None:
    import subprocess
    import sys

    from cyme.client import Client

    branch, app = url_app
    client = Client(branch.url)
    task = client.queue_url(app, "web", f"{recorder.url}/client?a=1", method="POST", data={"k": "v"})
    done = client.wait(app, task["uuid"], timeout=30)
    assert done["state"] == "SUCCESS" and json.loads(done["result"]["body"]) == {
        "method": "POST",
        "query": "a=1",
        "body": "k=v",
    }
    cli = subprocess.run(
        [sys.executable, "-m", "cyme.cli.client", "--url", branch.url, "queue", app, "web",
         f"{recorder.url}/cli", "-X", "PUT", "-d", "payload", "--wait", "30"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["result"]["status"] == 200
    assert recorder.requests_to("/cli")[-1].body == b"payload"
