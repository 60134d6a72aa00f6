"""Query arguments, strictly: one reading of a flag and of a number for every handler (the
server's and the runner's), so ``?purge=on`` and ``?overwrite=junk`` mean what they say or
are a 400 that says what to send."""

from __future__ import annotations

from tornado.web import RequestHandler

from .errors import BadRequest

__all__ = ["flag", "int_arg", "parse_flag", "parse_int"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def parse_flag(raw: str, name: str) -> bool:
    """``true/false, 1/0, yes/no, on/off`` (any case); anything else is a 400."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadRequest(f"{name} must be true or false, not {raw!r}", field=name)


def parse_int(raw: str, name: str, *, minimum: int | None = 0, maximum: int | None = None) -> int:
    """A whole number within ``[minimum, maximum]``; anything else is a 400."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {raw!r}", field=name) from None
    if minimum is not None and value < minimum:
        raise BadRequest(f"{name} must be {minimum} or more", field=name)
    if maximum is not None and value > maximum:
        raise BadRequest(f"{name} must be {maximum} or less", field=name)
    return value


def flag(handler: RequestHandler, name: str, default: bool = False) -> bool:
    raw = handler.get_query_argument(name, None)
    return default if raw is None else parse_flag(raw, name)


def int_arg(
    handler: RequestHandler,
    name: str,
    default: int,
    *,
    minimum: int | None = 0,
    maximum: int | None = None,
) -> int:
    raw = handler.get_query_argument(name, None)
    return default if raw is None else parse_int(raw, name, minimum=minimum, maximum=maximum)
