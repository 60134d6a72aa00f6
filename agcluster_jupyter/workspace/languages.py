"""What a workspace file is: a highlighter language (by name, extension or shebang),
text or binary, its MIME type."""

from __future__ import annotations

import codecs
import mimetypes
from pathlib import PurePosixPath

__all__ = ["detect_language", "looks_binary", "mime_type"]

_EXT_LANGUAGES: dict[str, str] = {}
for _lang, _exts in {
    "python": ".py .pyi .pyw .pyx",
    "javascript": ".js .mjs .cjs .jsx",
    "typescript": ".ts .mts .cts .tsx",
    "json": ".json .jsonl .ndjson .geojson .ipynb .jsonc",
    "yaml": ".yaml .yml",
    "markdown": ".md .markdown .mdx",
    "html": ".html .htm .xhtml",
    "css": ".css .scss .sass .less",
    "shell": ".sh .bash .zsh .ksh .fish",
    "sql": ".sql",
    "csv": ".csv .tsv",
    "toml": ".toml",
    "rust": ".rs",
    "go": ".go",
    "java": ".java",
    "c": ".c .h",
    "cpp": ".cpp .cc .cxx .c++ .hpp .hh .hxx .h++",
    "r": ".r .rmd",
    "julia": ".jl",
    "xml": ".xml .svg .xsd .xsl",
    "ruby": ".rb",
    "php": ".php",
    "kotlin": ".kt .kts",
    "swift": ".swift",
    "scala": ".scala",
    "lua": ".lua",
    "perl": ".pl .pm",
    "ini": ".ini .cfg .conf",
    "dockerfile": ".dockerfile",
    "latex": ".tex",
    "restructuredtext": ".rst",
    "powershell": ".ps1",
    "protobuf": ".proto",
    "graphql": ".graphql .gql",
    "text": ".txt .log .text",
}.items():
    for _ext in _exts.split():
        _EXT_LANGUAGES[_ext] = _lang

_NAME_LANGUAGES = {
    "dockerfile": "dockerfile",
    "containerfile": "dockerfile",
    "makefile": "makefile",
    "gnumakefile": "makefile",
    "cmakelists.txt": "cmake",
    "gemfile": "ruby",
    "rakefile": "ruby",
    "vagrantfile": "ruby",
    "pipfile": "toml",
    ".bashrc": "shell",
    ".bash_profile": "shell",
    ".zshrc": "shell",
    ".profile": "shell",
    ".env": "shell",
}

_SHEBANG_LANGUAGES = {
    "python": "python",
    "node": "javascript",
    "deno": "typescript",
    "ts-node": "typescript",
    "bun": "javascript",
    "sh": "shell",
    "bash": "shell",
    "zsh": "shell",
    "dash": "shell",
    "ksh": "shell",
    "fish": "shell",
    "rscript": "r",
    "julia": "julia",
    "ruby": "ruby",
    "perl": "perl",
    "php": "php",
    "lua": "lua",
}


def detect_language(name: str, head: bytes = b"") -> str:
    """A highlighter language for a file name (extension or well-known name), then shebang."""
    lower = name.lower()
    if lower in _NAME_LANGUAGES:
        return _NAME_LANGUAGES[lower]
    if lower.startswith(("dockerfile.", "containerfile.")):
        return "dockerfile"
    if lower.startswith("makefile."):
        return "makefile"
    ext = PurePosixPath(lower).suffix
    if ext in _EXT_LANGUAGES:
        return _EXT_LANGUAGES[ext]
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
        if words:
            prog = words[0].rsplit("/", 1)[-1]
            if prog == "env":
                args = [w for w in words[1:] if not w.startswith("-")]
                prog = args[0] if args else ""
            prog = prog.lower().rstrip("0123456789.")  # python3.12 → python
            if prog in _SHEBANG_LANGUAGES:
                return _SHEBANG_LANGUAGES[prog]
    return "text"


def looks_binary(head: bytes, *, whole: bool) -> bool:
    """NUL bytes or invalid UTF-8 in ``head``; ``whole``: head is the entire file."""
    if b"\x00" in head:
        return True
    try:
        # not whole: a multibyte character cut at the sniff boundary is not an error
        codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError:
        return True
    return False


def mime_type(name: str) -> str | None:
    return mimetypes.guess_type(name, strict=False)[0]
