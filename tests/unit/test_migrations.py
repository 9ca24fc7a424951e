"""Schema migrations bring an older database up to date without losing its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cyme.models import App, Task, bind
from cyme.models.db import MIGRATIONS


def test_a_version_1_database_is_migrated_and_keeps_its_apps(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the schema as version 1 created it
        db.executescript(
            """
            CREATE TABLE schemaversion (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
            INSERT INTO schemaversion (version) VALUES (1);
            CREATE TABLE app (name VARCHAR(64) PRIMARY KEY, broker TEXT, created DATETIME NOT NULL);
            INSERT INTO app VALUES ('legacy', 'redis://h:6379/0', '2026-01-01 00:00:00');
            """
        )
    bind(f"sqlite:///{path}")
    app = App.get_by_id("legacy")
    assert (app.broker, app.backend) == ("redis://h:6379/0", None)
    assert Task.select().count() == 0
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schemaversion").fetchall() == [(len(MIGRATIONS),)]


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    bind(url)
    App.create(name="a")
    bind(url)
    assert [a.name for a in App.select()] == ["a"]
