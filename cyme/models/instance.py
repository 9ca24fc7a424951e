"""Instances (the desired state of worker processes) and their observed state."""

from __future__ import annotations

import datetime
import json

import peewee

from cyme.models.app import App
from cyme.models.db import BaseModel


class Instance(BaseModel):
    """A Celery worker instance this branch should run: desired state, written by the API."""

    app_id: str  # set by peewee for the foreign key below

    name = peewee.CharField(primary_key=True, max_length=64)
    app = peewee.ForeignKeyField(App, backref="instances", on_delete="RESTRICT")
    branch = peewee.CharField(max_length=64)
    broker = peewee.TextField(null=True)
    queues_json = peewee.TextField(default="[]")
    max_concurrency = peewee.IntegerField(default=1)
    min_concurrency = peewee.IntegerField(default=1)
    is_enabled = peewee.BooleanField(default=True)
    created = peewee.DateTimeField(default=datetime.datetime.utcnow)

    @property
    def queues(self) -> list[str]:
        """Names of the declared queues this instance consumes from (besides its own)."""
        return list(json.loads(self.queues_json))

    @queues.setter
    def queues(self, value: list[str]) -> None:
        self.queues_json = json.dumps(sorted(set(value)))

    @property
    def direct_queue(self) -> str:
        """The queue only this instance consumes from."""
        return f"dq.{self.name}"

    @property
    def nodename(self) -> str:
        """The Celery node name of this instance's worker."""
        return f"{self.name}@{self.branch}"


class WorkerState(BaseModel):
    """What the supervisor last observed of an instance's worker (written by it only)."""

    name = peewee.CharField(primary_key=True, max_length=64)
    status = peewee.CharField(max_length=16, default="stopped")
    pid = peewee.IntegerField(null=True)
    restarts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    next_attempt = peewee.DateTimeField(null=True)
    updated = peewee.DateTimeField(default=datetime.datetime.utcnow)
