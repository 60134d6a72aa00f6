"""Property tests (hypothesis) for the three parsers of hostile input: workspace paths
against randomly built trees of files and symlinks, the streaming multipart parser, and
agent configs.  They extend the fixed-tree and fixed-body properties in
``tests/unit/test_workspace.py`` and the cases in ``tests/unit/test_config.py``."""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agcluster_jupyter.config import (
    KNOWN_TOOLS,
    MAX_CONFIG_JSON_BYTES,
    AgentConfig,
    format_validation_error,
)
from agcluster_jupyter.errors import AgClusterError, BadRequest, Conflict, NotFound, TooLarge
from agcluster_jupyter.handlers.multipart import MultipartParser, PartData, PartEnd, PartStart
from agcluster_jupyter.presets import PresetRegistry
from agcluster_jupyter.workspace import UPLOAD_TMP_PREFIX, LocalWorkspace

SECRET = b"HOST-SECRET-property-9c2e"
PASSWD = b"root:x:0:0"
PROPS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))

# ---------------------------------------------------------------------------- workspaces

_NAMES = ["a", "b", "sub", "f.txt", "é", "..a", "a b"]
# what an agent might point a link at: outside (absolute or relative), inside, itself
_TARGETS = st.one_of(
    st.sampled_from(
        [
            "{outside}",
            "{outside}/secret.txt",
            "/etc",
            "/etc/passwd",
            "/",
            "{root}",
            "{root}/a",
            "..",
            "../..",
            "../outside",
            "../outside/secret.txt",
            ".",
            "a",
            "sub/f.txt",
            "self",
        ]
    ),  # fmt: skip
    st.lists(
        st.sampled_from(["..", ".", "a", "sub", "outside", "secret.txt", "f.txt"]),
        min_size=1,
        max_size=5,
    ).map("/".join),  # fmt: skip
)


@dataclass(frozen=True)
class Entry:
    parts: tuple[str, ...]
    kind: str  # file, dir, link
    target: str = ""


_ENTRIES = st.lists(
    st.builds(
        Entry,
        parts=st.lists(st.sampled_from(_NAMES), min_size=1, max_size=3).map(tuple),
        kind=st.sampled_from(["file", "dir", "link", "link"]),
        target=_TARGETS,
    ),
    max_size=10,
)
_QUERY_PARTS = st.sampled_from([*_NAMES, "..", ".", "", "outside", "secret.txt", "etc", "passwd"])
_QUERIES = st.one_of(
    st.lists(_QUERY_PARTS, max_size=6).map("/".join),
    st.lists(_QUERY_PARTS, max_size=6).map(lambda p: "/" + "/".join(p)),
    st.text(max_size=30),
    st.sampled_from(["a\x00b", "a\\..\\..", "%2e%2e/x", "\u2024\u2024/x"]),
)


@contextmanager
def random_workspace(entries: list[Entry]) -> Iterator[tuple[Path, Path]]:
    """A fresh workspace built from ``entries``, next to an ``outside`` folder with a secret."""
    with tempfile.TemporaryDirectory(prefix="agc-prop-") as tmp:
        base = Path(tmp)
        root, outside = base / "ws", base / "outside"
        root.mkdir()
        outside.mkdir()
        (outside / "secret.txt").write_bytes(SECRET)
        for entry in entries:
            path = root.joinpath(*entry.parts)
            try:
                if not inside(root, os.path.relpath(path.parent, root)):
                    continue  # under a link out: building it would write outside
                path.parent.mkdir(parents=True, exist_ok=True)
                if entry.kind == "file":
                    # never through a link planted earlier (it may point at the secret)
                    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                    fd = os.open(path, flags, 0o644)
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(b"inside " + "/".join(entry.parts).encode())
                elif entry.kind == "dir":
                    path.mkdir()
                else:
                    target = entry.target.format(outside=outside, root=root)
                    os.symlink(path.name if target == "self" else target, path)
            except OSError:
                continue  # a name already taken by another kind, or under a link: skip it
        yield root, outside


def snapshot(folder: Path) -> list[tuple[str, bytes]]:
    return sorted(
        (str(p.relative_to(folder)), p.read_bytes() if p.is_file() else b"")
        for p in folder.rglob("*")
    )


