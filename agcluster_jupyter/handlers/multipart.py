"""A streaming ``multipart/form-data`` parser: bytes in, part events out.

Pure and incremental: feed it the body in chunks of any size and it yields
``PartStart`` (a part's headers), ``PartData`` (its bytes, as they come) and ``PartEnd``;
garbage is a ``BadRequest`` saying what is wrong.  The upload handler writes each part
to a temp file as it streams in, so memory stays flat whatever the upload's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value

from ..errors import BadRequest

__all__ = ["MAX_PART_HEADER_BYTES", "MultipartParser", "PartData", "PartEnd", "PartStart"]

#: a part's header block larger than this is not a browser's
MAX_PART_HEADER_BYTES = 16 * 1024


@dataclass
class PartStart:
    """A part's headers have arrived: its form field name and filename (None if absent)."""

    name: str | None
    filename: str | None


@dataclass
class PartData:
    data: bytes


@dataclass
class PartEnd:
    pass


class MultipartParser:
    """Incremental ``multipart/form-data`` parser (RFC 7578): ``feed`` bytes, get events.

    Holds at most one header block or ``len(boundary) + 4`` bytes of body between
    calls, however large the parts are.
    """

    def __init__(self, boundary: str) -> None:
        if not 1 <= len(boundary) <= 70:
            raise BadRequest("the multipart boundary must be 1 to 70 characters", field="files")
        self._delim = b"--" + boundary.encode("latin-1", "replace")
        self._body_delim = b"\r\n" + self._delim
        self._buf = bytearray()
        self._state = "preamble"

    @property
    def complete(self) -> bool:
        return self._state == "end"

    def feed(self, data: bytes) -> list[PartStart | PartData | PartEnd]:
        events: list[PartStart | PartData | PartEnd] = []
        buf = self._buf
        buf += data
        while True:
            if self._state == "preamble":
                i = buf.find(self._delim)
                if i < 0:
                    # preamble is ignored; keep only what could be a delimiter's start
                    del buf[: max(0, len(buf) - len(self._delim))]
                    break
                del buf[: i + len(self._delim)]
                self._state = "delimiter"
            elif self._state == "delimiter":
                if len(buf) < 2:
                    break
                if buf[:2] == b"--":
                    self._state = "end"
                    continue
                j = buf.find(b"\r\n")
                if j < 0:
                    if len(buf) > 256:
                        raise BadRequest("malformed multipart boundary line", field="files")
                    break
                if bytes(buf[:j]).strip(b" \t"):  # only transport padding may follow
                    raise BadRequest("malformed multipart boundary line", field="files")
                del buf[: j + 2]
                self._state = "headers"
            elif self._state == "headers":
                j = buf.find(b"\r\n\r\n")
                if j < 0:
                    if len(buf) > MAX_PART_HEADER_BYTES:
                        raise BadRequest("a multipart part's headers are too long", field="files")
                    break
                events.append(_parse_part_headers(bytes(buf[:j])))
                del buf[: j + 4]
                self._state = "body"
            elif self._state == "body":
                j = buf.find(self._body_delim)
                if j < 0:
                    # the tail may be the start of a delimiter split across two chunks
                    keep = len(self._body_delim) - 1
                    if len(buf) > keep:
                        events.append(PartData(bytes(buf[: len(buf) - keep])))
                        del buf[: len(buf) - keep]
                    break
                if j:
                    events.append(PartData(bytes(buf[:j])))
                del buf[: j + len(self._body_delim)]
                events.append(PartEnd())
                self._state = "delimiter"
            else:  # end: the epilogue is ignored
                buf.clear()
                break
        return events

    def close(self) -> None:
        """The body is over: a 400 unless the closing boundary was seen."""
        if self._state != "end":
            raise BadRequest(
                "the multipart body ended before its closing boundary (was the upload cut?)",
                field="files",
            )


def _parse_part_headers(raw: bytes) -> PartStart:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("a multipart part's headers are not UTF-8", field="files") from None
    disposition = ""
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "content-disposition":
            disposition = value.strip()
    if not disposition:
        raise BadRequest("a multipart part has no Content-Disposition header", field="files")
    msg = Message()
    msg["content-disposition"] = disposition
    field = msg.get_param("name", header="content-disposition")
    filename = msg.get_param("filename", header="content-disposition")
    return PartStart(
        name=None if field is None else collapse_rfc2231_value(field),
        filename=None if filename is None else collapse_rfc2231_value(filename),
    )
