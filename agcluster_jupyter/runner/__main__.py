"""``python -m agcluster_jupyter.runner``: see :mod:`agcluster_jupyter.runner.process`."""

from __future__ import annotations

import sys

# The SDK imports mcp → jsonschema, whose optional IRI format checker (rfc3987_syntax)
# builds a parser at import: ~2 s of a ~4 s runner start.  The runner never checks IRI
# formats; a None entry makes that optional import fail fast.  Only in this process.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from .process import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
