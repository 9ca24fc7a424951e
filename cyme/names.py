"""Validation of the names users give apps, instances and queues.

Names become directory names under the branch root, parts of Celery node names
(``<instance>@<branch>``) and queue names, so they are held to a strict alphabet.
"""

from __future__ import annotations

import re

from cyme.errors import InvalidRequest

MAX_NAME_LENGTH = 64

#: Words that are top-level URL segments of the HTTP API and so cannot name an app.
RESERVED_APP_NAMES = frozenset(
    {"admin", "api", "branches", "instances", "ping", "queue", "query", "static", "favicon.ico"}
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-:]*$")


def _check(kind: str, name: object, pattern: re.Pattern[str]) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{kind} name must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidRequest(f"{kind} name is longer than {MAX_NAME_LENGTH} characters")
    if not pattern.match(name) or ".." in name:
        raise InvalidRequest(
            f"{kind} name {name!r} may only contain letters, digits, '_', '-' and '.', "
            "and must start with a letter or digit"
        )
    return name


def app_name(name: object) -> str:
    """Return *name* if it may name an app, else raise InvalidRequest."""
    checked = _check("app", name, _NAME)
    if checked.lower() in RESERVED_APP_NAMES:
        raise InvalidRequest(f"app name {checked!r} is reserved")
    return checked


def instance_name(name: object) -> str:
    """Return *name* if it may name an instance (and so a worker node), else raise."""
    return _check("instance", name, _NAME)


def queue_name(name: object) -> str:
    """Return *name* if it may name a queue declaration, else raise."""
    return _check("queue", name, _QUEUE_NAME)


def branch_id(name: object) -> str:
    """Return *name* if it may identify a branch, else raise."""
    return _check("branch", name, _NAME)
