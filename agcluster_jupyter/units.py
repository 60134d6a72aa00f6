"""Byte sizes: ``parse_size`` reads the ones people write (``"4g"``, as Docker does),
``format_bytes`` writes the ones people read; every message and view uses these two."""

from __future__ import annotations

import re

__all__ = ["format_bytes", "parse_size"]

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def format_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'``; under a KiB: ``'512 bytes'`` (``'1 byte'``)."""
    if n < 1024:
        count = int(n)
        return f"{count} byte" if count == 1 else f"{count} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}".replace(".0 ", " ")
    raise AssertionError("unreachable")


def parse_size(value: str | int) -> int:
    """``"4g"``, ``"512m"``, ``"10GiB"``, ``"1.5g"`` or a byte count → bytes.

    Units are binary (``g`` = GiB), as Docker reads them.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("expected a size such as '4g' or '512m'")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("a size must be positive")
        return value
    match = _SIZE_RE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a size; use a number with k, m, g or t, e.g. '4g'")
    number, unit, suffix = match.groups()
    if suffix.lower() == "i":
        raise ValueError(f"{value!r} is not a size; write e.g. '10GiB', '10g' or '10gb'")
    size = int(float(number) * _UNITS[unit.lower()])
    if size <= 0:
        raise ValueError("a size must be positive")
    return size
