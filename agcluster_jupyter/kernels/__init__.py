"""The user's kernels, as the ``jupyter`` MCP server's kernel tools reach them.

``door.py`` finds a notebook's running kernel and runs one request in it, bounded by a
timeout; ``snippets.py`` is the fixed code the inspections run; ``tools.py`` is one tool
call: its arguments, the notebook's grant, the kernel's grant (one kernel process), the
user's approval of the exact code, the run, capped outputs, and the log entry.
"""

from __future__ import annotations

from .door import KernelDoor
from .tools import KERNEL_TOOLS, KernelTools

__all__ = ["KERNEL_TOOLS", "KernelDoor", "KernelTools"]
