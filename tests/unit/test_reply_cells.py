"""``%%agent --cells``: a Markdown reply split into notebook cells, and its display data."""

from __future__ import annotations

from agcluster_jupyter.kernel.magic_args import parse_cell_args
from agcluster_jupyter.kernel.reply_cells import CELLS_MIME, cells_bundle, reply_cells


def test_code_blocks_become_code_cells_and_the_rest_markdown() -> None:
    text = (
        "Load the data first:\n\n```python\nimport pandas as pd\ndf = pd.read_csv('a.csv')\n```\n"
        "Then look at it.\n\n~~~\ndf.describe()\n~~~\n\n"
        "And the files:\n```bash\nls -l\n```\n```sql\nselect 1\n```\nDone."
    )
    assert reply_cells(text) == [
        {"cell_type": "markdown", "source": "Load the data first:"},
        {"cell_type": "code", "source": "import pandas as pd\ndf = pd.read_csv('a.csv')"},
        {"cell_type": "markdown", "source": "Then look at it."},
        {"cell_type": "code", "source": "df.describe()"},
        {"cell_type": "markdown", "source": "And the files:"},
        # a shell block stays runnable through its cell magic
        {"cell_type": "code", "source": "%%bash\nls -l"},
        {"cell_type": "code", "source": "select 1"},
        {"cell_type": "markdown", "source": "Done."},
    ]


def test_no_code_is_one_markdown_cell_and_nothing_is_nothing() -> None:
    assert reply_cells("Just text.\n") == [{"cell_type": "markdown", "source": "Just text."}]
    assert reply_cells("") == []
    assert reply_cells("```python\n\n```") == []
    # an unclosed fence is text, as Markdown renders it
    assert reply_cells("```python\nx = 1") == [
        {"cell_type": "markdown", "source": "```python\nx = 1"}
    ]


def test_the_bundle_carries_a_key_and_reads_as_text_elsewhere() -> None:
    bundle = cells_bundle("s:1", [{"cell_type": "code", "source": "1"}])
    assert bundle[CELLS_MIME] == {"key": "s:1", "cells": [{"cell_type": "code", "source": "1"}]}
    assert bundle["text/plain"].startswith("1 cell from the agent's reply")
    assert parse_cell_args("--cells").cells and not parse_cell_args("").cells
