"""The path rules of a workspace: what a relative path or an upload's name may be.

Every path a client (or the agent, by creating symlinks) hands over is hostile.  These
pure functions refuse, with a 400 that says what to fix, what could mean anything but
"this name in that folder": NUL bytes, backslashes, absolute paths, ``.``/``..``, empty
or overlong names.  ``local.py`` walks what they let through, one component at a time.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import BadRequest

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "LeadsOutside",
    "check_filename",
    "join_parts",
    "split_path",
]

MAX_NAME_BYTES = 255  # NAME_MAX
MAX_PATH_BYTES = 4096  # PATH_MAX


def split_path(relpath: str, field: str = "path") -> list[str]:
    """The components of a relative POSIX workspace path; ``[]`` is the root.

    Refuses (``BadRequest``) what could mean anything but "this name in that folder":
    NUL bytes, backslashes, absolute paths, ``.``/``..``, empty or overlong names.
    One trailing ``/`` is tolerated (``data/`` is ``data``).
    """
    if not isinstance(relpath, str):
        raise BadRequest(f"{field} must be a string", field=field)
    if "\x00" in relpath:
        raise BadRequest(f"{field} contains a NUL byte; send a plain relative path", field=field)
    if "\\" in relpath:
        raise BadRequest(
            f"{field} contains a backslash; separate folders with '/' (e.g. 'src/app.py')",
            field=field,
        )
    if relpath.startswith("/"):
        raise BadRequest(
            f"{field} must be relative to the workspace, without a leading '/'", field=field
        )
    if relpath.endswith("/"):
        relpath = relpath[:-1]
    if not relpath:
        return []
    try:
        encoded = relpath.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise BadRequest(f"{field} is not valid UTF-8 text", field=field) from None
    if len(encoded) > MAX_PATH_BYTES:
        raise BadRequest(f"{field} is longer than {MAX_PATH_BYTES} bytes", field=field)
    parts = relpath.split("/")
    for part in parts:
        if not part:
            raise BadRequest(f"{field} has an empty name ('//'); remove the extra '/'", field=field)
        if part in (".", ".."):
            raise BadRequest(
                f"{field} may not contain '.' or '..'; give the path from the workspace root",
                field=field,
            )
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise BadRequest(
                f"{field} has a name longer than {MAX_NAME_BYTES} bytes: {part[:40]!r}...",
                field=field,
            )
    return parts


def check_filename(name: str, field: str = "filename") -> str:
    """``name`` if it is a single safe file name; otherwise a 400 saying what to fix.

    Nothing is stripped or rewritten: a client sending ``../x`` or ``C:\\x`` is told so.
    """
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{field} is empty; every uploaded file needs a name", field=field)
    if "\x00" in name:
        raise BadRequest(f"{field} {name!r} contains a NUL byte", field=field)
    if "/" in name or "\\" in name:
        raise BadRequest(
            f"{field} {name!r} contains a path separator; send a bare file name and put the "
            "folder in target_path",
            field=field,
        )
    if name in (".", ".."):
        raise BadRequest(f"{field} {name!r} is not a file name", field=field)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        # legal on Linux, but a newline or escape in a name trips up shells and agents
        raise BadRequest(f"{field} {name!r} contains control characters", field=field)
    try:
        encoded = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise BadRequest(f"{field} is not valid UTF-8 text", field=field) from None
    if len(encoded) > MAX_NAME_BYTES:
        raise BadRequest(f"{field} is longer than {MAX_NAME_BYTES} bytes", field=field)
    return name


def join_parts(parts: Iterable[str]) -> str:
    return "/".join(parts)


class LeadsOutside(Exception):
    """A symlink resolves to somewhere outside the workspace."""
