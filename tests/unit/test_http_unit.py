"""The HTTP layer against in-process actors: parameter sources, statuses, error bodies."""

from __future__ import annotations

import json

from falcon import testing


def test_parameters_come_from_query_form_or_json(api: testing.TestClient) -> None:
    by_query = api.simulate_put("/q1/", params={"broker": "redis://h1:6379/0"})
    by_form = api.simulate_post(
        "/q2/", body="hostname=h2&port=5673", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    by_json = api.simulate_post("/q3/", json={"broker": "redis://h3:6379/0"})
    assert [r.status_code for r in (by_query, by_form, by_json)] == [201, 201, 201]
    assert by_query.json["broker"]["hostname"] == "h1"
    assert (by_form.json["broker"]["hostname"], by_form.json["broker"]["port"]) == ("h2", 5673)
    assert by_json.json["broker"]["hostname"] == "h3"
    assert [a["name"] for a in api.simulate_get("/").json] == ["q1", "q2", "q3"]


def test_trailing_slash_is_optional(api: testing.TestClient) -> None:
    assert api.simulate_post("/foo").status_code == 201
    assert api.simulate_get("/foo/").json["name"] == "foo"
    assert api.simulate_get("/foo").json["name"] == "foo"


def test_queue_options_must_be_a_json_object(api: testing.TestClient) -> None:
    api.simulate_post("/foo/")
    ok = api.simulate_post("/foo/queues/q/", params={"options": json.dumps({"durable": False})})
    assert ok.status_code == 201 and ok.json["options"] == {"durable": False}
    for bad in ("{oops", "[1]", "3"):
        reply = api.simulate_post("/foo/queues/q2/", params={"options": bad})
        assert reply.status_code == 400
        assert reply.json["error"]["code"] == "invalid_request"
    assert [q["name"] for q in api.simulate_get("/foo/queues/").json] == ["q"]


def test_body_over_the_limit_is_413(api: testing.TestClient) -> None:
    reply = api.simulate_post(
        "/foo/", body="a=" + "x" * 5000, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert reply.status_code == 413
    assert reply.json["error"]["code"] == "payload_too_large"
    assert api.simulate_get("/foo/").status_code == 404


def test_unmatched_routes_are_json_404(api: testing.TestClient) -> None:
    reply = api.simulate_get("/a/b/c/d/e/f/")
    assert reply.status_code == 404
    assert reply.json["error"]["code"] == "not_found"
