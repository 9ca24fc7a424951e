"""The one error tree of cyme: every failure a caller can act on is a CymeError."""

from __future__ import annotations


class CymeError(Exception):
    """Root of every error cyme raises on purpose; its message is safe to show a client."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(CymeError):
    """Raised when a request is malformed: bad name, bad parameter, bad JSON."""

    code = "invalid_request"


class PayloadTooLarge(InvalidRequest):
    """Raised when a request body is larger than the branch accepts."""

    code = "payload_too_large"


class NotFound(CymeError):
    """Raised when an app, instance, queue or branch does not exist."""

    code = "not_found"


class Forbidden(CymeError):
    """Raised when a request is refused by policy (e.g. a URL task to a denied host)."""

    code = "forbidden"


class AlreadyExists(CymeError):
    """Raised when creating something whose name is taken."""

    code = "already_exists"


class Conflict(CymeError):
    """Raised when a request cannot be applied in the current state (e.g. queue in use)."""

    code = "conflict"


class Unavailable(CymeError):
    """Raised when a needed part (actor system, broker, worker) cannot be reached."""

    code = "unavailable"


class Timeout(CymeError):
    """Raised when an operation did not complete within its deadline."""

    code = "timeout"


class ConfigError(CymeError):
    """Raised when the branch configuration is unusable (bad option, port in use)."""

    code = "config_error"


class InternalError(CymeError):
    """Raised when something failed that the caller cannot fix; details are in the branch log."""

    code = "internal_error"


ERRORS_BY_CODE: dict[str, type[CymeError]] = {
    cls.code: cls
    for cls in (
        CymeError,
        InvalidRequest,
        PayloadTooLarge,
        NotFound,
        Forbidden,
        AlreadyExists,
        Conflict,
        Unavailable,
        Timeout,
        ConfigError,
        InternalError,
    )
}


def error_from_code(code: str, message: str) -> CymeError:
    """Rebuild the error an actor reported by its code (used by the ask helper)."""
    return ERRORS_BY_CODE.get(code, CymeError)(message)
