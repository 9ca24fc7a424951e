"""Fast tier: the actors in one process (simpleSystemBase) over a throwaway SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from falcon import testing
from thespian.actors import ActorSystem

from cyme.actors.internal import Boot
from cyme.actors.messages import Request
from cyme.actors.system import unwrap
from cyme.config import BranchConfig, HttpSettings
from cyme.http.app import create_app


class LocalBranch:
    """A whole branch's actors in this process; answers requests like BranchClient."""

    def __init__(self, root: Path) -> None:
        self.system = ActorSystem("simpleSystemBase", transientUnique=True)
        self.config = BranchConfig(
            branch_id="unit", root=root, broker="memory://", db=f"sqlite:///{root}/u.db"
        )
        self.branch = self.system.createActor("cyme.actors.branch.Branch")
        self.system.ask(self.branch, Boot(self.config), timedelta(seconds=10))

    def ask(self, request: Request, timeout: float | None = None) -> Any:
        reply = self.system.ask(self.branch, request, timedelta(seconds=timeout or 10))
        return unwrap(reply)

    def tell(self, message: Any) -> Any:
        return self.system.ask(self.branch, message, timedelta(seconds=10))

    def shutdown(self) -> None:
        self.system.shutdown()


@pytest.fixture
def local_branch(tmp_path: Path) -> Iterator[LocalBranch]:
    branch = LocalBranch(tmp_path)
    yield branch
    branch.shutdown()


@pytest.fixture
def api(local_branch: LocalBranch) -> testing.TestClient:
    return testing.TestClient(create_app(local_branch, HttpSettings(max_body=4096)))
