"""Real-browser fixtures: a real JupyterLab with agcluster, driven by Debian's Chromium.

- ``lab_model`` (session): the scripted model (demo scenarios; a module adds its own with
  ``lab_model.add_scenarios``).
- ``lab_server`` (session): ``jupyter server`` (JupyterLab and agcluster on it), provider
  ``local``, the scripted model as the gateway's upstream, the model's key in the server's
  environment only, token auth on, session workspaces in the Jupyter tree (so they open in
  Lab).  JupyterLab's workspaces and user settings live in its own folder (news and update
  checks off: no toast over the page); ``window.jupyterapp`` is exposed so tests can wait
  on the app and run commands.  ``$AGCLUSTER_LABEXTENSIONS_PATH`` (a folder holding a built
  ``agcluster-jupyter/``) serves that panel build instead of the installed one.
- ``browser`` (session): headless Chromium at ``/usr/bin/chromium`` (``$AGCLUSTER_CHROMIUM``
  overrides), through Playwright's sync API; Playwright never downloads a browser.
- ``lab`` (each test): a fresh browser context logged in by ``/lab/workspaces/<test>?token=``
  (a workspace of its own, so layouts never leak between tests), JupyterLab restored and
  its Launcher focused.  Console errors and uncaught page errors are collected and fail
  the test unless the test took them (``lab.take_errors(matching)``).  A screenshot of the
  page is saved to ``tests/browser/artifacts/<test>.png`` (git-ignored) at the end of
  every test (at the moment of failure for a failed one) and named in the report
  (``user_properties``, so junit XML has it; on failure, report sections with the path,
  the console log and the server log's tail).  Sessions the test launched are purged.

A test: a plain ``def test_...(lab)`` (the sync API refuses to run inside an asyncio loop;
pytest-asyncio runs none for sync tests) in a module marked ``pytest.mark.browser``; drive
the Agents panel with ``agents_panel.AgentsPanel(lab)`` (its ``data-testid`` contract), use
Playwright's ``expect`` (auto-waiting, 30 s here) rather than sleeps, and ``lab.server``
(``get``/``post``) to check the server's side.  Without Playwright or Chromium the tests
skip, but fail when ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest

from agcluster_jupyter.testing.jupyter import JupyterServerProcess
from agcluster_jupyter.testing.server import ScriptedModelServer

from ..support import TEST_KEY, serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, ViewportSize
    from pluggy import Result

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = os.environ.get("AGCLUSTER_CHROMIUM", "/usr/bin/chromium")
#: a folder with a built ``agcluster-jupyter/`` labextension served instead of the installed
#: one (e.g. a panel build under test that is not installed)
LABEXTENSIONS = os.environ.get("AGCLUSTER_LABEXTENSIONS_PATH", "")
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}
#: Playwright's default wait for actions and ``expect`` (ms): a shared 2-core CI machine
#: loads JupyterLab in ~6 s
TIMEOUT_MS = 30_000
#: JupyterLab user settings for every test: no news feed, no update check (their toast
#: would cover the bottom right of the page, and they need the internet)
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}

_SCREENSHOT = pytest.StashKey[Path]()
_FAILED = pytest.StashKey[bool]()
_LAB = pytest.StashKey["Lab"]()


def browser_unusable(reason: str) -> NoReturn:
    """No Playwright or Chromium: a skip on a developer's machine, a failure in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests: {reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(f"browser tests: {reason}")


def artifact_name(nodeid: str) -> str:
    """``tests/browser/test_lab.py::test_x[a-b]`` → ``test_lab.test_x-a-b``."""
    name = nodeid.split("/")[-1].replace(".py::", ".").replace("::", ".")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


