"""The web chat page in a real headless Chromium (Debian's, never a
downloaded browser): open it, ask, see the streamed answer and its source."""

import shutil
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from devstack import Stack

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def test_a_person_asks_in_the_browser_and_gets_a_sourced_answer(stack: Stack, tmp_path: Path) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{stack.gateway_port}/")
        await page.wait_for_selector("#status:text('online')", timeout=15_000)
        assert "SupportDesk assistant" in await page.inner_text("#log")
        await page.fill("#input", "How long does standard shipping take?")
        await page.click("button")
        answer = page.locator(".msg.assistant", has_text="3-5 business days")
        await answer.wait_for(timeout=30_000)
        await page.locator(".sources", has_text="Shipping information").wait_for(timeout=30_000)
        assert await page.locator(".msg.user").inner_text() == "How long does standard shipping take?"

        # A reload keeps the session (stored in the page) and resumes its frames.
        await page.reload()
        await page.wait_for_selector("#status:text('online')", timeout=15_000)
        await page.locator(".msg.assistant", has_text="3-5 business days").wait_for(timeout=15_000)
        assert await page.locator(".msg.user").inner_text() == "How long does standard shipping take?"
        assert await page.locator(".msg.assistant", has_text="3-5 business days").count() == 1
        await page.screenshot(path=str(tmp_path / "chat.png"))
        await browser.close()
