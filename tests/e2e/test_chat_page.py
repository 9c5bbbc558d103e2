"""The web chat page in a real headless Chromium (Debian's, never a
downloaded browser): open it, ask, see the streamed answer and its source."""

import asyncio
import json
import re
import shutil
from pathlib import Path

import httpx
import pytest
from playwright.async_api import WebSocketRoute, async_playwright

from devstack import Stack
from stacks import ADMIN_KEY

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


async def test_a_person_attaches_a_file_and_asks_about_it(stack: Stack, tmp_path: Path) -> None:
    slip = tmp_path / "packing-slip.txt"
    slip.write_text("The parcel for order 5521 was packed with a red climbing rope and a chalk bag.\n")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{stack.gateway_port}/")
        await page.wait_for_selector("#status:text('online')", timeout=15_000)
        await page.set_input_files("#file", str(slip))
        await page.locator(".msg.system", has_text="packing-slip.txt is attached").wait_for(timeout=60_000)
        await page.fill("#input", "What was packed for order 5521?")
        await page.click("button")
        await page.locator(".msg.assistant", has_text="red climbing rope").wait_for(timeout=30_000)
        await page.locator(".sources", has_text="packing-slip.txt").wait_for(timeout=30_000)

        refused = tmp_path / "notes.exe"
        refused.write_bytes(b"MZ")
        await page.set_input_files("#file", str(refused))
        await page.locator(".msg.system", has_text="Could not attach notes.exe: supported file types").wait_for(
            timeout=15_000
        )
        await page.screenshot(path=str(tmp_path / "attachment.png"))
        await browser.close()


async def test_a_message_lost_with_its_connection_is_sent_again(stack: Stack, tmp_path: Path) -> None:
    """The connection drops between the page sending a message and the server
    reading it: the page sends it again, with the same id, when it is back
    online, and it is answered once."""
    dropped: list[dict[str, object]] = []
    closing: list[asyncio.Future[None]] = []

    async def drop_the_first_message(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "message" and not dropped:
                dropped.append(frame)
                closing.append(asyncio.ensure_future(ws.close(code=1001)))  # lost on the way
                return
            server.send(message)

        ws.on_message(from_page)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = await browser.new_page()
        await page.route_web_socket(re.compile(r".*/ws\?.*"), drop_the_first_message)
        await page.goto(f"http://127.0.0.1:{stack.gateway_port}/")
        await page.wait_for_selector("#status:text('online')", timeout=15_000)
        await page.fill("#input", "How long does standard shipping take?")
        await page.click("button")
        await page.locator(".msg.assistant", has_text="3-5 business days").wait_for(timeout=30_000)
        assert len(dropped) == 1
        await page.wait_for_timeout(500)  # nothing more arrives
        assert await page.locator(".msg.assistant", has_text="3-5 business days").count() == 1
        assert await page.locator(".msg.user").count() == 1
        session = json.loads(await page.evaluate("localStorage.getItem('supportdesk.session')"))
        await browser.close()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.gateway_port}") as http:
        history = (
            await http.get(
                f"/api/v1/sessions/{session['id']}/messages",
                headers={"Authorization": f"Bearer {session['token']}"},
            )
        ).json()
    assert [(m["role"], m.get("id")) for m in history if m["role"] == "user"] == [("user", dropped[0]["message_id"])]


async def test_an_operator_answers_a_user_from_the_inbox_page(stack: Stack, tmp_path: Path) -> None:
    """The user's chat page and the operator's inbox page, side by side: the
    escalation appears in the inbox live, the operator claims and replies,
    the user reads the reply, the operator hands back, the bot answers."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        operator = await browser.new_page()
        await operator.goto(f"http://127.0.0.1:{stack.gateway_port + 1}/inbox")  # the other replica
        await operator.fill("#key", ADMIN_KEY)
        await operator.click("#signin button")
        await operator.wait_for_selector("#live:text('live')", timeout=15_000)

        user = await browser.new_page()
        await user.goto(f"http://127.0.0.1:{stack.gateway_port}/")
        await user.wait_for_selector("#status:text('online')", timeout=15_000)
        await user.fill("#input", "I want to talk to a human about my invoice")
        await user.click("button")
        await user.locator(".msg.system", has_text="human agent").wait_for(timeout=30_000)

        waiting = operator.locator(".item", has_text="my invoice")
        await waiting.wait_for(timeout=30_000)  # live, without a reload
        await waiting.click()
        await operator.click("#claim")
        await user.locator(".msg.system", has_text="joined").wait_for(timeout=30_000)
        await operator.fill("#reply", "Hi, this is the billing team. Which invoice?")
        await operator.click("#reply-form button")
        await user.locator(".msg.agent", has_text="billing team").wait_for(timeout=30_000)

        await operator.click("#handback")
        await user.locator(".msg.system", has_text="assistant again").wait_for(timeout=30_000)
        await user.fill("#input", "How long does standard shipping take?")
        await user.click("button")
        await user.locator(".msg.assistant", has_text="3-5 business days").wait_for(timeout=30_000)
        await user.screenshot(path=str(tmp_path / "user.png"))
        await operator.screenshot(path=str(tmp_path / "inbox.png"))
        await browser.close()
