"""The Liaison: an agent the convention leader creates *on* a newcomer's actor system.

Thespian places it there by capability (``cyme.branch`` = the newcomer's id). Being
local to the newcomer, it can look the newcomer's Branch actor up by global name (remote
name lookups are unreliable in Thespian), introduce the two branches to each other,
and then exit.
"""

from __future__ import annotations

from typing import Any

from thespian.actors import Actor, ActorExitRequest

from cyme.actors.internal import Hello, Introduce, Introduced

BRANCH_CLASS = "cyme.actors.branch.Branch"
BRANCH_GLOBAL_NAME = "cyme-branch"


class Liaison(Actor):  # type: ignore[misc]
    """Introduces a newcomer's Branch to the branch that created this liaison."""

    @staticmethod
    def actorSystemCapabilityCheck(capabilities: dict[str, Any], requirements: dict[str, Any]) -> bool:
        wanted = requirements.get("cyme.branch")
        return wanted is None or capabilities.get("cyme.branch") == wanted

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, Introduce):
            local = self.createActor(BRANCH_CLASS, globalName=BRANCH_GLOBAL_NAME)
            self.send(local, Hello(message.branch_id, message.address, message.members))
            self.send(sender, Introduced(message.target, local))
            self.send(self.myAddress, ActorExitRequest())
