"""``jupyter agcluster``: argument parsing, the build context, the build stream, and the
one-line message when Docker is unreachable (no engine needed)."""

from __future__ import annotations

import errno
import io
import os
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter import __version__
from agcluster_jupyter.cli import main, make_parser
from agcluster_jupyter.providers.docker_engine import unreachable_message
from agcluster_jupyter.providers.docker_image import (
    DEFAULT_BASE_IMAGE,
    DOCKERFILE,
    VERSION_LABEL,
    BuildError,
    assemble_context,
    build_image,
    default_image_tag,
    docker_files_dir,
    runtime_requirements,
)


def test_build_image_defaults() -> None:
    args = make_parser().parse_args(["build-image"])
    assert args.command == "build-image"
    assert args.base_image == DEFAULT_BASE_IMAGE == "python:3.11-slim"
    assert args.tag is None
    assert args.network is None
    assert not args.no_cache and not args.quiet


def test_build_image_options() -> None:
    args = make_parser().parse_args(
        ["build-image", "--base-image", "agcluster-base:bookworm", "--tag", "x:1"]
        + ["--network", "host", "--no-cache", "--quiet"]
    )
    assert (args.base_image, args.tag, args.network) == ("agcluster-base:bookworm", "x:1", "host")
    assert args.no_cache and args.quiet
    assert make_parser().parse_args(["build-image", "-q"]).quiet


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["build-image", "--bogus"])
    assert exc.value.code == 2
    assert "--bogus" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "build-image" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_default_tag_is_the_servers_default_image() -> None:
    from agcluster_jupyter.app import AgClusterApp

    assert default_image_tag() == f"agcluster-agent:{__version__}"
    assert AgClusterApp.class_traits()["agent_image"].default_value == default_image_tag()


def test_unreachable_docker_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    host = f"unix://{tmp_path}/no-such-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    assert main(["build-image", "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err == (
        f"error: cannot reach Docker at {host}: No such file or directory; "
        "start dockerd or set DOCKER_HOST\n"
    )


