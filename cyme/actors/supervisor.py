"""The Supervisor actor: keeps every worker process of this branch true to the model.

It reconciles the desired state (the instances table) with the real ``celery worker``
processes: starts missing workers, stops removed ones, restarts dead or unresponsive
ones with exponential backoff, and sends add_consumer / cancel_consumer / autoscale
broadcasts where a worker differs from its instance. It reacts at once to API changes
(``Apply``) and to process exits (a pidfd per worker, watched through ThespianWatch),
and otherwise re-checks everything every ``sup_interval`` seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta
from typing import Any

from thespian.actors import ThespianWatch, WakeupMessage, WatchMessage

from cyme import lifeline
from cyme.actors import views
from cyme.actors.base import DEFERRED, CymeActor
from cyme.actors.broadcasts import Broadcasts
from cyme.actors.instance import get_instance
from cyme.actors.internal import Apply, StopBranch, Waiter
from cyme.actors.messages import Deleted, GetStats
from cyme.actors.worker_state import Pending, Status, Tracked
from cyme.errors import Timeout
from cyme.models import App, Instance, Queue, WorkerState
from cyme.workers import process
from cyme.workers.process import WorkerSpec

log = logging.getLogger("cyme.supervisor")

#: How often starting/stopping workers are checked, in seconds.
FAST_TICK = 0.2
#: Consecutive unanswered pings after which a running worker is restarted.
MAX_MISSED_PINGS = 3
#: Backoff between restarts of a worker that keeps failing: 1, 2, 4 ... capped, in seconds.
BACKOFF_CAP = 60.0
#: A worker online this long is considered healthy again (its failure count resets).
STABLE_AFTER = 30.0


class Supervisor(CymeActor):
    """Starts, stops, restarts and corrects the workers of this branch."""

    label = "Supervisor"

    def setup_handlers(self) -> None:
        self.tracked: dict[str, Tracked] = {}
        self.pending: list[Pending] = []
        self.broadcasts = Broadcasts(0.0)
        self.next_full = 0.0
        self.wakeup_due: float | None = None
        self.shutting_down: Pending | None = None
        self.closing = False  # set once the branch stops: nothing is started any more
        self.main_fd: int | None = None
        self.handlers.update(
            {
                Apply: self.on_apply,
                GetStats: self.on_stats,
                StopBranch: self.on_stop_branch,
                WakeupMessage: self.on_wakeup,
                WatchMessage: self.on_watch,
            }
        )

    # ------------------------------------------------------------------ lifecycle

    def configured(self) -> None:
        assert self.config is not None
        self.broadcasts = Broadcasts(self.config.wait_after_broker_revived)
        self.main_fd = process.open_pidfd(self.config.main_pid) if self.config.main_pid else None
        self.adopt()
        self.reconcile_all()
        self.schedule()

    def adopt(self) -> None:
        """Take over workers a previous run of this branch left running; stop orphans."""
        assert self.config is not None
        for instance in Instance.select().where(Instance.branch == self.config.branch_id):
            spec = self.desired(instance.name)
            if spec is None:
                continue
            pid = process.find_running(spec.pidfile, spec.nodename)
            if pid:
                tracked = Tracked(instance.name, spec, pid=pid, pidfd=process.open_pidfd(pid))
                self.tracked[instance.name] = tracked
                self.set_status(tracked, Status.STARTING)
                log.warning("{Supervisor} %s adopted running worker pid %d", instance.name, pid)
        for pidfile in self.config.root.glob("*/worker.pid"):
            name = pidfile.parent.name
            if name in self.tracked:
                continue
            pid = process.find_running(pidfile, f"{name}@{self.config.branch_id}")
            if pid:
                spec = WorkerSpec(name=name, nodename="", broker="", direct_queue="", root=self.config.root)
                tracked = Tracked(name, spec, pid=pid, pidfd=process.open_pidfd(pid))
                self.tracked[name] = tracked
                log.warning("{Supervisor} %s worker pid %d has no instance: stopping it", name, pid)
                self.stop(tracked)

    def orphaned(self) -> None:
        """cyme-branch died without stopping us: end this actor system, leave the workers."""
        assert self.config is not None
        log.error(
            "{Supervisor} cyme-branch (pid %d) is gone: stopping its actor system; "
            "%d worker(s) keep running for the next run to adopt",
            self.config.main_pid, sum(t.alive for t in self.tracked.values()),
        )  # fmt: skip
        if self.main_fd is not None:
            os.close(self.main_fd)
            self.main_fd = None
        self.closing = True
        self.pending.clear()
        self.tracked.clear()
        lifeline.shutdown_actor_system_later(self.config.admin_port)

    def on_exit(self) -> None:
        self.broadcasts.close()

    def after_message(self) -> Any:
        if self.config is not None and not self.closing:
            self.schedule()  # whatever a handler did, the next tick stays armed
        fds = [t.pidfd for t in self.tracked.values() if t.pidfd is not None]
        if self.main_fd is not None:
            fds.append(self.main_fd)
        return ThespianWatch(fds) if fds else None

    # ------------------------------------------------------------------ requests

    def on_apply(self, msg: Apply, sender: Any) -> Any:
        if msg.waiter is not None:
            assert self.config is not None
            deadline = time.monotonic() + self.config.start_timeout
            self.pending.append(Pending(msg.name, msg.waiter, deadline))
        self.reconcile(msg.name)
        self.answer_waiters()
        self.schedule()
        return DEFERRED

    def on_stats(self, msg: GetStats, sender: Any) -> dict[str, Any]:
        assert self.config is not None and self.config.broker is not None
        instance = get_instance(msg.app, msg.instance)
        info = views.instance_info(instance, self.config.broker)
        tracked = self.tracked.get(instance.name)
        stats = None
        if tracked is not None and tracked.status is Status.ONLINE:
            stats = self.broadcasts.call(tracked.spec.broker, "stats", tracked.spec.nodename, 2.0)
        return {"instance": info.to_json(), "stats": stats}

    def on_stop_branch(self, msg: StopBranch, sender: Any) -> Any:
        assert self.config is not None
        self.pending.clear()
        self.closing = True
        if msg.keep_workers:
            log.warning("{Supervisor} branch stopping; leaving %d worker(s) running", len(self.tracked))
            self.tracked.clear()
            return Deleted("branch", self.config.branch_id)
        deadline = time.monotonic() + self.config.stop_timeout + 5
        self.shutting_down = Pending("*", Waiter(sender, msg.request_id), deadline)
        for tracked in self.tracked.values():
            if tracked.alive:
                self.stop(tracked)
        self.answer_shutdown()
        self.schedule()
        return DEFERRED

    def on_wakeup(self, msg: WakeupMessage, sender: Any) -> Any:
        self.wakeup_due = None
        self.tick()
        self.schedule()
        return DEFERRED

    def on_watch(self, msg: WatchMessage, sender: Any) -> Any:
        if self.main_fd is not None and self.main_fd in msg.ready:
            self.orphaned()
            return DEFERRED
        for tracked in list(self.tracked.values()):
            if tracked.pidfd is not None and tracked.pidfd in msg.ready:
                self.exited(tracked)
        self.answer_waiters()
        self.schedule()
        return DEFERRED

    # ------------------------------------------------------------------ the model

    def desired(self, name: str) -> WorkerSpec | None:
        """The worker instance *name* should have on this branch, or None if none."""
        assert self.config is not None and self.config.broker is not None
        instance = Instance.get_or_none((Instance.name == name) & (Instance.branch == self.config.branch_id))
        if instance is None or not instance.is_enabled:
            return None
        app = App.get_by_id(instance.app_id)
        declared = {q.name: q for q in Queue.select().where(Queue.app == app.name)}
        queues = tuple(
            {
                "name": q.name,
                "exchange": q.exchange,
                "exchange_type": q.exchange_type,
                "routing_key": q.routing_key,
                "options": q.options,
            }
            for q in (declared[n] for n in instance.queues if n in declared)
        )
        return WorkerSpec(
            name=instance.name,
            nodename=instance.nodename,
            broker=views.effective_broker(instance.broker, app, self.config.broker),
            direct_queue=instance.direct_queue,
            queues=queues,
            max_concurrency=instance.max_concurrency,
            min_concurrency=instance.min_concurrency,
            root=self.config.root,
            loglevel=self.config.loglevel,
            backend=views.effective_backend(app, self.config),
            settings=self.worker_settings,
        )

    @property
    def worker_settings(self) -> tuple[tuple[str, str], ...]:
        assert self.config is not None
        settings = {**self.config.url_policy.as_env(), "CYME_RESULT_EXPIRES": str(self.config.result_expires)}
        return tuple(sorted(settings.items()))

    def reconcile_all(self) -> None:
        assert self.config is not None
        names = {
            i.name for i in Instance.select(Instance.name).where(Instance.branch == self.config.branch_id)
        }
        for name in sorted(names | set(self.tracked)):
            self.reconcile(name)

    def reconcile(self, name: str) -> None:
        """Make instance *name*'s worker match the model, as far as can be done now."""
        if self.closing:
            return
        spec = self.desired(name)
        tracked = self.tracked.get(name)
        if spec is None:
            if tracked is not None and tracked.alive:
                if tracked.status is not Status.STOPPING:
                    self.stop(tracked)
            elif tracked is not None:
                self.forget(tracked)
            return
        if tracked is None:
            tracked = self.tracked[name] = Tracked(name, spec)
        broker_changed = tracked.alive and (tracked.spec.broker, tracked.spec.backend) != (
            spec.broker,
            spec.backend,
        )
        tracked.spec = spec
        if broker_changed:
            log.warning("{Supervisor} %s broker changed: restarting", name)
            self.stop(tracked)
        elif not tracked.alive:
            if time.monotonic() < tracked.next_attempt:
                self.set_status(tracked, Status.BACKOFF)
            else:
                self.start(tracked)
        elif tracked.status is Status.ONLINE:
            self.broadcasts.sync(tracked)

    # ------------------------------------------------------------------ processes

    def start(self, tracked: Tracked) -> None:
        spec = tracked.spec
        log.warning("{Supervisor} %s instance.start: %s", tracked.name, " ".join(spec.command()))
        try:
            tracked.proc = process.spawn(spec)
        except OSError as exc:
            tracked.last_error = f"could not start worker: {exc.strerror}"
            self.failed(tracked)
            return
        tracked.pid = tracked.proc.pid
        tracked.pidfd = process.open_pidfd(tracked.pid)
        tracked.missed = 0
        tracked.in_sync = False
        self.set_status(tracked, Status.STARTING)

    def stop(self, tracked: Tracked) -> None:
        """Ask the worker to finish (warm shutdown); it is killed after stop_timeout."""
        if tracked.pid is None:
            return
        log.warning("{Supervisor} %s instance.stop (pid %d)", tracked.name, tracked.pid)
        self.set_status(tracked, Status.STOPPING)
        try:
            os.kill(tracked.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.exited(tracked)

    def kill(self, tracked: Tracked, reason: str) -> None:
        if tracked.pid is not None:
            log.warning("{Supervisor} %s kill -9 (pid %d): %s", tracked.name, tracked.pid, reason)
            process.signal_group(tracked.pid, signal.SIGKILL)

    def exited(self, tracked: Tracked) -> None:
        """The worker process is gone: reap it, then restart, back off or forget."""
        code = tracked.proc.poll() if tracked.proc is not None else None
        if tracked.proc is not None and code is None:
            try:
                code = tracked.proc.wait(1.0)
            except subprocess.TimeoutExpired:
                return  # pidfd said readable but the process still runs: check again later
        if tracked.pidfd is not None:
            os.close(tracked.pidfd)
        if tracked.pid is not None:
            # Pool children of a worker that died hard would linger as orphans: end its group.
            process.signal_group(tracked.pid, signal.SIGKILL)
        was = tracked.status
        tracked.pid, tracked.proc, tracked.pidfd = None, None, None
        if was is Status.STOPPING:
            log.warning("{Supervisor} %s stopped (exit code %s)", tracked.name, code)
            self.set_status(tracked, Status.STOPPED)
        else:
            tracked.last_error = f"worker exited unexpectedly (exit code {code})"
            log.error("{Supervisor} %s %s", tracked.name, tracked.last_error)
            tracked.restarts += 1
            self.failed(tracked)
        self.answer_shutdown()
        self.reconcile(tracked.name)

    def failed(self, tracked: Tracked) -> None:
        """Schedule the next start of a failing worker: at once, then 1, 2, 4 ... s later."""
        tracked.failures += 1
        delay = 0.0 if tracked.failures <= 1 else min(2.0 ** (tracked.failures - 2), BACKOFF_CAP)
        tracked.next_attempt = time.monotonic() + delay
        self.set_status(tracked, Status.BACKOFF if delay else Status.OFFLINE)
        if delay:
            log.warning("{Supervisor} %s backoff: next start in %.0fs", tracked.name, delay)

    def forget(self, tracked: Tracked) -> None:
        del self.tracked[tracked.name]
        WorkerState.delete().where(WorkerState.name == tracked.name).execute()

    # ------------------------------------------------------------------ checks

    def tick(self) -> None:
        """Check starting workers; every sup_interval, check and reconcile everything."""
        assert self.config is not None
        now = time.monotonic()
        for tracked in list(self.tracked.values()):
            if tracked.alive and not process.is_worker(tracked.pid or 0, tracked.spec.nodename):
                if tracked.proc is None or tracked.proc.poll() is not None:
                    self.exited(tracked)
            elif tracked.status is Status.STOPPING and now - tracked.since > self.config.stop_timeout:
                self.kill(tracked, f"did not stop within {self.config.stop_timeout:.0f}s")
        starting = [t for t in self.tracked.values() if t.status is Status.STARTING]
        if starting:
            answered = self.broadcasts.ping(starting)
            for tracked in starting:
                if tracked.spec.nodename in answered:
                    log.warning("{Supervisor} %s successfully started (pid %s)", tracked.name, tracked.pid)
                    tracked.last_error = None
                    self.set_status(tracked, Status.ONLINE)
                    self.broadcasts.sync(tracked)
                elif now - tracked.since > self.config.start_timeout:
                    if self.broadcasts.judgeable(tracked.spec.broker):
                        tracked.last_error = f"no answer to ping within {self.config.start_timeout:.0f}s"
                        self.kill(tracked, tracked.last_error)
                    else:
                        tracked.last_error = "waiting for its broker to be reachable"
        for tracked in list(self.tracked.values()):
            if tracked.status is Status.BACKOFF and now >= tracked.next_attempt:
                self.reconcile(tracked.name)
        if now >= self.next_full:
            self.next_full = now + self.config.sup_interval
            self.full_check(now)
        self.answer_waiters()

    def full_check(self, now: float) -> None:
        """Ping every online worker; restart those that stopped answering; reconcile all."""
        online = [t for t in self.tracked.values() if t.status is Status.ONLINE]
        answered = self.broadcasts.ping(online)
        for tracked in online:
            if tracked.spec.nodename in answered:
                tracked.missed = 0
                if now - tracked.since > STABLE_AFTER:
                    tracked.failures = 0
                continue
            if not self.broadcasts.judgeable(tracked.spec.broker):
                continue  # its broker is down or just came back: the worker is not to blame
            tracked.missed += 1
            log.warning("{Supervisor} %s missed ping %d/%d", tracked.name, tracked.missed, MAX_MISSED_PINGS)
            if tracked.missed >= MAX_MISSED_PINGS:
                tracked.last_error = f"no answer to {MAX_MISSED_PINGS} pings"
                self.set_status(tracked, Status.OFFLINE)
                self.kill(tracked, tracked.last_error)
        self.reconcile_all()

    def schedule(self) -> None:
        """Keep exactly one wakeup pending: soon while anything is in flux, else at next_full."""
        busy = (
            self.pending
            or self.shutting_down
            or any(
                t.status in (Status.STARTING, Status.STOPPING, Status.BACKOFF, Status.OFFLINE)
                for t in self.tracked.values()
            )
        )
        now = time.monotonic()
        due = now + FAST_TICK if busy else max(self.next_full, now + FAST_TICK)
        # A wakeup overdue by seconds was lost (e.g. its tick failed): arm a new one.
        pending = self.wakeup_due is not None and now < self.wakeup_due + 2.0
        if pending and self.wakeup_due is not None and self.wakeup_due <= due + 0.01:
            return
        self.wakeup_due = due
        self.wakeupAfter(timedelta(seconds=due - now))

    # ------------------------------------------------------------------ answers

    def set_status(self, tracked: Tracked, status: Status) -> None:
        if tracked.status is not status:
            tracked.status = status
            tracked.since = time.monotonic()
        next_attempt = None
        if status is Status.BACKOFF:
            next_attempt = datetime.utcnow() + timedelta(
                seconds=max(0.0, tracked.next_attempt - time.monotonic())
            )
        WorkerState.insert(
            name=tracked.name,
            status=status.value,
            pid=tracked.pid,
            restarts=tracked.restarts,
            last_error=tracked.last_error,
            next_attempt=next_attempt,
            updated=datetime.utcnow(),
        ).on_conflict_replace().execute()

    def answer_waiters(self) -> None:
        """Reply to callers whose change is now real, or whose deadline passed."""
        assert self.config is not None and self.config.broker is not None
        now = time.monotonic()
        still: list[Pending] = []
        for pending in self.pending:
            tracked = self.tracked.get(pending.name)
            instance = Instance.get_or_none(Instance.name == pending.name)
            waiter = pending.waiter
            if instance is None and (tracked is None or not tracked.alive):
                self.reply(waiter.reply_to, waiter.request_id, Deleted("instance", pending.name))
            elif instance is not None and tracked and tracked.status is Status.ONLINE and tracked.in_sync:
                info = views.instance_info(instance, self.config.broker)
                self.reply(waiter.reply_to, waiter.request_id, info)
            elif now > pending.deadline:
                reason = (tracked.last_error if tracked else None) or "still in progress"
                error = Timeout(f"instance {pending.name!r} did not settle in time: {reason}")
                self.reply_error(waiter.reply_to, waiter.request_id, error)
            else:
                still.append(pending)
        self.pending = still

    def answer_shutdown(self) -> None:
        pending = self.shutting_down
        if pending is None:
            return
        alive = [t for t in self.tracked.values() if t.alive]
        if alive and time.monotonic() > pending.deadline:
            for tracked in alive:
                self.kill(tracked, "branch stopping")
            return
        if not alive:
            assert self.config is not None
            self.reply(
                pending.waiter.reply_to, pending.waiter.request_id, Deleted("branch", self.config.branch_id)
            )
            self.shutting_down = None
