"""The database handle, bound once per process at start-up, and the schema migrations."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import peewee
from playhouse.db_url import connect

log = logging.getLogger(__name__)

#: Every model uses this proxy; ``bind()`` points it at a real database when a process starts.
database = peewee.DatabaseProxy()


class BaseModel(peewee.Model):
    """Base of every cyme table."""

    class Meta:
        database = database


class SchemaVersion(BaseModel):
    """The schema version applied to this database (one row)."""

    version = peewee.IntegerField()


def writing() -> Any:
    """A write transaction that takes SQLite's write lock up front.

    A deferred SQLite transaction that reads and then writes fails at once with
    "database is locked" when another process writes meanwhile (the busy timeout does
    not apply to lock upgrades); ``BEGIN IMMEDIATE`` waits for the lock instead.
    """
    if isinstance(database.obj, peewee.SqliteDatabase):
        return database.atomic("IMMEDIATE")
    return database.atomic()


def bind(url: str) -> peewee.Database:
    """Connect the proxy to the database at *url* (any peewee URL) and migrate it."""
    # WAL with synchronous=NORMAL: durable across process crashes, no fsync per commit.
    pragmas = {"journal_mode": "wal", "synchronous": "normal", "busy_timeout": 10000, "foreign_keys": 1}
    db = connect(url, pragmas=pragmas) if url.startswith("sqlite") else connect(url)
    database.initialize(db)
    migrate()
    return db


def _initial(db: peewee.Database) -> None:
    from cyme.models.app import App
    from cyme.models.instance import Instance, WorkerState
    from cyme.models.queue import Queue

    db.create_tables([App, Queue, Instance, WorkerState])
    # Tables and columns of later versions are added by their own migrations.


def _url_tasks(db: peewee.Database) -> None:
    """Version 2: result backends per app, and the table of queued URL tasks."""
    from playhouse import migrate as pm

    from cyme.models.app import App
    from cyme.models.task import Task

    migrator = pm.SchemaMigrator.from_database(db)
    if "backend" not in {c.name for c in db.get_columns(App._meta.table_name)}:
        pm.migrate(migrator.add_column(App._meta.table_name, "backend", App.backend))
    db.create_tables([Task])


#: Ordered migrations; the list index + 1 is the schema version each one produces.
MIGRATIONS: list[Callable[[peewee.Database], None]] = [_initial, _url_tasks]


def migrate() -> None:
    """Bring the bound database up to the latest schema version (idempotent, safe to race)."""
    db = database.obj
    with writing():
        db.create_tables([SchemaVersion], safe=True)
        row = SchemaVersion.select().first()
        current = row.version if row else 0
        for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
            step(db)
            log.info("database migrated to schema version %d", version)
        if current < len(MIGRATIONS):
            SchemaVersion.delete().execute()
            SchemaVersion.create(version=len(MIGRATIONS))