def inside(root: Path, relpath: str) -> bool:
    real = Path(os.path.realpath(root / relpath))
    return real == root or root in real.parents


@PROPS
@given(entries=_ENTRIES, queries=st.lists(_QUERIES, min_size=1, max_size=8))
def test_workspace_reads_never_leave_the_root(entries: list[Entry], queries: list[str]) -> None:
    """Whatever links the agent planted and whatever path a client asks for: a 400/404
    (or 409), or a path whose real location is inside the root; no byte from outside."""
    with random_workspace(entries) as (root, outside):
        ws = LocalWorkspace(root)
        for query in queries:
            try:
                resolved = ws.resolve(query)
            except BadRequest as exc:
                assert exc.message and exc.field == "path"
            except NotFound as exc:
                assert exc.message
            else:
                event("a path resolved inside")
                assert inside(root, resolved), (query, resolved)
            for read in (ws.preview, ws.open_raw):
                try:
                    result = read(query)
                except (BadRequest, NotFound) as exc:
                    assert exc.message
                    continue
                if isinstance(result, dict):
                    text = str(result).encode()
                else:
                    with result.file as f:
                        text = f.read()
                assert SECRET not in text and PASSWD not in text, query
        tree = ws.tree()
        assert SECRET.decode() not in str(tree)
        with zipfile.ZipFile(io.BytesIO(b"".join(ws.iter_zip()))) as archive:
            for name in archive.namelist():
                assert ".." not in name.split("/") and not name.startswith("/"), name
                data = archive.read(name)
                assert SECRET not in data and PASSWD not in data, name
        assert (outside / "secret.txt").read_bytes() == SECRET


@PROPS
@given(
    entries=_ENTRIES,
    target=_QUERIES,
    filename=st.one_of(
        st.sampled_from(["up.txt", "a", "sub", "..", ".", "x/y"]), st.text(max_size=20)
    ),
    overwrite=st.booleans(),
)
def test_workspace_uploads_never_write_outside(
    entries: list[Entry], target: str, filename: str, overwrite: bool
) -> None:
    with random_workspace(entries) as (root, outside):
        ws = LocalWorkspace(root)
        before = snapshot(outside)
        try:
            path = ws.write_upload(target, filename, b"uploaded", overwrite=overwrite, max_bytes=64)
        except (BadRequest, NotFound, Conflict) as exc:
            assert exc.message and exc.field in ("path", "target_path", "filename", "files")
        else:
            event("uploaded")
            assert inside(root, path) and (root / path).read_bytes() == b"uploaded", path
        try:
            ws.write_upload(target, "big.bin", b"x" * 65, overwrite=True, max_bytes=64)
        except (BadRequest, NotFound, Conflict, TooLarge):
            pass
        else:
            raise AssertionError("an upload over max_bytes was written")
        assert snapshot(outside) == before
        assert not [p for p in root.rglob(f"{UPLOAD_TMP_PREFIX}*")]


# ---------------------------------------------------------------------------- multipart

_BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
_BOUNDARIES = st.text(alphabet=_BCHARS, min_size=1, max_size=70).filter(lambda b: b[-1] != " ")
# header-safe parameter values: printable ASCII without quotes, backslashes or line breaks
_PARAM = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E,
                                        exclude_characters='"\\'), max_size=20)  # fmt: skip


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    data: bytes


_PARTS = st.lists(
    st.builds(
        Part,
        name=st.one_of(st.just("files"), _PARAM),
        filename=st.one_of(st.none(), _PARAM),
        data=st.one_of(
            st.binary(max_size=300),
            st.lists(st.sampled_from([b"\r\n", b"--", b"\r", b"\n", b"x", b"-"]), max_size=20).map(
                b"".join
            ),
        ),
    ),
    max_size=4,
)


def encode(parts: list[Part], boundary: str) -> bytes:
    out = b"preamble\r\n"
    for part in parts:
        disposition = f'form-data; name="{part.name}"'
        if part.filename is not None:
            disposition += f'; filename="{part.filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += part.data + b"\r\n"
    return out + f"--{boundary}--\r\nepilogue".encode()


