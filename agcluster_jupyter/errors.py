"""The errors a user can cause, each with the HTTP status the handlers answer with.

Exceptions::

    AgClusterError                  500 (a bug: never raised for user input)
    ├── BadRequest                  400: bad input; ``field`` names what to fix
    ├── NotFound                    404: unknown session, config or file
    ├── Conflict                    409: exists already, or the session is in the wrong state
    ├── TooLarge                    413: over an upload or body limit
    ├── LimitExceeded               429: a token budget or the session limit
    └── ServiceUnavailable          503: the provider (or image) cannot serve; says how to fix

The base handler maps them to JSON ``{message, reason, field?}``; nothing else does.
"""

from __future__ import annotations

__all__ = [
    "AgClusterError",
    "BadRequest",
    "Conflict",
    "LimitExceeded",
    "NotFound",
    "ServiceUnavailable",
    "TooLarge",
    "first_line",
]


class AgClusterError(Exception):
    status = 500
    reason = "Internal Server Error"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(AgClusterError):
    status = 400
    reason = "Bad Request"


class NotFound(AgClusterError):
    status = 404
    reason = "Not Found"


class Conflict(AgClusterError):
    status = 409
    reason = "Conflict"


class TooLarge(AgClusterError):
    status = 413
    reason = "Payload Too Large"


class LimitExceeded(AgClusterError):
    status = 429
    reason = "Too Many Requests"


class ServiceUnavailable(AgClusterError):
    status = 503
    reason = "Service Unavailable"


def first_line(exc: BaseException) -> str:
    """An error's first message line, else its type's name: for one-line notes to people."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