# --- no asyncio here -----------------------------------------------------------------------
# Playwright's sync API runs its event loop in a greenlet of the main thread: while it is
# alive, that thread has a running loop, and pytest-asyncio cannot set up an async fixture
# ("Runner.run() cannot be called from a running event loop").  pytest-jupyter's autouse
# fixtures (async ``jp_asyncio_loop`` from tests/conftest.py, ``jp_server_cleanup``) serve
# its in-process server, which these tests do not use: here they are no-ops.


@pytest.fixture
def jp_asyncio_loop() -> None:
    return None


@pytest.fixture
def jp_server_cleanup() -> None:
    return None


# --- the server ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lab_model() -> Iterator[ScriptedModelServer]:
    """The scripted model behind the server's gateway (demo scenarios; a test module adds
    its own with ``lab_model.add_scenarios``)."""
    with ScriptedModelServer(api_key=TEST_KEY) as model:
        yield model


@pytest.fixture(scope="session")
def lab_server(lab_model: ScriptedModelServer) -> Iterator[JupyterServerProcess]:
    """One JupyterLab server for the browser tests; each test uses its own Lab workspace."""
    with lab_server_process(lab_model) as started:
        yield started


@contextmanager
def lab_server_process(
    lab_model: ScriptedModelServer, *, collaboration: bool = False
) -> Iterator[JupyterServerProcess]:
    """A started JupyterLab server as the browser tests use it (stopped on exit).

    jupyter-collaboration is installed for the tests (the ``[collaboration]`` extra), and
    it turns real-time collaboration on in every Lab; only ``collaboration`` keeps it on,
    the others switch it off as a user would (``YDocExtension.disable_rtc``)."""
    server = JupyterServerProcess(lab_model.url, TEST_KEY, token=secrets.token_hex(16))
    # session workspaces in the Jupyter tree, as by default, so files open in Lab
    workspaces = server.base / "root" / "agent-workspaces"
    workspaces.mkdir(mode=0o755)
    settings_dir = server.base / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings_dir / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    if LABEXTENSIONS:  # a build of the panel that is not (yet) the installed one
        server.cmd.append(f"--LabApp.extra_labextensions_path={LABEXTENSIONS}")
    server.set_option("AgClusterApp.workspace_root", workspaces)
    server.cmd += [
        f"--LabApp.user_settings_dir={settings_dir}",
        f"--LabApp.workspaces_dir={server.base / 'lab-workspaces'}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if collaboration:
        server.cmd.append(f"--SQLiteYStore.db_path={server.base / 'ystore.db'}")
    else:
        server.cmd.append("--YDocExtension.disable_rtc=True")
    with serving(server) as started:
        yield started


def session_ids(server: JupyterServerProcess) -> set[str]:
    return {s["session_id"] for s in server.get("agents/sessions").json()["sessions"]}


def purge_sessions(server: JupyterServerProcess, ids: set[str]) -> None:
    for session_id in ids:
        httpx.delete(
            f"{server.url}agents/sessions/{session_id}?purge=true",
            headers=server.headers,
            timeout=60,
        ).raise_for_status()


def lab_root(server: JupyterServerProcess) -> str:
    return f"http://127.0.0.1:{server.port}/"


# --- the browser ---------------------------------------------------------------------------


# Module scope, not session: Playwright's sync API keeps its event loop *running* in this
# thread (in a greenlet) until it stops, and every asyncio test after it would then fail
# with "cannot be called from a running event loop".  Stopping it after each module (and
# running tests/browser last, see pyproject's testpaths) keeps the rest of the suite clean.
@pytest.fixture(scope="module")
def playwright_sync() -> Iterator[Playwright]:
    """Playwright's sync API (it never downloads a browser here: see ``browser``)."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        browser_unusable("playwright is not installed (pip install -e '.[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        browser_unusable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_sync: Playwright) -> Iterator[Browser]:
    from playwright.sync_api import Error

    try:
        browser = playwright_sync.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # root has no sandbox; /dev/shm is small in containers
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
    except Error as exc:
        browser_unusable(f"Chromium at {CHROMIUM} does not start: {exc}")
    yield browser
    browser.close()


# --- one JupyterLab page per test ----------------------------------------------------------


@dataclass
class Lab:
    """A JupyterLab page, fully restored, and what its console said."""

    page: Page
    server: JupyterServerProcess = field(repr=False)
    workspace: str
    #: console errors and uncaught exceptions, as ``"console: ..."``/``"pageerror: ..."``
    errors: list[str] = field(default_factory=list, repr=False)
    #: every console message (for the report of a failed test)
    console: list[str] = field(default_factory=list, repr=False)

    @property
    def root(self) -> str:
        """The server's base URL (``http://127.0.0.1:<port>/``)."""
        return lab_root(self.server)

    @property
    def url(self) -> str:
        """This test's workspace, without the token (the page's cookie logs it in)."""
        return f"{self.root}lab/workspaces/{self.workspace}"

    def take_errors(self, matching: str = "") -> list[str]:
        """The errors so far (those matching the regex ``matching``), which then no longer
        fail the test: for errors a test provokes on purpose."""
        taken = [e for e in self.errors if re.search(matching, e)]
        self.errors[:] = [e for e in self.errors if e not in taken]
        return taken

    def wait_until_ready(self, launcher: bool = True) -> None:
        """JupyterLab's shell is up, its plugins activated and its layout restored; with
        ``launcher``, the Launcher JupyterLab opens in an empty main area (about a second
        after the restore) has come and taken the focus, which would otherwise close a
        modal (the command palette) opened before it."""
        page = self.page
        page.locator("#jp-main-dock-panel").wait_for(state="visible")
        page.wait_for_function("() => window.jupyterapp !== undefined")
        page.evaluate("() => window.jupyterapp.restored")
        page.locator("#jupyterlab-splash-screen").wait_for(state="detached")
        if launcher:
            page.wait_for_function(
                "() => !!document.activeElement && !!document.activeElement.closest('.jp-Launcher')"
            )

    def wait_until(self, check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        """Poll ``check()`` (Python side, e.g. the server's state) until it is truthy."""
        deadline = time.monotonic() + timeout
        while not (result := check()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.1)
        return result

    def reload(self, launcher: bool = True) -> None:
        self.page.reload()
        self.wait_until_ready(launcher)

    def has_command(self, command: str) -> bool:
        return bool(self.page.evaluate("id => window.jupyterapp.commands.hasCommand(id)", command))

    def execute(self, command: str, args: dict[str, Any] | None = None) -> Any:
        """Run a JupyterLab command the way a menu or shortcut would; its answer as JSON,
        or None for one that cannot be (a command like docmanager:open answers with its
        widget, whose object graph Playwright at times fails to serialize after the
        command ran)."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            return self.page.evaluate(
                "([id, args]) => window.jupyterapp.commands.execute(id, args)",
                [command, args or {}],
            )
        except PlaywrightError as exc:
            if "serialize" not in str(exc):
                raise
            return None

    def execute_for_widget(self, command: str, args: dict[str, Any] | None = None) -> None:
        """``execute`` for a command that answers with a widget (no JSON to bring back)."""
        self.page.evaluate(
            "async ([id, args]) => { await window.jupyterapp.commands.execute(id, args); }",
            [command, args or {}],
        )

    def run_from_palette(self, label: str) -> None:
        """View ▸ Activate Command Palette, search ``label``, click its item."""
        page = self.page
        page.locator("#jp-menu-panel").get_by_role("menuitem", name="View").click()
        page.locator(".lm-Menu").get_by_role("menuitem", name="Activate Command Palette").click()
        palette = page.locator("#modal-command-palette")
        palette.locator(".lm-CommandPalette-input").fill(label)
        palette.locator(".lm-CommandPalette-item", has_text=label).first.click()
        palette.wait_for(state="hidden")

    def side_tab(self, widget_id: str) -> Any:
        """The side-bar tab of the widget ``widget_id`` (left or right side bar)."""
        return self.page.locator(f".jp-SideBar .lm-TabBar-tab[data-id='{widget_id}']")

    def xsrf(self) -> str:
        """The page's ``_xsrf`` cookie, for the ``X-XSRFToken`` header of a write."""
        for cookie in self.page.context.cookies(self.root):
            if cookie["name"] == "_xsrf":
                return cookie["value"]
        raise AssertionError("the page has no _xsrf cookie")

    def fetch(
        self, path: str, method: str = "GET", body: Any = None, xsrf: bool = True
    ) -> dict[str, Any]:
        """``fetch`` from the page (its cookie; its ``_xsrf`` when ``xsrf``), relative to
        the server's root: ``{status, body}`` (JSON when it is JSON)."""
        return dict(
            self.page.evaluate(
                """async ([url, method, body, xsrf]) => {
                    const headers = {};
                    if (xsrf) {
                      const m = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/);
                      if (m) headers['X-XSRFToken'] = decodeURIComponent(m[1]);
                    }
                    if (body !== null) headers['Content-Type'] = 'application/json';
                    const r = await fetch(url, {method, headers, credentials: 'same-origin',
                      body: body === null ? undefined : JSON.stringify(body)});
                    const text = await r.text();
                    let parsed = text;
                    try { parsed = JSON.parse(text); } catch (e) {}
                    return {status: r.status, body: parsed};
                }""",
                [self.root + path.lstrip("/"), method, body, xsrf],
            )
        )


@pytest.fixture
def lab(
    request: pytest.FixtureRequest, browser: Browser, lab_server: JupyterServerProcess
) -> Iterator[Lab]:
    context = browser.new_context(viewport=VIEWPORT, base_url=lab_root(lab_server))
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    workspace = artifact_name(request.node.nodeid).replace(".", "-")
    lab = Lab(page=page, server=lab_server, workspace=workspace)

    def on_console(msg: ConsoleMessage) -> None:
        line = f"{msg.type}: {msg.text}"
        lab.console.append(line)
        if msg.type == "error":
            lab.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: lab.errors.append(f"pageerror: {exc}"))
    request.node.stash[_LAB] = lab
    sessions_before = session_ids(lab_server)
    try:
        page.goto(f"{lab.url}?token={lab_server.token}")
        lab.wait_until_ready()
        yield lab
        if lab.errors and not request.node.stash.get(_FAILED, False):
            pytest.fail("the page logged errors:\n  " + "\n  ".join(lab.errors))
    finally:
        if _SCREENSHOT not in request.node.stash:
            screenshot(request.node, lab)
        context.close()
        # the sessions the test launched: stopped, their workspaces deleted
        purge_sessions(lab_server, session_ids(lab_server) - sessions_before)


def screenshot(item: pytest.Item, lab: Lab) -> Path | None:
    """Save the page to ``artifacts/<test>.png``, name it in the test's report."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{artifact_name(item.nodeid)}.png"
    try:
        lab.page.screenshot(path=str(path), full_page=True)
    except Exception as exc:  # noqa: BLE001 - a crashed page: the report says why
        item.user_properties.append(("screenshot", f"none: {exc}"))
        return None
    item.stash[_SCREENSHOT] = path
    item.user_properties.append(("screenshot", str(path)))
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Result[pytest.TestReport], None]:
    """A failed test: screenshot the page as it is now, add it, the console and the server's
    log to the failure report."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    lab = item.stash.get(_LAB, None)
    if lab is None or not report.failed or item.stash.get(_FAILED, False):
        return
    item.stash[_FAILED] = True
    path = item.stash.get(_SCREENSHOT, None) or screenshot(item, lab)
    report.sections.append((f"screenshot ({report.when})", str(path)))
    if lab.console:
        report.sections.append(("browser console", "\n".join(lab.console[-50:])))
    report.sections.append(("jupyter server log (tail)", lab.server.tail()))
