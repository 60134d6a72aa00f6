"""Byte sizes for people: one formatter for every message and view that shows one."""

from __future__ import annotations

__all__ = ["format_bytes"]


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
