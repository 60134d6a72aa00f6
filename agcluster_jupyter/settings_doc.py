"""The documentation of ``AgClusterApp``'s settings, generated from its traits.

One source for three readers: ``jupyter agcluster settings`` (every setting with its
type, default and help), ``jupyter agcluster --help-all`` (the format of Jupyter's own
``--help-all``) and the README's settings table, a generated block between
``<!-- settings:start -->`` and ``<!-- settings:end -->``.  Regenerate that block after
changing a setting::

    python -m agcluster_jupyter.settings_doc README.md           # rewrite the block
    python -m agcluster_jupyter.settings_doc --check README.md   # exit 1 if it is stale

Jupyter Server's own ``jupyter server --help-all`` (and ``jupyter lab --help-all``)
cannot list them: the server prints its help while it parses the command line, the
first step of ``ServerApp.initialize``, before it finds or imports any extension, and
offers extensions no way to add their classes to it.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Enum, Float, Int, List, TraitType, Unicode
from traitlets.traitlets import DefaultHandler

from ._version import __version__
from .app import AgClusterApp

__all__ = [
    "END",
    "REGENERATE",
    "START",
    "Setting",
    "first_sentence",
    "help_all",
    "markdown_table",
    "readme_block",
    "replace_block",
    "settings",
    "text_listing",
]

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
#: the command that rewrites the README's block
REGENERATE = "python -m agcluster_jupyter.settings_doc README.md"

#: a sentence ends at . ! or ? followed by a space and a capital, quote, $ or bracket,
#: not after "e.g." or "i.e."
_SENTENCE_END = re.compile(r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<=[.!?])\s+(?=[A-Z'\"$(`])")
_DEFAULT_SENTENCE = re.compile(r"^Default:\s*(.+?)\.?$")


@dataclass(frozen=True)
class Setting:
    name: str
    #: the value's type as a config file spells it: str, int, list[str], 'a'|'b', ...
    type: str
    #: the default as a Python literal, or the help's "Default: ..." when it is computed
    default: str
    #: whether the default is computed when the server starts
    computed: bool
    #: the help text, whitespace collapsed
    help: str
    #: an Enum's values
    choices: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """What it does: the help's first sentence."""
        return first_sentence(self.help)


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (whitespace collapsed)."""
    text = " ".join(text.split())
    return _SENTENCE_END.split(text, maxsplit=1)[0]


def _sentences(text: str) -> list[str]:
    return _SENTENCE_END.split(" ".join(text.split()))


def _type_name(trait: TraitType[Any, Any]) -> str:
    if isinstance(trait, Enum):
        name = "|".join(repr(value) for value in trait.values or ())
    elif isinstance(trait, List):
        inner = getattr(trait, "_trait", None)
        name = f"list[{_type_name(inner)}]" if inner is not None else "list"
    else:
        simple: list[tuple[type[Any], str]] = [
            (Bool, "bool"),
            (Int, "int"),
            (Float, "float"),
            (Unicode, "str"),
            (Dict, "dict"),
        ]
        name = next((label for kind, label in simple if isinstance(trait, kind)), "")
        name = name or type(trait).__name__
    return f"{name} or None" if trait.allow_none else name


def _computed_defaults(cls: type[Any]) -> set[str]:
    """Traits whose default a ``@default`` method computes (on ``cls`` or a base)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        for value in vars(klass).values():
            if isinstance(value, DefaultHandler):
                names.add(value.trait_name)
    return names


def _default(trait: TraitType[Any, Any], computed: bool, help_text: str) -> str:
    if computed:
        for sentence in _sentences(help_text):
            match = _DEFAULT_SENTENCE.match(sentence)
            if match:
                return match.group(1)
        return "computed when the server starts"
    literal: str = trait.default_value_repr()
    # a default naming this version (the agent image's tag) is documented for any version
    return literal.replace(__version__, "<version>")


def settings(cls: type[Any] = AgClusterApp) -> list[Setting]:
    """Every configurable trait ``cls`` itself defines, in the order it defines them."""
    computed = _computed_defaults(cls)
    found: list[Setting] = []
    for name, trait in vars(cls).items():
        if not isinstance(trait, TraitType) or not trait.metadata.get("config"):
            continue
        help_text = " ".join((trait.help or "").split())
        found.append(
            Setting(
                name=name,
                type=_type_name(trait),
                default=_default(trait, name in computed, help_text),
                computed=name in computed,
                help=help_text,
                choices=tuple(str(v) for v in trait.values or ())
                if isinstance(trait, Enum)
                else (),
            )
        )
    return found


