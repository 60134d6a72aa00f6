"""pytest plugin: the ``scripted_model`` fixture, a started :class:`ScriptedModelServer`
playing the demo script.

Nothing loads it on its own (the package registers no ``pytest11`` entry point, so it
stays out of other projects' pytest runs): load it in your top-level ``conftest.py``::

    pytest_plugins = ["agcluster_jupyter.testing.pytest_plugin"]

Tests add their own scenarios in front of the demo ones::

    def test_it(scripted_model):
        scripted_model.add_scenarios([{"match": "go", "steps": [[{"text": "ok"}]]}])
        env = scripted_model.client_env(tmp_path / "cfg", tmp_path / "tmp")
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import ScriptedModelServer

__all__ = ["SCRIPTED_MODEL_KEY", "scripted_model"]

SCRIPTED_MODEL_KEY = "scripted-model-test-key"


@pytest.fixture
def scripted_model() -> Iterator[ScriptedModelServer]:
    """A scripted model on a free port (demo scenarios, key ``SCRIPTED_MODEL_KEY``)."""
    # Imported here so merely loading the plugin stays cheap.
    from .server import ScriptedModelServer

    with ScriptedModelServer(api_key=SCRIPTED_MODEL_KEY) as server:
        yield server
