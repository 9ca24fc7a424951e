"""The URL task: a worker performs an HTTP request and stores the response as the result.

``perform()`` is the request itself (plain code, no Celery); ``url_task`` wraps it as the
Celery task ``cyme.url`` with retries on connection errors and on 429/502/503/504.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from cyme.urls import UrlPolicy

TASK_NAME = "cyme.url"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "+json", "+xml")


class UrlTaskError(Exception):
    """Raised (and stored as the task's failure) when a URL task cannot produce a response."""


class UrlTimeout(UrlTaskError):
    """Raised when the target did not answer within the read timeout."""


class UrlConnectionError(UrlTaskError):
    """Raised when the target could not be reached, after all retries."""


class UrlDenied(UrlTaskError):
    """Raised when the target resolves to an address the URL policy denies."""


class RetryableStatus(UrlTaskError):
    """Raised internally for a response status worth retrying."""


@dataclass(frozen=True)
class UrlRequest:
    """What to request: the caller's verb, URL, query, body and chosen headers."""

    method: str
    url: str
    query: str = ""
    body_b64: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_response: int = 1024 * 1024

    @property
    def full_url(self) -> str:
        if not self.query:
            return self.url
        return self.url + ("&" if "?" in self.url else "?") + self.query


def policy_from_env(env: Mapping[str, str] = os.environ) -> UrlPolicy:
    return UrlPolicy.from_strings(env.get("CYME_URL_ALLOW"), env.get("CYME_URL_DENY"))


def _body_of(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


def _is_text(content_type: str) -> bool:
    return any(t in content_type for t in TEXT_TYPES)


def perform(request: UrlRequest, policy: UrlPolicy) -> dict[str, Any]:
    """Make the request; return the response as a JSON-able result (4xx/5xx included)."""
    parts = urlsplit(request.full_url)
    try:
        policy.check_url(request.full_url)
        policy.check_resolved(parts.hostname or "", parts.port)
    except Exception as exc:
        raise UrlDenied(str(exc)) from None
    started = time.monotonic()
    try:
        response = requests.request(
            request.method,
            request.full_url,
            data=base64.b64decode(request.body_b64) if request.body_b64 else None,
            headers=dict(request.headers),
            timeout=(request.connect_timeout, request.read_timeout),
            stream=True,
            allow_redirects=request.method in ("GET", "HEAD"),
        )
    except requests.ConnectTimeout:
        raise UrlConnectionError(f"connect timeout after {request.connect_timeout}s") from None
    except requests.ReadTimeout:
        raise UrlTimeout(f"no response within the read timeout of {request.read_timeout}s") from None
    except requests.ConnectionError as exc:
        raise UrlConnectionError(f"could not connect: {type(exc).__name__}") from None
    try:
        body, truncated = (
            _body_of(response, request.max_response) if request.method != "HEAD" else (b"", False)
        )
    except requests.ReadTimeout:
        raise UrlTimeout(f"response body not received within {request.read_timeout}s") from None
    finally:
        response.close()
    content_type = response.headers.get("content-type", "")
    result: dict[str, Any] = {
        "status": response.status_code,
        "reason": response.reason,
        "headers": dict(response.headers),
        "url": response.url,
        "elapsed": round(time.monotonic() - started, 6),
        "truncated": truncated,
        "body": None,
        "body_base64": None,
    }
    if _is_text(content_type) or not content_type:
        try:
            result["body"] = body.decode(response.encoding or "utf-8")
        except (UnicodeDecodeError, LookupError):
            result["body_base64"] = base64.b64encode(body).decode()
    else:
        result["body_base64"] = base64.b64encode(body).decode()
    return result


def url_task(
    task: Any, request: dict[str, Any], retries: int = 3, retry_delay: float = 1.0
) -> dict[str, Any]:
    """The body of the Celery task ``cyme.url`` (bound): perform, retrying what is transient."""
    call = UrlRequest(**{**request, "headers": tuple(tuple(h) for h in request.get("headers", ()))})
    try:
        result = perform(call, policy_from_env())
    except UrlConnectionError as exc:
        if task.request.retries < retries:
            raise task.retry(countdown=retry_delay * 2**task.request.retries, max_retries=retries) from None
        raise UrlConnectionError(f"{exc} (after {task.request.retries} retries)") from None
    if result["status"] in RETRY_STATUSES and task.request.retries < retries:
        raise task.retry(countdown=retry_delay * 2**task.request.retries, max_retries=retries)
    result["worker"] = task.request.hostname
    result["retries"] = task.request.retries
    return result