def feed_in_chunks(parser: MultipartParser, body: bytes, cuts: list[int]) -> list[Any]:
    events: list[Any] = []
    points = sorted({min(c, len(body)) for c in cuts})
    for start, end in zip([0, *points], [*points, len(body)], strict=True):
        events += parser.feed(body[start:end])
    parser.close()
    return events


def merged(events: list[Any]) -> list[Any]:
    """Consecutive data pieces joined (how the body was cut must not matter)."""
    out: list[Any] = []
    for item in events:
        if isinstance(item, PartData):
            if not item.data:
                continue
            if out and isinstance(out[-1], PartData):
                out[-1] = PartData(out[-1].data + item.data)
                continue
        out.append(item)
    return out


@PROPS
@given(parts=_PARTS, boundary=_BOUNDARIES, cuts=st.lists(st.integers(min_value=0), max_size=15))
def test_multipart_any_valid_body_in_any_chunking_gives_its_parts(
    parts: list[Part], boundary: str, cuts: list[int]
) -> None:
    delimiter = f"\r\n--{boundary}".encode()
    # a client picks a boundary that its data does not contain
    assume(all(delimiter not in b"\r\n" + p.data + b"\r\n" for p in parts))
    assume(f"--{boundary}".encode() not in b"preamble\r\n")
    body = encode(parts, boundary)
    expected: list[Any] = []
    for part in parts:
        expected.append(PartStart(part.name, part.filename))
        if part.data:
            expected.append(PartData(part.data))
        expected.append(PartEnd())
    events = feed_in_chunks(MultipartParser(boundary), body, [c % (len(body) + 1) for c in cuts])
    assert merged(events) == expected


_FRAGMENTS = st.sampled_from(
    [
        b"--b",
        b"--b--",
        b"\r\n",
        b"\r\n\r\n",
        b"--",
        b"Content-Disposition: form-data",
        b'; name="files"',
        b'; filename="x"',
        b"; filename*=UTF-8''%ff",
        b"\xff\xfe",
        b"\x00",
        b"X-Other: 1",
        b" \t",
        b"=?utf-8?q?x?=",
        b'name="',
        b";;",
        b"a" * 300,
    ]
)
_GARBAGE = st.one_of(st.binary(max_size=600), st.lists(_FRAGMENTS, max_size=40).map(b"".join))


@PROPS
@given(body=_GARBAGE, cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=10))
def test_multipart_garbage_raises_only_bad_request(body: bytes, cuts: list[int]) -> None:
    """Random bytes: a 400 (naming ``files``) or a well-formed sequence of part events."""
    try:
        events = feed_in_chunks(MultipartParser("b"), body, cuts)
    except BadRequest as exc:
        assert exc.field == "files" and exc.message
        event("refused")
        return
    event("accepted")
    # accepted: then it is a proper sequence of Start (Data)* End
    open_part = False
    for item in events:
        if isinstance(item, PartStart):
            assert not open_part
            open_part = True
        elif isinstance(item, PartData):
            assert open_part
        else:
            assert open_part
            open_part = False
    assert not open_part


@PROPS
@given(boundary=st.text(max_size=100))
def test_multipart_any_boundary_is_accepted_or_a_400(boundary: str) -> None:
    try:
        parser = MultipartParser(boundary)
    except BadRequest as exc:
        assert exc.field == "files"
        assert not 1 <= len(boundary) <= 70
        return
    with pytest.raises(BadRequest):
        parser.feed(b"no boundary here")
        parser.close()


