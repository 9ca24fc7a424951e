"""Tie a branch's helper processes to the life of the ``cyme-branch`` process.

If ``cyme-branch`` is killed (``kill -9``, OOM), its HTTP server and actor system must
not live on as orphans holding its ports. The HTTP server gets a parent-death signal
(Linux ``PR_SET_PDEATHSIG``); the actor system's admin daemonizes itself, so the
Supervisor watches the ``cyme-branch`` pid instead and shuts the actor system down when
it is gone. Worker processes are left running on purpose: the next run adopts them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal
import subprocess
import sys

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """Ask the kernel to send *sig* to this process when its parent dies (Linux only)."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())


def preexec_die_with_parent_term() -> None:
    """``preexec_fn`` for a subprocess that should stop (SIGTERM) when its parent dies."""
    die_with_parent(signal.SIGTERM)


def shutdown_actor_system_later(admin_port: int) -> None:
    """Shut down the actor system on *admin_port* from a separate process.

    Called by an actor of that very system, which cannot wait for its own shutdown.
    """
    code = f"from cyme.lifeline import shutdown_actor_system; shutdown_actor_system({int(admin_port)})"
    subprocess.Popen(
        [sys.executable, "-c", code],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def shutdown_actor_system(admin_port: int) -> None:
    from thespian.actors import ActorSystem

    ActorSystem("multiprocTCPBase", {"Admin Port": admin_port}, transientUnique=True).shutdown()
