"""GET agents/{id}/export?format=ipynb after a real turn: a valid notebook whose Bash cells
carry the script's real output."""

from __future__ import annotations

import json
from typing import Any

import nbformat
import pytest

from ..support import parse_sse

pytestmark = pytest.mark.cli


async def test_export_ipynb_after_an_analysis_turn(api: Any, launched: Any) -> None:
    session = await launched("code-assistant")
    sid = session["session_id"]
    events = parse_sse(
        await api(
            f"agents/{sid}/chat",
            method="POST",
            body={"message": "Please analyse some data"},
            headers={"Accept": "text/event-stream"},
            request_timeout=120,
        )
    )
    assert events[-1]["type"] == "done"

    response = await api(f"agents/{sid}/export", params={"format": "ipynb"}, raw=True)
    assert response.headers["Content-Type"] == "application/x-ipynb+json"
    assert response.headers["Content-Disposition"].endswith('.ipynb"')
    nb = nbformat.reads(response.body.decode(), as_version=4)
    nbformat.validate(nb)

    sources = ["".join(c.source) for c in nb.cells]
    assert sources[0].startswith("<h1>")  # Markdown cells hold sanitized HTML
    assert any("Please analyse some data" in s for s in sources)
    bash = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.source for c in bash] == ["%%bash\npython3 analysis.py"] * 2
    first, second = ("".join(o.text for o in c.outputs) for c in bash)
    assert "mean: 21.5 C" in first and "median" not in first
    assert "median: 21.0 C" in second and "stdev" in second
    assert any("<strong>Write</strong>" in s and "analysis.py" in s for s in sources)
    assert any("<strong>Edit</strong>" in s for s in sources)
    assert "Done." in json.dumps(sources)
