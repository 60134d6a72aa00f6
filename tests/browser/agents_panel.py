"""The Agents side panel as the browser tests drive it, through its ``data-testid`` contract
(documented at the top of ``labextension/src/panel.tsx``)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .conftest import Lab

if TYPE_CHECKING:
    from playwright.sync_api import Locator

PANEL_ID = "agcluster-agents-panel"
OPEN_PANEL = "agcluster:open-panel"
#: a session that can take a message
READY = re.compile(r"^(ready|idle)$")


def expect(target: Any, message: str | None = None) -> Any:
    """Playwright's ``expect`` (imported late: without Playwright the tests skip)."""
    from playwright.sync_api import expect as _expect

    return _expect(target, message)


class AgentsPanel:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.page = lab.page
        self.root = lab.page.locator(f"#{PANEL_ID}")

    def tid(self, test_id: str) -> Locator:
        """The elements with ``data-testid=test_id`` in the panel."""
        return self.root.get_by_test_id(test_id)

    @property
    def pane(self) -> Locator:
        """The open session."""
        return self.tid("session-pane")

    def open(self) -> None:
        """Show the panel (its command) and wait for the presets."""
        self.lab.execute(OPEN_PANEL)
        expect(self.root).to_be_visible()
        expect(
            self.tid("preset-card").first,
            "no preset cards: does the built panel (agcluster_jupyter/labextension) have the"
            " data-testid contract of labextension/src/panel.tsx? (pip install -e . rebuilds it)",
        ).to_be_visible()

    def section(self, name: str, open: bool = True) -> None:
        """Open (or close) the collapsible section ``name``."""
        title = self.tid(f"section-{name}")
        if (title.get_attribute("data-open") == "true") != open:
            title.click()
        expect(title).to_have_attribute("data-open", "true" if open else "false")

    def launch(self, config_id: str) -> str:
        """Launch a preset from its card; the new session's id, once it takes messages."""
        card = self.root.locator(f"[data-testid=preset-card][data-config-id='{config_id}']")
        card.get_by_test_id("preset-launch").click()
        return self.wait_for_session()

    def launch_custom(self, template: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Fill the custom-config editor from the preset ``template``, let ``change`` edit
        the config, click its Launch button (the caller waits for what follows)."""
        self.section("custom-config")
        editor = self.tid("config-editor")
        editor.fill("")  # so the template's text is told apart from an earlier one
        self.tid("config-template").select_option(template)
        expect(editor).to_have_value(re.compile(re.escape(f'"{template}"')))
        config = json.loads(editor.input_value())
        change(config)
        editor.fill(json.dumps(config, indent=2))
        self.tid("config-launch").click()

    def wait_for_session(self) -> str:
        pane = self.pane
        expect(pane).to_be_visible()
        expect(pane).to_have_attribute("data-state", READY)
        session_id = pane.get_attribute("data-session-id")
        assert session_id
        return session_id

    def send(self, message: str) -> None:
        """Type ``message`` and press Enter (which sends it)."""
        box = self.tid("chat-input")
        box.fill(message)
        box.press("Enter")
        expect(self.tid("message-user").filter(has_text=message).last).to_be_visible()

    def assistant_says(self, text: str, timeout: float = 120_000) -> Locator:
        """Wait for an assistant message containing ``text``, streamed to its end."""
        message = self.tid("message-assistant").filter(has_text=text).last
        expect(message).to_be_visible(timeout=timeout)
        expect(message).not_to_have_attribute("data-streaming", "true", timeout=timeout)
        return message

    def wait_idle(self) -> None:
        expect(self.pane).to_have_attribute("data-state", READY)
        expect(self.tid("chat-interrupt")).to_have_count(0)

    def tool_calls(self) -> list[tuple[str, str]]:
        """``(tool name, status)`` of every call in the timeline, in order."""
        return [
            (str(name), str(status))
            for name, status in self.tid("tool-call").evaluate_all(
                "els => els.map(e => [e.dataset.toolName, e.dataset.status])"
            )
        ]

    def tool_call(self, name: str) -> Locator:
        return self.root.locator(f"[data-testid=tool-call][data-tool-name='{name}']")

    def file_entry(self, path: str) -> Locator:
        return self.root.locator(f"[data-testid=file-entry][data-path='{path}']")
