"""The actors' request handling, in one process: replies, errors, unknown messages."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cyme.actors.messages import (
    CreateApp,
    DeclareQueue,
    DeleteApp,
    ErrorReply,
    GetApp,
    ListApps,
    ListQueues,
    Ping,
    Request,
)
from cyme.errors import InvalidRequest, NotFound
from tests.unit.conftest import LocalBranch


@dataclass(frozen=True, kw_only=True)
class Unknown(Request):
    """A request no actor handles."""


def test_apps_are_created_listed_and_deleted(local_branch: LocalBranch) -> None:
    created = local_branch.ask(CreateApp(name="foo", broker="redis://h:6379/1"))
    assert created.name == "foo" and created.broker["hostname"] == "h"
    assert [a.name for a in local_branch.ask(ListApps())] == ["foo"]
    assert local_branch.ask(DeleteApp(name="foo")).name == "foo"
    with pytest.raises(NotFound):
        local_branch.ask(GetApp(name="foo"))


def test_errors_come_back_typed(local_branch: LocalBranch) -> None:
    with pytest.raises(InvalidRequest):
        local_branch.ask(CreateApp(name="../x"))
    with pytest.raises(NotFound):
        local_branch.ask(ListQueues(app="missing"))
    local_branch.ask(CreateApp(name="a1"))
    local_branch.ask(DeclareQueue(app="a1", name="q"))
    assert [q.routing_key for q in local_branch.ask(ListQueues(app="a1"))] == ["q"]
    local_branch.ask(DeleteApp(name="a1"))
    assert local_branch.ask(Ping()).branch == "unit"
    with pytest.raises(NotFound):
        local_branch.ask(DeleteApp(name="a1"))


def test_unknown_messages_get_an_explicit_error(local_branch: LocalBranch) -> None:
    reply = local_branch.tell(Unknown())
    assert isinstance(reply, ErrorReply)
    assert reply.code == "internal_error" and "Unknown" in reply.message
