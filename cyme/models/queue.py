"""Queue declarations of an app."""

from __future__ import annotations

import json
from typing import Any

import peewee

from cyme.models.app import App
from cyme.models.db import BaseModel


class Queue(BaseModel):
    """A queue declaration: name, exchange, exchange type, routing key and kombu options."""

    id: int  # peewee's implicit primary key
    app_id: str  # set by peewee for the foreign key below

    app = peewee.ForeignKeyField(App, backref="queues", on_delete="CASCADE")
    name = peewee.CharField(max_length=64)
    exchange = peewee.CharField(max_length=255)
    exchange_type = peewee.CharField(max_length=16, default="direct")
    routing_key = peewee.CharField(max_length=255)
    options_json = peewee.TextField(null=True)

    class Meta:
        indexes = ((("app", "name"), True),)

    @property
    def options(self) -> dict[str, Any] | None:
        return json.loads(self.options_json) if self.options_json else None
