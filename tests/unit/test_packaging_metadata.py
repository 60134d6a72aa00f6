"""What PyPI and pip see: the built wheel's metadata, and the files the sdist and wheel ship.

The wheel and sdist are built once per session (``dists`` in tests/conftest.py, an
isolated ``python -m build`` of the checkout: a few seconds).
"""

from __future__ import annotations

import configparser
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ..packaging_support import REPO, Dists

CLASSIFIERS = {
    "Framework :: Jupyter",
    "Framework :: Jupyter :: JupyterLab",
    "Framework :: Jupyter :: JupyterLab :: 4",
    "Framework :: Jupyter :: JupyterLab :: Extensions",
    "Framework :: Jupyter :: JupyterLab :: Extensions :: Prebuilt",
    "License :: OSI Approved :: Apache Software License",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3 :: Only",
    "Programming Language :: Python :: 3.10",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
}
HOME = "https://github.com/agcluster/agcluster-jupyter"
#: the project's files every distribution carries
PROJECT_FILES = ("LICENSE", "CHANGELOG.md", "CONTRIBUTING.md", "README.md")


def _dist_info(wheel: zipfile.ZipFile) -> str:
    (info,) = {name.split("/")[0] for name in wheel.namelist() if ".dist-info/" in name}
    return info


@pytest.fixture(scope="module")
def metadata(dists: Dists) -> Message:
    with zipfile.ZipFile(dists.wheel) as wheel:
        text = wheel.read(f"{_dist_info(wheel)}/METADATA").decode()
    return Parser().parsestr(text)


def test_the_wheel_declares_its_classifiers(metadata: Message) -> None:
    missing = CLASSIFIERS - set(metadata.get_all("Classifier") or [])
    assert not missing, f"classifiers missing from the wheel's METADATA: {sorted(missing)}"


def test_the_wheel_names_its_license_authors_and_urls(metadata: Message) -> None:
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Author"] == "agcluster-jupyter developers"
    urls = dict(
        (label.strip(), url.strip())
        for label, url in (entry.split(",", 1) for entry in metadata.get_all("Project-URL") or [])
    )
    assert urls.get("Homepage") == HOME
    assert urls.get("Source") == HOME
    assert urls.get("Issues") == f"{HOME}/issues"
    assert urls.get("Changelog") == f"{HOME}/blob/main/CHANGELOG.md"


def test_the_lab_extra_brings_jupyterlab_and_ipykernel(metadata: Message) -> None:
    """``pip install 'agcluster-jupyter[lab]'`` then ``jupyter lab``: the README's line."""
    assert "lab" in (metadata.get_all("Provides-Extra") or [])
    requires = [Requirement(raw) for raw in metadata.get_all("Requires-Dist") or []]
    lab = {
        req.name.lower()
        for req in requires
        if req.marker is not None
        and req.marker.evaluate({"extra": "lab"})
        and not req.marker.evaluate({"extra": ""})
    }
    assert {"jupyterlab", "ipykernel"} <= lab, f"the lab extra brings {sorted(lab)}"
    base = {req.name.lower() for req in requires if req.marker is None}
    # the base install stays server-side: JupyterLab is the extra's
    assert "jupyterlab" not in base and "jupyter-server" in base


def test_the_wheel_ships_the_license(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as wheel:
        license_text = wheel.read(f"{_dist_info(wheel)}/licenses/LICENSE").decode()
    assert license_text == (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text


def test_the_sdist_ships_the_project_files(dists: Dists) -> None:
    if dists.sdist is None:
        pytest.fail("no sdist: the `build` package is missing (pip install -e '.[test]')")
    with tarfile.open(dists.sdist) as sdist:
        names = {Path(*Path(name).parts[1:]).as_posix() for name in sdist.getnames()}
    missing = [name for name in PROJECT_FILES if name not in names]
    assert not missing, f"{dists.sdist.name} lacks {missing}"


def test_the_wheel_registers_no_pytest_plugin(dists: Dists) -> None:
    """A pytest11 entry point would load in every pytest run of a user's environment."""
    with zipfile.ZipFile(dists.wheel) as wheel:
        text = wheel.read(f"{_dist_info(wheel)}/entry_points.txt").decode()
    entry_points = configparser.ConfigParser()
    entry_points.read_string(text)
    assert not entry_points.has_section("pytest11"), dict(entry_points["pytest11"])
    assert entry_points.has_section("console_scripts")  # the parse did see the file
