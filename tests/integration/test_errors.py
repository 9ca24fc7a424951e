"""Bad input gets a clear JSON error, the right status, and changes nothing."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.helpers import BranchProcess


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_error(reply: requests.Response, status: int, code: str | None = None) -> dict[str, str]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert "Traceback" not in reply.text and 'File "' not in reply.text
    error = reply.json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


@pytest.fixture(scope="module")
def app(embedded_branch: BranchProcess) -> str:
    name = new_name("edges")
    assert embedded_branch.post(f"/{name}/").status_code == 201
    return name


@pytest.mark.parametrize(
    "path",
    [
        "/%2e%2e%2fx/",  # ../x
        "/a%01b/",  # control character
        "/" + "x" * 65 + "/",  # over-long
        "/.hidden/",
        "/admin/",  # reserved top-level words
        "/query/",
        "/api/",
        "/a%20b/",
    ],
)
def test_bad_app_names_are_refused_and_nothing_is_created(embedded_branch: BranchProcess, path: str) -> None:
    before = embedded_branch.get("/").json()
    assert_error(embedded_branch.post(path), 400, "invalid_request")
    assert embedded_branch.get("/").json() == before


@pytest.mark.parametrize("name", ["%2e%2e", "a%2fb", "x" * 65, "%0a", "-lead"])
def test_bad_instance_and_queue_names_are_refused(
    embedded_branch: BranchProcess, app: str, name: str
) -> None:
    assert_error(embedded_branch.post(f"/{app}/instances/{name}/"), 400)
    assert_error(embedded_branch.post(f"/{app}/queues/{name}/"), 400)
    assert embedded_branch.get(f"/{app}/instances/").json() == []
    assert embedded_branch.get(f"/{app}/queues/").json() == []
    assert not any(p.name.startswith("..") for p in embedded_branch.root.iterdir())


def test_unknown_things_are_404(embedded_branch: BranchProcess, app: str) -> None:
    assert_error(embedded_branch.get("/no-such-app/"), 404, "not_found")
    assert_error(embedded_branch.get("/no-such-app/instances/"), 404)
    assert_error(embedded_branch.post("/no-such-app/instances/"), 404)
    assert_error(embedded_branch.get(f"/{app}/instances/nobody/"), 404)
    assert_error(embedded_branch.delete(f"/{app}/instances/nobody/"), 404)
    assert_error(embedded_branch.get(f"/{app}/queues/nothing/"), 404)
    assert_error(embedded_branch.get(f"/{app}/instance/nobody/stats/"), 404)
    assert_error(embedded_branch.get(f"/{app}/instance/nobody/autoscale/"), 404)
    assert_error(embedded_branch.get("/branches/elsewhere/"), 404)
    assert_error(embedded_branch.get(f"/{app}/instances/x/y/z/w/"), 404)


def test_invalid_parameters_are_400(embedded_branch: BranchProcess, app: str) -> None:
    assert_error(embedded_branch.post(f"/{app}/queues/q1/", data={"options": "{not json"}), 400)
    assert_error(embedded_branch.post(f"/{app}/queues/q1/", data={"options": "[1, 2]"}), 400)
    assert_error(embedded_branch.post(f"/{app}/queues/q1/", data={"exchange_type": "fancy"}), 400)
    assert_error(embedded_branch.post(f"/{app}/instances/", params={"max": "many"}), 400)
    assert_error(embedded_branch.post(f"/{app}/instances/", params={"max": 0}), 400)
    assert_error(embedded_branch.post(f"/{app}/instances/", params={"max": 2, "min": 3}), 400)
    assert_error(embedded_branch.post(f"/{app}/instances/", params={"nowait": "perhaps"}), 400)
    assert_error(embedded_branch.post(f"/{app}/instances/", params={"broker": "ftp://x"}), 400)
    assert_error(
        embedded_branch.post(f"/{app}/", data="{broken", headers={"content-type": "application/json"}), 400
    )
    assert_error(embedded_branch.post(f"/{app}/", json=[1, 2]), 400)
    assert embedded_branch.get(f"/{app}/queues/").json() == []
    assert embedded_branch.get(f"/{app}/instances/").json() == []


def test_oversized_body_is_413(embedded_branch: BranchProcess, app: str) -> None:
    big = "x" * (1024 * 1024 + 10)
    assert_error(
        embedded_branch.post(f"/{app}/queues/big/", data={"exchange": big}), 413, "payload_too_large"
    )
    assert_error(embedded_branch.get(f"/{app}/queues/big/"), 404)


def test_unsupported_method_is_405_json(embedded_branch: BranchProcess) -> None:
    error = assert_error(embedded_branch.post("/ping/"), 405)
    assert error["code"] == "method_not_allowed"


def test_consumer_and_instance_conflicts(embedded_branch: BranchProcess, app: str) -> None:
    name = new_name("dup")
    created = embedded_branch.post(f"/{app}/instances/{name}/")
    assert created.status_code == 201, created.text
    try:
        assert_error(embedded_branch.post(f"/{app}/instances/{name}/"), 409, "already_exists")
        # Consuming from an undeclared queue changes nothing.
        assert_error(embedded_branch.put(f"/{app}/instances/{name}/queues/undeclared/"), 404)
        assert embedded_branch.get(f"/{app}/instances/{name}/queues/").json() == []
        assert_error(embedded_branch.delete(f"/{app}/instances/{name}/queues/undeclared/"), 404)
        # A queue in use cannot be deleted; an app with instances cannot be deleted.
        assert embedded_branch.put(f"/{app}/queues/busy/").status_code == 201
        assert embedded_branch.put(f"/{app}/instances/{name}/queues/busy/").status_code == 200
        assert_error(embedded_branch.delete(f"/{app}/queues/busy/"), 409, "conflict")
        assert_error(embedded_branch.delete(f"/{app}/"), 409, "conflict")
        assert embedded_branch.get(f"/{app}/queues/busy/").status_code == 200
    finally:
        assert embedded_branch.delete(f"/instances/{name}/").status_code == 200
    assert embedded_branch.delete(f"/{app}/queues/busy/").status_code == 200


def test_garbage_requests_do_not_break_the_branch(embedded_branch: BranchProcess, app: str) -> None:
    for body in (b"\xff\xfe\x00garbage", b"a=%ZZ&&&==", b"{" * 5000):
        reply = embedded_branch.post(
            f"/{app}/queues/g1/", data=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert reply.status_code in (201, 400), reply.text
        assert "Traceback" not in reply.text
    assert embedded_branch.get("/ping/").status_code == 200
