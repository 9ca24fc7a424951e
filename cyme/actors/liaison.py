"""The Liaison: an agent a branch creates *on* a newcomer's actor system.

Thespian places it there by capability (``cyme.branch`` = the newcomer's id). Being
local to the newcomer, it can look the newcomer's Branch actor up by global name (remote
name lookups are unreliable in Thespian) and hand it a ``Hello`` from the introducer;
the newcomer answers the introducer directly, with its own address, once it has booted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from thespian.actors import Actor, ActorExitRequest, WakeupMessage

from cyme.actors.internal import Hello, Introduce

BRANCH_CLASS = "cyme.actors.branch.Branch"
BRANCH_GLOBAL_NAME = "cyme-branch"
#: Seconds a liaison stays after passing on its Hello (pending sends die with an actor).
LINGER = 30


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
            # The lookup above completes asynchronously: exiting now would drop the Hello.
            self.wakeupAfter(timedelta(seconds=LINGER))
        elif isinstance(message, WakeupMessage):
            self.send(self.myAddress, ActorExitRequest())