def test_unreachable_docker_through_the_console_script(tmp_path: Path) -> None:
    """What a user sees: ``jupyter agcluster build-image`` (the console script), exit 1."""
    script = Path(sys.executable).with_name("jupyter-agcluster")
    assert script.exists(), "pip install -e . installs the jupyter-agcluster script"
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/gone.sock"}
    proc = subprocess.run(
        [str(script), "build-image"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot reach Docker at unix://{tmp_path}/gone.sock: No such file or "
        "directory; start dockerd or set DOCKER_HOST"
    ]


def test_unreachable_message_digs_out_the_os_reason() -> None:
    # the shape the SDK raises: DockerException from requests' error around urllib3's
    inner = ConnectionError(
        "Connection aborted.", PermissionError(errno.EACCES, "Permission denied")
    )
    try:
        try:
            raise inner
        except ConnectionError as exc:
            raise RuntimeError(f"Error while fetching server API version: {exc}") from exc
    except RuntimeError as outer:
        message = unreachable_message(outer, host="unix:///var/run/docker.sock")
    assert message == (
        "cannot reach Docker at unix:///var/run/docker.sock: Permission denied; "
        "run as root or join the docker group, or set DOCKER_HOST"
    )
    # no OS reason: the exception's own text, on one line
    assert unreachable_message(ValueError("bad\n  address"), host="tcp://x:1") == (
        "cannot reach Docker at tcp://x:1: bad address; start dockerd or set DOCKER_HOST"
    )


def test_unreachable_message_names_the_default_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    message = unreachable_message(FileNotFoundError(errno.ENOENT, "No such file or directory"))
    assert message.startswith("cannot reach Docker at unix:///var/run/docker.sock: No such file")


def test_runtime_requirements_filter_and_pin() -> None:
    sdk = metadata.version("claude-agent-sdk")
    lines = runtime_requirements(
        [
            "jupyter_server<3,>=2.10",
            "claude-agent-sdk<0.3,>=0.2.184",
            "docker>=7",
            "pydantic>=999",  # the installed one does not satisfy it: kept as a range
            "not-installed-anywhere>=1",
            'tomli>=1; python_version < "3.11"',
            'pytest>=8; extra == "test"',
        ]
    )
    assert lines[0] == f"claude-agent-sdk=={sdk}"
    assert lines[1] == "pydantic>=999"
    assert lines[2] == "not-installed-anywhere>=1"
    assert lines[3].startswith("tomli") and lines[3].endswith('; python_version < "3.11"')
    assert len(lines) == 4


def test_runtime_requirements_of_the_installed_project() -> None:
    lines = runtime_requirements()
    names = {line.split("==")[0].split(">")[0].split("<")[0].lower() for line in lines}
    assert {"claude-agent-sdk", "pydantic", "pyyaml", "httpx", "tornado"} <= names
    assert not names & {"jupyter_server", "jupyter-server", "docker"}
    assert f"claude-agent-sdk=={metadata.version('claude-agent-sdk')}" in lines


def test_build_context(tmp_path: Path) -> None:
    assemble_context(tmp_path)
    dockerfile = (tmp_path / DOCKERFILE).read_text()
    assert dockerfile == (docker_files_dir() / DOCKERFILE).read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in dockerfile
    assert f'LABEL {VERSION_LABEL}="${{AGCLUSTER_VERSION}}"' in dockerfile
    entry = tmp_path / "agent-entrypoint.sh"
    assert entry.stat().st_mode & stat.S_IXUSR
    assert (tmp_path / "requirements.txt").read_text().splitlines() == runtime_requirements()
    package = tmp_path / "agcluster_jupyter"
    assert (package / "runner" / "__main__.py").is_file()
    assert (package / "_version.py").is_file()
    assert not list(package.rglob("__pycache__"))
    assert not list(package.rglob("*.pyc"))
    assert not (package / "_docker").exists()


class FakeImages:
    def get(self, tag: str) -> Any:
        image = type("Image", (), {})()
        image.id = "sha256:" + "ab" * 32
        image.attrs = {"Size": 1_234_000_000, "Config": {"Labels": {VERSION_LABEL: __version__}}}
        return image


class FakeApi:
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks = chunks
        self.kwargs: dict[str, Any] = {}

    def build(self, **kwargs: Any) -> Any:
        self.kwargs = kwargs
        context = Path(kwargs["path"])
        assert (context / DOCKERFILE).is_file()
        assert (context / "agcluster_jupyter" / "cli.py").is_file()
        return iter(self.chunks)


class FakeClient:
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.api = FakeApi(chunks)
        self.images = FakeImages()


def test_build_streams_progress_and_passes_arguments() -> None:
    client = FakeClient(
        [
            {"stream": "Step 1/2 : FROM base\n"},
            {"stream": " ---> abc\n"},
            {"status": "Downloading", "id": "l1", "progress": "[==>  ]"},
            {"aux": {"ID": "sha256:feed"}},
            {"stream": "Successfully built feed\n"},
        ]
    )
    out = io.StringIO()
    result = build_image(
        base_image="agcluster-base:bookworm", network="host", no_cache=True, out=out, client=client
    )
    assert out.getvalue() == (
        "Step 1/2 : FROM base\n ---> abc\nl1 Downloading [==>  ]\nSuccessfully built feed\n"
    )
    kwargs = client.api.kwargs
    assert kwargs["tag"] == default_image_tag()
    assert kwargs["dockerfile"] == DOCKERFILE
    assert kwargs["buildargs"] == {
        "BASE_IMAGE": "agcluster-base:bookworm",
        "AGCLUSTER_VERSION": __version__,
    }
    assert kwargs["network_mode"] == "host"
    assert kwargs["nocache"] is True
    assert kwargs["pull"] is False
    assert not Path(kwargs["path"]).exists(), "the temporary context is removed"
    assert result.tag == default_image_tag()
    assert result.size_bytes == 1_234_000_000
    assert result.version_label == __version__


def test_build_error_keeps_the_log_tail() -> None:
    chunks: list[dict[str, Any]] = [{"stream": f"line {i}\n"} for i in range(60)]
    chunks += [
        {"stream": "pip: no versions"},
        {"error": "The command returned 1", "errorDetail": {}},
    ]
    out = io.StringIO()
    with pytest.raises(BuildError) as exc:
        build_image(quiet=True, out=out, client=FakeClient(chunks))
    assert out.getvalue() == ""
    assert str(exc.value) == "The command returned 1"
    assert exc.value.log_tail[-1] == "pip: no versions"
    assert exc.value.log_tail[-2] == "line 59"
    assert len(exc.value.log_tail) <= 41