# ---------------------------------------------------------------------------- configs

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = list(AgentConfig.model_fields)
_SIZES = st.one_of(
    st.sampled_from(
        [
            "4g",
            "512m",
            "1t",
            "2T",
            "10GiB",
            "10gb",
            "1.5g",
            "0",
            "-1g",
            "lots",
            "",
            " 1g ",
            "255m",
            "64m",
            "63m",
            "2000t",
        ]
    ),  # fmt: skip
    st.integers(min_value=-2, max_value=2**45),
    st.booleans(),
    st.floats(allow_nan=True),
)
_TOOLS = st.lists(
    st.one_of(
        st.sampled_from(sorted(KNOWN_TOOLS)),
        st.sampled_from(["mcp__s__t", "mcp__x", "Nope"]),
        st.text(max_size=6),
    ),  # fmt: skip
    max_size=5,
)
_MCP = st.dictionaries(
    st.sampled_from(["s", "x", "bad name", ""]),
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["stdio", "sse", "http", "grpc", 1]),
            "command": st.sampled_from(["node", "", 3]),
            "url": st.sampled_from(["http://h/x", "ftp://h", "http://a b"]),
            "args": st.lists(st.text(max_size=4), max_size=2) | st.just("x"),
            "env": st.dictionaries(
                st.text(max_size=4), st.text(max_size=4) | st.integers(), max_size=2
            ),
        },
    ),
    max_size=2,
)
_NEAR_VALID = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["ok", "Bad", "a" * 70, "", "x-1", 5]),
        "name": st.text(max_size=10) | st.integers(),
        "allowed_tools": _TOOLS | st.just("Bash"),
        "disallowed_tools": _TOOLS,
        "permission_mode": st.sampled_from(
            ["default", "acceptEdits", "plan", "bypassPermissions", "yolo", 1]
        ),
        "system_prompt": st.one_of(
            st.none(),
            st.text(max_size=20),
            st.integers(),
            st.fixed_dictionaries(
                {},
                optional={
                    "type": st.sampled_from(["preset", "x"]),
                    "preset": st.sampled_from(["claude_code", "other"]),
                    "append": st.text(max_size=5) | st.integers(),
                },
            ),
        ),
        "agents": st.dictionaries(
            st.sampled_from(["backend", "Bad Name", "AgClusterLead", ""]),
            st.fixed_dictionaries(
                {},
                optional={
                    "description": st.text(max_size=5),
                    "prompt": st.text(max_size=5),
                    "tools": _TOOLS | st.none(),
                    "model": st.sampled_from(["opus", "bad model!", None]),
                },
            ),
            max_size=2,
        ),
        "mcp_servers": _MCP,
        "resource_limits": st.fixed_dictionaries(
            {},
            optional={
                "cpu": st.floats() | st.integers() | st.text(max_size=3),
                "memory": _SIZES,
                "storage": _SIZES,
                "gpu": st.just(1),
            },
        ),
        "max_turns": st.integers(min_value=-1, max_value=1001) | st.none() | st.text(max_size=2),
        "model": st.sampled_from(["claude-sonnet-4-5", "", "x" * 200, "a b", None]),
        "network": st.booleans() | st.sampled_from(["yes", 2]),
        "token_budget": st.integers(min_value=-1, max_value=10**9) | st.none(),
        "unknown": _JSON,
    },
)
_CONFIGS = st.one_of(
    _NEAR_VALID,
    st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), _JSON, max_size=6),
    _JSON,
)


@pytest.fixture(scope="module")
def presets() -> PresetRegistry:
    return PresetRegistry()


@PROPS
@given(config=_CONFIGS)
def test_any_inline_config_is_valid_or_a_400_naming_the_field(
    presets: PresetRegistry, config: Any
) -> None:
    try:
        resolved = presets.resolve_launch({"config": config})
    except AgClusterError as exc:
        assert isinstance(exc, BadRequest), type(exc)
        assert exc.message and exc.field.startswith("config"), (exc.message, exc.field)
        event(f"400 at {exc.field.split('.')[:2]}")
        return
    event("valid")
    assert isinstance(config, dict)
    # a valid config survives the round trip a client makes (GET configs/{id}, edit, launch)
    dumped = resolved.model_dump(mode="json")
    assert AgentConfig.model_validate(dumped) == resolved
    assert len(resolved.model_dump_json().encode()) <= MAX_CONFIG_JSON_BYTES
    resolved.summary()


@PROPS
@given(config=_CONFIGS)
def test_the_validator_raises_only_validation_errors_with_a_readable_message(config: Any) -> None:
    try:
        AgentConfig.model_validate(config)
    except ValidationError as exc:
        message, field = format_validation_error(exc, prefix="config")
        assert message and field.startswith("config") and "Traceback" not in message
