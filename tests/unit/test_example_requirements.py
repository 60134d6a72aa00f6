"""What the example notebooks import is installed by the README's setup (``./run.sh``):
the base dependencies or the ``examples`` extra, which run.sh installs."""

from __future__ import annotations

import ast
import re
import shlex
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    p
    for p in (REPO / "notebooks").glob("*.ipynb")
    if re.fullmatch(r"\d\d-[a-z0-9-]+\.ipynb", p.name)
)


def project() -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return data


def names(requirements: object) -> set[str]:
    assert isinstance(requirements, list)
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def top_level_imports(path: Path) -> set[str]:
    """The top-level modules a notebook's code cells import (magics turned into the
    Python IPython runs, so a ``%%agent`` cell parses too)."""
    found: set[str] = set()
    transform = TransformerManager().transform_cell
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(transform(cell.source))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def distributions(module: str) -> set[str]:
    """The installed distributions that provide ``module`` (ours: this package)."""
    if module == "agcluster_jupyter":
        return {"agcluster-jupyter"}
    return {canonicalize_name(d) for d in packages_distributions().get(module, [])}


def test_the_examples_import_only_what_the_setup_installs() -> None:
    meta = project()
    extras = meta["optional-dependencies"]
    assert isinstance(extras, dict) and "examples" in extras
    provided = names(meta["dependencies"]) | names(extras["examples"])
    missing = {}
    for path in EXAMPLES:
        for module in sorted(top_level_imports(path)):
            if module in sys.stdlib_module_names:
                continue
            dists = distributions(module)
            assert dists, f"{path.name}: {module} is not installed here either"
            # IPython is provided by ipython, a base dependency
            if "agcluster-jupyter" in dists or dists & provided:
                continue
            missing[f"{path.name}: import {module}"] = sorted(dists)
    assert not missing, f"add to the examples extra: {missing}"


def test_the_parser_sees_the_imports_a_notebook_makes() -> None:
    """The check above is only as good as the import list; 02 needs pandas."""
    imports = top_level_imports(REPO / "notebooks" / "02-data-analysis.ipynb")
    assert "pandas" in imports
    assert "pandas" in names(project()["optional-dependencies"]["examples"])  # type: ignore[index]


def test_run_sh_installs_the_examples_extra() -> None:
    installs = [
        shlex.split(line)
        for line in (REPO / "run.sh").read_text().splitlines()
        if re.match(r'\s*"\$VENV/bin/pip" install', line)
    ]
    assert installs, "run.sh installs nothing?"
    targets = [word for words in installs for word in words if word.startswith(".[")]
    assert any("examples" in t[2:-1].split(",") for t in targets), installs


def test_a_notebook_that_needs_an_extra_says_so_first() -> None:
    """Someone opening 02 in a Jupyter of their own learns what to install."""
    nb = nbformat.read(REPO / "notebooks" / "02-data-analysis.ipynb", as_version=4)
    assert "agcluster-jupyter[examples]" in nb.cells[0].source
