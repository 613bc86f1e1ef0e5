"""Webchat end to end in headless Chromium: type a question, watch the answer stream in."""

from __future__ import annotations

import shutil

from playwright.async_api import async_playwright

from bot.app import App
from tests.conftest import make_config
from tests.fakes.scripted_provider import ScriptedProvider

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# records every text the reply bubble shows, so the test can see it grow token by token
OBSERVE = """
window.__seen = [];
new MutationObserver(() => {
  const el = document.querySelector('.msg.bot');
  if (el) window.__seen.push(el.textContent);
}).observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true});
"""


async def test_question_typed_in_the_page_streams_an_answer(tmp_path):
    words = ["Paris", "is", "the", "capital", "and", "largest", "city", "of", "France", "."]
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    app = App(make_config(), providers={"local": ScriptedProvider(pieces, interval=0.05)})
    await app.start()
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await browser.new_page()
            await page.goto(app.base_url + "/")
            await page.evaluate(OBSERVE)
            await page.fill("#text", "What is the capital of France?")
            await page.click("#send")
            await page.wait_for_selector(".msg.bot[data-done='1']", timeout=15_000)
            final = await page.text_content(".msg.bot")
            seen = await page.evaluate("window.__seen")
            user = await page.text_content(".msg.user")
            await page.screenshot(path=str(tmp_path / "webchat.png"))
            await browser.close()
    finally:
        await app.stop()
    assert user == "What is the capital of France?"
    assert final == "".join(pieces)
    growing = [s for s in dict.fromkeys(seen) if s]
    assert len(growing) >= 5, growing  # it streamed in, several visible steps
    assert all(final.startswith(s) for s in growing)


async def test_page_refuses_a_message_over_the_frame_cap_with_a_notice():
    from channels.webchat.channel import HARD_CAP

    provider = ScriptedProvider(["fine"])
    app = App(make_config(), providers={"local": provider})
    await app.start()
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await browser.new_page()
            await page.goto(app.base_url + "/")
            await page.evaluate(f"document.getElementById('text').value = 'x'.repeat({HARD_CAP})")
            await page.click("#send")
            notice = await page.wait_for_selector(".msg.notice", timeout=15_000)
            text = await notice.text_content()
            await page.fill("#text", "still there?")
            await page.click("#send")
            await page.wait_for_selector(".msg.bot[data-done='1']", timeout=15_000)
            answer = await page.text_content(".msg.bot")
            users = await page.locator(".msg.user").count()
            await browser.close()
    finally:
        await app.stop()
    assert "too large" in text and "shorten" in text
    assert answer == "fine" and users == 1  # the big one was never sent, the socket still works
    assert len(provider.requests) == 1
