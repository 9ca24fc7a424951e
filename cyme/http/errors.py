"""How errors reach HTTP clients: one table from the error tree to status codes.

Every error body is ``{"error": {"code": ..., "message": ...}}``; nothing else (no
traceback, no ``repr`` of an exception) is ever sent.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

from cyme import errors

log = logging.getLogger("cyme.http")

STATUS: dict[type[errors.CymeError], str] = {
    errors.PayloadTooLarge: falcon.HTTP_413,
    errors.InvalidRequest: falcon.HTTP_400,
    errors.NotFound: falcon.HTTP_404,
    errors.Forbidden: falcon.HTTP_403,
    errors.AlreadyExists: falcon.HTTP_409,
    errors.Conflict: falcon.HTTP_409,
    errors.Unavailable: falcon.HTTP_503,
    errors.Timeout: falcon.HTTP_504,
    errors.ConfigError: falcon.HTTP_500,
    errors.InternalError: falcon.HTTP_500,
}


def status_of(error: errors.CymeError) -> str:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return falcon.HTTP_500


def body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def handle_cyme_error(
    req: falcon.Request, resp: falcon.Response, error: errors.CymeError, params: Any
) -> None:
    resp.status = status_of(error)
    resp.media = body(error.code, error.message)
    level = logging.ERROR if resp.status.startswith("5") else logging.INFO
    log.log(level, "%s %s -> %s: %s", req.method, req.path, resp.status, error.message)


def handle_http_error(
    req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError, params: Any
) -> None:
    resp.status = error.status
    reason = str(error.status).partition(" ")[2] or "http error"
    code = reason.lower().replace(" ", "_").replace("-", "_")
    resp.media = body(code, error.description or reason)
    for name, value in dict(error.headers or {}).items():
        resp.set_header(name, value)


def handle_unexpected(req: falcon.Request, resp: falcon.Response, error: Exception, params: Any) -> None:
    log.exception("%s %s failed", req.method, req.path)
    resp.status = falcon.HTTP_500
    resp.media = body("internal_error", "internal error; the branch log has the details")


def install(app: falcon.App) -> None:
    """Register the handlers; the most specific registered class wins in falcon."""
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(errors.CymeError, handle_cyme_error)