def text_listing(items: list[Setting] | None = None, width: int = 88) -> str:
    """``jupyter agcluster settings``: each setting, its type and default, then its help."""
    items = settings() if items is None else items
    intro = (
        f"AgClusterApp settings ({len(items)}): --AgClusterApp.<name>=<value> on the command "
        "line of jupyter server or jupyter lab, or c.AgClusterApp.<name> = <value> in "
        "jupyter_server_config.py."
    )
    lines = [*textwrap.wrap(intro, width), ""]
    for item in items:
        default = f"default (computed): {item.default}" if item.computed else item.default
        if not item.computed:
            default = f"default: {default}"
        lines.append(f"{item.name}  ({item.type})  {default}")
        lines.extend(
            textwrap.wrap(item.help, width, initial_indent="    ", subsequent_indent="    ")
        )
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def help_all() -> str:
    """``jupyter agcluster --help-all``: the extension's settings as Jupyter prints options.

    Each setting in traitlets' own ``--help-all`` format; a computed default shows as the
    help's "Default: ..." (traitlets alone would print the empty placeholder).  Only the
    settings ``AgClusterApp`` defines: what it inherits from ``ExtensionApp`` (log_level,
    config_file, ...) is generic and listed by ``jupyter server --help-all``.
    """
    intro = (
        "The settings of the agcluster server extension, for the command line of "
        "`jupyter server` and `jupyter lab` (--AgClusterApp.<name>=<value>) or for "
        "jupyter_server_config.py (c.AgClusterApp.<name> = <value>).  Jupyter Server's own "
        "--help-all cannot show them: it prints its help before it loads any extension."
    )
    title = "AgClusterApp(ExtensionApp) options"
    lines = [*textwrap.wrap(intro, 88), "", title, "-" * len(title)]
    traits = AgClusterApp.class_traits(config=True)
    for item in settings():
        text: str = AgClusterApp.class_get_trait_help(traits[item.name])
        entry = text.splitlines()
        if item.computed and entry[-1].lstrip().startswith("Default:"):
            entry = entry[:-1]  # the placeholder: the help says what the default is
        lines.extend(entry)
    return "\n".join(lines) + "\n"


#: Markdown that prose from the help must not trigger: table pipes, GitHub's $math$,
#: HTML tags, emphasis
_MARKDOWN_SPECIAL = re.compile(r"([|$<*])")


def _prose(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _code(text: str) -> str:
    # in a table, a pipe needs its backslash even inside a code span
    return "`" + text.replace("|", "\\|") + "`"


def markdown_table(items: list[Setting] | None = None) -> str:
    """The README's table: name, default, what it does (the help's first sentence)."""
    items = settings() if items is None else items
    rows = ["| setting | default | what it does |", "|---|---|---|"]
    for item in items:
        default = _prose(item.default) if item.computed else _code(item.default)
        summary = _prose(item.summary)
        if item.choices:
            summary += " One of " + ", ".join(_code(value) for value in item.choices) + "."
        rows.append(f"| `{item.name}` | {default} | {summary} |")
    return "\n".join(rows)


def readme_block(items: list[Setting] | None = None) -> str:
    """The README's generated block, markers included."""
    return "\n".join(
        [
            START,
            f"<!-- generated from AgClusterApp's traits by `{REGENERATE}`: "
            "edit the traits' help in agcluster_jupyter/app.py, not this table -->",
            "",
            markdown_table(items),
            "",
            END,
        ]
    )


def replace_block(text: str, block: str | None = None) -> str:
    """``text`` with its block between the markers replaced by ``block`` (the current one)."""
    block = readme_block() if block is None else block
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {START} ... {END} block")
    return text[:start] + block + text[end + len(END) :]


def current_block(text: str) -> str | None:
    """The block ``text`` holds between the markers (markers included), if any."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(END)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agcluster_jupyter.settings_doc",
        description="Rewrite the settings block of a Markdown file (the README) from the traits.",
    )
    parser.add_argument("path", type=Path, help="the Markdown file, e.g. README.md")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if the block is stale"
    )
    args = parser.parse_args(argv)
    text = args.path.read_text(encoding="utf-8")
    try:
        updated = replace_block(text)
    except ValueError as exc:
        print(f"error: {args.path}: {exc}", file=sys.stderr)
        return 2
    if updated == text:
        print(f"{args.path}: the settings block is up to date")
        return 0
    if args.check:
        print(f"{args.path}: the settings block is stale; run {REGENERATE}", file=sys.stderr)
        return 1
    args.path.write_text(updated, encoding="utf-8")
    print(f"{args.path}: settings block rewritten ({len(settings())} settings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
