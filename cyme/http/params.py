"""Request parameters: the query string, a form body or a JSON body, merged.

The guide lets clients pass parameters in any of these (``curl -d 'a=b'``, ``?a=b``,
or JSON); later sources win over the query string.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import falcon

from cyme.errors import InvalidRequest, PayloadTooLarge

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def read_body(req: falcon.Request, limit: int) -> bytes:
    """The request body, refusing more than *limit* bytes."""
    length = req.content_length
    if length is not None and length > limit:
        drain(req, length)
        raise PayloadTooLarge(f"request body larger than {limit} bytes")
    data = req.bounded_stream.read(limit + 1)
    if len(data) > limit:
        drain(req, DRAIN_LIMIT)
        raise PayloadTooLarge(f"request body larger than {limit} bytes")
    return data


#: Up to this much of a refused body is read and dropped, so the client sees the 413
#: instead of a connection reset while it is still sending.
DRAIN_LIMIT = 16 * 1024 * 1024


def drain(req: falcon.Request, length: int) -> None:
    if length > DRAIN_LIMIT:
        return
    while req.bounded_stream.read(64 * 1024):
        pass


def params(req: falcon.Request, limit: int) -> dict[str, Any]:
    """Query string, form and JSON parameters of *req* as one mapping."""
    merged: dict[str, Any] = {k: (v[-1] if isinstance(v, list) else v) for k, v in req.params.items()}
    data = read_body(req, limit)
    if not data.strip():
        return merged
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if media_type == "application/json":
        try:
            decoded = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest("request body is not valid JSON") from None
        if not isinstance(decoded, dict):
            raise InvalidRequest("JSON request body must be an object")
        merged.update(decoded)
    elif media_type in ("application/x-www-form-urlencoded", ""):
        try:
            merged.update(parse_qsl(data.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            raise InvalidRequest("form body is not valid UTF-8") from None
    return merged


def flag(values: dict[str, Any], name: str, default: bool = False) -> bool:
    value = values.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise InvalidRequest(f"{name} must be a boolean (1/0, true/false)")


def integer(values: dict[str, Any], *names: str) -> int | None:
    """The first of *names* present, as an int; None if none is present."""
    for name in names:
        value = values.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            raise InvalidRequest(f"{name} must be an integer")
        try:
            return int(str(value).strip())
        except ValueError:
            raise InvalidRequest(f"{name} must be an integer, not {str(value)[:40]!r}") from None
    return None


def text(values: dict[str, Any], name: str) -> str | None:
    value = values.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int)):
        raise InvalidRequest(f"{name} must be a string")
    return str(value)


def json_object(values: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A JSON object parameter, given as an object (JSON body) or as JSON text."""
    value = values.get(name)
    if value is None or value == "" or value == "null":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidRequest(f"{name} is not valid JSON") from None
    if value is not None and not isinstance(value, dict):
        raise InvalidRequest(f"{name} must be a JSON object")
    return value


def names_list(values: dict[str, Any], name: str) -> tuple[str, ...]:
    """A list parameter given as a JSON list or comma-separated text."""
    value = values.get(name)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{name} must be a list of names")
    return tuple(value)
