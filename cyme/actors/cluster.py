"""The cluster as one branch sees it: its members, who is alive, where to place work.

Pure bookkeeping (no actor code), owned by the Branch actor. Members learn of each other
through introductions (the convention leader pins a Liaison on each newcomer) and then
gossip (``Hello`` carries the addresses a branch knows); heartbeats keep ``last_seen``
fresh, and a member not heard from for ``dead_after`` seconds is left out of placement
and of scatter/gather until it is heard from again.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from typing import Any

from cyme.actors.messages import BranchInfo


@dataclass
class Member:
    """Another branch: its Branch actor's address and its last self-description."""

    id: str
    address: Any
    info: BranchInfo | None = None
    last_seen: float = field(default_factory=time.monotonic)


@dataclass
class Cluster:
    """The members of the cluster known to one branch (itself excluded)."""

    me: str
    dead_after: float = 8.0
    members: dict[str, Member] = field(default_factory=dict)

    def learn(self, branch_id: str, address: Any, info: BranchInfo | None = None) -> bool:
        """Record *branch_id* at *address*; True if it is new or its address changed."""
        if branch_id == self.me:
            return False
        known = self.members.get(branch_id)
        if known is not None and known.address == address:
            known.last_seen = time.monotonic()
            if info is not None:
                known.info = info
            return False
        self.members[branch_id] = Member(branch_id, address, info)
        return True

    def seen(self, branch_id: str, info: BranchInfo | None = None) -> None:
        member = self.members.get(branch_id)
        if member is not None:
            member.last_seen = time.monotonic()
            if info is not None:
                member.info = info

    def forget(self, branch_id: str) -> None:
        """Mark *branch_id* as gone at once (e.g. the convention says it left)."""
        member = self.members.get(branch_id)
        if member is not None:
            member.last_seen = -1e9

    def alive(self, member: Member) -> bool:
        return time.monotonic() - member.last_seen < self.dead_after

    def live(self) -> list[Member]:
        return [m for m in self.members.values() if self.alive(m)]

    def dead(self) -> list[str]:
        return sorted(m.id for m in self.members.values() if not self.alive(m))

    def address_of(self, branch_id: str) -> Any:
        member = self.members.get(branch_id)
        return member.address if member is not None and self.alive(member) else None

    def addresses(self) -> dict[str, Any]:
        """Live members' addresses, for gossip."""
        return {m.id: m.address for m in self.live()}

    def choose(self, my_info: BranchInfo) -> str:
        """Where to place a new instance: the live branch with the fewest, ties at random."""
        candidates = [(my_info.instances, self.me)] + [
            (m.info.instances if m.info else 0, m.id) for m in self.live()
        ]
        fewest = min(load for load, _ in candidates)
        return random.choice([branch for load, branch in candidates if load == fewest])  # noqa: S311

    def infos(self, my_info: BranchInfo) -> list[BranchInfo]:
        """Every live branch's description, this one first."""
        others = [m.info for m in self.live() if m.info is not None]
        return [my_info, *sorted(others, key=lambda i: i.id)]

    def with_load(self, branch_id: str, delta: int) -> None:
        """Count a placement before the next heartbeat reports it (spreads bursts)."""
        member = self.members.get(branch_id)
        if member is not None and member.info is not None:
            member.info = replace(member.info, instances=member.info.instances + delta)
