"""Named exit codes of the cyme programs (from sysexits.h), and the error -> code map."""

from __future__ import annotations

from cyme import errors

EX_OK = 0
EX_FAILURE = 1
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_TEMPFAIL = 75
EX_CONFIG = 78

BY_ERROR: dict[type[errors.CymeError], int] = {
    errors.ConfigError: EX_CONFIG,
    errors.InvalidRequest: EX_DATAERR,
    errors.NotFound: EX_NOINPUT,
    errors.AlreadyExists: EX_DATAERR,
    errors.Conflict: EX_DATAERR,
    errors.Unavailable: EX_UNAVAILABLE,
    errors.Timeout: EX_TEMPFAIL,
    errors.InternalError: EX_SOFTWARE,
}


def for_error(error: errors.CymeError) -> int:
    for cls in type(error).__mro__:
        if cls in BY_ERROR:
            return BY_ERROR[cls]
    return EX_FAILURE
