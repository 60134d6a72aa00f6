"""Preset agent configs: YAML files → validated ``AgentConfig`` objects.

The packaged presets come first: the wheel force-includes the repository's ``presets/``
as ``agcluster_jupyter/_presets``; a source or editable checkout reads ``<repo>/presets``.
Then every directory in ``preset_paths``, in order; a later file with the same id
replaces an earlier one.

Each file holds one config whose keys are ``AgentConfig`` fields; ``id`` defaults to the
file name without ``.yaml``/``.yml`` and, when given, must match it.  A broken file is
logged (file and field named) and kept in :attr:`PresetRegistry.problems`; it never stops
the other presets from loading.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .config import AgentConfig, ConfigError, format_validation_error
from .errors import BadRequest, NotFound

__all__ = [
    "INLINE_DEFAULT_ID",
    "PresetFileError",
    "PresetProblem",
    "PresetRegistry",
    "load_preset_file",
    "packaged_presets_dir",
]

log = logging.getLogger(__name__)

_SUFFIXES = (".yaml", ".yml")
#: the id an inline config gets when it names none
INLINE_DEFAULT_ID = "custom"


def packaged_presets_dir() -> Path | None:
    """Where the presets shipped with this package are, or None if nowhere."""
    here = Path(__file__).resolve().parent
    if (here / "_presets").is_dir():  # installed from the wheel
        return here / "_presets"
    checkout = here.parent
    if (checkout / "presets").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout / "presets"  # source or editable checkout
    return None


@dataclass(frozen=True)
class PresetProblem:
    """A preset file that could not be used."""

    path: Path
    message: str
    field: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class PresetFileError(ConfigError):
    """A preset file that cannot be read or validated; the message names file and field."""

    def __init__(self, path: Path, message: str, field: str = "") -> None:
        super().__init__(f"{path}: {message}", field)
        self.path = path
        self.detail = message


def load_preset_file(path: str | Path) -> AgentConfig:
    """Read and validate one preset file; raise :class:`PresetFileError` naming the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PresetFileError(path, f"cannot read it: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PresetFileError(path, f"is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PresetFileError(path, "must hold a mapping of AgentConfig fields")
    stem = path.stem
    data.setdefault("id", stem)
    if data["id"] != stem:
        raise PresetFileError(
            path, f"id: {data['id']!r} does not match the file name (expected {stem!r})", "id"
        )
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        message, field = format_validation_error(exc)
        raise PresetFileError(path, message, field) from exc


class PresetRegistry:
    """The preset configs by id: packaged ones, then ``preset_paths`` (later wins)."""

    def __init__(
        self,
        preset_paths: Iterable[str | Path] = (),
        *,
        include_packaged: bool = True,
    ) -> None:
        self._paths = [Path(p).expanduser() for p in preset_paths]
        self._include_packaged = include_packaged
        self._configs: dict[str, AgentConfig] = {}
        self._sources: dict[str, Path] = {}
        self.problems: builtins.list[PresetProblem] = []
        self.reload()

    @property
    def directories(self) -> builtins.list[Path]:
        """The directories read, in order (a later one overrides an earlier one)."""
        dirs: builtins.list[Path] = []
        packaged = packaged_presets_dir() if self._include_packaged else None
        if packaged is not None:
            dirs.append(packaged)
        dirs += self._paths
        return dirs

    def reload(self) -> None:
        """Read every directory again."""
        configs: dict[str, AgentConfig] = {}
        sources: dict[str, Path] = {}
        problems: builtins.list[PresetProblem] = []
        for directory in self.directories:
            if not directory.is_dir():
                problems.append(PresetProblem(directory, "is not a directory"))
                log.warning("preset path %s is not a directory; skipped", directory)
                continue
            files = sorted(p for p in directory.iterdir() if p.suffix in _SUFFIXES)
            for path in files:
                try:
                    config = load_preset_file(path)
                except PresetFileError as exc:
                    problems.append(PresetProblem(path, exc.detail, exc.field))
                    log.error("preset %s skipped: %s", path, exc.detail)
                    continue
                if config.id in sources and sources[config.id].parent == directory:
                    problems.append(PresetProblem(path, f"id {config.id!r} given twice"))
                    log.error("preset %s skipped: id %r given twice", path, config.id)
                    continue
                if config.id in sources:
                    log.info("preset %r from %s overrides %s", config.id, path, sources[config.id])
                configs[config.id] = config
                sources[config.id] = path
        self._configs, self._sources, self.problems = configs, sources, problems

    def ids(self) -> builtins.list[str]:
        return sorted(self._configs)

    def list(self) -> builtins.list[AgentConfig]:
        """All presets, sorted by id."""
        return [self._configs[i] for i in sorted(self._configs)]

    def source(self, config_id: str) -> Path:
        """The file a preset was read from."""
        self.get(config_id)
        return self._sources[config_id]

    def get(self, config_id: str) -> AgentConfig:
        """The preset ``config_id`` (a copy: callers may not change the registry's)."""
        try:
            return self._configs[config_id].model_copy(deep=True)
        except KeyError:
            known = ", ".join(self.ids()) or "none"
            raise NotFound(f"no preset config {config_id!r}; known: {known}") from None

    def __contains__(self, config_id: object) -> bool:
        return config_id in self._configs

    def __len__(self) -> int:
        return len(self._configs)

    def resolve_launch(self, body: Mapping[str, Any]) -> AgentConfig:
        """The config a launch body asks for: ``{config_id}`` or ``{config: {...}}``.

        Raises :class:`BadRequest` naming the field at fault (``config_id``,
        ``config.resource_limits.memory``, ...).
        """
        if not isinstance(body, Mapping):
            raise BadRequest("the body must be a JSON object")
        has_id = body.get("config_id") is not None
        has_config = body.get("config") is not None
        if has_id == has_config:
            raise BadRequest(
                "give exactly one of config_id (a preset: "
                f"{', '.join(self.ids()) or 'none'}) or config (an inline config)",
                field="config" if has_id else "config_id",
            )
        if has_id:
            config_id = body["config_id"]
            if not isinstance(config_id, str):
                raise BadRequest("config_id must be a string", field="config_id")
            if config_id not in self._configs:
                known = ", ".join(self.ids()) or "none"
                raise BadRequest(
                    f"config_id: unknown preset {config_id!r}; known: {known}",
                    field="config_id",
                )
            return self.get(config_id)
        inline = body["config"]
        if not isinstance(inline, Mapping):
            raise BadRequest("config must be an object of AgentConfig fields", field="config")
        data = dict(inline)
        data.setdefault("id", INLINE_DEFAULT_ID)
        try:
            return AgentConfig.model_validate(data)
        except ValidationError as exc:
            message, field = format_validation_error(exc, prefix="config")
            raise BadRequest(message, field=field) from exc
