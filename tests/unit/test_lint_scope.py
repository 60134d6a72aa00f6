"""The lint step checks the project's sources, not what running the examples leaves behind.

``./run_tests.sh`` runs ``ruff check .`` and ``ruff format --check .``; a user who ran the
example notebooks has scripts, exports and executed copies in ``notebooks/``. Those must
neither fail the lint nor show up in ``git status``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUFF = str(Path(sys.executable).with_name("ruff"))
BADLY_FORMATTED = "import os\nx=1;y = 2\n"

#: what running the examples (or a user trying them) leaves in notebooks/
LEFTOVERS = [
    "analysis.py",  # downloaded next to the notebook by an older 01-quickstart
    "agent-code-assistant.md",
    "output/01-quickstart/analysis.py",  # where the notebooks save now
    "output/02-data-analysis/sales-from-agent.csv",
    "01-quickstart.nbconvert.ipynb",  # jupyter nbconvert --execute --to notebook
    "01-quickstart-Copy1.ipynb",  # JupyterLab's "Duplicate"
    "Untitled.ipynb",
]


def example_notebooks() -> list[Path]:
    """The example notebooks (``NN-name.ipynb``), not copies a user made of them."""
    return sorted(
        p
        for p in (REPO / "notebooks").glob("[0-9][0-9]-*.ipynb")
        if p.name.count(".") == 1 and "copy" not in p.name.lower()
    )


def lint_commands() -> list[list[str]]:
    """The ruff commands of run_tests.sh, with this venv's ruff."""
    commands = []
    for line in (REPO / "run_tests.sh").read_text().splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0].endswith("/bin/ruff"):
            commands.append([RUFF, *words[1:]])
    assert len(commands) == 2, commands  # check and format --check
    return commands


def bad_notebook(source: Path) -> str:
    nb = json.loads(source.read_text())
    nb["cells"].append(
        {
            "cell_type": "code",
            "execution_count": 1,
            "id": "bad",
            "metadata": {},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}],
            "source": BADLY_FORMATTED.splitlines(keepends=True),
        }
    )
    return json.dumps(nb)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The lint configuration and the examples, plus what a user's run left there (and
    no .gitignore: the ruff configuration alone must skip them)."""
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copy(REPO / "run_tests.sh", tmp_path)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(REPO / "notebooks" / "ruff.toml", notebooks)
    for nb in example_notebooks():
        shutil.copy(nb, notebooks)
    for name in LEFTOVERS:
        path = notebooks / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".ipynb"):
            path.write_text(bad_notebook(REPO / "notebooks" / "01-quickstart.ipynb"))
        else:
            path.write_text(BADLY_FORMATTED)
    return tmp_path


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_lint_skips_what_running_the_examples_leaves(checkout: Path) -> None:
    for cmd in lint_commands():
        done = run(cmd, checkout)
        assert done.returncode == 0, (cmd, done.stdout, done.stderr)
    shown = run([RUFF, "check", "--show-files", "."], checkout).stdout
    files = {Path(line.strip()).relative_to(checkout).as_posix() for line in shown.splitlines()}
    examples = {f"notebooks/{p.name}" for p in example_notebooks()}
    assert examples <= files  # the example notebooks themselves are still linted
    assert not {f"notebooks/{name}" for name in LEFTOVERS} & files


def test_the_lint_still_checks_the_sources(checkout: Path) -> None:
    (checkout / "agcluster_jupyter").mkdir()
    (checkout / "agcluster_jupyter" / "mod.py").write_text(BADLY_FORMATTED)
    broken = json.loads((checkout / "notebooks" / "01-quickstart.ipynb").read_text())
    broken["cells"][-1]["source"] = ["x=1;y = 2\n"]
    (checkout / "notebooks" / "05-new-example.ipynb").write_text(json.dumps(broken))
    check, fmt = (run(cmd, checkout) for cmd in lint_commands())
    assert check.returncode == 1 and "agcluster_jupyter/mod.py" in check.stdout, check.stdout
    assert "F401" in check.stdout
    assert fmt.returncode == 1, fmt.stdout
    assert "agcluster_jupyter/mod.py" in fmt.stdout + fmt.stderr
    assert "notebooks/05-new-example.ipynb" in fmt.stdout + fmt.stderr


def test_git_ignores_what_running_the_examples_leaves() -> None:
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    paths = [f"notebooks/{name}" for name in LEFTOVERS]
    ignored = run(["git", "check-ignore", "--no-index", *paths], REPO).stdout.split()
    assert sorted(ignored) == sorted(paths)
    examples = [f"notebooks/{p.name}" for p in example_notebooks()]
    tracked = ["notebooks/ruff.toml", "notebooks/.gitignore", *examples]
    assert run(["git", "check-ignore", "--no-index", *tracked], REPO).stdout == ""
