"""The web console in a real headless Chromium against a real ``penguin serve`` process.

Chromium is the system package (``/usr/bin/chromium``), driven by Playwright without its own
browser download. The page must work from the server alone: every request it makes is checked to
go to the server under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from penguin_server import PenguinServer
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Request, expect, sync_playwright

API = "/api/v1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOT = Path("/tmp/console.png")
WAIT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageLog:
    """What a page did besides rendering: console errors, uncaught exceptions, requested URLs."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.urls: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("request", self._request)
        page.on("websocket", lambda ws: self.urls.append(ws.url))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _request(self, request: Request) -> None:
        self.urls.append(request.url)

    def foreign(self, server: PenguinServer) -> list[str]:
        return [u for u in self.urls if not u.startswith((server.url + "/", server.ws_url + "/"))]


def turns_cell(page: Page, agent_id: str) -> Locator:
    return page.locator(f'#telemetry tr[data-agent="{agent_id}"] td.turns')


def test_console_lists_agents_chats_streams_and_pauses(tmp_path: Path, browser: Browser) -> None:
    server = PenguinServer(tmp_path).start()
    try:
        with httpx.Client(base_url=server.url + API, timeout=10) as api:
            api.post("/agents", json={"agent_id": "support", "roles": ["triage"], "model": "scripted:echo"})
            api.post("/agents", json={"agent_id": "engineering", "parent_id": "support"}).raise_for_status()
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            log = PageLog(page)

            page.goto(server.url + "/console")
            assert page.url == server.url + "/console/"
            rows = page.locator("#agents tbody tr")
            expect(rows).to_have_count(3)  # with the built-in default persona
            assert sorted(rows.locator("td.id").all_text_contents()) == ["default", "engineering", "support"]
            expect(page.locator('#agents tr[data-agent="engineering"]')).to_contain_text("support")
            expect(page.locator('#agents tr[data-agent="support"]')).to_contain_text("triage")
            expect(page.locator('#agents tr[data-agent="support"]')).to_contain_text("scripted:echo")
            expect(turns_cell(page, "support")).to_have_text("0")

            page.select_option("#feed-agent", "support")
            expect(page.locator("#feed-status")).to_have_text("live")
            turns_in_feed = page.locator("#feed li.type-event", has_text="turn.completed")

            # Markup in a message is shown as text, never parsed.
            text = "<b>hello</b> from the console"
            page.select_option("#chat-agent", "support")
            page.fill("#chat-text", text)
            page.click("#chat-send")
            reply = page.locator("#chat-log li.reply").last
            expect(reply).to_contain_text(text, timeout=WAIT_MS)
            expect(reply).to_contain_text("support")
            expect(turns_cell(page, "support")).to_have_text("1", timeout=WAIT_MS)
            expect(turns_in_feed).to_have_count(1, timeout=WAIT_MS)

            # The feed is filtered server-side: another agent's turn does not show up, while the
            # watched agent's later bus message, reply and turn do (envelopes arrive in bus order).
            api.post("/chat", json={"text": "engineering only", "agent_id": "engineering"}).raise_for_status()
            ticket = "<i>ticket</i> 42 from the bus"
            api.post("/messages", json={"recipient": "support", "content": ticket}).raise_for_status()
            expect(page.locator("#feed li.type-message", has_text=ticket)).to_have_count(2, timeout=WAIT_MS)
            expect(turns_in_feed).to_have_count(2, timeout=WAIT_MS)
            expect(turns_cell(page, "support")).to_have_text("2", timeout=WAIT_MS)
            expect(turns_cell(page, "engineering")).to_have_text("1", timeout=WAIT_MS)
            assert page.locator("#feed li", has_text="engineering").count() == 0
            assert page.locator("#chat-log b, #feed i, #history b, #history i").count() == 0

            page.select_option("#history-agent", "support")
            page.click("#history-load")
            history = page.locator("#history li")
            expect(history).to_have_count(4, timeout=WAIT_MS)
            roles = [meta.split()[3] for meta in history.locator(".meta").all_inner_texts()]
            assert roles == ["user", "assistant", "user", "assistant"]
            expect(history.nth(0)).to_contain_text(text)
            expect(history.nth(3)).to_contain_text(ticket)

            page.click('#agents tr[data-agent="support"] button.pause')
            expect(page.locator('#agents tr[data-agent="support"] td.paused')).to_have_text("paused")
            assert api.get("/agents/support").json()["paused"] is True
            assert api.get("/agents/engineering").json()["paused"] is False

            page.screenshot(path=str(SCREENSHOT), full_page=True)

            page.click('#agents tr[data-agent="support"] button.resume')
            expect(page.locator('#agents tr[data-agent="support"] button.pause')).to_be_visible()
            assert api.get("/agents/support").json()["paused"] is False

            assert log.errors == []
            assert log.foreign(server) == []
            context.close()
    finally:
        server.stop()


def test_console_files_are_public_but_the_api_needs_the_key_typed_into_the_page(
    tmp_path: Path, browser: Browser
) -> None:
    key = "console-test-key"
    server = PenguinServer(tmp_path, env={"PENGUIN_API_KEY": key}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            page_response = http.get("/console/")
            assert page_response.status_code == 200
            assert "default-src 'self'" in page_response.headers["content-security-policy"]
            assert http.get("/console/console.js").status_code == 200
            assert http.post("/console/").status_code == 405
            assert http.get("/console/missing.js").status_code == 404
            assert http.get(API + "/agents").status_code == 401
            auth = {"Authorization": f"Bearer {key}"}
            http.post(API + "/agents", json={"agent_id": "ops"}, headers=auth).raise_for_status()

        context = browser.new_context()
        page = context.new_page()
        log = PageLog(page)
        page.goto(server.url + "/console/")
        expect(page.locator("#status")).to_contain_text("needs an API key")
        expect(page.locator("#agents tbody tr")).to_have_count(0)

        page.fill("#api-key", key)
        page.click("#key-save")
        expect(page.locator('#agents tr[data-agent="ops"]')).to_be_visible(timeout=WAIT_MS)
        assert page.evaluate("sessionStorage.getItem('penguin.apiKey')") == key
        page.select_option("#chat-agent", "ops")
        page.fill("#chat-text", "with a key")
        page.click("#chat-send")
        expect(page.locator("#chat-log li.reply").last).to_contain_text("with a key", timeout=WAIT_MS)
        # The telemetry WebSocket authenticates with ?token= and keeps streaming.
        expect(turns_cell(page, "ops")).to_have_text("1", timeout=WAIT_MS)
        assert log.foreign(server) == []
        assert [e for e in log.errors if "401" not in e] == []  # only the refused calls before the key
        context.close()
    finally:
        server.stop()
