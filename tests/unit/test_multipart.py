"""The streaming multipart parser the upload handler feeds the workspace with, and the
``Content-Disposition`` it answers downloads with."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agcluster_jupyter.errors import BadRequest
from agcluster_jupyter.handlers.files import content_disposition
from agcluster_jupyter.handlers.multipart import (
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
)

# ---------------------------------------------------------------------------- multipart


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "XyZ-b0undary") -> bytes:
    out = b"preamble to ignore\r\n"
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        out += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\nepilogue".encode()


def parse(body: bytes, sizes: list[int], boundary: str = "XyZ-b0undary") -> list[object]:
    parser = MultipartParser(boundary)
    events: list[object] = []
    pos = 0
    for size in [*sizes, len(body)]:
        events += parser.feed(body[pos : pos + size])
        pos += size
    parser.close()
    # merge data pieces so results compare independently of chunking
    merged: list[object] = []
    for event in events:
        if isinstance(event, PartData) and merged and isinstance(merged[-1], PartData):
            merged[-1] = PartData(merged[-1].data + event.data)
        elif isinstance(event, PartData) and not event.data:
            continue
        else:
            merged.append(event)
    return merged


TRICKY_DATA = b"line\r\n--XyZ-b0undar\r\n-XyZ-b0undary \r--XyZ\r\n\r\n" + bytes(range(256))
EXPECTED = [
    PartStart("files", "a.txt"),
    PartData(TRICKY_DATA),
    PartEnd(),
    PartStart("note", None),
    PartData(b"hello"),
    PartEnd(),
    PartStart("files", "empty.bin"),
    PartEnd(),
]
BODY = multipart([("files", "a.txt", TRICKY_DATA), ("note", None, b"hello"),
                  ("files", "empty.bin", b"")])  # fmt: skip


def test_multipart_whole_and_byte_by_byte() -> None:
    assert parse(BODY, []) == EXPECTED
    assert parse(BODY, [1] * len(BODY)) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(BODY)), max_size=12))
def test_property_multipart_any_chunking(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    sizes = [b - a for a, b in zip([0, *points], points, strict=False)]
    assert parse(BODY, sizes) == EXPECTED


def test_multipart_filename_forms() -> None:
    body = (
        b"--b\r\nContent-Disposition: form-data; name=files; filename*=UTF-8''%C3%A9t%C3%A9.txt"
        b'\r\n\r\nx\r\n--b\r\ncontent-disposition: form-data; name="files"; filename="../x"'
        b"\r\n\r\ny\r\n--b--"
    )
    events = parse(body, [], boundary="b")
    assert PartStart("files", "été.txt") in events
    assert PartStart("files", "../x") in events  # reported as sent: the handler refuses it


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"--b\r\nContent-Disposition: form-data; name=files\r\n\r\nno end", "closing boundary"),
        (b"no boundary at all", "closing boundary"),
        (b"--bXX\r\n", "malformed"),
        (b"--b\r\n" + b"X-Junk: y\r\n" * 2000, "too long"),
        (b"--b\r\nX-Other: 1\r\n\r\ndata\r\n--b--", "no Content-Disposition"),
        (b"--b\r\nContent-Disposition: form-data; name=\xff\r\n\r\n", "not UTF-8"),
    ],
)
def test_multipart_malformed(body: bytes, fragment: str) -> None:
    parser = MultipartParser("b")
    with pytest.raises(BadRequest, match=fragment):
        parser.feed(body)
        parser.close()


def test_multipart_memory_stays_bounded() -> None:
    parser = MultipartParser("bnd")
    parser.feed(b"--bnd\r\nContent-Disposition: form-data; name=files; filename=x\r\n\r\n")
    chunk = b"z" * 65536
    for _ in range(50):
        events = parser.feed(chunk)
        assert sum(len(e.data) for e in events if isinstance(e, PartData)) > 60_000
        assert len(parser._buf) < 16  # only a possible delimiter prefix is held back


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("s1-workspace.zip", 'attachment; filename="s1-workspace.zip"'),
        (
            "résumé.pdf",
            "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
        ),
        ('a"b\r\n.txt', "attachment; filename=\"a_b__.txt\"; filename*=UTF-8''a%22b%0D%0A.txt"),
    ],
)
def test_content_disposition_is_header_safe(name: str, header: str) -> None:
    assert content_disposition("attachment", name) == header
