"""What every resource shares: the branch to ask and the request-size limit."""

from __future__ import annotations

from typing import Any, Protocol

import falcon

from cyme.actors.messages import Listing, Request
from cyme.http import params as p


class Asker(Protocol):
    """Anything that answers cyme requests (``BranchClient`` in production)."""

    def ask(self, request: Request, timeout: float | None = None) -> Any: ...


def to_json(value: Any) -> Any:
    """Render a reply value (an ``*Info``, a list of them, or plain data) as JSON data."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


class Resource:
    """Base of the resources: parse, ask the branch, render."""

    def __init__(self, branch: Asker, max_body: int) -> None:
        self.branch = branch
        self.max_body = max_body

    def params(self, req: falcon.Request) -> dict[str, Any]:
        return p.params(req, self.max_body)

    def ask(self, request: Request) -> Any:
        return self.branch.ask(request)

    def respond(self, resp: falcon.Response, value: Any, status: str = falcon.HTTP_200) -> None:
        resp.status = status
        if isinstance(value, Listing) and value.missing:
            # A partial answer says so: these branches did not answer in time.
            resp.set_header("X-Cyme-Missing-Branches", ",".join(value.missing))
        resp.media = to_json(value)
