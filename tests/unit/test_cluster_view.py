"""A branch's view of its cluster: who is alive, where new instances go."""

from __future__ import annotations

import time

from cyme.actors.cluster import Cluster
from cyme.actors.messages import BranchInfo


def info(branch: str, instances: int) -> BranchInfo:
    return BranchInfo(branch, "", 0, "", {}, instances, instances, time.time(), "test")


def test_placement_prefers_the_least_loaded_live_branch() -> None:
    cluster = Cluster(me="a")
    cluster.learn("b", "addr-b", info("b", 0))
    cluster.learn("c", "addr-c", info("c", 5))
    assert cluster.choose(info("a", 3)) == "b"
    cluster.with_load("b", +4)  # counted before the next heartbeat says so
    assert cluster.choose(info("a", 3)) == "a"


def test_a_silent_branch_is_left_out_until_it_is_heard_from() -> None:
    cluster = Cluster(me="a", dead_after=0.05)
    cluster.learn("b", "addr-b", info("b", 0))
    assert cluster.address_of("b") == "addr-b"
    time.sleep(0.1)
    assert cluster.address_of("b") is None and cluster.dead() == ["b"]
    assert cluster.choose(info("a", 10)) == "a"
    cluster.seen("b")
    assert [m.id for m in cluster.live()] == ["b"]


def test_learning_reports_only_news() -> None:
    cluster = Cluster(me="a")
    assert cluster.learn("b", "addr-1") is True
    assert cluster.learn("b", "addr-1") is False
    assert cluster.learn("b", "addr-2") is True  # restarted: a new address
    assert cluster.learn("a", "anything") is False  # never itself
    cluster.forget("b")
    assert cluster.dead() == ["b"]
