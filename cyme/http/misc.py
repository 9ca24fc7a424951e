"""``/ping/`` and ``/branches/``: is the branch alive, and what branches are there."""

from __future__ import annotations

import falcon

from cyme import names
from cyme.actors.messages import GetBranch, ListBranches, Ping
from cyme.http.resource import Resource


class PingResource(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.respond(resp, self.ask(Ping()))


class BranchCollection(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.respond(resp, self.ask(ListBranches()))


class BranchItem(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, branch: str) -> None:
        self.respond(resp, self.ask(GetBranch(branch=names.branch_id(branch))))
