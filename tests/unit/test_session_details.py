"""The workspace as a path of the Jupyter tree (``contents_path`` in session details)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agcluster_jupyter.sessions.session import _contents_path


def test_contents_path_inside_and_outside_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "home"
    workspace = root / "agent-workspaces" / "abc"
    workspace.mkdir(parents=True)
    assert _contents_path(workspace, root) == "agent-workspaces/abc"
    assert _contents_path(tmp_path / "elsewhere", root) is None
    assert _contents_path(workspace, None) is None
    # a symlinked root still matches (both sides resolved)
    link = tmp_path / "link"
    link.symlink_to(root)
    assert _contents_path(workspace, link) == "agent-workspaces/abc"


def test_a_turns_cost_from_the_sdks_running_total() -> None:
    from types import SimpleNamespace

    from agcluster_jupyter.events import ResultEvent
    from agcluster_jupyter.sessions.session import Session

    holder = SimpleNamespace(record=SimpleNamespace(sdk_session_id=None, cost_total_seen=0.0))

    def cost(total: float | None, sdk: str = "c1") -> float | None:
        event = ResultEvent(cost_total_usd=total, sdk_session_id=sdk)
        turn = Session._turn_cost(holder, event)  # type: ignore[arg-type]
        holder.record.sdk_session_id = sdk
        return turn

    # one conversation: the SDK's figure grows turn by turn (a resumed CLI goes on from it)
    assert [cost(0.038), cost(0.076), cost(0.115)] == pytest.approx([0.038, 0.038, 0.039])
    # a new conversation starts from 0
    assert cost(0.02, sdk="c2") == pytest.approx(0.02)
    # a total below the last one: the CLI started over
    assert cost(0.005, sdk="c2") == pytest.approx(0.005)
    assert cost(None, sdk="c2") is None
