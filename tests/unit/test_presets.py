"""The preset registry: the packaged presets, override paths, broken files, launch bodies."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from agcluster_jupyter.config import AgentConfig, PresetSystemPrompt
from agcluster_jupyter.errors import BadRequest, NotFound
from agcluster_jupyter.presets import (
    PresetFileError,
    PresetRegistry,
    load_preset_file,
    packaged_presets_dir,
)

REPO = Path(__file__).resolve().parents[2]
GiB = 1024**3

# id → (tools, cpu, memory, storage, network)
PROMISED: dict[str, tuple[list[str], float, str, str, bool]] = {
    "code-assistant": (
        ["Bash", "Read", "Write", "Edit", "Grep", "Glob", "Task", "TodoWrite"],
        2,
        "4g",
        "10g",
        False,
    ),
    "research-agent": (
        ["WebFetch", "WebSearch", "Read", "Write", "Grep", "TodoWrite"],
        1,
        "2g",
        "5g",
        True,
    ),
    "data-analysis": (
        ["Bash", "Read", "Write", "Edit", "Grep", "Glob", "NotebookEdit", "TodoWrite"],
        2,
        "6g",
        "15g",
        False,
    ),
    "fullstack-team": (["Task", "Read", "Glob", "Grep", "TodoWrite"], 3, "6g", "10g", False),
}


@pytest.fixture(scope="module")
def registry() -> PresetRegistry:
    return PresetRegistry()


def write(directory: Path, name: str, data: dict[str, Any] | str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def test_packaged_dir_is_the_repo_presets_in_a_checkout() -> None:
    assert packaged_presets_dir() == REPO / "presets"


def test_the_four_presets_load(registry: PresetRegistry) -> None:
    assert registry.ids() == sorted(PROMISED)
    assert registry.problems == []
    assert [c.id for c in registry.list()] == sorted(PROMISED)


@pytest.mark.parametrize("preset_id", sorted(PROMISED))
def test_preset_promises(registry: PresetRegistry, preset_id: str) -> None:
    tools, cpu, memory, storage, network = PROMISED[preset_id]
    config = registry.get(preset_id)
    assert sorted(config.allowed_tools) == sorted(tools)
    assert config.resource_limits.cpu == cpu
    assert config.resource_limits.memory_bytes == int(memory[:-1]) * GiB
    assert config.resource_limits.storage_bytes == int(storage[:-1]) * GiB
    assert config.network is network
    assert config.permission_mode == "acceptEdits"
    assert config.max_turns is not None and 10 <= config.max_turns <= 200
    assert len(config.description) > 40
    assert config.name and config.name != config.id
    prompt = config.system_prompt
    text = prompt.append if isinstance(prompt, PresetSystemPrompt) else prompt
    assert text and len(text) > 400, "a real system prompt, several sentences"
    assert "working directory" in text
    # where the agent runs (isolated or not, the folder, network) is each session's to
    # say (runner/options.py environment_note), never the preset's: it runs anywhere
    claims = re.compile(r"/workspace|isolated (container|sandbox)|container|no network")
    for prompt_text in [text, *(sub.prompt for sub in config.agents.values())]:
        assert not claims.search(prompt_text.lower()), claims.search(prompt_text.lower())
    assert "task" in text.lower() and "verif" in text.lower()
    assert registry.source(preset_id) == REPO / "presets" / f"{preset_id}.yaml"


def test_code_assistant_uses_the_cli_preset_prompt(registry: PresetRegistry) -> None:
    prompt = registry.get("code-assistant").system_prompt
    assert isinstance(prompt, PresetSystemPrompt)
    assert prompt.preset == "claude_code" and prompt.append


def test_fullstack_team_sub_agents(registry: PresetRegistry) -> None:
    config = registry.get("fullstack-team")
    assert set(config.agents) == {"frontend", "backend", "devops"}
    prompts = set()
    for name, sub in config.agents.items():
        assert len(sub.prompt) > 300, name
        assert name in sub.prompt.lower()
        assert sub.tools is not None and {"Write", "Edit", "Bash", "Read"} <= set(sub.tools)
        prompts.add(sub.prompt)
    assert len(prompts) == 3
    assert isinstance(config.system_prompt, str)  # the lead keeps to its own tools


def test_get_returns_a_copy(registry: PresetRegistry) -> None:
    registry.get("code-assistant").allowed_tools.append("WebFetch")
    assert "WebFetch" not in registry.get("code-assistant").allowed_tools


def test_get_unknown_names_the_known_ids(registry: PresetRegistry) -> None:
    with pytest.raises(NotFound) as info:
        registry.get("nope")
    assert "'nope'" in info.value.message
    for preset_id in PROMISED:
        assert preset_id in info.value.message


def test_override_paths_later_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write(first, "code-assistant.yaml", {"description": "mine", "allowed_tools": ["Read"]})
    write(first, "extra.yml", {"allowed_tools": ["Bash"], "description": "first"})
    write(second, "extra.yaml", {"allowed_tools": ["Grep"], "description": "second"})
    registry = PresetRegistry([first, str(second)])
    assert registry.problems == []
    assert registry.ids() == sorted([*PROMISED, "extra"])
    assert registry.get("code-assistant").description == "mine"
    assert registry.get("code-assistant").allowed_tools == ["Read"]
    assert registry.get("extra").allowed_tools == ["Grep"]
    assert registry.source("extra") == second / "extra.yaml"
    assert registry.directories == [REPO / "presets", first, second]


def test_without_packaged(tmp_path: Path) -> None:
    write(tmp_path, "only.yaml", {"allowed_tools": ["Read"]})
    registry = PresetRegistry([tmp_path], include_packaged=False)
    assert registry.ids() == ["only"]
    assert registry.get("only").name == "Only"
    assert len(registry) == 1 and "only" in registry


def test_broken_file_is_named_and_others_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "good.yaml", {"allowed_tools": ["Read"]})
    write(tmp_path, "bad-memory.yaml", {"resource_limits": {"memory": "lots"}})
    write(tmp_path, "bad-tool.yaml", {"allowed_tools": ["Read", "Teleport"]})
    write(tmp_path, "bad-yaml.yaml", "allowed_tools: [Read\n")
    write(tmp_path, "bad-shape.yaml", "- just\n- a list\n")
    write(tmp_path, "bad-id.yaml", {"id": "other"})
    write(tmp_path, "notes.txt", "not a preset")
    with caplog.at_level(logging.ERROR, logger="agcluster_jupyter.presets"):
        registry = PresetRegistry([tmp_path])
    assert "good" in registry and len(registry) == len(PROMISED) + 1
    problems = {p.path.name: p for p in registry.problems}
    assert set(problems) == {
        "bad-memory.yaml",
        "bad-tool.yaml",
        "bad-yaml.yaml",
        "bad-shape.yaml",
        "bad-id.yaml",
    }
    assert problems["bad-memory.yaml"].field == "resource_limits.memory"
    assert "not a size" in problems["bad-memory.yaml"].message
    assert problems["bad-tool.yaml"].field == "allowed_tools.1"
    assert "Teleport" in problems["bad-tool.yaml"].message
    assert "YAML" in problems["bad-yaml.yaml"].message
    assert "mapping" in problems["bad-shape.yaml"].message
    assert problems["bad-id.yaml"].field == "id"
    assert str(problems["bad-memory.yaml"]).startswith(str(tmp_path / "bad-memory.yaml"))
    logged = caplog.text
    for name in problems:
        assert name in logged
    assert "resource_limits.memory" in logged


def test_missing_directory_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    registry = PresetRegistry([tmp_path / "absent"])
    assert registry.ids() == sorted(PROMISED)
    assert [p.path for p in registry.problems] == [tmp_path / "absent"]


def test_reload_sees_new_files(tmp_path: Path) -> None:
    registry = PresetRegistry([tmp_path], include_packaged=False)
    assert registry.ids() == []
    write(tmp_path, "late.yaml", {})
    registry.reload()
    assert registry.ids() == ["late"]


def test_load_preset_file_error_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", {"max_turns": 0})
    with pytest.raises(PresetFileError) as info:
        load_preset_file(path)
    assert info.value.field == "max_turns"
    assert str(info.value).startswith(f"{path}: max_turns: ")


# -- launch bodies ---------------------------------------------------------------------


def test_resolve_launch_by_id(registry: PresetRegistry) -> None:
    config = registry.resolve_launch({"config_id": "research-agent", "name": "x"})
    assert config == registry.get("research-agent")


def test_resolve_launch_inline(registry: PresetRegistry) -> None:
    config = registry.resolve_launch(
        {"config": {"id": "mine", "allowed_tools": ["Read"], "resource_limits": {"cpu": 2}}}
    )
    assert isinstance(config, AgentConfig)
    assert config.id == "mine" and config.resource_limits.cpu == 2
    assert registry.resolve_launch({"config": {"allowed_tools": ["Read"]}}).id == "custom"


BAD_BODIES: list[tuple[Any, str, str]] = [
    ({}, "config_id", "exactly one of config_id"),
    ({"config_id": None, "config": None}, "config_id", "exactly one"),
    ({"config_id": "code-assistant", "config": {}}, "config", "exactly one"),
    ({"config_id": "nope"}, "config_id", "unknown preset 'nope'; known: code-assistant"),
    ({"config_id": 3}, "config_id", "must be a string"),
    ({"config": "code-assistant"}, "config", "must be an object"),
    ({"config": {"resource_limits": {"memory": "4x"}}}, "config.resource_limits.memory", "size"),
    ({"config": {"allowed_tools": ["Nope"]}}, "config.allowed_tools.0", "unknown tool"),
    ({"config": {"id": "Bad Id"}}, "config.id", "not an id"),
    (
        {"config": {"agents": {"a": {"description": "d", "prompt": "p"}}}},
        "config.allowed_tools",
        "",
    ),
    ({"config": {"colour": "red"}}, "config.colour", "unknown field"),
    ([], "", "JSON object"),
]


@pytest.mark.parametrize(("body", "field", "fragment"), BAD_BODIES)
def test_resolve_launch_rejects(
    registry: PresetRegistry, body: Any, field: str, fragment: str
) -> None:
    with pytest.raises(BadRequest) as info:
        registry.resolve_launch(body)
    assert info.value.field == field
    assert info.value.status == 400
    assert fragment in info.value.message
