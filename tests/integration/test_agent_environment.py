"""What the agent is told about where it runs matches the session, not the preset.

On the ``local`` provider there is no container: the system prompt the model receives
(recorded by the scripted model) says the agent is not isolated and names the real
workspace folder; it never claims an isolated container at ``/workspace`` (the presets
did). The docker, kubernetes and fly providers' side is their env data
(``AGCLUSTER_ISOLATED``, ``AGCLUSTER_NETWORK``: tests/unit/test_*_spec.py) and the
note's text (tests/unit/test_options.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from agcluster_jupyter.testing.server import ScriptedModelServer

from ..support import chat_sse

pytestmark = pytest.mark.cli


def system_text(body: dict[str, Any]) -> str:
    system = body.get("system")
    if isinstance(system, str):
        return system
    return "\n".join(str(b.get("text", "")) for b in system or [] if isinstance(b, dict))


@pytest.mark.parametrize("preset", ["code-assistant", "data-analysis"])
async def test_the_local_agent_is_told_it_is_not_isolated(
    preset: str, api: Any, launched: Any, scripted_model: ScriptedModelServer
) -> None:
    session = await launched(preset)
    sid = session["session_id"]
    workspace = (await api(f"agents/sessions/{sid}"))["workspace"]
    assert workspace != "/workspace"
    prompt = f"hello from the environment test of {preset}"
    events = await chat_sse(api, sid, prompt)
    assert events[-1]["type"] == "done"
    [request, *_] = [r for r in scripted_model.message_requests if r.prompt == prompt]
    system = system_text(request.body)
    # the preset's own text is there (the claude_code preset's append, or the text) ...
    marker = "Working in this session" if preset == "code-assistant" else "data analyst"
    assert marker in system
    # ... and the session's facts at its end
    assert "# Where you run" in system
    where = system[system.index("# Where you run") :]
    assert "You are NOT isolated" in where and "directly on the user's machine" in where
    assert f"Your working directory is {workspace};" in where
    assert "can reach the network" in where
    # and nothing of the story the presets used to tell
    assert "isolated container" not in system
    assert "/workspace" not in system.replace(workspace, "")
