"""Apps: a name and a broker (None means the branch's default broker)."""

from __future__ import annotations

import datetime

import peewee

from cyme.models.db import BaseModel


class App(BaseModel):
    """An application: the default broker configuration of its instances."""

    name = peewee.CharField(primary_key=True, max_length=64)
    broker = peewee.TextField(null=True)
    #: Result backend URL of the app's tasks (None: derived from the broker; see views).
    backend = peewee.TextField(null=True)
    created = peewee.DateTimeField(default=datetime.datetime.utcnow)
