"""``/docs`` and ``/redoc`` render in headless Chromium with every non-loopback request refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from penguin_server import PenguinServer
from playwright.sync_api import Browser, Route, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOT = Path("/tmp/api-docs.png")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PenguinServer]:
    proc = PenguinServer(tmp_path_factory.mktemp("docs")).start()
    yield proc
    proc.stop()


def offline_page(browser: Browser) -> tuple[object, list[str]]:
    """A page whose requests to anything but loopback are aborted (and listed)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    refused: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    return context.new_page(), refused


def test_swagger_ui_renders_the_operations_offline(browser: Browser, server: PenguinServer) -> None:
    page, refused = offline_page(browser)
    page.goto(server.url + "/docs")  # type: ignore[attr-defined]
    operations = page.locator(".opblock")  # type: ignore[attr-defined]
    expect(operations.first).to_be_visible(timeout=15_000)
    assert operations.count() > 40
    chat_completions = page.locator(".opblock-summary-path", has_text="/v1/chat/completions")  # type: ignore[attr-defined]
    expect(chat_completions).to_be_visible()
    expect(page.locator("text=ToolPolicy").first).to_be_attached()  # type: ignore[attr-defined]
    page.screenshot(path=str(SCREENSHOT))  # type: ignore[attr-defined]
    assert refused == []  # the page needed nothing from outside


def test_redoc_renders_offline(browser: Browser, server: PenguinServer) -> None:
    page, refused = offline_page(browser)
    page.goto(server.url + "/redoc")  # type: ignore[attr-defined]
    heading = page.locator("h2", has_text="Send a message to an agent")  # type: ignore[attr-defined]
    expect(heading).to_be_visible(timeout=15_000)
    assert page.locator(".api-content h2").count() > 40  # type: ignore[attr-defined]
    # ReDoc's footer links its maker's logo; refused, it leaves an empty image and nothing else.
    assert [u for u in refused if not u.endswith("/logo-mini.svg")] == []
