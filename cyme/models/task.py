"""URL tasks queued through this branch (so unknown task ids can be told apart)."""

from __future__ import annotations

import datetime

import peewee

from cyme.models.db import BaseModel


class Task(BaseModel):
    """A queued URL task: where it went and what it requests; its state is in the backend."""

    id = peewee.CharField(primary_key=True, max_length=36)
    app = peewee.CharField(max_length=64, index=True)
    queue = peewee.CharField(max_length=64)
    method = peewee.CharField(max_length=10)
    url = peewee.TextField()
    created = peewee.DateTimeField(default=datetime.datetime.utcnow, index=True)
