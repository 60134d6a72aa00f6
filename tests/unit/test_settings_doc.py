"""The settings' documentation comes from the traits: ``jupyter agcluster settings``,
``jupyter agcluster --help-all`` and the README's generated table cannot drift from them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets import TraitType

from agcluster_jupyter import settings_doc
from agcluster_jupyter.app import AgClusterApp

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"

#: every configurable trait AgClusterApp itself defines, as traitlets reports them
OWN = sorted(AgClusterApp.class_own_traits(config=True))


def _jupyter_agcluster(*args: str) -> str:
    """``jupyter agcluster ...`` through the console script a user runs; its stdout."""
    script = Path(sys.executable).with_name("jupyter")
    proc = subprocess.run(
        [str(script), "agcluster", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_readmes_settings_block_is_what_the_traits_say() -> None:
    text = README.read_text(encoding="utf-8")
    block = settings_doc.current_block(text)
    assert block is not None, (
        f"README.md has no {settings_doc.START} ... {settings_doc.END} block in its "
        f"Settings section; add the two markers and run {settings_doc.REGENERATE}"
    )
    assert block == settings_doc.readme_block(), (
        f"README.md's settings table is stale (a setting or its help changed): run "
        f"{settings_doc.REGENERATE}"
    )


def test_the_table_has_one_row_per_setting_in_definition_order() -> None:
    rows = re.findall(r"^\| `(\w+)` \|", settings_doc.markdown_table(), re.MULTILINE)
    assert sorted(rows) == OWN
    defined = [name for name, value in vars(AgClusterApp).items() if isinstance(value, TraitType)]
    assert rows == [name for name in defined if name in OWN]
    assert rows[0] == "provider"


def test_a_row_is_name_default_and_the_helps_first_sentence() -> None:
    rows = {
        row.split(" | ")[0].strip("|` "): row for row in settings_doc.markdown_table().splitlines()
    }
    assert rows["max_sessions"] == (
        "| `max_sessions` | `20` | Most sessions running at once (429 beyond it). |"
    )
    # an Enum names its choices
    assert rows["provider"] == (
        "| `provider` | `'auto'` | Where agent runners live. One of `auto`, `local`, "
        "`docker`, `fly`, `kubernetes`. |"
    )
    # a default naming the version is documented for any version
    assert "| `'agcluster-agent:<version>'` |" in rows["agent_image"]
    # a computed default is the help's own "Default: ...", with $ kept from GitHub's math
    assert rows["anthropic_base_url"].startswith(
        "| `anthropic_base_url` | \\$ANTHROPIC_BASE_URL, else https://api.anthropic.com | "
    )


def test_every_computed_default_is_explained_in_its_help() -> None:
    """A ``@default`` method's value is invisible to the docs: its help must say it."""
    unexplained = [
        item.name
        for item in settings_doc.settings()
        if item.computed and item.default == "computed when the server starts"
    ]
    assert not unexplained, f"add 'Default: ...' to the help of {unexplained} in app.py"


def test_first_sentence() -> None:
    first = settings_doc.first_sentence
    assert first("One.  Two.") == "One."
    assert first("Ends in a version 2.1.332).  Empty: x.") == "Ends in a version 2.1.332)."
    assert first("A, e.g. a Service (http://a.b:1). Next") == "A, e.g. a Service (http://a.b:1)."
    assert first("A, i.e. Not split. Next") == "A, i.e. Not split."
    assert first("no full stop") == "no full stop"
    assert first("Spread\n        over lines.  Then more.") == "Spread over lines."


def test_jupyter_agcluster_settings_lists_type_default_and_help() -> None:
    out = _jupyter_agcluster("settings")
    for item in settings_doc.settings():
        header = f"{item.name}  ({item.type})  "
        assert f"\n{header}" in out, f"{item.name} is missing from jupyter agcluster settings"
    assert "\nmax_upload_bytes  (int)  default: 52428800\n" in out
    assert "\npreset_paths  (list[str])  default: []\n" in out
    assert "\nkubernetes_runtime_class  (str or None)  default: None\n" in out
    assert "\nfly_cpu_kind  ('shared'|'performance')  default: 'shared'\n" in out
    assert (
        "\nfly_region  (str)  default (computed): $FLY_REGION, else ams\n"
        "    fly provider: the region of the machines and volumes. Default: $FLY_REGION, else\n"
        "    ams.\n"
    ) in out


def test_jupyter_agcluster_settings_markdown_is_the_readmes_table() -> None:
    assert _jupyter_agcluster("settings", "--markdown") == settings_doc.markdown_table() + "\n"


def test_jupyter_agcluster_help_all_prints_every_setting_as_jupyter_does() -> None:
    out = _jupyter_agcluster("--help-all")
    options = re.findall(r"^--AgClusterApp\.(\w+)=<\w+", out, re.MULTILINE)
    assert sorted(options) == OWN
    assert "--AgClusterApp.provider=<Enum>\n" in out
    assert "    Choices: any of ['auto', 'local', 'docker', 'fly', 'kubernetes']\n" in out
    # a computed default is not shown as the empty placeholder
    entry = out.split("--AgClusterApp.state_root=<Unicode>\n", 1)[1].split("\n--", 1)[0]
    assert "Default: agcluster/ in the Jupyter" in entry
    assert "Default: ''" not in entry


def test_replace_block_and_the_check_command(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"# T\n\n{settings_doc.START}\nold\n{settings_doc.END}\n\nafter\n")
    assert settings_doc.main(["--check", str(doc)]) == 1
    assert settings_doc.main([str(doc)]) == 0
    text = doc.read_text()
    assert text == f"# T\n\n{settings_doc.readme_block()}\n\nafter\n"
    assert settings_doc.main(["--check", str(doc)]) == 0
    doc.write_text("no markers\n")
    with pytest.raises(ValueError, match="settings:start"):
        settings_doc.replace_block(doc.read_text())
    assert settings_doc.main([str(doc)]) == 2
