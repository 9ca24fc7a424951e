"""Broker URLs: building one from the guide's parameters and describing one safely."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from kombu import Connection

from cyme.errors import InvalidRequest

MASK = "****"
SUPPORTED_SCHEMES = ("amqp", "amqps", "pyamqp", "redis", "rediss", "redis+socket", "memory")


def from_params(
    hostname: str,
    port: int | None = None,
    userid: str | None = None,
    password: str | None = None,
    virtual_host: str | None = None,
    transport: str = "amqp",
) -> str:
    """Build a broker URL from the guide's ``hostname``/``port``/``userid``... parameters."""
    if transport not in SUPPORTED_SCHEMES:
        raise InvalidRequest(f"unsupported broker transport {transport!r}")
    auth = ""
    if userid or password:
        auth = quote(userid or "", safe="") + (":" + quote(password, safe="") if password else "")
        auth += "@"
    netloc = hostname + (f":{int(port)}" if port else "")
    vhost = quote(virtual_host, safe="") if virtual_host not in (None, "") else ""
    return check(f"{transport}://{auth}{netloc}/{vhost}")


def check(url: str) -> str:
    """Return *url* if kombu can parse it as a broker URL, else raise InvalidRequest."""
    scheme = url.partition("://")[0]
    if "://" not in url or scheme not in SUPPORTED_SCHEMES:
        raise InvalidRequest(
            f"broker URL must start with one of {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}"
        )
    try:
        Connection(url).info()
    except Exception:
        raise InvalidRequest("broker URL could not be parsed") from None
    return url


BACKEND_SCHEMES = ("redis", "rediss", "redis+socket", "file", "db+sqlite", "db+postgresql", "db+mysql")


def check_backend(url: str) -> str:
    """Return *url* if it names a result backend every process of a branch can read."""
    if url.partition("://")[0] not in BACKEND_SCHEMES or "://" not in url:
        raise InvalidRequest(
            f"result backend URL must start with one of {', '.join(s + '://' for s in BACKEND_SCHEMES)}"
        )
    return url


def mask(url: str) -> str:
    """*url* with any password replaced by the mask."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def describe(url: str) -> dict[str, Any]:
    """The guide's broker mapping for *url*, with the password masked, never echoed."""
    return dict(_describe(url))


@functools.lru_cache(maxsize=256)
def _describe(url: str) -> tuple[tuple[str, Any], ...]:
    # Parsing a URL with kombu costs ~0.5 ms; every instance description needs one.
    info = Connection(url).info()
    if "+socket://" in url:
        info.update(hostname=url.partition("://")[2], port=None, virtual_host=None)
    return tuple(
        {
            "url": mask(url),
            "transport": url.partition("://")[0],
            "hostname": info.get("hostname") or "",
            "port": info.get("port"),
            "userid": info.get("userid"),
            "password": MASK if info.get("password") else None,
            "virtual_host": info.get("virtual_host"),
        }.items()
    )
